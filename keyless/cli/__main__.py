"""``python -m keyless.cli``: the ``keyless`` command (torchrun and subprocess tests use it)."""

from keyless.cli import main

if __name__ == "__main__":  # not when a spawned worker process imports it
    main()
