"""The ``keyless`` command: parse arguments, call the library, print results."""

from __future__ import annotations

import functools
import inspect
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from keyless._atomic import write_bytes_atomic
from keyless.attacks import list_attacks, run_attacks, write_report
from keyless.cipher import create_cipher, list_ciphers
from keyless.data import (
    DATA_ENV,
    DEFAULT_MAX_PIXELS,
    KeyPlan,
    Manifest,
    check_decryption,
    check_resume,
    check_written,
    describe,
    find_dataset,
    load_splits,
    plan_jobs,
    run_jobs,
    transform_file,
    upload_root,
)
from keyless.errors import ConfigError, InputError, KeylessError, KeyMaterialError
from keyless.invariant import fold
from keyless.keys import CsprngSource, MasterKeySource, SeedSource, check_value
from keyless.models import ADAPTERS, MODELS, STEMS, list_models
from keyless.reproduce import BUDGETS, TABLES
from keyless.reproduce import reproduce as run_reproduction
from keyless.runs import Run, TrainConfig, evaluate_run, mean_table, read_record, report_table
from keyless.serve import (
    Client,
    Limits,
    classify_files,
    results_table,
    serve,
)
from keyless.train import RECIPES, recipe, train


class KeylessGroup(click.Group):
    """Turns every keyless error into one line on stderr and its exit status, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeylessError as exc:
            click.echo(f"keyless: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except OSError as exc:  # a disk, permission or file-system limit, not a bug: one line
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"keyless: error: {where}{exc.strerror or exc}", err=True)
            sys.exit(1)
        except MemoryError:
            click.echo("keyless: error: out of memory (the input is too large)", err=True)
            sys.exit(1)


@click.group(cls=KeylessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keyless")
def main() -> None:
    """Privacy-preserving deep learning on images encrypted without key management.

    Images are encrypted with the pixel-based cipher of Sirichotedumrong, Kinoshita and Kiya
    (IEEE Access 2019): every colour value is inverted (p -> 255 - p) by a random bit and every
    pixel's three components are shuffled, under a fresh random key per image that is thrown away.
    """
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """``kill`` ends a command like Ctrl-C does: cleanup runs, no temporary file is left."""
    raise SystemExit(128 + signum)


def cipher_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options that choose the cipher and its variant; passes ``cipher`` to the command."""

    @click.option(
        "--cipher",
        "cipher_name",
        default="pe",
        show_default=True,
        type=click.Choice(list_ciphers()),
        help="pe: the paper's pixel-based cipher; pe-scramble: PE, then the blocks' positions "
        "scrambled by the key; le: Tanaka's learnable encryption; ele: extended LE; etc: "
        "encryption-then-compression.",
    )
    @click.option(
        "--no-shuffle", is_flag=True, help="pe: negative-positive step only (no colour shuffle)."
    )
    @click.option(
        "--np-mode",
        type=click.Choice(["coin", "balanced"]),
        help="pe: fair coin per value (paper, default) or exactly 50% inverted.",
    )
    @click.option(
        "--np-per",
        type=click.Choice(["component", "pixel"]),
        help="pe: one inversion bit per colour value (paper, default) or per pixel.",
    )
    @click.option(
        "--block-size",
        type=click.IntRange(1, 32),
        help="le, ele, etc: block side M in pixels (default 4, at most 16); pe-scramble: the "
        "side of the blocks whose positions each key scrambles (default 8).",
    )
    @click.option(
        "--noise",
        type=click.FloatRange(0, 255),
        help="pe, pe-scramble: the owner adds Gaussian noise of this standard deviation (grey "
        "levels) to every plain value before encrypting; decryption gives the noisy image.",
    )
    @functools.wraps(command)
    def wrapper(
        cipher_name: str,
        no_shuffle: bool,
        np_mode: str | None,
        np_per: str | None,
        block_size: int | None,
        noise: float | None,
        **kw: Any,
    ) -> Any:
        options = {
            "shuffle": False if no_shuffle else None,
            "np_mode": np_mode,
            "np_per": np_per,
            "block_size": block_size,
            "noise": noise,
        }
        try:
            cipher = create_cipher(cipher_name, **options)
        except TypeError:
            given = [f"--{k.replace('_', '-')}" for k, v in options.items() if v is not None]
            raise click.UsageError(
                f"{', '.join(given)}: not an option of cipher {cipher_name!r}"
            ) from None
        except ValueError as exc:
            raise click.UsageError(str(exc)) from None
        return command(cipher=cipher, **kw)

    return wrapper


