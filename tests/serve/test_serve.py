"""``serve`` itself: it binds its address before anything else (a port in use or a bad host is
one line), and one client address cannot take every connection."""

import resource
import selectors
import socket
import threading
import time

import httpx
import pytest
import torch
import uvicorn
from click.testing import CliRunner

from keyless.cli import main
from keyless.errors import ExitStatus, ListenError
from keyless.serve import _app, serve
from keyless.serve._app import listen


@pytest.fixture
def taken():
    """A port some other program listens on (127.0.0.1)."""
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        yield other.getsockname()[1]


def test_a_port_in_use_is_one_error_before_the_model_loads(taken, tmp_path):
    with pytest.raises(ListenError, match=rf"^cannot listen on 127\.0\.0\.1:{taken}: the port "
                                          r"is in use$"):  # fmt: skip
        serve(tmp_path / "no-such-run", "127.0.0.1", taken)


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("no-such-host.invalid", "the host does not resolve"),
        ("203.0.113.7", "the host is not an address of this machine"),  # TEST-NET-3 (RFC 5737)
    ],
)
def test_a_host_that_does_not_resolve_or_is_not_this_machines_is_one_error(host, reason, tmp_path):
    started = time.monotonic()
    with pytest.raises(ListenError, match=rf"^cannot listen on {host}:8000: {reason}"):
        serve(tmp_path / "no-such-run", host, 8000)
    assert time.monotonic() - started < 30


def test_the_command_prints_one_line_and_fails(taken, tmp_path):
    result = CliRunner().invoke(
        main, ["serve", str(tmp_path), "--port", str(taken)], catch_exceptions=False
    )
    assert result.exit_code == ExitStatus.FAILED
    assert (
        result.stderr == f"keyless: error: cannot listen on 127.0.0.1:{taken}: the port is in use\n"
    )


def test_listen_binds_a_free_port_when_asked_for_port_0():
    sockets = listen("127.0.0.1", 0)
    try:
        assert [s.getsockname()[0] for s in sockets] == ["127.0.0.1"]
        with socket.create_connection(sockets[0].getsockname(), timeout=5):
            pass  # listening: the connection is accepted into the backlog
    finally:
        for sock in sockets:
            sock.close()


class Hog(threading.Thread):
    """A client at 127.0.0.2 that holds ``count`` idle connections to ``address`` and reopens
    each one the server closes (Linux routes all of 127/8 to loopback)."""

    def __init__(self, address, count):
        super().__init__(daemon=True)
        self.address, self.count, self.reopened = address, count, 0
        self.holding, self.stop = threading.Event(), threading.Event()

    def run(self):
        selector = selectors.DefaultSelector()
        while not self.stop.is_set():
            while len(selector.get_map()) < self.count and not self.stop.is_set():
                sock = socket.socket()
                try:
                    sock.bind(("127.0.0.2", 0))
                    sock.settimeout(1)
                    sock.connect(self.address)
                except OSError:
                    sock.close()
                    break
                sock.setblocking(False)
                selector.register(sock, selectors.EVENT_READ)
            if len(selector.get_map()) == self.count:
                self.holding.set()
            for key, _ in selector.select(0.05):
                try:
                    closed = not key.fileobj.recv(4096)
                except OSError:
                    closed = True
                if closed:
                    selector.unregister(key.fileobj)
                    key.fileobj.close()
                    self.reopened += 1
        for key in list(selector.get_map().values()):
            key.fileobj.close()


@pytest.fixture
def serving_ok(monkeypatch):
    """``serve`` (its defaults but a 30 s request deadline) in a thread on 127.0.0.1, with an
    app that answers 200 in place of a model's; yields its address, then stops it."""

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

    started, run = [], uvicorn.Server.run

    def run_and_keep(server, sockets=None):
        started.append((server, sockets))
        return run(server, sockets)

    monkeypatch.setattr(_app, "create_app", lambda *args, **options: app)
    monkeypatch.setattr(uvicorn.Server, "run", run_and_keep)
    options = {"request_timeout": 30.0, "threads": torch.get_num_threads(), "access_log": False}
    thread = threading.Thread(target=serve, args=("run", "127.0.0.1", 0), kwargs=options)
    thread.start()
    try:
        while not (started and started[0][0].started):
            time.sleep(0.01)
        yield started[0][1][0].getsockname()
    finally:
        if started:
            started[0][0].should_exit = True
        thread.join(10)


@pytest.mark.slow  # seconds: a child process or a real wait
def test_one_client_holding_1100_sockets_does_not_keep_another_out(serving_ok):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)  # both ends of 1,100 sockets here
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4096)), hard))
    hog = Hog(serving_ok, 1100)
    hog.start()
    try:
        assert hog.holding.wait(30)
        url, statuses = f"http://127.0.0.1:{serving_ok[1]}/", []
        for _ in range(10):
            try:
                statuses.append(httpx.get(url, timeout=10).status_code)
            except httpx.TransportError as exc:
                statuses.append(type(exc).__name__)
            time.sleep(0.1)
    finally:
        hog.stop.set()
        hog.join(10)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert statuses == [200] * 10
    assert hog.reopened > 0  # the server did close the sockets over the hog's cap
