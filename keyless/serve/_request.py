"""A classify request's body as a uint8 batch: PNG files or a raw array, within the limits.

Two formats: ``multipart/form-data`` with one PNG file part per image, or
``application/octet-stream`` holding C-order (N, H, W, 3) uint8 values with the shape in the
``X-Image-Shape`` header (``N,H,W,3`` or ``H,W,3``). Images of another size than the model's are
refused, not resized: resampling a ciphertext mixes pixels encrypted under different keys, so it
would not equal the encryption of the resized image.
"""

from __future__ import annotations

import struct

import numpy as np
import torch

from keyless.data._io import decode_image
from keyless.errors import InputError
from keyless.serve._limits import Limits, RequestRefused
from keyless.serve._multipart import multipart_files

SHAPE_HEADER = "X-Image-Shape"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def parse_images(
    content_type: str, shape: str | None, body: bytes, limits: Limits, size: tuple[int, int]
) -> torch.Tensor:
    """The (N, H, W, 3) uint8 images of a request whose body has been read.

    Args:
        content_type: the request's Content-Type header ("" when missing).
        shape: its X-Image-Shape header, for raw arrays.
        body: the body, already checked against ``limits.max_request_bytes``.
        limits: images per request and pixels per image.
        size: the model's (H, W); other sizes are refused.

    Raises:
        RequestRefused: with the status to answer (400, 413, 415 or 422) and a message.
    """
    media = content_type.split(";")[0].strip().lower()
    if media == "application/octet-stream":
        return _raw(body, shape, limits, size)
    if media == "multipart/form-data":
        return _pngs(multipart_files(body, content_type, limits.max_images), limits, size)
    raise RequestRefused(
        415,
        f"content type {media or '(none)'!r} is not supported; send PNG files as "
        f"multipart/form-data, or raw uint8 values as application/octet-stream with an "
        f"{SHAPE_HEADER} header",
    )


def _raw(body: bytes, shape: str | None, limits: Limits, size: tuple[int, int]) -> torch.Tensor:
    if shape is None:
        raise RequestRefused(
            400, f"application/octet-stream needs an {SHAPE_HEADER} header: N,H,W,3 or H,W,3"
        )
    try:
        dims = tuple(int(d) for d in shape.split(","))
    except ValueError:
        dims = ()
    dims = (1, *dims) if len(dims) == 3 else dims
    if len(dims) != 4 or min(dims) < 1:
        raise RequestRefused(
            400, f"{SHAPE_HEADER} {shape!r} is not N,H,W,3 or H,W,3 in positive integers"
        )
    n, h, w, c = dims
    _check_count(n, limits)
    _check_image("the array", h, w, limits, size)
    if c != 3:
        raise RequestRefused(422, f"the array has {c} values per pixel; the model takes RGB (3)")
    if len(body) != n * h * w * c:
        raise RequestRefused(
            400, f"the body holds {len(body)} bytes; shape {n},{h},{w},{c} needs {n * h * w * c}"
        )
    return torch.from_numpy(np.frombuffer(body, np.uint8).reshape(n, h, w, c).copy())


def _pngs(files: list[tuple[str, bytes]], limits: Limits, size: tuple[int, int]) -> torch.Tensor:
    if not files:
        raise RequestRefused(400, "no images: send one or more PNG file parts")
    _check_count(len(files), limits)
    images = []
    for i, (filename, data) in enumerate(files, 1):
        name = f"image {i} ({filename})" if filename else f"image {i}"
        if not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR" or len(data) < 24:
            raise RequestRefused(
                415, f"{name}: not a PNG file; the service takes lossless PNG only"
            )
        width, height = struct.unpack(">II", data[16:24])
        _check_image(name, height, width, limits, size)
        try:
            images.append(decode_image(data, name, limits.max_pixels, formats=("PNG",)))
        except InputError as exc:
            raise RequestRefused(422, str(exc)) from None
    return torch.from_numpy(np.stack(images))


def _check_count(n: int, limits: Limits) -> None:
    if n > limits.max_images:
        raise RequestRefused(
            413, f"{n} images in one request; the limit is {limits.max_images}, split it"
        )


def _check_image(name: str, h: int, w: int, limits: Limits, size: tuple[int, int]) -> None:
    if h * w > limits.max_pixels:
        raise RequestRefused(
            413, f"{name}: {w}x{h} = {w * h} pixels exceeds the limit of {limits.max_pixels}"
        )
    if (h, w) != tuple(size):
        raise RequestRefused(
            422,
            f"{name}: {w}x{h} pixels (width x height), the model takes {size[1]}x{size[0]}; "
            "resize before encrypting (the service refuses other sizes)",
        )