inputs_argument = click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
out_option = click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output folder; outputs that already exist are skipped.",
)
max_pixels_option = click.option(
    "--max-pixels",
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    help="Refuse images with more pixels (decompression bombs).",
)


def _finish(
    inputs: Any,
    out: Path,
    fn: Callable,
    desc: str,
    max_pixels: int,
    decrypting: bool = False,
    on_done: Callable[[], None] | None = None,
    size: tuple[int, int] | None = None,
    check: Callable | None = None,
) -> None:
    """Run ``fn`` over every input, then ``on_done``; report each failure on one line, exit
    non-zero if any. ``decrypting`` names images as ``keyless encrypt`` did (relative to their
    upload) and keeps the outputs, plain images, the owner's only: folder 0o700, files 0o600.
    ``check``, the same transform as ``fn`` (keys that follow the names, no new key file),
    refuses a re-run under other keys (:func:`check_written`)."""
    for raw in inputs:
        folders = [(Path(raw).resolve(), f"the input folder {raw}")]
        upload = upload_root(raw) if decrypting else None
        if upload is not None:  # plain images must never join the upload
            folders.append((upload.resolve(), f"the encrypted upload {upload}"))
        for folder, name in folders:
            if folder.is_dir() and folder in (out.resolve(), *out.resolve().parents):
                raise click.BadParameter(
                    f"{out} is inside {name}; write the outputs elsewhere", param_hint="--out"
                )
        if out.resolve() in Path(raw).resolve().parents:  # it would join the outputs' folder
            raise click.BadParameter(
                f"the input {raw} is inside {out}; write the outputs elsewhere", param_hint="--out"
            )
    jobs, errors = plan_jobs(inputs, upload_ids=decrypting)
    if check is not None:
        check_written(jobs, out, check, max_pixels, size)
    if decrypting:
        out.mkdir(mode=0o700, parents=True, exist_ok=True)
        out.chmod(0o700)  # a folder that was there too: plain images are the owner's only
    mode = 0o600 if decrypting else None
    written, skipped, failed = run_jobs(
        jobs, out, lambda job, target: transform_file(job, target, fn, max_pixels, mode, size), desc
    )
    errors += failed
    if on_done is not None:
        on_done()
    for exc in errors:
        click.echo(f"keyless: error: {exc}", err=True)
    click.echo(f"{desc}: {written} written, {skipped} already done, {len(errors)} failed -> {out}")
    if errors:
        sys.exit(max(e.exit_code for e in errors))


