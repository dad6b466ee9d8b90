"""The files of a multipart/form-data body, parsed in memory (nothing is spooled to disk)."""

from __future__ import annotations

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from keyless.serve._limits import RequestRefused


class _Parts:
    """Collects (filename, bytes) per part; refuses form fields and more than ``max_parts``."""

    def __init__(self, max_parts: int) -> None:
        self.max_parts = max_parts
        self.files: list[tuple[str, bytearray]] = []
        self.header = [b"", b""]
        self.disposition = b""
        self.ended = False

    def on_part_begin(self) -> None:
        if len(self.files) == self.max_parts:
            raise RequestRefused(
                413, f"more than {self.max_parts} images in one request; split it into several"
            )
        self.disposition = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header[0] += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header[1] += data[start:end]

    def on_header_end(self) -> None:
        if self.header[0].lower() == b"content-disposition":
            self.disposition = self.header[1]
        self.header = [b"", b""]

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        if b"filename" not in options:
            field = options.get(b"name", b"").decode("latin-1")
            raise RequestRefused(
                400,
                f"form field {field!r} is not a file; send each image as a file part "
                "(top_k is a query parameter)",
            )
        self.files.append((options[b"filename"].decode("utf-8", "replace"), bytearray()))

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        self.files[-1][1].extend(data[start:end])

    def on_end(self) -> None:
        self.ended = True


def multipart_files(body: bytes, content_type: str, max_parts: int) -> list[tuple[str, bytes]]:
    """(filename, data) of every file part of a multipart/form-data ``body``, in order.

    Raises:
        RequestRefused: 400 for a malformed or truncated body or a non-file field, 413 for more
            than ``max_parts`` parts.
    """
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise RequestRefused(400, "multipart/form-data content type without a boundary")
    parts = _Parts(max_parts)
    callbacks = {name: getattr(parts, name) for name in dir(_Parts) if name.startswith("on_")}
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
        parser.write(body)
        parser.finalize()
    except MultipartParseError as exc:
        raise RequestRefused(400, f"malformed multipart/form-data body ({exc})") from None
    if not parts.ended:
        raise RequestRefused(400, "truncated multipart/form-data body (no closing boundary)")
    return [(name, bytes(data)) for name, data in parts.files]
