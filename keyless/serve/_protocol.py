"""What a public service needs around uvicorn and uvicorn lacks: a deadline for every request to
arrive whole, caps on open connections (in all and per client address), and a limit on requests
in flight.

uvicorn times out idle keep-alive connections only after a first response: a client that opens a
socket and sends nothing, or a header a byte a second, holds it forever (256 such sockets locked
every other client out at 503). Here each connection must deliver a complete request (headers
and body) within ``request_timeout`` seconds of opening or of its previous response, or it is
closed; sockets beyond ``max_open``, or beyond ``max_per_client`` from one client address, are
closed on arrival (with the total capped alone, one client reopening the sockets closed on it
holds them all); and only requests being handled count against ``max_requests`` (503 beyond),
so idle sockets cannot starve well-behaved clients.
Behind a proxy every client has the proxy's address: raise ``max_per_client`` there.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from fastapi.responses import JSONResponse
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from keyless.serve._limits import MAX_PER_CLIENT


def deadline_protocol(
    request_timeout: float, max_open: int, max_per_client: int = MAX_PER_CLIENT
) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol with the request deadline and the open-connection caps."""
    per_client: Counter[str] = Counter()  # open connections by client address

    class DeadlineProtocol(HttpToolsProtocol):
        _deadline: asyncio.TimerHandle | None = None
        _whole = 0  # requests received whole and not yet answered (pipelined ones queue)
        _address: str | None = None  # the client's, once its connection counts against the cap

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            peer = transport.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) else str(peer)
            if len(self.connections) > max_open or per_client[address] >= max_per_client:
                transport.close()
                return
            self._address = address
            per_client[address] += 1
            self._arm()

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(request_timeout, self._expire)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expire(self) -> None:
            self._deadline = None
            if not self.transport.is_closing():
                self.transport.close()

        def on_message_complete(self) -> None:
            self._disarm()  # the request is whole: the app may take its time to answer
            self._whole += 1
            super().on_message_complete()

        def on_response_complete(self) -> None:
            self._whole = max(0, self._whole - 1)  # an answer may come before its body arrived
            super().on_response_complete()
            if not self._whole and not self.transport.is_closing():
                self._arm()  # the next request on this connection gets its own deadline

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            if self._address is not None:
                per_client[self._address] -= 1
                if not per_client[self._address]:
                    del per_client[self._address]
                self._address = None
            super().connection_lost(exc)

    return DeadlineProtocol


class RequestLimit:
    """ASGI middleware: at most ``limit`` HTTP requests handled at once, others answered 503."""

    def __init__(self, app: Any, limit: int) -> None:
        self.app, self.limit, self.active = app, limit, 0

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if self.active >= self.limit:
            busy = {"detail": f"busy: {self.limit} requests in progress; try again"}
            return await JSONResponse(busy, 503)(scope, receive, send)
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1
