"""Training configuration and the two recipes: ``fast`` (airbench94-like) and ``paper`` (ICIP)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

KeyMode = Literal["plain", "common", "independent"]


@dataclass
class TrainConfig:
    """Everything a run depends on, saved in its record; lr and decay in torch SGD semantics."""

    model: str = "fastnet"
    keys: KeyMode = "independent"
    rekey: bool = False  # server re-randomises the training ciphertexts' keys every epoch
    stem: str = "plain"  # or "invariant", "nibbles"
    adapt: str = "none"  # "pixel": ICIP adaptation network; "block": Tanaka's block-wise one
    augment: Literal["cloud", "client"] = "cloud"  # after encryption, or before it by the owner
    cipher: dict[str, Any] = field(default_factory=dict)  # name and options of the cipher
    recipe: str = "fast"
    epochs: float = 10.0
    batch_size: int = 1024
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    loss_reduction: Literal["mean", "sum"] = "mean"
    bias_lr_scale: float = 1.0  # BN and whitening biases learn this much faster (airbench)
    schedule: Literal["triangle", "step"] = "triangle"
    warmup_fraction: float = 0.23  # triangle: rise from lr_start to 1 over this share of steps
    lr_start: float = 0.2
    lr_end: float = 0.07
    milestones: tuple[int, ...] = (150, 225)  # step: divide lr by 10 at these epochs
    label_smoothing: float = 0.0
    translate: int = 2  # pixels, random shift with reflection
    flip: bool = True
    alternating_flip: bool = True  # airbench: each image mirrored on alternate epochs
    lookahead: bool = False  # airbench's EMA-of-weights every 5 steps
    whiten_bias_epochs: float = 3.0  # fastnet: freeze the whitening bias after this
    val_size: int = 0  # carve a validation split from the training set (for tuning)
    seed: int | None = None
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 where the hardware has it
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"widths": [32, 64, 128]}
    max_train_images: int | None = None  # use a subset (smoke tests)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``; ``None`` values are ignored (so the CLI can pass everything)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict` (JSON and checkpoints turn tuples into lists; records
        older than the block-wise adaptation network stored ``adapt`` as a bool)."""
        adapt = values.get("adapt", "none")
        adapt = {True: "pixel", False: "none"}.get(adapt, adapt)
        return cls(**{**values, "milestones": tuple(values["milestones"]), "adapt": adapt})


def airbench_sgd(
    lr: float, weight_decay: float, momentum: float, batch_size: int
) -> dict[str, float]:
    """airbench94's scale-free lr and decay turned into torch SGD values for a summed loss.

    airbench divides the learning rate by ``1024 * (1 + 1 / (1 - momentum))`` (how much Nesterov
    momentum enlarges steps) and expresses decay per example; torch multiplies decay by lr.
    """
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    torch_lr = lr / kilostep
    return {"lr": torch_lr, "weight_decay": weight_decay * batch_size / kilostep / torch_lr}


RECIPES: dict[str, TrainConfig] = {
    # airbench94 (Keller Jordan) on CPU: summed label-smoothed loss, fast BN biases, lookahead.
    "fast": TrainConfig(
        recipe="fast",
        epochs=10.0,
        batch_size=1024,
        momentum=0.85,
        nesterov=True,
        loss_reduction="sum",
        bias_lr_scale=64.0,
        schedule="triangle",
        label_smoothing=0.2,
        translate=2,
        lookahead=True,
        **airbench_sgd(lr=11.5, weight_decay=0.0153, momentum=0.85, batch_size=1024),
    ),
    # ICIP 2019 / common CIFAR ResNet recipe: SGD 0.1, /10 at 150 and 225, 300 epochs.
    "paper": TrainConfig(
        recipe="paper",
        model="resnet18",
        epochs=300,
        batch_size=128,
        lr=0.1,
        momentum=0.9,
        nesterov=False,
        weight_decay=5e-4,
        schedule="step",
        milestones=(150, 225),
        translate=4,
        alternating_flip=False,
    ),
}


def recipe(name: str, **changes: Any) -> TrainConfig:
    """A recipe's config with ``changes`` applied (``None`` keeps the recipe's value)."""
    if name not in RECIPES:
        raise ValueError(f"unknown recipe {name!r}; known: {', '.join(RECIPES)}")
    return RECIPES[name].replace(**changes)
