"""Options shared by several commands, declared once; the cipher options come from the ciphers'
own fields and docstrings, so a new cipher or cipher option needs no change here."""

from __future__ import annotations

import dataclasses
import functools
import re
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from keyless.cipher import CIPHERS, create_cipher
from keyless.cipher._base import MAX_SIDE
from keyless.errors import ConfigError


class Size(click.ParamType):
    """An image size, the one form every command takes: ``HxW`` or ``N`` for N x N."""

    name = "size"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        text = str(value).lower()
        try:
            h, w = (int(v) for v in (text.split("x") if "x" in text else (text, text)))
        except ValueError:
            self.fail(f"expected HxW or N, such as 32x32 or 32; got {value!r}", param, ctx)
        if not (0 < h <= MAX_SIDE and 0 < w <= MAX_SIDE):
            self.fail(f"sides must be 1 to {MAX_SIDE} pixels, got {value!r}", param, ctx)
        return h, w


def integers(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    """Click callback: comma-separated positive integers (``None`` when not given)."""
    if value is None:
        return None
    try:
        numbers = [int(v) for v in value.split(",")]
    except ValueError:
        numbers = [0]
    if min(numbers) < 1:
        raise click.BadParameter(f"expected comma-separated positive integers, got {value!r}")
    return numbers


def out_option(help: str, file: bool = False, required: bool = True) -> Callable:
    """``--out``: an output folder (or file, with ``file``)."""
    kind = (
        click.Path(dir_okay=False, path_type=Path)
        if file
        else click.Path(file_okay=False, path_type=Path)
    )
    return click.option("--out", required=required, type=kind, help=help)


device_option = click.option("--device", help="cpu or cuda (default: cuda when available).")
data_option = click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="CIFAR-10 npz/archive, image folder or an owner's upload; default $KEYLESS_DATA, else "
    "download CIFAR-10.",
)
# as typed (a str keeps a trailing "/", which says the input must be a folder)
inputs_argument = click.argument("inputs", nargs=-1, required=True, type=click.Path())
run_argument = click.argument("run", type=click.Path(file_okay=False, path_type=Path))
upload_flag = click.option(
    "--upload",
    "require_upload",
    is_flag=True,
    help="DATA must be an owner's encrypted upload (a folder with keyless.json); plain data "
    "are refused. The cloud's setting: nothing is encrypted here by mistake.",
)


def seed_option(help: str, default: int | None = None) -> Callable:
    """``--seed``: an integer seed."""
    return click.option("--seed", type=int, default=default, show_default=default is not None,
                        help=help)  # fmt: skip


def _field_help(cls: type, name: str) -> str:
    """The ``Args:`` line of ``name`` in the docstring of ``cls`` or the first base that has one."""
    for klass in cls.__mro__:
        doc = klass.__doc__ or ""
        match = re.search(
            rf"^\s+{name}: (.+?)(?=^\s+\w+: |\Z)", doc.split("Args:")[-1], re.M | re.S
        )
        if "Args:" in doc and match:
            words = re.sub(r":\w+:`~?([^`]*)`", r"\1", " ".join(match.group(1).split()))
            return words.replace("``", "")
    return ""


def _cipher_fields() -> dict[str, dict[str, Any]]:
    """Every option of every registered cipher: its type, the ciphers that take it, and help."""
    fields: dict[str, dict[str, Any]] = {}
    for name in CIPHERS.names():
        cls = CIPHERS.get(name)
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            entry = fields.setdefault(f.name, {"type": hints[f.name], "help": {}})
            entry["help"].setdefault(_field_help(cls, f.name), []).append(name)
    return fields


def _cipher_option(name: str, entry: dict[str, Any]) -> Callable:
    flag = name.replace("_", "-")
    text = "; ".join(f"{', '.join(names)}: {words}" for words, names in entry["help"].items())
    kind = entry["type"]
    if kind is bool:
        return click.option(f"--{flag}/--no-{flag}", name, default=None, help=text)
    if typing.get_origin(kind) is typing.Literal:
        return click.option(f"--{flag}", name, type=click.Choice(typing.get_args(kind)), help=text)
    return click.option(f"--{flag}", name, type=kind, help=text)


def cipher_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--cipher`` and every cipher option; passes the built ``cipher`` to the command."""
    fields = _cipher_fields()

    @functools.wraps(command)
    def wrapper(cipher_name: str, **kw: Any) -> Any:
        options = {k: kw.pop(k) for k in fields}
        given = {k: v for k, v in options.items() if v is not None}
        try:
            cipher = create_cipher(cipher_name, **given)
        except TypeError:
            flags = ", ".join(f"--{k.replace('_', '-')}" for k in given)
            raise ConfigError(f"{flags}: not an option of cipher {cipher_name!r}") from None
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        return command(cipher=cipher, **kw)

    for name, entry in reversed(fields.items()):
        wrapper = _cipher_option(name, entry)(wrapper)
    summary = "; ".join(
        f"{n}: {(CIPHERS.get(n).__doc__ or '').strip().splitlines()[0].rstrip('.')}"
        for n in CIPHERS.names()
    )
    return click.option("--cipher", "cipher_name", default="pe", show_default=True,
                        type=click.Choice(CIPHERS.names()), help=summary)(wrapper)  # fmt: skip
