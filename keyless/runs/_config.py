"""What a training run depends on: one typed, JSON-able config, saved in its checkpoint and record.

The recipes' values (airbench94's fast recipe, the papers' step recipe) live in
:mod:`keyless.train.recipes`; this module only says what the fields are and which go together.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import json
import typing
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, PlainSerializer, PlainValidator, TypeAdapter, ValidationError

from keyless._schema import build_dataclass, list_to_tuple, problem
from keyless.cipher import Cipher, PixelCipher, StoredCipher
from keyless.errors import ConfigError
from keyless.keymodes import KeyMode, key_mode
from keyless.models import MODELS

MAX_EPOCHS = 10_000  # airbench's recipes take 10-40 epochs, the papers' 300
MAX_BATCH_SIZE = 2**20  # images per optimizer step


@dataclass
class TrainConfig:
    """Everything a run depends on; lr and decay in torch SGD semantics (see ``airbench_sgd``)."""

    model: str = "fastnet"
    keys: KeyMode = "independent"
    rekey: bool = False  # server re-randomises the training ciphertexts' keys every epoch
    stem: str = "plain"  # or "invariant", "nibbles"
    adapt: str = "none"  # "pixel": ICIP adaptation network; "block": Tanaka's block-wise one
    augment: Literal["cloud", "client"] = "cloud"  # after encryption, or before it by the owner
    cipher: Cipher = field(default_factory=PixelCipher)  # stored as its settings()
    recipe: str = "fast"
    epochs: float = 10.0
    batch_size: int = 1024  # images per optimizer step, all processes together
    lr: float = 0.1  # per step, torch SGD
    optimizer: Literal["sgd", "muon"] = "sgd"  # muon: conv filters by Muon, the rest by SGD
    muon_lr: float = 0.24  # Muon: step length of each filter bank's orthogonalised update
    muon_momentum: float = 0.6  # Muon: Nesterov momentum of the filter updates
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4  # torch SGD: multiplied by the lr
    loss_reduction: Literal["mean", "sum"] = "mean"
    bias_lr_scale: float = 1.0  # BatchNorm biases learn this much faster (airbench)
    schedule: Literal["triangle", "step"] = "triangle"
    warmup_fraction: float = 0.23  # triangle: share of steps rising from lr_start to 1
    lr_start: float = 0.2  # triangle: lr multiplier at step 0
    lr_end: float = 0.07  # triangle: lr multiplier at the last step
    milestones: tuple[int, ...] = (150, 225)  # step: epochs at which the lr is divided by 10
    label_smoothing: float = 0.0
    translate: int = 2  # pixels: random shift in -translate..translate, reflected
    flip: bool = True
    contrast: float = 0.0  # each image's distance from mid-grey times 1 +/- this (PE-exact)
    cutout: int = 0  # pixels: side of a grey square hidden in each training image (airbench96: 12)
    block_translate: int = 0  # pixels: each cipher block shifted within itself (pe-scramble)
    alternating_flip: bool = True  # airbench: each image mirrored on alternate epochs
    lookahead: bool = False  # airbench's EMA of weights every few steps
    lookahead_every: int = 5  # steps between lookahead updates (airbench: 5 of 1024 images)
    whiten_bias_epochs: float = 3.0  # fastnet: the whitening bias is frozen after this
    val_size: int = 0  # images carved from the training set for validation (tuning)
    seed: int | None = None
    precision: Literal["auto", "bf16", "fp32"] = "auto"  # auto: bf16 where the hardware has it
    model_kwargs: dict[str, Any] = field(default_factory=dict)  # e.g. {"widths": [32, 64, 128]}
    max_train_images: int | None = None  # use the first N training images (smoke tests)

    def __post_init__(self) -> None:
        if not callable(getattr(self.cipher, "settings", None)):
            raise TypeError(
                f"cipher must be a Cipher (create_cipher builds one), got {self.cipher!r}"
            )
        key_mode(self.keys, "train")
        if not 0 < self.epochs <= MAX_EPOCHS:  # 1e300 would train for ever
            raise ConfigError(f"epochs must be above 0 and at most {MAX_EPOCHS}, got {self.epochs}")
        if not 1 <= self.batch_size <= MAX_BATCH_SIZE:
            raise ConfigError(f"batch_size must be 1 to {MAX_BATCH_SIZE}, got {self.batch_size}")
        if self.max_train_images is not None and self.max_train_images < 1:
            raise ConfigError(f"max_train_images must be at least 1, got {self.max_train_images}")
        for name in ("val_size", "translate", "cutout", "block_translate"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.seed is not None and not 0 <= self.seed < 2**32:
            raise ConfigError(f"seed must be from 0 to 2**32 - 1, got {self.seed}")
        if self.lookahead_every < 1:
            every = self.lookahead_every
            raise ConfigError(f"lookahead_every must be at least 1 step, got {every}")
        if not 0 <= self.contrast < 1:
            raise ConfigError(f"contrast must be at least 0 and below 1, got {self.contrast}")
        if self.rekey and self.augment == "client" and self.keys != "plain":
            raise ConfigError(
                "--rekey re-encrypts in the cloud; it does not go with client augmentation "
                "(--augment client), where the owner encrypts every augmented batch"
            )

        if self.block_translate and not hasattr(self.cipher, "block_size"):
            raise ConfigError("block_translate shifts the cipher's blocks; this cipher has none")

    def check_new_run(self) -> None:
        """Refuse what keyless no longer trains, though older runs that did still load."""
        if self.rekey and getattr(self.cipher, "np_mode", None) == "balanced":
            raise ConfigError(
                "--rekey composes each key with a fresh one, which keeps coin-flip keys "
                "distributed as fresh ones but not balanced ones (--np-mode balanced)"
            )

    def check_resume(self, saved: TrainConfig, given: Collection[str] | None = None) -> None:
        """Refuse to continue the run of config ``saved`` with values of this config that
        contradict it (a resumed run keeps its config: they would be ignored without a word).

        ``given`` names what the caller set (the CLI: its command line's options): config fields,
        a backbone option (a key of ``model_kwargs``) or a cipher option (a field of either
        cipher), each compared alone; other names are not the config's and are skipped.
        ``None`` compares every field. The :class:`ConfigError` names each contradiction.
        """
        names = [f.name for f in dataclasses.fields(self)] if given is None else sorted(given)
        differ = []
        for name in names:
            then = saved._option(name)
            if self._option(name) != then:
                differ.append(f"--{name.replace('_', '-')} (the run has {name}={then!r})")
        if differ:
            raise ConfigError(f"--resume continues the run as configured; {', '.join(differ)}: "
                              "drop the option or train into a new --out")  # fmt: skip

    def _option(self, name: str) -> Any:
        """The value of a config field, backbone option or cipher option (``None``: not one);
        the cipher as its settings."""
        if name == "cipher":
            return self.cipher.settings()
        if name in self.__dataclass_fields__:
            return getattr(self, name)
        if name in self.model_kwargs:
            return self.model_kwargs[name]
        return self.cipher.settings().get(name) if name != "name" else None

    def with_model_options(self, **values: Any) -> TrainConfig:
        """A copy with the backbone options given (``None``: not given) on top of the recipe's.

        A recipe's options that ``model`` does not take are dropped (``--model resnet18`` on a
        fastnet recipe); a given option it does not take is a :class:`ConfigError` naming the
        models that take it.
        """
        given = {k: v for k, v in values.items() if v is not None}
        takes = _model_options(self.model)
        refused = [k for k in given if k not in takes]
        if refused:
            shapes = " and ".join(m for m in MODELS.names() if set(refused) <= _model_options(m))
            options = " and ".join(f"--{k.replace('_', '-')}" for k in refused)
            raise ConfigError(f"{options} shape {shapes or 'no model'}, not {self.model}")
        kept = {k: v for k, v in self.model_kwargs.items() if k in takes}
        return self.replace(model_kwargs={**kept, **given})

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with ``changes``; ``None`` values are ignored (so the CLI can pass everything)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        """JSON-able values; the cipher as its ``settings()``."""
        return {**dataclasses.asdict(self), "cipher": self.cipher.settings()}

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Inverse of :meth:`to_dict`: every field checked against its type (a strict schema of
        this dataclass, :func:`~keyless._schema.fields_model`; a wrong one raises a
        :class:`~pydantic.ValidationError` naming it), the cipher built from its settings.
        Older configs still read: ``{}`` for PE's settings, ``adapt`` as a bool (records older
        than the block-wise adaptation network) and ``max_train_images`` 0 for all images."""
        if isinstance(values, dict):
            values = dict(values)
            if isinstance(values.get("adapt"), bool):
                values["adapt"] = "pixel" if values["adapt"] else "none"
            if type(values.get("max_train_images")) is int and values["max_train_images"] == 0:
                values["max_train_images"] = None
        config = build_dataclass(cls, values, cipher=StoredCipher, milestones=_Milestones)
        _check_model_options(config)
        return config


