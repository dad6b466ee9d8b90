"""The ``keyless`` command: parse arguments, call the library, print results.

Each family of commands has its module; they are imported when their command runs, and each
imports the heavy libraries (torch) inside the command, so ``keyless --help`` answers at once.
Every error a user can cause becomes one line and one :class:`~keyless.errors.ExitStatus` here.
"""

from __future__ import annotations

import importlib
import signal
import sys
from typing import Any

import click

from keyless.errors import ExitStatus, KeylessError

COMMANDS = {  # name: module under keyless.cli, in the order --help lists them
    "encrypt": "_owner",
    "decrypt": "_owner",
    "fold": "_owner",
    "keygen": "_owner",
    "train": "_cloud",
    "evaluate": "_cloud",
    "report": "_results",
    "reproduce": "_results",
    "serve": "_service",
    "classify": "_service",
    "attack": "_research",
    "demo": "_research",
}


class KeylessGroup(click.Group):
    """Commands loaded on demand; every keyless error turned into one line on stderr and its
    exit status, in one place."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"keyless.cli.{COMMANDS[name]}")
        return getattr(module, name.replace("-", "_"))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except KeylessError as exc:
            fail(str(exc), exc.exit_code)
        except OSError as exc:  # a disk, permission or file-system limit, not a bug: one line
            where = f"{exc.filename}: " if exc.filename else ""
            fail(f"{where}{exc.strerror or exc}", ExitStatus.FAILED)
        except MemoryError:
            fail("out of memory (the input is too large)", ExitStatus.FAILED)
        except KeyboardInterrupt:
            fail("interrupted", ExitStatus.INTERRUPTED)


def fail(message: str, status: ExitStatus) -> None:
    """Print ``message`` as keyless's one error line and exit with ``status``."""
    click.echo(f"keyless: error: {message}", err=True)
    sys.exit(status)


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
    raise KeyboardInterrupt


__all__ = ["main"]
