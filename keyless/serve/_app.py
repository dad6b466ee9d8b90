"""The HTTP inference service: ``create_app`` builds it for a run folder, ``serve`` runs it.

Endpoints: ``GET /`` (the web page that encrypts photos in the browser, :mod:`keyless.serve.
_page`); ``GET /healthz``; ``GET /v1/model`` (classes, input size, cipher and key setting the
model was trained for, the recorded test accuracy of the inference it serves, the limits);
``POST /v1/classify?top_k=K`` (images in, per image the label, class name and top-k
probabilities out); ``GET /docs`` (the interactive API description). Every refusal is a 4xx
``{"detail": message}``. Uploads stay in memory and pixels are never logged.
"""

from __future__ import annotations

import errno
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import torch
import uvicorn
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from keyless.errors import ConfigError, ListenError
from keyless.serve._batcher import Batcher
from keyless.serve._limits import MAX_PER_CLIENT, Limits, RequestRefused
from keyless.serve._model import ServedModel, top_k
from keyless.serve._page import add_page
from keyless.serve._protocol import RequestLimit, deadline_protocol
from keyless.serve._request import SHAPE_HEADER, parse_images


def create_app(
    run: Path | str,
    *,
    limits: Limits | None = None,
    max_batch: int = 128,
    max_wait_ms: float = 2.0,
    input_size: tuple[int, int] | None = None,
    device: str | None = None,
    tta: bool = False,
) -> FastAPI:
    """The service for the model of ``run`` (a folder written by ``keyless train``).

    Args:
        run: the run folder.
        limits: what one request may hold (bytes, images, pixels per image); default
            :class:`Limits`.
        max_batch: images at which a forward pass starts without waiting for more requests.
        max_wait_ms: how long a forward pass waits to gather concurrent requests.
        input_size: (H, W) the model takes, default the size it was trained on; other sizes are
            refused.
        device: ``cpu`` or ``cuda``; default CUDA when available.
        tta: answer with test-time augmentation (see :meth:`ServedModel.load`).
    """
    limits = limits or Limits()
    served = ServedModel.load(run, input_size, device, tta)
    h, w = served.input_size
    if h * w > limits.max_pixels or h * w * 3 > limits.max_request_bytes:
        raise ConfigError(f"a {h}x{w} image is over --max-pixels {limits.max_pixels} or "
                          f"--max-request-bytes {limits.max_request_bytes}: every request would "
                          "be refused; raise them")  # fmt: skip
    batcher = Batcher(served.probabilities, max_batch, max_wait_ms / 1000)
    description = {
        **served.describe(),
        "limits": limits.to_dict(),
        "batching": {"max_batch": max_batch, "max_wait_ms": max_wait_ms},
    }

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        served.probabilities(torch.zeros(1, *served.input_size, 3, dtype=torch.uint8))  # warm up
        batcher.start()
        try:
            yield
        finally:
            await batcher.stop()

    app = FastAPI(title="keyless inference", version="1", lifespan=lifespan)
    add_page(app)

    @app.exception_handler(RequestRefused)
    async def refused(_: Request, exc: RequestRefused) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, exc.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        messages = [f"{e['loc'][-1]}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(messages)}, 422)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/model")
    async def model() -> dict[str, Any]:
        return description

    @app.post("/v1/classify")
    async def classify(
        request: Request,
        k: int = Query(3, alias="top_k", ge=1),  # at most the model's classes
    ) -> JSONResponse:
        body = await read_body(request, limits.max_request_bytes)
        images = parse_images(
            request.headers.get("content-type", ""),
            request.headers.get(SHAPE_HEADER),
            body,
            limits,
            served.input_size,
        )
        probabilities = await batcher(images)
        return JSONResponse(
            {
                "model": served.name,
                "results": top_k(probabilities, served.classes, min(k, len(served.classes))),
            }
        )

    return app


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as its declared or received size passes ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestRefused(413, f"request body of {declared} bytes exceeds the limit of {limit}")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise RequestRefused(413, f"request body exceeds the limit of {limit} bytes")
    except ClientDisconnect:  # nobody to answer: the access log has the line, not a traceback
        raise RequestRefused(400, "the client hung up during the upload") from None
    return bytes(body)


_REASONS = {
    errno.EADDRINUSE: "the port is in use",
    errno.EADDRNOTAVAIL: "the host is not an address of this machine",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
}


def listen(host: str, port: int) -> list[socket.socket]:
    """Sockets listening on every address of ``host`` at ``port`` (as uvicorn would bind them),
    or one :class:`~keyless.errors.ListenError` naming ``host:port``: a port in use, a host that
    does not resolve or is not this machine's. ``serve`` binds them before loading the model and
    hands them to uvicorn, so the port cannot be taken in between."""
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (OSError, UnicodeError) as exc:  # gaierror, or an IDNA label too long
        reason = getattr(exc, "strerror", None) or exc
        raise ListenError(
            f"cannot listen on {where}: the host does not resolve ({reason})"
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(found):
            sockets.append(sock := socket.socket(family, kind, proto))
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:  # as asyncio does: the IPv4 addresses bind apart
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(address)
            sock.listen(2048)  # uvicorn's backlog
    except OSError as exc:
        for sock in sockets:
            sock.close()
        reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
        raise ListenError(f"cannot listen on {where}: {reason}") from None
    return sockets


def serve(
    run: Path | str,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    max_requests: int = 256,
    max_connections: int = 1024,
    max_connections_per_client: int = MAX_PER_CLIENT,
    request_timeout: float = 10.0,
    threads: int | None = None,
    access_log: bool = True,
    **options: Any,
) -> None:
    """Serve ``run``'s model with uvicorn until interrupted (``options`` go to :func:`create_app`).

    ``host:port`` is bound first: a port in use or a bad host is one
    :class:`~keyless.errors.ListenError` before the model loads (:func:`listen`).
    ``max_requests`` bounds the requests handled at once (more get 503) and, with the per-request
    limits, the memory uploads can take; ``max_connections`` bounds open sockets and
    ``max_connections_per_client`` those of one client address (more are closed on arrival, so
    one client cannot take every socket); a connection that has not delivered a whole request
    ``request_timeout`` seconds after opening (or after its previous response) is closed, so idle
    and slow clients cannot hold the service (:mod:`keyless.serve._protocol`). ``threads``
    (torch's, for inference) defaults to torch's default less one, leaving a core to the event
    loop: on the 2-core development CPU (busy with a training job) a forward pass of 16 images
    took 330 ms with 2 threads, 20 ms with 1.
    """
    sockets = listen(host, port)
    try:
        torch.set_num_threads(threads or max(1, torch.get_num_threads() - 1))
        config = uvicorn.Config(
            RequestLimit(create_app(run, **options), max_requests),
            http=deadline_protocol(request_timeout, max_connections, max_connections_per_client),
            access_log=access_log,
            log_level="info",
        )
        bound = sockets[0].getsockname()[1]
        url = f"http://[{host}]:{bound}" if ":" in host else f"http://{host}:{bound}"
        logging.getLogger("uvicorn.error").info("Listening on %s (Ctrl-C to stop)", url)
        uvicorn.Server(config).run(sockets=sockets)
    finally:
        for sock in sockets:
            sock.close()
