"""The cloud's commands: ``train`` and ``evaluate``."""

from __future__ import annotations

import json
import os
import sys

import click

from keyless.cli._options import (
    cipher_options,
    data_option,
    device_option,
    integers,
    out_option,
    run_argument,
    seed_option,
    upload_flag,
)

# the backbone's own options
MODEL_OPTIONS = ("widths", "width", "whiten_width", "attention_layers")


@click.command("train")
@data_option
@click.option(
    "--model",
    help="Backbone: fastnet, resnet18, resnet18-imagenet (7x7 stride-2 stem and max-pool, for "
    "224x224 photos), densenet or bagnet (default: the recipe's).",
)
@click.option(
    "--keys",
    type=click.Choice(["plain", "common", "independent"]),
    default="independent",
    show_default=True,
    help="How the owner encrypts the training images (of plain DATA; an upload says itself).",
)
@click.option(
    "--rekey", is_flag=True, help="Server re-randomises the ciphertexts' keys every epoch."
)
@click.option(
    "--stem",
    help="Default the recipe's (plain; invariant for --recipe invariant). invariant: feed the "
    "key-invariant sorted fold to the network; key-invariant: the cipher's declared invariant "
    "(pe-scramble, ELE); spline: the sorted fold's piecewise-linear hinges (12 maps, also "
    "key-invariant); learned: the fold plus a learned per-pixel 1x1 net; nibbles: the 4-bit "
    "halves of every value (for LE); fold, grey: diagnostics.",
)
@click.option(
    "--adapt",
    is_flag=False,
    flag_value="pixel",
    default="none",
    show_default=True,
    help="Adaptation network: --adapt (= pixel) is ICIP's (1x1 convs, 8 and 32 maps); "
    "--adapt block is Tanaka's block-wise one (matches --block-size); none.",
)
@click.option(
    "--augment",
    type=click.Choice(["cloud", "client"]),
    default="cloud",
    show_default=True,
    help="Augment ciphertexts in the cloud, or plain images at the owner before encryption.",
)
@click.option(
    "--recipe",
    "recipe_name",
    default="fast",
    show_default=True,
    help="fast: airbench94; invariant: independent keys, key-invariant stem, batches of 256 "
    "(the best measured on the fold); muon: the same with airbench94_muon's optimizer, batches "
    "of 1000; invariant96: airbench96 on the fold (a residual fastnet 128/512/512, 31 epochs, "
    "cutout; a GPU budget); bag: the invariant recipe on bagnet for --cipher pe-scramble "
    "(the blocks' sorted folds as a set, no shifts); paper: SGD 0.1, steps at 150/225; "
    "imagenet: resnet18-imagenet on the fold for 224x224 photos (SGD 0.1, steps at 30/60 of 90 "
    "epochs, batches of 256, shifts of up to 28 pixels).",
)
@click.option(
    "--epochs",
    type=click.FloatRange(min=0, min_open=True),
    help="Training epochs (default from the recipe).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(min=1),
    help="Global batch size (default from the recipe; airbench-style recipes keep their lr and "
    "decay per image).",
)
@click.option(
    "--widths",
    callback=integers,
    help="fastnet: widths of its three blocks, e.g. 32,64,128 for a CPU-sized fastnet.",
)
@click.option(
    "--width",
    type=click.IntRange(min=1, max=512),
    help="resnet18, resnet18-imagenet: channels of the first stage (64 is ResNet-18's).",
)
@click.option(
    "--whiten-width",
    type=click.IntRange(min=2),
    help="fastnet: maps of the frozen whitening layer (even; default 24, fewer for 1 channel).",
)
@click.option(
    "--attention-layers",
    type=click.IntRange(min=0),
    help="bagnet: self-attention layers across the blocks, without positions (default 0).",
)
@click.option(
    "--milestones",
    callback=integers,
    help="Step schedule: epochs at which lr is divided by 10, e.g. 150,225.",
)
@click.option(
    "--val-size",
    type=click.IntRange(min=0),
    help="Carve this many training images out as validation.",
)
@click.option(
    "--max-train-images",
    type=click.IntRange(min=1),
    help="Train on the first N images only (smoke tests).",
)
@seed_option("Seed for keys, order and augmentation (default random, recorded).")
@click.option(
    "--precision", type=click.Choice(["auto", "bf16", "fp32"]), help="Autocast precision."
)
@device_option
@out_option("Run folder: checkpoint.pt and record.json are written there.")
@click.option("--resume", is_flag=True, help="Continue from OUT/checkpoint.pt.")
@click.option(
    "--checkpoint-minutes",
    type=click.FloatRange(min=0, min_open=True),
    default=10.0,
    show_default=True,
    help="Also checkpoint within an epoch after this much training (long CPU epochs).",
)
@click.option(
    "--compile",
    "compile_model",
    is_flag=True,
    help="torch.compile the network for training (worth it on a GPU; slow to start).",
)
@click.option(
    "--in-memory",
    is_flag=True,
    help="Read a sharded upload whole into memory (faster when it fits) instead of streaming "
    "its shards from disk.",
)
@click.option(
    "--readers",
    type=click.IntRange(min=0, max=64),
    default=1,
    show_default=True,
    help="Processes that read and check a sharded upload's shards ahead of training "
    "(0: the training process reads them).",
)
@upload_flag
@cipher_options
def train(data, recipe_name, milestones, out, resume, checkpoint_minutes, device, compile_model,
          in_memory, readers, require_upload, cipher, **options):  # fmt: skip
    """Train a classifier on encrypted CIFAR-10 (or any dataset) and evaluate it.

    The owner's training images are encrypted once (``--keys``); the engine then only holds
    ciphertexts and augments them in the encrypted domain. The record reports accuracy on plain
    test images, on test images encrypted with fresh keys, and on the common-key test set.

    A sharded upload (``keyless encrypt --shard-size``) is streamed from disk with bounded
    memory: the shard order is shuffled every epoch and images are shuffled within pools of
    at least 4,096; under torchrun each process reads its own shards.
    """
    from keyless.data import find_dataset
    from keyless.train import recipe, train_run

    ctx = click.get_current_context()
    given = {  # the options on the command line, named as config fields and cipher options
        {"recipe_name": "recipe", "cipher_name": "cipher"}.get(name, name) for name in ctx.params
        if ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
    }  # fmt: skip
    model_options = {name: options.pop(name) for name in MODEL_OPTIONS}
    config = recipe(
        recipe_name, **options, cipher=cipher, milestones=tuple(milestones) if milestones else None
    ).with_model_options(**model_options)
    outcome = train_run(
        config,
        find_dataset(data),
        out,
        resume=resume,
        given=given,
        checkpoint_minutes=checkpoint_minutes,
        compile_model=compile_model,
        in_memory=in_memory,
        readers=readers,
        device=device,
        command=" ".join(["keyless", *sys.argv[1:]]),
        require_upload=require_upload,
    )
    if outcome.already_finished:
        click.echo(f"{out}: the run finished already; its recorded test accuracies (nothing "
                   "trained or evaluated again):", err=True)  # fmt: skip
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one report
        click.echo(json.dumps(outcome.record["test"], indent=2))


@click.command()
@run_argument
@data_option
@click.option("--no-tta", is_flag=True, help="Skip the flip-and-translate test-time augmentation.")
@device_option
@upload_flag
def evaluate(run, data, no_tta, device, require_upload) -> None:
    """Evaluate a trained run on plain, fresh-key and (if any) common-key test images, or on an
    owner's upload: its test split as encrypted and re-keyed."""
    from keyless.data import find_dataset
    from keyless.runs import evaluate_run

    metrics = evaluate_run(run, find_dataset(data), not no_tta, device, require_upload)
    click.echo(json.dumps(metrics, indent=2))
