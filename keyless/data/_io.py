"""Reading and writing single images, with the input policy in one place.

Converted to RGB (lossless): 8-bit greyscale (L), bilevel (1) and palette (P) images without
transparency. Refused: images with alpha (RGBA, LA, PA, palette with transparency), more than 8
bits per value (I;16, I, F, and 16-bit RGB PNG, TIFF or PPM, which Pillow would cut to 8 bits),
several frames (animated GIF, multi-page TIFF), other colour spaces (CMYK, YCbCr, LAB, HSV),
empty, truncated or non-image files, and images over the pixel limit (decompression bombs).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image

from keyless._atomic import atomic_path
from keyless.errors import InputError

IMAGE_SUFFIXES = frozenset(
    {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm"}
)
DEFAULT_MAX_PIXELS = 50_000_000
_CONVERTED = {"L", "1", "P"}


def read_image(path: Path | str, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as (H, W, 3) uint8 RGB, following the module's input policy."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file")
        with path.open("rb") as file:
            return _decode(file, str(path), max_pixels)
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder, expected an image file") from None
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None


def decode_image(
    data: bytes,
    name: str = "image",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    formats: tuple[str, ...] | None = None,
) -> np.ndarray:
    """Decode an encoded image held in memory (an upload) as (H, W, 3) uint8 RGB.

    Same input policy as :func:`read_image`; ``name`` starts every error message and ``formats``
    (Pillow names, e.g. ``("PNG",)``) restricts the decoders tried.
    """
    if not data:
        raise InputError(f"{name}: empty file")
    return _decode(io.BytesIO(data), name, max_pixels, formats)


def _decode(
    file: BinaryIO, name: str, max_pixels: int, formats: tuple[str, ...] | None = None
) -> np.ndarray:
    try:
        with warnings.catch_warnings():
            # max_pixels below is the limit (Pillow's warning would cap it at its own threshold);
            # Pillow still refuses twice its MAX_IMAGE_PIXELS (about 179 M) whatever max_pixels
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.filterwarnings(
                "ignore", category=UserWarning, module="PIL"
            )  # the error says it
            with Image.open(file, formats=formats) as img:
                width, height = img.size
                if width * height > max_pixels:
                    raise InputError(
                        f"{name}: {width}x{height} = {width * height} pixels exceeds the limit of "
                        f"{max_pixels} (raise it with --max-pixels if the file is trusted)"
                    )
                _check_mode(name, img)
                img.load()
                rgb = img if img.mode == "RGB" else img.convert("RGB")
                return np.asarray(rgb, dtype=np.uint8).copy()
    except Image.DecompressionBombError as exc:
        raise InputError(
            f"{name}: refused as a decompression bomb by Pillow, above any --max-pixels ({exc})"
        ) from None
    except Image.UnidentifiedImageError:
        raise InputError(f"{name}: not an image file (format not recognised)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(f"{name}: unreadable or truncated image ({exc})") from None


def _check_mode(name: str, img: Image.Image) -> None:
    frames = getattr(img, "n_frames", 1)
    if frames > 1:
        raise InputError(f"{name}: {frames} frames; keyless reads one image per file")
    if _wider_than_8_bits(img):
        raise InputError(f"{name}: more than 8 bits per value; PE needs 8-bit RGB")
    mode = img.mode
    if mode == "RGB":
        return
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        raise InputError(
            f"{name}: has an alpha channel (mode {mode}); PE encrypts RGB only, "
            "so flatten or drop the alpha first"
        )
    if mode.startswith("I") or mode == "F":
        raise InputError(f"{name}: more than 8 bits per value (mode {mode}); PE needs 8-bit RGB")
    if mode not in _CONVERTED:
        raise InputError(f"{name}: colour mode {mode} is not supported; convert it to RGB first")


def fit_image(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """(H, W, 3) uint8 scaled (Lanczos) so it covers ``size`` = (h, w), then centre-cropped to
    it: the owner's resizing, done on plain images (resampling a ciphertext would mix pixels
    encrypted under different keys)."""
    h, w = size
    if image.shape[:2] == (h, w):
        return image
    scale = max(h / image.shape[0], w / image.shape[1])
    scaled_w, scaled_h = round(image.shape[1] * scale), round(image.shape[0] * scale)
    scaled = Image.fromarray(image).resize((scaled_w, scaled_h), Image.Resampling.LANCZOS)
    top, left = (scaled_h - h) // 2, (scaled_w - w) // 2
    return np.asarray(scaled.crop((left, top, left + w, top + h)), dtype=np.uint8).copy()


def _wider_than_8_bits(img: Image.Image) -> bool:
    """Whether the file stores more than 8 bits per value although Pillow opens it as 8-bit RGB
    (16-bit PNG and TIFF: a ``;16`` raw mode; 16-bit PPM: a maximum value above 255)."""
    for tile in img.tile:
        args = tile[3] if isinstance(tile[3], tuple) else (tile[3],)
        if any(isinstance(a, str) and ";16" in a for a in args):
            return True
        if img.format == "PPM" and any(isinstance(a, int) and a > 255 for a in args):
            return True
    return False


def write_png(
    path: Path | str, image: np.ndarray, mode: int | None = None, compress_level: int = 6
) -> None:
    """Write an (H, W, 3) uint8 array as a lossless PNG at zlib ``compress_level`` (0 to 9),
    atomically (permissions ``mode``)."""
    with atomic_path(path, mode) as tmp:
        image = Image.fromarray(np.ascontiguousarray(image), "RGB")
        image.save(tmp, format="PNG", compress_level=compress_level)
