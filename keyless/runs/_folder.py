"""The run folder: a typed, versioned, weights-only checkpoint and the JSON record beside it.

Train writes a run; evaluate, serve and reproduce read it, and all of them build the model
through this module. Checkpoints hold only tensors and plain containers and are
loaded with ``torch.load(weights_only=True)``, so a crafted ``checkpoint.pt`` cannot run code.
"""

from __future__ import annotations

from dataclasses import field
from pathlib import Path
from typing import Annotated, Any, Literal

import torch
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.dataclasses import dataclass
from typing_extensions import TypedDict

from keyless._atomic import atomic_path, remove_leftovers
from keyless._schema import list_to_tuple, read_as
from keyless.data import ImageSet, adopt_classes, classes_text, split_classes
from keyless.errors import ConfigError, InputError, OutputError
from keyless.models import Classifier, create_model
from keyless.runs._config import StoredConfig, TrainConfig
from keyless.runs._record import RECORD, RunRecord

CHECKPOINT = "checkpoint.pt"
CHECKPOINT_FORMAT = "keyless-checkpoint"
CHECKPOINT_VERSION = 2  # 1: the unversioned checkpoints of earlier releases (same fields)
OLDER_INPUT_SIZE = (32, 32)  # CIFAR-10's: what a checkpoint without an input size is taken for


class EpochProgress(TypedDict):
    """An interrupted epoch: its step, running totals and its generator's random state."""

    __pydantic_config__ = ConfigDict(  # type: ignore[misc]
        extra="forbid", strict=True, arbitrary_types_allowed=True
    )

    step: Annotated[int, Field(ge=0)]
    seen: Annotated[int, Field(ge=0)]
    loss_sum: float
    correct: Annotated[int, Field(ge=0)]
    seconds: Annotated[float, Field(ge=0)]
    rng: torch.Tensor | None


_STORED = ConfigDict(strict=True, arbitrary_types_allowed=True)
Side = Annotated[int, Field(gt=0)]


