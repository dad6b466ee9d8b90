import asyncio

import httpx

from keyless.serve._protocol import RequestLimit


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
