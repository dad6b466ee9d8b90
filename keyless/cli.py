"""The ``keyless`` command: parse arguments, call the library, print results."""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from keyless.cipher import create_cipher, list_ciphers
from keyless.data import DEFAULT_MAX_PIXELS, KeyPlan, plan_jobs, run_jobs, transform_file
from keyless.errors import KeylessError, KeyMaterialError
from keyless.invariant import fold
from keyless.keys import CsprngSource, MasterKeySource, SeedSource


class KeylessGroup(click.Group):
    """Turns every keyless error into one line on stderr and its exit status, in one place."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeylessError as exc:
            click.echo(f"keyless: error: {exc}", err=True)
            sys.exit(exc.exit_code)


@click.group(cls=KeylessGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="keyless")
def main() -> None:
    """Privacy-preserving deep learning on images encrypted without key management.

    Images are encrypted with the pixel-based cipher of Sirichotedumrong, Kinoshita and Kiya
    (IEEE Access 2019): every colour value is inverted (p -> 255 - p) by a random bit and every
    pixel's three components are shuffled, under a fresh random key per image that is thrown away.
    """


def cipher_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Options that choose the cipher and its variant; passes ``cipher`` to the command."""

    @click.option(
        "--cipher",
        "cipher_name",
        default="pe",
        show_default=True,
        type=click.Choice(list_ciphers()),
        help="Cipher from the registry.",
    )
    @click.option(
        "--no-shuffle", is_flag=True, help="Negative-positive step only (no colour shuffle)."
    )
    @click.option(
        "--np-mode",
        type=click.Choice(["coin", "balanced"]),
        default="coin",
        show_default=True,
        help="Fair coin per value (paper) or exactly 50% inverted.",
    )
    @click.option(
        "--np-per",
        type=click.Choice(["component", "pixel"]),
        default="component",
        show_default=True,
        help="One inversion bit per colour value (paper) or per pixel.",
    )
    @functools.wraps(command)
    def wrapper(cipher_name: str, no_shuffle: bool, np_mode: str, np_per: str, **kw: Any) -> Any:
        try:
            cipher = create_cipher(
                cipher_name, shuffle=not no_shuffle, np_mode=np_mode, np_per=np_per
            )
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


def _finish(inputs: Any, out: Path, fn: Callable, desc: str, max_pixels: int) -> None:
    """Run ``fn`` over every input, report each failure on one line, exit non-zero if any."""
    jobs, errors = plan_jobs(inputs)
    written, skipped, failed = run_jobs(
        jobs, out, lambda job, target: transform_file(job, target, fn, max_pixels), desc
    )
    errors += failed
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
@max_pixels_option
@cipher_options
def encrypt(inputs, out, seed, common_key, master_key, max_pixels, cipher) -> None:
    """Encrypt image files, folders or npz datasets into OUT (PNG or npz, lossless).

    By default every image gets its own key from the OS CSPRNG, and the key is thrown away:
    nobody, you included, can decrypt. Use --master-key (keyless keygen) to keep the ability
    to decrypt without storing per-image keys.
    """
    if sum(v is not None for v in (seed, common_key, master_key)) > 1:
        raise click.UsageError("choose at most one of --seed, --common-key, --master-key")
    source = (
        SeedSource(seed)
        if seed is not None
        else MasterKeySource.load(master_key)
        if master_key
        else CsprngSource()
    )
    plan = KeyPlan(cipher, source, common_path=common_key, create=True)
    _finish(inputs, out, lambda x, ids: cipher.encrypt(x, plan.keys(x, ids)), "encrypt", max_pixels)


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

    Images are identified by their path relative to the folder given (or their file name), so
    pass the folder `keyless encrypt` wrote, or files from it, unrenamed.
    """
    if sum(v is not None for v in (seed, common_key, master_key)) != 1:
        raise click.UsageError("give exactly one of --master-key, --common-key, --seed")
    source = (
        SeedSource(seed)
        if seed is not None
        else MasterKeySource.load(master_key)
        if master_key
        else None
    )
    plan = KeyPlan(cipher, source, common_path=common_key)
    _finish(inputs, out, lambda x, ids: cipher.decrypt(x, plan.keys(x, ids)), "decrypt", max_pixels)


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
        try:
            h, w = (int(v) for v in size.lower().split("x"))
        except ValueError:
            raise click.BadParameter(f"expected HxW such as 32x32, got {size!r}") from None
        cipher.keygen(1, (h, w)).save(out)
    click.echo(f"wrote {kind} key {out}")


@main.command()
@click.option(
    "--out",
    default=Path("demo/encryption_grid.png"),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the grid PNG.",
)
def demo(out) -> None:
    """Encrypt the bundled sample photos and write a grid: plain | two keys | FR fold."""
    from keyless.demo import encryption_grid

    click.echo(f"wrote {encryption_grid(out)}")


if __name__ == "__main__":
    main()
