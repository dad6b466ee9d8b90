import io
import os
import socket
import subprocess
import sys
import time
import warnings
from contextlib import contextmanager

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

from keyless.serve import Limits, ServedModel, create_app
from keyless.train import recipe, train
from tests.synthetic import quadrant_images, quadrant_splits
from tools.page_screenshot import headless_chromium, missing

with warnings.catch_warnings():  # starlette asks for httpx2; the service's client uses httpx
    warnings.filterwarnings("ignore", "Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

# 3 images of 32x32 fit, 4 images are over the count, 5 over the bytes; 64x64 is over the pixels
LIMITS = Limits(max_request_bytes=4 * 32 * 32 * 3, max_images=3, max_pixels=48 * 48)
TEST_IMAGES = 64  # in the tiny run's test split


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory):
    """A tiny fastnet trained in seconds on 32x32 synthetic images, with the invariant stem."""
    out = tmp_path_factory.mktemp("serve") / "tiny"
    config = recipe(
        "fast",
        keys="independent",
        stem="invariant",
        adapt="none",
        epochs=2,
        batch_size=64,
        seed=0,
        precision="fp32",
        model_kwargs={"widths": [8, 16, 16]},
    )
    train(config, tiny_splits(), out, progress=False)
    return out


def tiny_splits():
    """The ``tiny_run``'s data: 256 training and 64 test images of 32x32."""
    return quadrant_splits(n_train=256, n_test=TEST_IMAGES, size=32)


@pytest.fixture(scope="session")
def images():
    """(8, 32, 32, 3) uint8 test images."""
    return quadrant_images(8, size=32, seed=2).images.numpy()


@pytest.fixture(scope="module")
def client(tiny_run):
    """The service in-process, with small limits."""
    with TestClient(create_app(tiny_run, limits=LIMITS, device="cpu")) as client:
        yield client


def expected_labels(run, images: np.ndarray) -> list[int]:
    """The labels the run's model gives ``images`` when called directly."""
    model = ServedModel.load(run, device="cpu")
    return model.probabilities(torch.from_numpy(images)).argmax(1).tolist()


def png(image: np.ndarray, mode: str | None = None) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image, mode).save(buffer, format="PNG")
    return buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def serving(run, log, *options, module="keyless.cli", env=None):
    """``keyless serve RUN`` in a subprocess on 127.0.0.1 and a free port, logging to ``log``;
    yields its URL once healthy, always terminated. ``module`` runs the command line instead of
    keyless's own (a test hook around it), with ``env`` added to the environment."""
    port = free_port()
    command = [sys.executable, "-m", module, "serve", str(run), "--host", "127.0.0.1",
               "--port", str(port), "--device", "cpu", *options]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                pytest.fail(f"server exited with {process.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not healthy after 60 s:\n{log.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's chromium and chromium-driver) driven by Selenium, one for the
    whole run. Skipped, with what is missing, where it is not installed; under CI, which installs
    it (.ci/run), a missing browser fails instead of hiding the browser tests."""
    absent = missing()
    if absent:
        reason = (f"no headless browser: {', '.join(absent)} not installed (apt-get install "
                  "chromium chromium-driver, and the dev extras)")  # fmt: skip
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    driver = headless_chromium()
    yield driver
    driver.quit()
