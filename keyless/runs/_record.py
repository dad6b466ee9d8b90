"""Results are data: run records (JSON) with config, commit, seed, metrics, timings and machine."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch

from keyless._atomic import write_bytes_atomic
from keyless.errors import InputError, KeylessError
from keyless.runs._config import TrainConfig

RECORD = "record.json"  # a run's record, beside its checkpoint
RECORD_KEYS = ("config", "machine", "test", "train_seconds")  # what the report tables read


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


def write_record(path: Path | str, record: dict[str, Any], mode: int | None = None) -> None:
    """Write ``record`` as sorted, indented JSON, atomically (permissions ``mode``)."""
    data = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    write_bytes_atomic(path, data, mode)


def read_record(path: Path | str) -> dict[str, Any]:
    """A record file, or the record of a run folder."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD
    try:
        record = json.loads(path.read_text())
    except OSError as exc:
        raise InputError(f"{path}: cannot read run record ({exc.strerror})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: not a JSON run record ({exc})") from None
    if not (isinstance(record, dict) and all(key in record for key in RECORD_KEYS)):
        raise InputError(f"{path}: not a keyless run record (no {', '.join(RECORD_KEYS)})")
    try:  # the config as keyless reads it, fields older keyless lacked at their defaults
        config = TrainConfig.from_dict(record["config"]).to_dict()
    except (KeylessError, TypeError, KeyError, ValueError, AttributeError) as exc:
        raise InputError(f"{path}: not a keyless run record (config: {exc})") from None
    machine, test = record["machine"], record["test"]
    if not (isinstance(machine, dict) and ("gpu" in machine or {"cpu", "cores"} <= set(machine))
            and isinstance(test, dict)):  # fmt: skip
        raise InputError(f"{path}: not a keyless run record (machine or test malformed)")
    return {**record, "config": config}