_Milestones = Annotated[tuple[int, ...], BeforeValidator(list_to_tuple)]


def _stored_config(value: Any) -> TrainConfig:
    return value if isinstance(value, TrainConfig) else TrainConfig.from_dict(value)


# a config field of a stored file's schema (a run's record, its checkpoint)
StoredConfig = Annotated[
    TrainConfig, PlainValidator(_stored_config), PlainSerializer(TrainConfig.to_dict)
]


def _model_options(model: str) -> set[str]:
    """The options a registered backbone takes (its constructor's parameters)."""
    return set(inspect.signature(MODELS.get(model)).parameters)


def _check_model_options(config: TrainConfig) -> None:
    """A stored config's backbone options, each an option of its model and of the type its
    constructor declares (JSON's, strict: tuples stored as lists); ``ValueError`` naming it. A
    model this keyless does not know is refused when it is built, not here."""
    if config.model not in MODELS.names():
        return
    model = MODELS.get(config.model)
    takes, hints = _model_options(config.model), typing.get_type_hints(model.__init__)
    for name, value in config.model_kwargs.items():
        if name not in takes:
            raise ValueError(f"model_kwargs.{name}: not an option of {config.model}")
        try:
            _adapter(hints.get(name, Any)).validate_json(json.dumps(value), strict=True)
        except (TypeError, ValueError) as exc:  # not JSON, or not of its type
            reason = problem(exc) if isinstance(exc, ValidationError) else str(exc)
            raise ValueError(f"model_kwargs.{name}: {reason}") from None


@functools.cache
def _adapter(hint: Any) -> TypeAdapter:
    return TypeAdapter(hint)
