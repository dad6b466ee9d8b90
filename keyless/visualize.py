"""Image grids with captions, for demos and attack reports."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

_CAPTION_PX = 14


def image_grid(
    rows: Sequence[Sequence[np.ndarray]],
    header: Sequence[str],
    captions: Sequence[Sequence[str]] | None = None,
    scale: int = 1,
    pad: int = 4,
) -> Image.Image:
    """Lay out (H, W, 3) uint8 tiles in rows under a header line, each tile optionally captioned.

    Tiles are enlarged ``scale`` times with nearest-neighbour sampling so pixels stay visible.
    """
    h, w = (d * scale for d in rows[0][0].shape[:2])
    cell_w = max(w, 6 * max(len(t) for t in header)) + pad
    cell_h = h + pad + (_CAPTION_PX if captions else 0)
    grid = Image.new("RGB", (cell_w * len(header), _CAPTION_PX + cell_h * len(rows)), "white")
    draw = ImageDraw.Draw(grid)
    for col, title in enumerate(header):
        draw.text((col * cell_w + 2, 1), title, fill="black")
    for r, row in enumerate(rows):
        for c, tile in enumerate(row):
            x, y = c * cell_w, _CAPTION_PX + r * cell_h
            grid.paste(Image.fromarray(tile).resize((w, h), Image.NEAREST), (x, y))
            if captions:
                draw.text((x + 2, y + h + 1), captions[r][c], fill="black")
    return grid
