"""Run every training a table needs (finished runs skipped, interrupted ones resumed), then
write ``RESULTS.md`` and ``chart.png`` from the records."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from keyless._atomic import atomic_path, write_bytes_atomic
from keyless.data import load_splits
from keyless.errors import ConfigError
from keyless.reproduce._results import (
    access_claims,
    bar_chart,
    budget_chart,
    budget_claims,
    budget_table,
    diagnostic_table,
    ordering_differences,
    results_table,
)
from keyless.reproduce._tables import Row, table_rows
from keyless.runs import Run, RunRecord, machine
from keyless.train import train
from keyless.upload import data_source

_TITLES = {
    "icip": "ICIP 2019 comparison (common key; augmentation in the cloud unless 'client')",
    "access": "IEEE Access 2019 claims (plain / common / independent keys)",
    "budget": "IEEE Access 2019 claims across training budgets (fastnet, PE)",
    "diagnostic": "Where the fold's cost comes from (fastnet, 10 epochs, plain test images)",
}


def reproduce(
    table: str,
    budget: str,
    data: Path | str,
    out: Path | str,
    device: str | None = None,
    progress: bool = True,
    only: list[str] | None = None,
    run_training: bool = True,
    changes: dict[str, Any] | None = None,
    reuse: list[Path | str] | None = None,
) -> Path:
    """Train the rows of ``table`` at ``budget`` into ``out/<row>`` and write the results.

    Args:
        only: train only these rows (the results cover every row).
        run_training: False writes the results from the finished runs without training.
        changes: config changes applied to every row (smoke tests).
        reuse: folders of earlier tables; a finished run there with the same training config
            is copied instead of trained again (e.g. the access table's fastnet plain and
            common-key rows are ICIP rows).

    Returns:
        The path of ``RESULTS.md``.
    """
    out = Path(out)
    rows = [
        Row(r.name, r.label, r.config.replace(**(changes or {})), r.metric, r.paper)
        for r in table_rows(table, budget)
    ]
    unknown = sorted(set(only or ()) - {r.name for r in rows})
    if unknown:
        raise ConfigError(f"--only: no row {', '.join(unknown)} in the {table} table; its rows: "
                          f"{', '.join(r.name for r in rows)}")  # fmt: skip
    splits = load_splits(data) if run_training else None
    source = data_source(None, splits) if splits is not None else None
    for row in rows:
        _check_saved(row, out / row.name, source)
    pending = [
        r
        for r in rows
        if run_training and not Run(out / r.name).has_record() and (only is None or r.name in only)
    ]
    finished = {
        run: run.read_record()
        for folder in reuse or []
        for run in map(Run, sorted(Path(folder).iterdir()))
        if run.has_record()
    }
    finished = {run: record for run, record in finished.items() if _same_data(record, source)}
    pending = [r for r in pending if not _reuse(r, finished, out / r.name)]
    for i, row in enumerate(pending, 1):
        if progress:
            print(f"[{i}/{len(pending)}] {row.name}: {row.label}", flush=True)
        train(
            row.config,
            splits,
            out / row.name,
            resume=True,
            device=device,
            progress=progress,
            command=f"keyless reproduce --table {table} --budget {budget} (row {row.name})",
        )
    return write_results(table, budget, rows, out)


def _same_data(record: RunRecord, source: str | None) -> bool:
    """Whether a finished run trained on the data at hand (runs before keyless recorded it, or
    no data at hand, count as the same)."""
    return source is None or record.data_source in (None, source)


def _check_saved(row: Row, folder: Path, source: str | None) -> None:
    """Refuse (one line) a row's folder that holds a run of another training (another budget,
    another table's row) or on other data: it would be reported, or resumed, as this row."""
    run = Run(folder)
    if run.has_record():
        record = run.read_record()
        if not _same_data(record, source):
            raise ConfigError(f"{folder}: holds a run on {record.data_source}, not on --data's "
                              f"{source}; use another --out")  # fmt: skip
        saved = record.config
    elif run.has_checkpoint():
        saved = run.load(mmap=True).config
    else:
        return
    if saved != row.config:
        raise ConfigError(
            f"{folder}: holds a run of another training than row {row.name} of this table and "
            "budget; use another --out"
        )


