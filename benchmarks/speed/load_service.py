"""Load-test the inference service on loopback: throughput, latency, errors, server memory.

    python benchmarks/speed/load_service.py --run runs/cpu/independent-invariant \\
        --requests 10000 --concurrency 16 --images-per-request 1

Starts ``keyless serve`` on 127.0.0.1 (a free port, no access log) in a subprocess, sends
``--requests`` requests of ``--images-per-request`` raw uint8 images from ``--concurrency``
concurrent keep-alive connections, and stops early after ``--duration`` seconds. The images are
uniform random bytes of the model's input size, which is what PE ciphertexts look like to the
server; encrypting them is the client's cost and is left out. Reports images/s, p50/p99 latency
of successful requests, the error count and the server process's peak resident memory (VmHWM).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from keyless.serve import SHAPE_HEADER

POOL = 64  # distinct request bodies, cycled


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def memory_kib(pid: int) -> dict[str, int]:
    """VmHWM (peak) and VmRSS (now) of a process, in KiB, from /proc."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
    )
    return {name: int(fields[name].split()[0]) for name in ("VmHWM", "VmRSS")}


def start_server(args: argparse.Namespace, port: int, log) -> subprocess.Popen:
    command = [sys.executable, "-m", "keyless.cli", "serve", args.run, "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", "--no-access-log", "--max-batch",
               str(args.max_batch), "--max-wait-ms", str(args.max_wait_ms)]  # fmt: skip
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)


def wait_healthy(url: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server was not healthy after {timeout:.0f} s")


class Connection:
    """One keep-alive HTTP/1.1 connection on loopback, with requests written by hand.

    httpx spent about as much CPU per request as the server does (1.5 ms), and the load runs on
    the same cores as the server; this costs a small fraction of that.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        return cls(*await asyncio.open_connection("127.0.0.1", port))

    async def post(self, request: bytes) -> int:
        """Send a whole request, read the whole response; its status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        await self.reader.readexactly(int(length.group(1)) if length else 0)
        return int(head.split(b" ", 2)[1])

    def close(self) -> None:
        self.writer.close()


def requests(bodies: list[bytes], shape: str) -> list[bytes]:
    """Whole HTTP requests classifying each body."""
    head = ("POST /v1/classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/octet-stream\r\n{SHAPE_HEADER}: {shape}\r\n")  # fmt: skip
    return [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]


async def load(port: int, requests: list[bytes], args: argparse.Namespace) -> dict:
    """Send the requests; latencies (s) of successes, errors by kind and wall time."""
    latencies: list[float] = []
    errors: dict[str, int] = {}
    connections = [await Connection.open(port) for _ in range(args.concurrency)]
    warm_up = await asyncio.gather(*(c.post(requests[0]) for c in connections))
    if set(warm_up) != {200}:
        raise RuntimeError(f"warm-up requests answered {sorted(set(warm_up))}")
    counter = itertools.count()
    deadline = time.monotonic() + args.duration

    async def worker(connection: Connection | None) -> None:
        while (i := next(counter)) < args.requests and time.monotonic() < deadline:
            start = time.perf_counter()
            try:
                connection = connection or await Connection.open(port)
                status = await asyncio.wait_for(connection.post(requests[i % len(requests)]), 30)
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                if connection is not None:
                    connection.close()
                connection = None  # a fresh connection for the next request
                continue
            if status == 200:
                latencies.append(time.perf_counter() - start)
            else:
                errors[str(status)] = errors.get(str(status), 0) + 1
        if connection is not None:
            connection.close()

    start = time.perf_counter()
    await asyncio.gather(*(worker(c) for c in connections))
    return {"latencies": latencies, "errors": errors, "wall": time.perf_counter() - start}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="runs/cpu/independent-invariant")
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--images-per-request", type=int, default=1)
    parser.add_argument("--duration", type=float, default=300.0, help="Stop after this many s.")
    parser.add_argument("--max-batch", type=int, default=128, help="Passed to keyless serve.")
    parser.add_argument("--max-wait-ms", type=float, default=2.0, help="Passed to keyless serve.")
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        process = start_server(args, port, log)
        try:
            wait_healthy(url, process)
            info = httpx.get(f"{url}/v1/model").json()
            shape = (args.images_per_request, *info["input_size"], 3)
            rng = np.random.default_rng(0)
            bodies = [rng.integers(0, 256, shape, np.uint8).tobytes() for _ in range(POOL)]
            posts = requests(bodies, ",".join(map(str, shape)))
            at_start = memory_kib(process.pid)["VmRSS"]
            result = asyncio.run(load(port, posts, args))
            memory = memory_kib(process.pid)
        except RuntimeError as exc:
            log.seek(0)
            sys.exit(f"load_service: {exc}\n{log.read()}")
        finally:
            process.terminate()
            process.wait(30)

    latencies, errors = sorted(result["latencies"]), result["errors"]
    done = len(latencies)
    report = {
        "model": info["name"],
        "requests": done + sum(errors.values()),
        "concurrency": args.concurrency,
        "images_per_request": args.images_per_request,
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "seconds": round(result["wall"], 3),
        "images_per_s": round(done * args.images_per_request / result["wall"], 1),
        "requests_per_s": round(done / result["wall"], 1),
        "p50_ms": round(1000 * statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(1000 * latencies[math.ceil(0.99 * done) - 1], 2) if latencies else None,
        "server_rss_at_start_mib": round(at_start / 1024, 1),
        "server_peak_rss_mib": round(memory["VmHWM"] / 1024, 1),
        "server_batching": info["batching"],
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
    }
    print(f"{report['requests']} requests x {args.images_per_request} image(s) at concurrency "
          f"{args.concurrency} in {report['seconds']} s: {report['images_per_s']} images/s, "
          f"p50 {report['p50_ms']} ms, p99 {report['p99_ms']} ms, {report['errors']} errors, "
          f"server peak RSS {report['server_peak_rss_mib']} MiB")  # fmt: skip
    print(json.dumps(report))


if __name__ == "__main__":
    main()
