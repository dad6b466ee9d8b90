"""The model a service runs: a run's classifier, its classes and what it was trained for."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

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

    @classmethod
    def load(
        cls,
        run: Path | str,
        input_size: tuple[int, int] | None = None,
        device: str | None = None,
    ) -> ServedModel:
        """Load a run folder (``checkpoint.pt``; ``record.json`` for accuracy, when present).

        Args:
            run: the run folder.
            input_size: (H, W) the model takes; default the size it was trained on, from its
                checkpoint (see :class:`keyless.runs.Checkpoint` for runs of older keyless).
            device: ``cpu`` or ``cuda``; default CUDA when available.
        """
        folder = Run(run)
        dev = resolve_device(device)
        model, checkpoint = load_run(folder.path, str(dev))
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
        )

    @torch.inference_mode()
    def probabilities(self, images: torch.Tensor) -> torch.Tensor:
        """Class probabilities (N, classes) float32 on the CPU for (N, H, W, 3) uint8 images."""
        bf16 = self.precision == "bf16"
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=bf16):
            logits = self.model(images.to(self.device))
        return logits.float().softmax(1).cpu()

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
            "accuracy": self.accuracy,
            "accepts": self.accepts(),
        }

    def accepts(self) -> dict[str, float | None]:
        """The inputs this model takes, each with its measured test accuracy (TTA where the
        record has it; ``None``: not measured): fresh-key ciphertexts and plain images; a model
        trained on plain images or under one common key, plain images only (a client cannot make
        the owner's common-key ciphertexts, and fresh-key ones come back near chance)."""
        measured = with_upload_columns(self.accuracy or {}, self.config.keys)

        def best(*names: str) -> float | None:
            return next((measured[n] for n in names if n in measured), None)

        fresh = best("fresh_key_tta", "fresh_key")
        plain = best("plain_tta", "plain")
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
