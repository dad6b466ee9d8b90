"""The web page the service answers ``GET /`` with: a client that encrypts in the browser.

The page (``static/``, shipped in the package) reads ``GET /v1/model``, fits each photo to the
model's input size, encrypts it with the served cipher under a fresh key from
``crypto.getRandomValues`` and sends only the ciphertext to ``POST /v1/classify``. Its files are
served from this host only, under a Content-Security-Policy that allows nothing else: no other
host, no inline script or style, no form submission, no framing.
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import Response

from keyless.serve._limits import RequestRefused

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}


def page_files() -> dict[str, tuple[bytes, str]]:
    """The page's files by name: (content, media type), read once from the package."""
    folder = files("keyless.serve") / "static"
    found = {}
    for item in folder.iterdir():
        suffix = item.name[item.name.rfind(".") :]
        if suffix in _TYPES:
            found[item.name] = (item.read_bytes(), f"{_TYPES[suffix]}; charset=utf-8")
    return found


def add_page(app: FastAPI) -> None:
    """Answer ``GET /`` with the page and ``GET /static/NAME`` with its scripts and style."""
    assets = page_files()

    def answer(name: str) -> Response:
        if name not in assets:
            raise RequestRefused(404, f"no page file {name!r}")
        content, media_type = assets[name]
        return Response(content, media_type=media_type, headers=HEADERS)

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        return answer("index.html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        return answer(name)