@main.command()
@inputs_argument
@out_option
@click.option("--seed", type=int, help="Reproducible keys from this seed (one per image id).")
@click.option(
    "--common-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Use this shared key file, creating it if missing (the weak ICIP setting).",
)
@click.option(
    "--master-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Derive each image's key from this master secret and the image's name.",
)
@click.option(
    "--size",
    help="HxW (or N for NxN): scale and centre-crop every image to it before encrypting; "
    "resizing a ciphertext later would mix pixels encrypted under different keys.",
)
@max_pixels_option
@cipher_options
def encrypt(inputs, out, seed, common_key, master_key, size, max_pixels, cipher) -> None:
    """Encrypt image files, folders or npz datasets into OUT (PNG or npz, lossless).

    By default every image gets its own key from the OS CSPRNG, and the key is thrown away:
    nobody, you included, can decrypt. Use --master-key (keyless keygen) to keep the ability
    to decrypt without storing per-image keys. OUT/keyless.json describes the upload (cipher,
    key mode, sizes, classes, counts, payload hash; never a key).
    """
    if sum(v is not None for v in (seed, common_key, master_key)) > 1:
        raise click.UsageError("choose at most one of --seed, --common-key, --master-key")
    source = _key_source(seed, master_key, CsprngSource())
    planned = _planned(cipher, seed, common_key, source)
    check_resume(out, planned)
    plan = KeyPlan(cipher, source, common_path=common_key, create=True)
    existing = KeyPlan(cipher, source, common_path=common_key)  # the check makes no key file
    _finish(
        inputs,
        out,
        lambda x, ids: cipher.encrypt(cipher.obscure(x), plan.keys(x, ids)),
        "encrypt",
        max_pixels,
        on_done=lambda: _write_manifest(
            out,
            describe(out, _planned(cipher, seed, common_key, source)),  # the key file exists
        ),
        size=_image_size(size if "x" in size.lower() else f"{size}x{size}") if size else None,
        check=None  # fresh keys, or fresh noise, cannot be replayed to check a resume
        if (isinstance(source, CsprngSource) and common_key is None)
        or cipher.settings().get("noise")
        else lambda x, ids: cipher.encrypt(x, existing.keys(x, ids)),
    )


def _key_source(seed: int | None, master_key: Path | None, otherwise: Any) -> Any:
    """The key source ``--seed`` or ``--master-key`` names, else ``otherwise``."""
    if seed is not None:
        return SeedSource(seed)
    return MasterKeySource.load(master_key) if master_key else otherwise


def _planned(cipher: Any, seed: int | None, common_key: Path | None, source: Any) -> Manifest:
    """What a manifest says before any image: the cipher, the key mode, and the check value of
    the master key or of the common key file (once it exists)."""
    master = isinstance(source, MasterKeySource)
    mode = (
        "seed" if seed is not None else "master-key" if master else "common" if common_key
        else "independent"
    )  # fmt: skip
    common = cipher.load_key(common_key) if common_key and common_key.exists() else None
    return Manifest(
        cipher.settings(),
        mode,
        source.check_value() if master else None,
        common_key_check=check_value(common.to_bytes(), "common-key-check") if common else None,
    )


def _write_manifest(out: Path, manifest: Manifest) -> None:
    """Describe what ``out`` now holds, if anything (a call that wrote nothing writes nothing)."""
    if manifest.counts:
        manifest.write(out)


@main.command()
@inputs_argument
@out_option
@click.option("--seed", type=int, help="The seed the images were encrypted with.")
@click.option(
    "--common-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The shared key file the images were encrypted with.",
)
@click.option(
    "--master-key",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="The master secret the images were encrypted with.",
)
@max_pixels_option
@cipher_options
def decrypt(inputs, out, seed, common_key, master_key, max_pixels, cipher) -> None:
    """Decrypt images encrypted with --master-key, --common-key or --seed.

    Each image's key follows its name as `keyless encrypt` gave it: its path inside the
    upload (the folder holding keyless.json), so pass the upload, a sub-folder or files of it,
    unrenamed. The manifest refuses a wrong key mode, cipher, master key or common key (a wrong
    --seed cannot be told: its outputs are noise); files moved out of their upload are named
    relative to the folder given (or by file name) and not checked. A re-run into the same OUT
    must decrypt as the first did.
    """
    if sum(v is not None for v in (seed, common_key, master_key)) != 1:
        raise click.UsageError("give exactly one of --master-key, --common-key, --seed")
    source = _key_source(seed, master_key, None)
    planned = _planned(cipher, seed, common_key, source)
    for raw in inputs:
        check_decryption(Path(raw), planned)
    plan = KeyPlan(cipher, source, common_path=common_key)

    def decrypt_images(x: Any, ids: list[str]) -> Any:
        return cipher.decrypt(x, plan.keys(x, ids))

    _finish(inputs, out, decrypt_images, "decrypt", max_pixels, decrypting=True,
            check=decrypt_images)  # fmt: skip


