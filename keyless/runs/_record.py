"""Results are data: a run's record (JSON) with config, commit, seed, metrics, timings, machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from typing_extensions import TypedDict

from keyless._atomic import write_bytes_atomic
from keyless._schema import read_as
from keyless.errors import InputError
from keyless.runs._config import StoredConfig

RECORD = "record.json"  # a run's record, beside its checkpoint


def git_commit() -> str | None:
    """The commit of the working tree this code runs from, with ``+dirty`` if it has changes;
    ``None`` when keyless is not the top of a git checkout (an install inside someone's repo)."""
    root = Path(__file__).resolve().parents[2]
    try:
        top = subprocess.run(
            ["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True, text=True,
            check=True,
        ).stdout.strip()  # fmt: skip
        if Path(top).resolve() != root:
            return None
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name()
    return info


def _machine(value: dict[str, Any]) -> dict[str, Any]:
    if "gpu" not in value and not {"cpu", "cores"} <= value.keys():
        raise ValueError("names neither a gpu nor a cpu and its cores")
    return value


class UploadSummary(TypedDict, total=False):
    """The manifest of the upload a run trained on, as ``keyless.upload.Manifest.to_dict``
    writes it (checked when it was read; kept as it is). Its image size is what an older
    checkpoint, which holds none, was trained at."""

    __pydantic_config__ = ConfigDict(extra="allow")  # type: ignore[misc]

    image_size: (
        Annotated[list[Annotated[int, Field(gt=0)]], Field(min_length=2, max_length=2)] | None
    )


class RunRecord(BaseModel):
    """A run's ``record.json``: what it trained (``config``, ``data_source``), what it scored
    (``test``: accuracy per test set, ``history``: per epoch), and where and how (``machine``,
    ``precision``, ``git_commit``, ``command``). Fields of other keyless versions are kept as
    they are; fields absent from a file stay absent when it is written again."""

    model_config = ConfigDict(extra="allow", strict=True)

    config: StoredConfig
    machine: Annotated[dict[str, Any], AfterValidator(_machine)]
    test: dict[str, float]
    train_seconds: float
    command: str | None = None
    seed: int | None = None
    git_commit: str | None = None
    history: list[dict[str, Any]] = Field(default_factory=list)
    world_size: int = 1
    device: str | None = None
    train_images: int | None = None
    precision: str | None = None
    keys_note: str | None = None
    data: str | None = None  # in words: an owner's upload, or a simulated owner's plain images
    data_source: str | None = None  # the data's hash (runs of older keyless lack it)
    upload: UploadSummary | None = None  # the manifest of the upload trained on
    batch_order: str | None = None  # in memory, or streamed from shards (and how shuffled)
    reused_from: str | None = None  # the run folder a reproduced table copied this run from

    @classmethod
    def from_json(cls, text: str | bytes, where: Path | str) -> RunRecord:
        """The record in ``text``, or a one-line :class:`InputError` naming ``where``."""
        try:
            values = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: not a JSON run record ({exc})") from None
        return read_as(cls.model_validate, values, where, "keyless run record")

    @classmethod
    def read(cls, path: Path | str) -> RunRecord:
        """A record file, or the record of a run folder."""
        path = Path(path)
        if path.is_dir():
            path = path / RECORD
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise InputError(f"{path}: cannot read run record ({exc.strerror})") from None
        return cls.from_json(text, path)

    def to_dict(self) -> dict[str, Any]:
        """The JSON-shaped record: the fields it was given, the config as keyless writes it."""
        return self.model_dump(mode="json", exclude_unset=True)

    def to_json(self) -> str:
        """Sorted, indented JSON, ending in a newline."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

    def write(self, path: Path | str, mode: int | None = None) -> None:
        """Write the record atomically (permissions ``mode``)."""
        write_bytes_atomic(path, self.to_json().encode(), mode)


def read_record(path: Path | str) -> dict[str, Any]:
    """A record file, or the record of a run folder, as JSON-shaped data for tables and scripts
    (:meth:`RunRecord.read` validates it; the config as keyless writes it today)."""
    return RunRecord.read(path).to_dict()
