"""The client against a fake service (http.server in a thread): a server that drips its answer
or answers malformed JSON ends the call with one ServiceError line, never a hang or traceback."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cli import main
from keyless.serve import Client, ServiceError

MODEL = {
    "name": "fake",
    "classes": ["a", "b"],
    "input_size": [4, 4],
    "cipher": {"name": "pe"},
    "keys": "independent",
    "accepts": {"fresh_key_ciphertexts": 0.9, "plain_images": None},
    "limits": {"max_request_bytes": 4096, "max_images": 8, "max_pixels": 64},
}
RESULT = {"label": 1, "class_name": "b", "top_k": [{"label": 1, "class_name": "b",
                                                     "probability": 0.75}]}  # fmt: skip


def _without(answer, field):
    return {k: v for k, v in answer.items() if k != field}


# case: (GET /v1/model answer, POST /v1/classify answer for 2 images, what the error says)
CASES = {
    "nolimits": ({**MODEL, "limits": _without(MODEL["limits"], "max_images")}, None,
                 "GET /v1/model answer has no limits.max_images"),
    "badsize": ({**MODEL, "input_size": [4, 4, 3]}, None,
                "GET /v1/model answer input_size: Tuple should have at most 2 items"),
    "strsize": ({**MODEL, "input_size": ["4", 4]}, None,
                "GET /v1/model answer input_size.0: Input should be a valid integer"),
    "cipher-string": ({**MODEL, "cipher": "pe"}, None,
                      "GET /v1/model answer cipher: Input should be an object"),
    "nolabel": (MODEL, {"results": [_without(RESULT, "label")] * 2},
                "POST /v1/classify answer has no results.0.label, results.1.label"),
    "fewresults": (MODEL, {"results": [RESULT]},
                   "POST /v1/classify answer results: 1 results for 2 images"),
    "badprobability": (MODEL, {"results": [RESULT, {**RESULT, "top_k": [{**RESULT["top_k"][0],
                                                                         "probability": 7}]}]},
                       "results.1.top_k.0.probability: Input should be less than or equal to 1"),
    "list": ([MODEL], None, "answered /v1/model with application/json, not a keyless reply"),
}  # fmt: skip


class FakeService(BaseHTTPRequestHandler):
    """``/<case>/v1/...`` answers as CASES says; ``/drip/...`` sends its body a byte every
    0.1 s, ``/driphead/...`` even a header, until ``stop`` is set."""

    stop = threading.Event()

    def log_message(self, *args):
        pass

    def do_GET(self):
        self._answer(0)

    def do_POST(self):
        self.rfile.read(int(self.headers["content-length"]))
        self._answer(1)

    def _answer(self, which):
        case = self.path.split("/")[1]
        if case.startswith("drip"):
            return self._drip(case)
        answer = CASES[case][which] if case in CASES else (MODEL, {"results": [RESULT] * 2})[which]
        body = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _drip(self, case):
        if case == "drip":  # the status line and headers at once, then the body never whole
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
        else:
            self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")  # a header that never ends
        while not self.stop.wait(0.1):
            try:
                self.wfile.write(b"a")
            except OSError:
                break


@pytest.fixture(scope="module")
def fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeService)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    FakeService.stop.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    FakeService.stop.set()
    server.shutdown()
    server.server_close()


IMAGES = np.zeros((2, 4, 4, 3), np.uint8)


def test_the_fake_service_is_a_good_one(fake):
    with Client(f"{fake}/good") as client:
        assert tuple(client.info["input_size"]) == (4, 4) and client.info["name"] == "fake"
        assert client.classify(IMAGES) == [{**RESULT, "sent": "encrypted"}] * 2


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_malformed_answer_is_one_service_error_naming_the_endpoint_and_field(fake, case):
    with Client(f"{fake}/{case}") as client, pytest.raises(ServiceError) as error:
        client.classify(IMAGES, encrypt=False)
    message = str(error.value)
    assert message.startswith(f"{fake}/{case}: ") and "\n" not in message
    assert CASES[case][2] in message, message


@pytest.mark.slow  # seconds: a child process or a real wait
@pytest.mark.parametrize("where", ["drip", "driphead"])
def test_a_server_that_drips_its_answer_ends_the_request_at_its_deadline(fake, where):
    started = time.monotonic()
    with Client(f"{fake}/{where}", timeout=1.5) as client, pytest.raises(ServiceError) as error:
        client.info  # noqa: B018
    assert time.monotonic() - started < 3
    assert str(error.value) == f"{fake}/{where}: no whole answer to GET /v1/model within 1.5 s"


def test_the_classify_command_prints_one_line_for_a_malformed_answer(fake, tmp_path):
    for i in range(2):
        Image.fromarray(IMAGES[i]).save(tmp_path / f"{i}.png")
    files = [str(tmp_path / f"{i}.png") for i in range(2)]
    result = CliRunner().invoke(main, ["classify", *files, "--server", f"{fake}/fewresults"])
    assert result.exit_code == 6 and "Traceback" not in result.output
    assert result.stderr == (f"keyless: error: {fake}/fewresults: not a keyless service (POST "
                             "/v1/classify answer results: 1 results for 2 images)\n")  # fmt: skip