@main.command("fold")
@inputs_argument
@out_option
@max_pixels_option
def fold_images(inputs, out, max_pixels) -> None:
    """Write the FR fold min(p, 255 - p) of each image: what any key leaves visible.

    Folded values lie in 0..127; they are doubled for display.
    """
    _finish(inputs, out, lambda x, ids: fold(x) * 2, "fold", max_pixels)


@main.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Key file to write (it must not exist).",
)
@click.option(
    "--kind",
    type=click.Choice(["master", "common"]),
    default="master",
    show_default=True,
    help="A master secret (per-image keys derived by HKDF) or one common PE key.",
)
@click.option("--size", default="32x32", show_default=True, help="HxW of the images (common keys).")
@cipher_options
def keygen(out, kind, size, cipher) -> None:
    """Create a master secret or a common key, with owner-only permissions."""
    if out.exists():
        raise KeyMaterialError(f"{out}: already exists; refusing to overwrite a key")
    if kind == "master":
        MasterKeySource.create(out)
    else:
        cipher.keygen(1, _image_size(size)).save(out)
    click.echo(f"wrote {kind} key {out}")


@main.command()
@click.option(
    "--out",
    default=Path("demo/encryption_grid.png"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the grid PNG.",
)
@click.option(
    "--train",
    "run",
    type=click.Path(file_okay=False, path_type=Path),
    help="Then train the demo's run in this folder (fastnet 32/64/128, 3 epochs, independent "
    "keys, invariant stem, seed 0; resumed if interrupted, read back if finished) and tell how "
    "it went.",
)
@click.option(
    "--data", type=click.Path(exists=True, path_type=Path),
    help=f"With --train: CIFAR-10 npz/archive; default ${DATA_ENV}, else download CIFAR-10.",
)  # fmt: skip
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


_CONFIG_FIELD = {"recipe_name": "recipe", "widths": "model_kwargs", "whiten_width": "model_kwargs",
                 "attention_layers": "model_kwargs", "cipher_name": "cipher",
                 "no_shuffle": "cipher", "np_mode": "cipher", "np_per": "cipher",
                 "block_size": "cipher"}  # fmt: skip


def _check_resume(ctx: click.Context, config: Any, saved: Any, out: Path) -> None:
    """A resumed run keeps the config it started with: an option given now that contradicts it
    is an error (it would otherwise be ignored without a word)."""
    differ = []
    for name in ctx.params:
        field = _CONFIG_FIELD.get(name, name)
        given = ctx.get_parameter_source(name) == click.core.ParameterSource.COMMANDLINE
        if not given or not hasattr(saved, field):
            continue
        now, then = getattr(config, field), getattr(saved, field)
        if field == "model_kwargs":  # one backbone option, whatever else the recipe set
            field, now, then = name, now.get(name), then.get(name)
        if now != then:
            differ.append(f"--{name.replace('_', '-')} (the run has {field}={then!r})")
    if differ:
        raise ConfigError(
            f"{out}: --resume continues the run as configured; {', '.join(differ)}: "
            "drop the option or train into a new --out"
        )


def _with_model_kwargs(config: TrainConfig, **values: Any) -> TrainConfig:
    """``config`` with the backbone options the user gave on top of the recipe's; a recipe's
    options that another ``--model`` does not take are dropped, and a given option it does not
    take is a usage error."""
    given = {k: v for k, v in values.items() if v is not None}

    def takes(model: str) -> set[str]:
        return set(inspect.signature(MODELS.get(model)).parameters)

    refused = [k for k in given if k not in takes(config.model)]
    if refused:
        shapes = " and ".join(m for m in MODELS.names() if set(refused) <= takes(m))
        options = " and ".join(f"--{k.replace('_', '-')}" for k in refused)
        raise click.UsageError(f"{options} shape {shapes}, not {config.model}")
    kept = {k: v for k, v in config.model_kwargs.items() if k in takes(config.model)}
    return config.replace(model_kwargs={**kept, **given})


MAX_SIDE = 16384  # pixels: a common key for larger images is a mistake, not a use


def _image_size(value: str) -> tuple[int, int]:
    """``HxW`` as two sides in 1..MAX_SIDE, or a usage error naming the option."""
    try:
        h, w = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(
            f"expected HxW such as 32x32, got {value!r}", param_hint="--size"
        ) from None
    if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
        raise click.BadParameter(
            f"sides must be 1 to {MAX_SIDE} pixels, got {value!r}", param_hint="--size"
        )
    return h, w


def _integers(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """Click callback: comma-separated positive integers (``None`` when the option is not
    given)."""
    if value is None:
        return None
    try:
        numbers = [int(v) for v in value.split(",")]
    except ValueError:
        numbers = [0]
    if min(numbers) < 1:
        raise click.BadParameter(f"expected comma-separated positive integers, got {value!r}")
    return numbers


data_option = click.option(
    "--data", type=click.Path(exists=True, path_type=Path),
    help=f"CIFAR-10 npz/archive or image folder; default ${DATA_ENV}, else download CIFAR-10.",
)  # fmt: skip


upload_flag = click.option(
    "--upload",
    "require_upload",
    is_flag=True,
    help="DATA must be an owner's encrypted upload (a folder with keyless.json); plain data "
    "are refused. The cloud's setting: nothing is encrypted here by mistake.",
)


@main.command("train")
@data_option
@click.option("--model", default=None, help=f"Backbone: {', '.join(list_models())}.")
@click.option(
    "--keys",
    type=click.Choice(["plain", "common", "independent"]),
    default="independent",
    show_default=True,
    help="How the owner encrypts the training images.",
)
@click.option(
    "--rekey", is_flag=True, help="Server re-randomises the ciphertexts' keys every epoch."
)
@click.option(
    "--stem",
    type=click.Choice(sorted(STEMS)),
    help="Default the recipe's (plain; invariant for --recipe invariant). invariant: feed the "
    "key-invariant sorted fold to the network; spline: its piecewise-linear hinges (12 maps, "
    "also key-invariant); learned: the fold plus a learned per-pixel 1x1 net; nibbles: the "
    "4-bit halves of every value (for LE).",
)
@click.option(
    "--adapt",
    type=click.Choice(ADAPTERS),
    is_flag=False,
    flag_value="pixel",
    default="none",
    show_default=True,
    help="Adaptation network: --adapt (= pixel) is ICIP's (1x1 convs, 8 and 32 maps); "
    "--adapt block is Tanaka's block-wise one (matches --block-size).",
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
    type=click.Choice(sorted(RECIPES)),
    default="fast",
    show_default=True,
    help="fast: airbench94; invariant: independent keys, key-invariant stem, batches of 256 "
    "(the best measured on the fold); muon: the same with airbench94_muon's optimizer, batches "
    "of 1000; invariant96: airbench96 on the fold (a residual fastnet 128/512/512, 31 epochs, "
    "cutout; a GPU budget); bag: the invariant recipe on bagnet for --cipher pe-scramble "
    "(the blocks' sorted folds as a set, no shifts); paper: SGD 0.1, steps at 150/225.",
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
    callback=_integers,
    help="fastnet: widths of its three blocks, e.g. 32,64,128 for a CPU-sized fastnet.",
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
    callback=_integers,
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
@click.option(
    "--seed", type=int, help="Seed for keys, order and augmentation (default random, recorded)."
)
@click.option(
    "--precision", type=click.Choice(["auto", "bf16", "fp32"]), help="Autocast precision."
)
@click.option("--device", help="cpu or cuda (default: cuda when available).")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder: checkpoint.pt and record.json are written there.",
)
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
@upload_flag
@cipher_options
def train_cmd(
    data, recipe_name, widths, whiten_width, attention_layers, milestones, out, resume,
    checkpoint_minutes, device, compile_model, require_upload, cipher, **options,
):  # fmt: skip
    """Train a classifier on encrypted CIFAR-10 (or any dataset) and evaluate it.

    The owner's training images are encrypted once (``--keys``); the engine then only holds
    ciphertexts and augments them in the encrypted domain. The record reports accuracy on plain
    test images, on test images encrypted with fresh keys, and on the common-key test set.
    """
    config = recipe(
        recipe_name,
        **options,
        cipher=cipher,
        milestones=tuple(milestones) if milestones else None,
    )
    config = _with_model_kwargs(
        config, widths=widths, whiten_width=whiten_width, attention_layers=attention_layers
    )
    run = Run(out)
    if resume and run.has_checkpoint():
        saved = run.load(mmap=True).config  # the config only: tensors stay on disk
        _check_resume(click.get_current_context(), config, saved, out)
    elif not resume and (run.has_checkpoint() or run.has_record()):
        raise InputError(f"{out} already holds a run: --resume continues it, another --out or "
                         "removing the folder starts a new one")  # fmt: skip
    finished = resume and run.finished_record() is not None
    record = train(
        config,
        find_dataset(data),
        out,
        resume=resume,
        checkpoint_minutes=checkpoint_minutes,
        compile_model=compile_model,
        device=device,
        command=" ".join(["keyless", *sys.argv[1:]]),
        require_upload=require_upload,
        given=(),  # the options on the command line are compared above (_check_resume)
    )
    if finished:
        click.echo(f"{out}: the run finished already; its recorded test accuracies (nothing "
                   "trained or evaluated again):", err=True)  # fmt: skip
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one report
        click.echo(json.dumps(record["test"], indent=2))


@main.command()
@click.option(
    "--table",
    type=click.Choice(TABLES),
    required=True,
    help="icip: PE variants, LE and EtC with a common key; access: plain / common / "
    "independent keys per model; budget: the access claims at 5-40 epochs of fastnet (plain, "
    "independent, re-keyed, invariant stem); diagnostic: fastnet on plain, grey, fold and "
    "sorted-fold images.",
)
@click.option(
    "--budget",
    type=click.Choice(BUDGETS),
    default="cpu",
    show_default=True,
    help="cpu: fastnet 32/64/128, 10 epochs per row (ResNet-18 / DenseNet one epoch); "
    "paper: the papers' 300-epoch schedules (GPU); for budget and diagnostic, paper means "
    "airbench94's full-width fastnet.",
)
@data_option
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder: one run folder per row, RESULTS.md and chart.png.",
)
@click.option("--only", help="Comma-separated rows to train now (results cover every row).")
@click.option("--results-only", is_flag=True, help="Write RESULTS.md from finished runs only.")
@click.option(
    "--reuse",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder of an earlier table (repeatable): its finished runs with the same training "
    "are copied, not trained again.",
)
@click.option("--device", help="cpu or cuda (default: cuda when available).")
def reproduce(table, budget, data, out, only, results_only, reuse, device) -> None:
    """Rerun a paper's comparison table: every training it needs, then RESULTS.md and a chart.

    Resumable: finished rows are skipped and an interrupted row resumes from its checkpoint, so
    a long table can be spread over several invocations.
    """
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


@main.command("evaluate")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@data_option
@click.option("--no-tta", is_flag=True, help="Skip the flip-and-translate test-time augmentation.")
@click.option("--device", help="cpu or cuda.")
@upload_flag
def evaluate_cmd(run, data, no_tta, device, require_upload) -> None:
    """Evaluate a trained run on plain, fresh-key and (if any) common-key test images, or on an
    owner's upload: its test split as encrypted and re-keyed."""
    metrics = evaluate_run(run, find_dataset(data), not no_tta, device, require_upload)
    click.echo(json.dumps(metrics, indent=2))


@main.command()
@click.argument("runs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the table here."
)
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
    if pool_commits and not mean:
        raise click.UsageError("--pool-commits needs --mean")
    records = []
    for run in runs:
        record = read_record(run)
        record["name"] = Path(run).name if Path(run).is_dir() else Path(run).parent.name
        records.append(record)
    table = mean_table(records, pool_commits) if mean else report_table(records)
    if out:
        write_bytes_atomic(out, table.encode())
    click.echo(table, nl=False)


@main.command()
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
    default=",".join(list_attacks()),
    show_default=True,
    help="Comma-separated attacks to run.",
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
@click.option("--seed", default=0, show_default=True, help="Seed for the victims' keys.")
@click.option(
    "--out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Report folder: report.json, report.md, grid.png.",
)
@cipher_options
def attack(data, keys, attack_names, victims, attacker_images, budget_minutes, seed, out, cipher):
    """Attack ciphertexts and measure how much of each plain image comes back (SSIM, PSNR)."""
    splits = load_splits(find_dataset(data))
    if "train" not in splits or "test" not in splits:
        raise InputError(f"an attack needs train and test splits (the attacker's images and the "
                         f"victims), found {', '.join(splits)}")  # fmt: skip
    report, columns = run_attacks(
        splits["train"].subset(slice(0, attacker_images)),
        splits["test"].subset(slice(0, victims)),
        cipher, keys, [a for a in attack_names.split(",") if a], budget_minutes * 60, seed,
    )  # fmt: skip
    write_report(report, columns, out)
    click.echo((out / "report.md").read_text(), nl=False)


def _limit(name: str, default: float, text: str, positive: bool = False) -> Callable:
    """A serve limit option: an int or float (as its default) of at least 0, or 1 for ints
    (``positive``: above 0), with its default shown."""
    kind = (
        click.IntRange(min=1)
        if isinstance(default, int)
        else click.FloatRange(min=0, min_open=positive)
    )
    return click.option(name, default=default, type=kind, show_default=True, help=text)


@main.command("serve")
@click.argument("run", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback; put a TLS proxy in front to expose it).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port.",
)
@click.option("--device", help="cpu or cuda (default: cuda when available).")
@click.option(
    "--input-size",
    nargs=2,
    type=click.IntRange(min=1),
    help="H W the model takes (default: the size it was trained on); other sizes are refused.",
)
@_limit(
    "--max-batch", 128, "A forward pass starts, without waiting, once it holds this many images."
)
@_limit("--max-wait-ms", 2.0, "How long a forward pass waits to gather concurrent requests.")
@_limit("--max-request-bytes", Limits.max_request_bytes, "Largest request body.")
@_limit("--max-images", Limits.max_images, "Images per request.")
@_limit("--max-pixels", Limits.max_pixels, "Pixels per image.")
@_limit("--max-requests", 256, "Requests handled at once; more are answered 503.")
@_limit("--max-connections", 1024, "Open connections; more are closed on arrival.")
@_limit(
    "--request-timeout",
    10.0,
    "Seconds a connection has to deliver a whole request (headers and body) after opening "
    "or after its previous answer; idle and slow connections are then closed.",
    positive=True,
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Torch threads for inference (default: all cores but one).",
)
@click.option("--no-access-log", is_flag=True, help="Do not log one line per request.")
def serve_cmd(run, host, port, max_request_bytes, max_images, max_pixels, no_access_log, **opts):
    """Serve RUN's model over HTTP: images in (encrypted or plain), labels out.

    POST /v1/classify takes PNG files (multipart/form-data) or raw uint8 arrays
    (application/octet-stream with an X-Image-Shape: N,H,W,3 header); GET /v1/model describes the
    model; GET /healthz. See docs/service.md.
    """
    limits = Limits(max_request_bytes, max_images, max_pixels)
    serve(run, host, port, limits=limits, access_log=not no_access_log, **opts)


@main.command("classify")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--server", required=True, help="The service, e.g. http://127.0.0.1:8000.")
@click.option("--plain", is_flag=True, help="Send the images unencrypted.")
@click.option(
    "--top-k",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most probable classes shown per image.",
)
def classify_cmd(images, server, plain, top_k) -> None:
    """Classify IMAGES (files or folders) on a keyless service.

    Each image is encrypted here under a fresh key from the OS CSPRNG, thrown away after sending
    (unless --plain): the service sees ciphertexts only.
    """
    with Client(server) as client:
        rows, errors = classify_files(client, images, top_k, encrypt=not plain)
    if rows:
        click.echo(results_table(rows))
    for error in errors:
        click.echo(f"keyless: error: {error}", err=True)
    if errors:
        sys.exit(max(e.exit_code for e in errors))


if __name__ == "__main__":
    main()