@dataclass(config=_STORED)
class Checkpoint:
    """A run's state after ``epoch`` whole epochs (and ``partial``'s steps of the next).

    ``input_size`` is the (H, W) of the images the model was trained on, which it is served at.
    ``partial`` holds the interrupted epoch's step, running totals and the random state of its
    generator; the optimizer and lookahead states are ``None`` for a model saved for inference.
    ``data`` is what the run trained on (:func:`data_source`; ``None`` in older checkpoints),
    ``batch_order`` how its batches were drawn (in memory or streamed from shards).

    Checkpoints of older keyless do not hold the input size (a field older keyless ignores, so
    the version stays): :meth:`Run.load` then takes the training data's size where the run's
    record has it (an upload's manifest names it), else :data:`OLDER_INPUT_SIZE`, 32 x 32; such
    a run trained on other images than uploaded ones is served with its size given explicitly.
    """

    config: StoredConfig
    seed: Annotated[int, Field(ge=0, lt=2**32)]
    classes: Annotated[list[str], Field(min_length=1)]
    model: dict[str, torch.Tensor]
    input_size: Annotated[tuple[Side, Side], BeforeValidator(list_to_tuple)]
    optimizer: dict[str, Any] | None = None
    lookahead: dict[str, torch.Tensor] | None = None
    epoch: Annotated[int, Field(ge=0)] = 0
    partial: EpochProgress | None = None
    train_seconds: Annotated[float, Field(ge=0)] = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    data: str | None = None
    batch_order: str | None = None

    def to_state(self) -> dict[str, Any]:
        """Plain containers and tensors only (what ``weights_only`` loading accepts)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            **{k: getattr(self, k) for k in self.__dataclass_fields__ if k != "config"},
            "config": self.config.to_dict(),
            "input_size": list(self.input_size),
        }

    @classmethod
    def from_state(cls, state: Any, where: Path | str = CHECKPOINT) -> Checkpoint:
        """The checkpoint in ``state`` (what :meth:`to_state` made, as loaded): every field
        checked against its type, a wrong one a one-line :class:`InputError` naming ``where``
        and the field. Fields of a newer keyless of the same version are ignored."""
        header = read_as(_Header.model_validate, state, where, "keyless checkpoint")
        if header.version > CHECKPOINT_VERSION:
            raise InputError(f"{where}: version {header.version} is newer than this keyless reads")
        fields = {k: state[k] for k in cls.__dataclass_fields__ if k in state}
        fields.setdefault("input_size", OLDER_INPUT_SIZE)
        return read_as(lambda values: cls(**values), fields, where, "keyless checkpoint")

    def adopt_classes(self, splits: dict[str, ImageSet], doing: str) -> dict[str, ImageSet]:
        """``splits`` under the classes the run was trained on, or a one-line error (starting
        with ``doing``): a model with other outputs cannot go on training on them, nor be scored
        on them."""
        adopted = adopt_classes(splits, self.classes)
        if adopted is None:
            found = classes_text(split_classes(splits))
            raise InputError(f"{doing}: the data has classes {found}, the run "
                             f"{classes_text(self.classes)}")  # fmt: skip
        return adopted


class _Header(BaseModel):
    """What a checkpoint says of itself (earlier releases wrote neither)."""

    model_config = ConfigDict(strict=True)

    format: Literal["keyless-checkpoint"] = CHECKPOINT_FORMAT
    version: Annotated[int, Field(ge=1)] = 1


class Run:
    """A run folder: ``checkpoint.pt`` and ``record.json``, the owner's only (folder 0o700,
    files 0o600): a simulated run's seed regenerates every owner key of the run."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.checkpoint_path = self.path / CHECKPOINT
        self.record_path = self.path / RECORD

    def has_checkpoint(self) -> bool:
        return self.checkpoint_path.exists()

    def has_record(self) -> bool:
        return self.record_path.exists()

    def save(self, checkpoint: Checkpoint) -> None:
        """Write the checkpoint atomically (an interrupted save leaves the previous one, and the
        temporary files of a killed one are removed); a disk that is full or a file size limit is
        one line naming the file."""
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        remove_leftovers(self.path, [self.checkpoint_path, self.record_path])
        try:
            with atomic_path(self.checkpoint_path, mode=0o600) as tmp:
                torch.save(checkpoint.to_state(), tmp)
        except RuntimeError as exc:  # torch's writer reports a failed write as this
            raise OutputError(f"{self.checkpoint_path}: cannot write ({one_line(exc)}; is the "
                              "disk full?)") from None  # fmt: skip

    def load(self, device: torch.device | str = "cpu", mmap: bool = False) -> Checkpoint:
        """The checkpoint, loaded without unpickling code; a one-line error if it is not one
        (:meth:`Checkpoint.from_state`). ``mmap`` maps the tensors instead of reading them (to
        look at the config only)."""
        if not self.has_checkpoint():
            raise InputError(f"{self.path}: no {CHECKPOINT}; is it a keyless run folder?")
        try:
            state = torch.load(
                self.checkpoint_path, map_location=device, weights_only=True, mmap=mmap
            )
        except Exception as exc:  # junk makes the weights-only unpickler raise many kinds
            raise InputError(
                f"{self.checkpoint_path}: not a keyless checkpoint ({one_line(exc)})"
            ) from None
        if isinstance(state, dict) and "input_size" not in state:  # older: see Checkpoint
            state["input_size"] = self._trained_size()
        return Checkpoint.from_state(state, self.checkpoint_path)

    def _trained_size(self) -> tuple[int, int]:
        """The training images' (H, W) as the record has it (an upload's), else 32 x 32."""
        upload = self.read_record().upload if self.has_record() else None
        h, w = (upload or {}).get("image_size") or OLDER_INPUT_SIZE
        return h, w

    def write_record(self, record: RunRecord) -> None:
        self.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        record.write(self.record_path, mode=0o600)

    def read_record(self) -> RunRecord:
        return RunRecord.read(self.record_path)

    def finished_record(self) -> RunRecord | None:
        """The record of a run trained and evaluated to the end, else ``None``: training writes
        the record last and removes an old one when a new run starts in the folder."""
        return self.read_record() if self.has_checkpoint() and self.has_record() else None


def adapter_block_size(config: TrainConfig) -> int:
    """The block a block-wise adaptation network or bagnet works on: the cipher's, else 4."""
    return getattr(config.cipher, "block_size", 4)


def build_model(config: TrainConfig, num_classes: int) -> Classifier:
    """The run's classifier (block-wise parts take the cipher's block size; the key-invariant
    stem, the cipher)."""
    try:
        return create_model(
            config.model,
            num_classes,
            config.stem,
            config.adapt,
            adapter_block_size(config),
            config.cipher,
            **config.model_kwargs,
        )
    except ValueError as exc:  # a model option out of range (an odd whiten_width...): one line
        raise ConfigError(str(exc)) from None


def load_run(run: Path | str, device: str = "cpu") -> tuple[Classifier, Checkpoint]:
    """The trained model of a run folder (in eval mode, on ``device``) and its checkpoint."""
    folder = Run(run)
    checkpoint = folder.load(device)
    try:
        model = build_model(checkpoint.config, len(checkpoint.classes))
        model.load_state_dict(checkpoint.model)
    except (RuntimeError, KeyError, TypeError, ValueError) as exc:
        raise InputError(
            f"{folder.checkpoint_path}: does not fit its config ({one_line(exc)})"
        ) from None
    return model.to(device).eval(), checkpoint


def one_line(error: Exception, limit: int = 300) -> str:
    """An exception's message on one line (torch's state-dict errors take several), cut."""
    text = "; ".join(line.strip() for line in str(error).splitlines() if line.strip())
    text = text or type(error).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
