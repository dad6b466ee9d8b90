"""``python -m keyless.cli``: the ``keyless`` command (torchrun and subprocess tests use it)."""

from keyless.cli import main

main()