def _reuse(row: Row, finished: dict[Run, RunRecord], dest: Path) -> bool:
    """Copy the first of the ``finished`` runs (run: record) with ``row``'s training into
    ``dest``, if any."""
    for run, record in finished.items():
        if record.config != row.config:
            continue
        copy = Run(dest)
        copy.path.mkdir(mode=0o700, parents=True, exist_ok=True)
        if run.has_checkpoint():  # it holds the seed of every owner key: owner-only, like Run's
            with atomic_path(copy.checkpoint_path, mode=0o600) as tmp:
                shutil.copyfile(run.checkpoint_path, tmp)
        copy.write_record(record.model_copy(update={"reused_from": str(run.path)}))
        return True
    return False


def _records(rows: list[Row], out: Path) -> dict[str, dict[str, Any]]:
    runs = {r.name: Run(out / r.name) for r in rows}
    return {name: run.read_record().to_dict() for name, run in runs.items() if run.has_record()}


def write_results(table: str, budget: str, rows: list[Row], out: Path) -> Path:
    """``RESULTS.md`` (the table, then ordering differences or claims) and, except for the
    diagnostic, ``chart.png`` in ``out``."""
    records = _records(rows, out)
    where = {f"{m['cpu']}, {m['cores']} cores" if not m.get("gpu") else m["gpu"]
             for m in (r["machine"] for r in records.values())} or {machine()["cpu"]}  # fmt: skip
    lines = [
        f"## {_TITLES[table]}: budget {budget}\n",
        f"Command: `keyless reproduce --table {table} --budget {budget} --out {out}`; "
        f"{len(records)} of {len(rows)} runs finished; machine: {'; '.join(sorted(where))}. "
        "Accuracies in %.\n",
    ]
    reused = [f"**{n}** from `{rec['reused_from']}`" for n, rec in records.items()
              if "reused_from" in rec]  # fmt: skip
    title, chart = f"{_TITLES[table]}, {budget} budget", out / "chart.png"
    if table == "budget":
        claims = budget_claims(rows, records)
        lines += [
            "Each cell: fresh-key / plain test accuracy with TTA (gap: plain training's plain "
            "test accuracy minus the fresh-key one, in points).\n",
            budget_table(rows, records),
            "![chart](chart.png)\n",
            "### The paper's claims at each budget\n",
            "\n".join(claims) + "\n" if claims else "Not enough finished runs yet.\n",
        ]
        budget_chart(rows, records, chart, title)
    elif table == "diagnostic":
        lines.append(diagnostic_table(rows, records))
    else:
        lines += [
            "'judged on' is the test set compared with the paper's figure.\n",
            results_table(rows, records),
            "![chart](chart.png)\n",
            *_findings(table, rows, records),
        ]
        bar_chart(rows, records, chart, title)
    if reused:
        lines.append(f"Same training as an earlier run, copied: {', '.join(reused)}.\n")
    path = out / "RESULTS.md"
    write_bytes_atomic(path, "\n".join(lines).encode())
    return path


def _findings(table: str, rows: list[Row], records: dict[str, dict[str, Any]]) -> list[str]:
    """Where the ICIP ordering differs from the paper's, or the access table's claims."""
    if table == "icip":
        differences = ordering_differences(rows, records)
        return ["### Where the ordering differs from the paper's\n",
                "\n".join(differences) + "\n" if differences else "Nowhere, so far.\n"]  # fmt: skip
    claims = access_claims(records)
    return ["### The paper's claims, here\n",
            "\n".join(claims) + "\n" if claims else "Not enough finished runs yet.\n"]  # fmt: skip
