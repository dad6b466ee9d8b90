"""A real uvicorn server in a subprocess on loopback, used through the client and the CLI."""

import socket
import time
from importlib.resources import files
from pathlib import Path

import httpx
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.data import fit_image, read_image
from keyless.errors import ExitStatus
from keyless.serve import SERVER_ENV, Client
from tests.serve.conftest import expected_labels, free_port, serving

REQUEST_TIMEOUT = 3.0  # seconds the test server gives a connection to deliver a whole request


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    """``keyless serve`` on 127.0.0.1 and a free ephemeral port; always terminated."""
    log = tmp_path_factory.mktemp("server") / "server.log"
    with serving(tiny_run, log, "--request-timeout", str(REQUEST_TIMEOUT)) as url:
        yield url, log


@pytest.mark.slow  # needs the tiny_run fixture (a trained model)
def test_client_classifies_encrypted_images_through_a_real_server(server, tiny_run, images):
    url, log = server
    with Client(url) as client:
        assert client.info["name"] == "tiny"
        results = client.classify(images)
    assert [r["label"] for r in results] == expected_labels(tiny_run, images)
    lines = log.read_text().splitlines()
    assert any('"POST /v1/classify?top_k=3 HTTP/1.1" 200' in line for line in lines)
    assert max(map(len, lines)) < 200  # one short line per request, no pixel data


def run(*args):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.slow  # needs the tiny_run fixture (a trained model)
def test_classify_command_prints_a_table_and_reports_bad_files(server, tiny_run, images, tmp_path):
    url, _ = server
    for i, image in enumerate(images[:3]):
        Image.fromarray(image).save(tmp_path / f"{i}.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "small.png")
    (tmp_path / "notes.png").write_text("not an image")
    files = [tmp_path / name for name in ("0.png", "1.png", "2.png", "small.png", "notes.png")]
    expected = ["abcd"[label] for label in expected_labels(tiny_run, images[:3])]
    for flags in ((), ("--plain",)):
        code, out, err = run("classify", *files, "--server", url, "--top-k", 2, *flags)
        assert code == ExitStatus.BAD_INPUT
        lines = out.splitlines()
        assert lines[0].split() == ["image", "label", "class", "sent", "top-k"] and len(lines) == 4
        for i, line in enumerate(lines[1:]):
            name, label, class_name, sent, top = line.split(maxsplit=4)
            assert name == str(files[i]) and class_name == expected[i] == "abcd"[int(label)]
            assert sent == ("plain" if flags else "encrypted")
            assert top.startswith(class_name + " ") and top.count(",") == 1
        errors = err.splitlines()
        assert len(errors) == 2
        fit = "small.png: 8x8 pixels, the model takes 32x32; resize it first, or fit it with --size"
        assert fit in errors[0]
        assert "notes.png: not an image file" in errors[1]


@pytest.mark.slow  # needs the tiny_run fixture (a trained model)
def test_classify_fits_the_bundled_photos_as_encrypt_does_and_finds_the_server_in_the_env(
    server, tiny_run
):
    """``--size 32`` fits the 96x96 sample photos with the owner's function (fit_image, as
    ``keyless encrypt --size`` does); ``$KEYLESS_SERVER`` names the service."""
    url, _ = server
    samples = sorted(Path(str(files("keyless") / "samples")).glob("*.png"))
    assert samples and all(read_image(p).shape == (96, 96, 3) for p in samples)
    fitted = np.stack([fit_image(read_image(p), (32, 32)) for p in samples])
    result = CliRunner(env={SERVER_ENV: url}).invoke(main, ["classify", "--size", "32",
                                                            *map(str, samples)])  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = [line.split() for line in result.stdout.splitlines()[1:]]
    assert [row[0] for row in rows] == list(map(str, samples))
    assert [int(row[1]) for row in rows] == expected_labels(tiny_run, fitted)
    assert {row[3] for row in rows} == {"encrypted"}


def test_classify_command_without_a_server():
    code, _, err = run("classify", "x.png", "--server", f"http://127.0.0.1:{free_port()}")
    assert code == ExitStatus.SERVICE and err.startswith("keyless: error: http://127.0.0.1:")
    assert "cannot reach the service" in err and len(err.splitlines()) == 1


@pytest.mark.slow  # needs the tiny_run fixture (a trained model)
def test_a_client_that_hangs_up_mid_upload_leaves_no_traceback(server):
    url, log = server
    host, port = url.removeprefix("http://").split(":")
    before = len(log.read_text().splitlines())
    with socket.create_connection((host, int(port))) as sock:
        sock.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/"
                     b"octet-stream\r\nX-Image-Shape: 1,8,8,3\r\nContent-Length: 192\r\n\r\n"
                     + bytes(50))  # fmt: skip
        time.sleep(0.5)
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # still serving
    time.sleep(0.5)
    new = log.read_text().splitlines()[before:]
    assert not any("Traceback" in line or "Error" in line for line in new), new
    assert len([line for line in new if "/v1/classify" in line]) <= 1


@pytest.mark.slow  # needs the tiny_run fixture (a trained model)
def test_300_idle_or_slow_connections_are_closed_in_time_and_do_not_lock_others_out(server):
    url, log = server
    host, port = url.removeprefix("http://").split(":")
    before = len(log.read_text().splitlines())
    sockets = [  # from 5 addresses (all of 127/8 is loopback), each under the per-client cap
        socket.create_connection((host, int(port)), source_address=(f"127.0.0.{2 + i // 60}", 0))
        for i in range(300)
    ]
    try:
        for i, sock in enumerate(sockets):
            if i % 3 == 1:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")  # a header, never finished
            elif i % 3 == 2:  # a body, never finished
                sock.sendall(
                    b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\nab"
                )
        opened = time.monotonic()
        # a well-behaved client meanwhile: served at once, not 503
        assert httpx.get(f"{url}/healthz", timeout=REQUEST_TIMEOUT).status_code == 200
        assert time.monotonic() - opened < REQUEST_TIMEOUT
        for sock in sockets:  # the server closes every one of them within its deadline
            sock.settimeout(REQUEST_TIMEOUT + 5 - (time.monotonic() - opened))
            while sock.recv(4096):  # an answer (408/400) or nothing, then the close
                pass
        assert time.monotonic() - opened < REQUEST_TIMEOUT + 5
    finally:
        for sock in sockets:
            sock.close()
    new = log.read_text().splitlines()[before:]
    assert not any("Traceback" in line for line in new), new
