"""What the scheme leaks and what it looks like: ``attack`` and ``demo``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from keyless.cli._options import cipher_options, data_option, out_option, seed_option
from keyless.errors import InputError


@click.command()
@data_option
@click.option(
    "--keys",
    type=click.Choice(["independent", "common"]),
    default="independent",
    show_default=True,
    help="How the victims' images were encrypted.",
)
@click.option(
    "--attacks",
    "attack_names",
    default="all",
    show_default=True,
    help="Comma-separated attacks to run (fr, fr-advanced, gan, helper, invariant, itn, "
    "itn-unet, jigsaw, keyspace), or all; docs/cli.md says what each does.",
)
@click.option(
    "--victims",
    default=1000,
    show_default=True,
    type=click.IntRange(min=1),
    help="Victims: the first N test images.",
)
@click.option(
    "--attacker-images",
    default=10000,
    show_default=True,
    type=click.IntRange(min=1),
    help="The attacker's own plain images: the first N training images.",
)
@click.option(
    "--budget-minutes",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Training time for each learned attack.",
)
@seed_option("Seed for the victims' keys.", default=0)
@out_option("Report folder: report.json, report.md, grid.png.")
@cipher_options
def attack(data, keys, attack_names, victims, attacker_images, budget_minutes, seed, out, cipher):
    """Attack ciphertexts and measure how much of each plain image comes back (SSIM, PSNR)."""
    from keyless.attacks import list_attacks, run_attacks, write_report
    from keyless.data import find_dataset, load_splits

    names = list_attacks() if attack_names == "all" else [a for a in attack_names.split(",") if a]
    if not names:
        raise click.BadParameter(f"names no attack: {attack_names!r}", param_hint="--attacks")
    splits = load_splits(find_dataset(data))
    if "train" not in splits or "test" not in splits:
        raise InputError(f"an attack needs train and test splits (the attacker's images and the "
                         f"victims), found {', '.join(splits)}")  # fmt: skip
    if not all(len(splits[name]) for name in ("train", "test")):
        counts = ", ".join(f"{len(splits[name])} {name}" for name in ("train", "test"))
        raise InputError(f"{data}: an attack needs training and test images, found {counts}")
    report, columns = run_attacks(
        splits["train"].subset(slice(0, attacker_images)),
        splits["test"].subset(slice(0, victims)),
        cipher, keys, names, budget_minutes * 60, seed,
    )  # fmt: skip
    write_report(report, columns, out)
    click.echo((out / "report.md").read_text(), nl=False)


@click.command()
@click.option(
    "--out",
    default=Path("demo/encryption_grid.png"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the grid PNG (a file already there is replaced only if the demo drew it).",
)
@click.option(
    "--train",
    "run",
    type=click.Path(file_okay=False, path_type=Path),
    help="Then train the demo's run in this folder (fastnet 32/64/128, 3 epochs, independent "
    "keys, invariant stem, seed 0; resumed if interrupted, read back if finished) and tell how "
    "it went.",
)
@data_option
def demo(out, run, data) -> None:
    """Encrypt the bundled sample photos and write a grid: plain | two keys | what every key
    leaves visible (the sorted fold)."""
    from keyless.demo import demo_summary, encryption_grid, run_demo

    if run is None:
        if data is not None:
            raise click.UsageError("--data needs --train")
        click.echo(f"wrote {encryption_grid(out)}")
        return
    command = " ".join(["keyless", *sys.argv[1:]])
    click.echo(demo_summary(run_demo(out, run, data, command)), nl=False)
