"""The model a service runs: a run's classifier, its classes and what it was trained for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from keyless.errors import ConfigError
from keyless.evaluate import predict
from keyless.hardware import resolve_device, resolve_precision
from keyless.runs import Run, TrainConfig, load_run, with_upload_columns


@dataclass(frozen=True)
class ServedModel:
    """A trained classifier loaded for inference, with the facts a client needs about it."""

    name: str
    model: nn.Module
    config: TrainConfig
    classes: tuple[str, ...]
    input_size: tuple[int, int]
    accuracy: dict[str, float] | None
    device: torch.device
    precision: str
    tta: bool = False

    @classmethod
    def load(
        cls,
        run: Path | str,
        input_size: tuple[int, int] | None = None,
        device: str | None = None,
        tta: bool = False,
    ) -> ServedModel:
        """Load a run folder (``checkpoint.pt``; ``record.json`` for accuracy, when present).

        Args:
            run: the run folder.
            input_size: (H, W) the model takes; default the size it was trained on, from its
                checkpoint (see :class:`keyless.runs.Checkpoint` for runs of older keyless).
            device: ``cpu`` or ``cuda``; default CUDA when available.
            tta: answer with the evaluation's flip-and-translate test-time augmentation (five
                forward passes per image) instead of one pass; only for a cipher that commutes
                with moving pixels (PE), as in the evaluation protocol.
        """
        folder = Run(run)
        dev = resolve_device(device)
        model, checkpoint = load_run(folder.path, str(dev))
        cipher = checkpoint.config.cipher
        if tta and not cipher.commutes_with_moves:
            raise ConfigError(f"--tta: the model's cipher {cipher.name} does not commute with "
                              "moving pixels, so test-time augmentation would mix its blocks; "
                              "serve without it")  # fmt: skip
        h, w = input_size or checkpoint.input_size
        return cls(
            name=folder.path.resolve().name,
            model=model,
            config=checkpoint.config,
            classes=tuple(checkpoint.classes),
            input_size=(int(h), int(w)),
            accuracy=folder.read_record().test if folder.has_record() else None,
            device=dev,
            precision=resolve_precision(checkpoint.config.precision, dev),
            tta=tta,
        )

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, classes) float32 on the CPU for (N, H, W, 3) uint8 images:
        one forward pass, or the evaluation's test-time augmentation with ``tta``."""
        batch = max(1, len(images))
        return predict(self.model, images, self.tta, batch, self.device, self.precision).softmax(1)

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` answers: the model, its inputs, training setting and accuracy."""
        return {
            "name": self.name,
            "model": self.config.model,
            "classes": list(self.classes),
            "input_size": list(self.input_size),
            "input": "uint8 RGB, (H, W, 3)",
            "cipher": self.config.cipher.settings(),
            "keys": self.config.keys,
            "stem": self.config.stem,
            "adapt": self.config.adapt,
            "tta": self.tta,
            "accuracy": self.delivered(),
            "accepts": self.accepts(),
        }

    def delivered(self) -> dict[str, float]:
        """The recorded test accuracies of the inference this service does: the ``*_tta``
        figures when it serves with test-time augmentation, the others when it does not."""
        return {k: v for k, v in (self.accuracy or {}).items() if k.endswith("_tta") == self.tta}

    def accepts(self) -> dict[str, float | None]:
        """The inputs this model takes, each with the test accuracy this service delivers on
        them (:meth:`delivered`; ``None``: not measured): fresh-key ciphertexts and plain images;
        a model trained on plain images or under one common key, plain images only (a client
        cannot make the owner's common-key ciphertexts, and fresh-key ones come back near
        chance)."""
        measured = with_upload_columns(self.delivered(), self.config.keys)
        suffix = "_tta" if self.tta else ""
        fresh, plain = measured.get("fresh_key" + suffix), measured.get("plain" + suffix)
        if plain is None and self.config.stem == "invariant":
            plain = fresh  # the stem sees the same for an image and every encryption of it
        if self.config.keys in ("plain", "common"):
            return {"plain_images": plain}
        return {"fresh_key_ciphertexts": fresh, "plain_images": plain}


def top_k(probabilities: torch.Tensor, classes: tuple[str, ...], k: int) -> list[dict[str, Any]]:
    """Per image: the label, its class name and the ``k`` most probable classes."""
    values, indices = probabilities.topk(k, dim=1)
    return [
        {
            "label": labels[0],
            "class_name": classes[labels[0]],
            "top_k": [
                {"label": label, "class_name": classes[label], "probability": p}
                for label, p in zip(labels, probs, strict=True)
            ],
        }
        for labels, probs in zip(indices.tolist(), values.tolist(), strict=True)
    ]
