"""A training run: its config, its folder (checkpoint and record), tables of records, and scoring
a finished run again (``evaluate_run``, loaded on first use: it replays the owner's side, which
sits above the rest of this package)."""

from importlib import import_module
from typing import Any

from keyless.runs._config import TrainConfig
from keyless.runs._folder import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    CHECKPOINT_VERSION,
    Checkpoint,
    Run,
    adapter_block_size,
    build_model,
    load_run,
)
from keyless.runs._record import RECORD, RunRecord, git_commit, machine, read_record
from keyless.runs._tables import (
    MEAN_NOTE,
    cipher_label,
    machine_label,
    mean_std,
    mean_table,
    report_table,
    run_table,
    seed_groups,
    update_markdown,
    with_upload_columns,
)

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_VERSION",
    "MEAN_NOTE",
    "RECORD",
    "Checkpoint",
    "Run",
    "RunRecord",
    "TrainConfig",
    "adapter_block_size",
    "build_model",
    "cipher_label",
    "evaluate_run",
    "git_commit",
    "load_run",
    "machine",
    "machine_label",
    "mean_std",
    "mean_table",
    "read_record",
    "report_table",
    "run_table",
    "seed_groups",
    "update_markdown",
    "with_upload_columns",
]


def __getattr__(name: str) -> Any:
    if name != "evaluate_run":
        raise AttributeError(f"module 'keyless.runs' has no attribute {name!r}")
    return import_module("keyless.runs._evaluate").evaluate_run
