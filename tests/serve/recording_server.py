"""The ``keyless`` command line with a test hook in the service: every image a classify request
brings is saved, as the service received it, to the folder ``$KEYLESS_TEST_RECEIVED`` (one
``NNNN.npy`` of (N, H, W, 3) uint8 per request, numbered in arrival order).

    KEYLESS_TEST_RECEIVED=DIR python -m tests.serve.recording_server serve RUN ...
"""

import itertools
import os
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import keyless.serve._app as app
from keyless.cli import main


def recording(parse: Callable[..., torch.Tensor], folder: Path) -> Callable[..., torch.Tensor]:
    """``parse`` (the service's request parser), saving each batch it returns into ``folder``."""
    numbers = itertools.count()

    def parse_and_save(*args: object) -> torch.Tensor:
        images = parse(*args)
        np.save(folder / f"{next(numbers):04d}.npy", images.numpy())
        return images

    return parse_and_save


if __name__ == "__main__":
    app.parse_images = recording(app.parse_images, Path(os.environ["KEYLESS_TEST_RECEIVED"]))
    main(sys.argv[1:], prog_name="keyless")
