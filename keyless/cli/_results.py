"""Results from runs: ``report`` (a table of run records) and ``reproduce`` (a paper's table,
trained row by row)."""

from __future__ import annotations

from pathlib import Path

import click

from keyless.cli._options import data_option, device_option, out_option


@click.command()
@click.option(
    "--table",
    type=click.Choice(["icip", "access", "budget", "diagnostic"]),
    required=True,
    help="icip: PE variants, LE and EtC with a common key; access: plain / common / "
    "independent keys per model; budget: the access claims at 5-40 epochs of fastnet (plain, "
    "independent, re-keyed, invariant stem); diagnostic: fastnet on plain, grey, fold and "
    "sorted-fold images.",
)
@click.option(
    "--budget",
    type=click.Choice(["cpu", "paper"]),
    default="cpu",
    show_default=True,
    help="cpu: fastnet 32/64/128, 10 epochs per row (ResNet-18 / DenseNet one epoch); "
    "paper: the papers' 300-epoch schedules (GPU); for budget and diagnostic, paper means "
    "airbench94's full-width fastnet.",
)
@data_option
@out_option("Folder: one run folder per row, RESULTS.md and chart.png.")
@click.option("--only", help="Comma-separated rows to train now (results cover every row).")
@click.option("--results-only", is_flag=True, help="Write RESULTS.md from finished runs only.")
@click.option(
    "--reuse",
    multiple=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of an earlier table (repeatable): its finished runs with the same training "
    "are copied, not trained again.",
)
@device_option
def reproduce(table, budget, data, out, only, results_only, reuse, device) -> None:
    """Rerun a paper's comparison table: every training it needs, then RESULTS.md and a chart.

    Resumable: finished rows are skipped and an interrupted row resumes from its checkpoint, so
    a long table can be spread over several invocations.
    """
    from keyless.data import find_dataset
    from keyless.reproduce import reproduce as run_reproduction

    path = run_reproduction(
        table,
        budget,
        find_dataset(data) if not results_only else "",
        out,
        device=device,
        only=only.split(",") if only else None,
        run_training=not results_only,
        reuse=list(reuse),
    )
    click.echo(path.read_text(), nl=False)


@click.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@out_option("Also write the table here.", file=True, required=False)
@click.option(
    "--mean",
    is_flag=True,
    help="One row per setting: mean ± std over the runs that differ only in their seed.",
)
@click.option(
    "--pool-commits",
    is_flag=True,
    help="With --mean: also pool runs of different commits (when the training code did not "
    "change between them); the commit column lists each.",
)
def report(runs, out, mean, pool_commits) -> None:
    """Print (and write) a Markdown table generated from run records."""
    from keyless.runs import run_table

    if pool_commits and not mean:
        raise click.UsageError("--pool-commits needs --mean")
    table = run_table(runs, mean=mean, pool_commits=pool_commits)
    if out:
        from keyless._atomic import write_bytes_atomic

        write_bytes_atomic(out, table.encode())
    click.echo(table, nl=False)
