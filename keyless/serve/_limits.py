"""What one classify request may hold, and the error that refuses it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from keyless.errors import InputError

MAX_PER_CLIENT = 64  # open connections of one client address (a browser opens a handful)


@dataclass(frozen=True)
class Limits:
    """Per-request limits; anything beyond them is refused with a 4xx JSON error.

    Attributes:
        max_request_bytes: body size, checked on the Content-Length header and while reading.
        max_images: images in one request.
        max_pixels: pixels of one image, checked on its header before any decoding.
    """

    max_request_bytes: int = 4 * 2**20
    max_images: int = 64
    max_pixels: int = 65_536

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class RequestRefused(InputError):
    """A request the service will not classify; ``status`` is the HTTP status it answers."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
