"""The owner's commands: ``encrypt``, ``decrypt``, ``fold`` and ``keygen``."""

from __future__ import annotations

from pathlib import Path

import click

from keyless.cli._options import Size, cipher_options, inputs_argument, out_option, seed_option
from keyless.data._io import DEFAULT_MAX_PIXELS

outputs_option = out_option("Output folder; outputs that already exist are skipped.")
max_pixels_option = click.option(
    "--max-pixels",
    default=DEFAULT_MAX_PIXELS,
    show_default=True,
    type=click.IntRange(min=1),
    help="Refuse images with more pixels (decompression bombs).",
)


def workers_option(help: str):
    """``--workers N``: processes at once, one by default."""
    return click.option("--workers", default=1, show_default=True, type=click.IntRange(min=1),
                        help=help)  # fmt: skip


key_file_option = click.option(
    "--key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="master-key: the master secret (keyless keygen); common: the shared key file.",
)


def _report(summary, verb: str, out: Path) -> None:
    """Print each failure on one line and the totals; exit with the worst failure's status."""
    for error in summary.errors:
        click.echo(f"keyless: error: {error}", err=True)
    click.echo(f"{verb}: {summary.written} written, {summary.skipped} already done, "
               f"{len(summary.errors)} failed -> {out}")  # fmt: skip
    if summary.errors:
        raise SystemExit(summary.exit_status)


@click.command()
@inputs_argument
@outputs_option
@click.option(
    "--keys",
    type=click.Choice(["independent", "master-key", "common", "seed"]),
    default="independent",
    show_default=True,
    help="independent: a fresh CSPRNG key per image, thrown away (nobody can decrypt); "
    "master-key: keys derived from --key-file's secret; common: one key for all (--key-file, "
    "created if missing; the weak ICIP setting); seed: keys derived from --seed (experiments).",
)
@key_file_option
@seed_option("seed key mode: the seed the keys are derived from (one key per image id).")
@click.option(
    "--size",
    type=Size(),
    help="Scale and centre-crop every image to this size before encrypting (resizing a "
    "ciphertext later would mix pixels encrypted under different keys).",
)
@click.option(
    "--shard-size",
    type=click.IntRange(min=1),
    help="Write shards of this many images each (uncompressed arrays with labels and image "
    "ids, each shard's SHA-256 in keyless.json) instead of one file per image: for large "
    "uploads. All images take one size (--size, or the first image's).",
)
@workers_option("Processes encrypting at once (one per core); with --keys seed or master-key "
                "the outputs are the same whatever their number.")  # fmt: skip
@max_pixels_option
@cipher_options
def encrypt(inputs, out, keys, key_file, seed, size, shard_size, workers, max_pixels,
            cipher) -> None:  # fmt: skip
    """Encrypt image files, folders or npz datasets into OUT (PNG or npz, lossless).

    By default every image gets its own key from the OS CSPRNG, and the key is thrown away:
    nobody, you included, can decrypt. Use --keys master-key (keyless keygen) to keep the
    ability to decrypt without storing per-image keys. OUT/keyless.json describes the upload
    (cipher, key mode, sizes, classes, counts, payload hash; never a key). A re-run into OUT
    writes only what is missing (with --shard-size: the missing shards).
    """
    from keyless.upload import encrypt_files

    summary = encrypt_files(inputs, out, cipher, keys=keys, key_file=key_file, seed=seed,
                            size=size, max_pixels=max_pixels, shard_size=shard_size,
                            workers=workers)  # fmt: skip
    _report(summary, "encrypt", out)


@click.command()
@inputs_argument
@outputs_option
@click.option(
    "--keys",
    type=click.Choice(["master-key", "common", "seed"]),
    required=True,
    help="The key mode the images were encrypted with (independent keys cannot be decrypted).",
)
@key_file_option
@seed_option("seed key mode: the seed the images were encrypted with.")
@workers_option("Processes decrypting at once (one per core).")
@max_pixels_option
@cipher_options
def decrypt(inputs, out, keys, key_file, seed, workers, max_pixels, cipher) -> None:
    """Decrypt images encrypted with a master key, a common key or a seed.

    Each image's key follows its name as `keyless encrypt` gave it: its path inside the
    upload (the folder holding keyless.json), so pass the upload, a sub-folder or files of it,
    unrenamed. A sharded upload (--shard-size), or shard files of it, given alone, comes back
    as one PNG per image at OUT/<path inside the photo folder>, each shard checked against its
    SHA-256 (a damaged, missing or foreign shard is one error; the others are decrypted). The
    manifest refuses a wrong key mode, cipher, master key or common key (a wrong --seed cannot
    be told: its outputs are noise); files moved out of their upload are named relative to the
    folder given (or by file name) and not checked. A re-run into the same OUT writes only what
    is missing and must decrypt as the first did. Plain outputs are the owner's only (a folder
    keyless creates: 0700, files 0600).
    """
    from keyless.upload import decrypt_files

    summary = decrypt_files(inputs, out, cipher, keys=keys, key_file=key_file, seed=seed,
                            max_pixels=max_pixels, workers=workers)  # fmt: skip
    _report(summary, "decrypt", out)


@click.command()
@inputs_argument
@outputs_option
@max_pixels_option
def fold(inputs, out, max_pixels) -> None:
    """Write the FR fold min(p, 255 - p) of each image: what any key leaves visible.

    Folded values lie in 0..127; they are doubled for display.
    """
    from keyless.upload import fold_files

    _report(fold_files(inputs, out, max_pixels=max_pixels), "fold", out)


@click.command()
@out_option("Key file to write (it must not exist).", file=True)
@click.option(
    "--kind",
    type=click.Choice(["master", "common"]),
    default="master",
    show_default=True,
    help="A master secret (per-image keys derived by HKDF) or one common key of the cipher.",
)
@click.option("--size", type=Size(), default="32x32", show_default=True,
              help="The images' size (common keys).")  # fmt: skip
@cipher_options
def keygen(out, kind, size, cipher) -> None:
    """Create a master secret or a common key, with owner-only permissions."""
    from keyless.upload import create_key_file

    create_key_file(out, kind, cipher, size)
    click.echo(f"wrote {kind} key {out}")
