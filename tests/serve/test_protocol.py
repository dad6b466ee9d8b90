import asyncio
import socket
import threading
import time

import httpx
import pytest
import uvicorn

from keyless.serve._protocol import RequestLimit, deadline_protocol


def test_requests_beyond_the_limit_get_503_and_the_slot_frees_afterwards():
    release = asyncio.Event()

    async def slow_app(scope, receive, send):
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def scenario():
        limited = RequestLimit(slow_app, limit=1)
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = asyncio.create_task(client.get("/"))
            await asyncio.sleep(0.05)  # the first request holds the only slot
            busy = await client.get("/")
            release.set()
            done = await first
            again = await client.get("/")
        return busy, done, again

    busy, done, again = asyncio.run(scenario())
    assert busy.status_code == 503 and "1 requests in progress" in busy.json()["detail"]
    assert done.status_code == 200 and again.status_code == 200


@pytest.mark.slow  # seconds: a child process or a real wait
def test_a_pipelined_request_received_whole_is_answered_however_long_it_takes():
    async def slow_app(scope, receive, send):  # each answer takes longer than the deadline
        if scope["type"] != "http":
            return
        await asyncio.sleep(0.6)
        headers = [(b"content-length", b"2")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(slow_app, http=deadline_protocol(0.4, 8), log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        with socket.create_connection(sock.getsockname(), timeout=5) as client:
            client.sendall(b"GET /1 HTTP/1.1\r\nHost: t\r\n\r\nGET /2 HTTP/1.1\r\nHost: t\r\n\r\n")
            replies = b""
            while not replies.endswith(b"/2") and (chunk := client.recv(4096)):
                replies += chunk  # until the second answer, or until the server hangs up
        assert replies.count(b"HTTP/1.1 200") == 2 and replies.endswith(b"/2"), replies
    finally:
        server.should_exit = True
        thread.join(5)
