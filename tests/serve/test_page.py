"""The web page ``keyless serve`` answers ``GET /`` with, in headless Chromium against a real
server on 127.0.0.1: only ciphertexts travel, the labels shown are ``keyless classify``'s, and
every refusal is one line on the photo's card while the service goes on."""

import shutil
from importlib.resources import files
from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from keyless.cipher import cipher_from_settings
from keyless.cli import main
from keyless.data import fit_image, read_image
from keyless.runs import Run
from keyless.serve._page import CONTENT_SECURITY_POLICY
from tests.serve.conftest import expected_labels, serving
from tests.synthetic import quadrant_images
from tools.page_screenshot import classify_in_page, open_page

# every test needs the ``tiny_run`` fixture, a model trained for ~20 s on one CPU thread
pytestmark = pytest.mark.slow

PHOTOS = 10


@pytest.fixture(scope="module")
def page_server(tiny_run, tmp_path_factory):
    """``keyless serve`` with a hook that saves every image it receives; (URL, that folder)."""
    folder = tmp_path_factory.mktemp("page")
    received = folder / "received"
    received.mkdir()
    env = {"KEYLESS_TEST_RECEIVED": str(received)}
    with serving(tiny_run, folder / "server.log", module="tests.serve.recording_server",
                 env=env) as url:  # fmt: skip
        yield url, received


@pytest.fixture(scope="module")
def photos(tmp_path_factory):
    """(10, 32, 32, 3) uint8 test images of the tiny run's kind, and their PNG files."""
    images = quadrant_images(PHOTOS, size=32, seed=3).images.numpy()
    folder = tmp_path_factory.mktemp("photos")
    paths = [folder / f"{i}.png" for i in range(PHOTOS)]
    for image, path in zip(images, paths, strict=True):
        Image.fromarray(image).save(path)
    return images, paths


def take_received(folder):
    """The images the service received since the last call, in arrival order (then forgotten)."""
    batches = [np.load(path) for path in sorted(folder.iterdir())]
    for path in folder.iterdir():
        path.unlink()
    return batches


def cli_labels(paths, url, *flags):
    result = CliRunner().invoke(main, ["classify", *map(str, paths), "--server", url, *flags])
    assert result.exit_code == 0, result.output
    return [int(line.split()[1]) for line in result.stdout.splitlines()[1:]]


def test_the_page_sends_ciphertexts_and_shows_the_labels_of_keyless_classify(
    browser, page_server, photos, tiny_run
):
    url, received = page_server
    images, paths = photos
    take_received(received)
    browser.get_log("browser")  # start from an empty console
    assert "takes 32x32 photos" in open_page(browser, url)
    cards = classify_in_page(browser, paths)
    assert [(c["name"], c["status"], c["sent"]) for c in cards] == [
        (path.name, "done", "encrypted") for path in paths
    ]
    batches = take_received(received)
    assert [batch.shape for batch in batches] == [(1, 32, 32, 3)] * PHOTOS  # one per photo
    ciphertexts, plain = torch.from_numpy(np.concatenate(batches)), torch.from_numpy(images)
    assert bool((ciphertexts != plain).flatten(1).any(1).all())  # no photo arrived plain
    cipher = cipher_from_settings(httpx.get(f"{url}/v1/model").json()["cipher"])
    assert torch.equal(cipher.key_invariant(ciphertexts), cipher.key_invariant(plain))
    labels = [int(c["label"]) for c in cards]
    assert labels == cli_labels(paths, url) == expected_labels(tiny_run, images)
    assert len(set(labels)) > 1
    # the Content-Security-Policy let everything the page does through: nothing in the console
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_the_switch_sends_plain_images_and_gets_the_same_labels(browser, page_server, photos):
    url, received = page_server
    images, paths = photos
    take_received(received)
    open_page(browser, url)
    cards = classify_in_page(browser, paths, plain=True)
    assert [(c["status"], c["sent"]) for c in cards] == [("done", "plain")] * PHOTOS
    assert np.concatenate(take_received(received)).tobytes() == images.tobytes()
    assert [int(c["label"]) for c in cards] == cli_labels(paths, url, "--plain")


def test_the_page_fits_photos_as_fit_image_does(browser, page_server, tmp_path):
    """The bundled 96x96 sample photos, a non-square one and one smaller than the model, fitted
    in the page (its own Lanczos-3 in floating point) and by keyless.data.fit_image (Pillow's,
    in fixed point): at most one grey level apart, and that rarely."""
    url, _ = page_server
    paths = sorted(Path(str(files("keyless") / "samples")).glob("*.png"))
    rng = np.random.default_rng(0)
    for name, (h, w) in (("wide.png", (45, 77)), ("small.png", (13, 20))):
        smooth = np.cumsum(rng.integers(0, 9, (h, w, 3)), axis=1) % 256  # ramps, and edges
        Image.fromarray(smooth.astype(np.uint8)).save(tmp_path / name)
        paths.append(tmp_path / name)
    open_page(browser, url)
    cards = classify_in_page(browser, paths)
    assert [c["status"] for c in cards] == ["done"] * len(paths)
    script = """return Array.from(document.querySelectorAll('.card')).slice(-arguments[0])
      .map((card) => Array.from(card.querySelector('canvas').getContext('2d')
      .getImageData(0, 0, 32, 32).data))"""
    shown = np.array(browser.execute_script(script, len(paths)), np.uint8)
    shown = shown.reshape(len(paths), 32, 32, 4)[..., :3].astype(int)
    fitted = np.stack([fit_image(read_image(p), (32, 32)) for p in paths]).astype(int)
    difference = np.abs(shown - fitted)
    assert difference.max() <= 1 and difference.mean() < 0.01, difference.mean()


def test_a_non_image_and_an_oversized_image_get_one_line_and_the_service_goes_on(
    browser, page_server, photos, tmp_path
):
    url, received = page_server
    _, paths = photos
    take_received(received)
    (tmp_path / "notes.png").write_text("not an image")
    Image.new("1", (8000, 6400)).save(tmp_path / "huge.png")  # 51.2 M pixels, a small file
    open_page(browser, url)
    cards = classify_in_page(browser, [tmp_path / "notes.png", tmp_path / "huge.png", paths[0]])
    assert [c["status"] for c in cards] == ["error", "error", "done"]
    assert [c["message"] for c in cards] == [
        "not an image this browser can read",
        "8000x6400 = 51200000 pixels exceeds the page's limit of 50000000",
        "",
    ]
    assert len(take_received(received)) == 1  # the refused files sent nothing
    assert httpx.get(f"{url}/healthz").json() == {"status": "ok"}


def test_a_model_that_takes_no_fresh_key_ciphertexts_gets_no_encrypted_photo(
    browser, tiny_run, photos, tmp_path
):
    """A model trained on plain images: the page says so, refuses to encrypt for it (each photo
    one line, nothing sent), and classifies the photos sent plain with the switch."""
    run = Run(shutil.copytree(tiny_run, tmp_path / "plain-run"))
    checkpoint = run.load()
    checkpoint.config = checkpoint.config.replace(keys="plain")
    run.save(checkpoint)
    _, paths = photos
    with serving(run.path, tmp_path / "server.log") as url:
        assert "It classifies plain images only" in open_page(browser, url)
        refused = classify_in_page(browser, paths[:2])
        assert (tmp_path / "server.log").read_text().count("POST /v1/classify") == 0
        sent = classify_in_page(browser, paths[:2], plain=True)
    words = ("the served model (plain keys in training) does not classify fresh-key ciphertexts; "
             'tick "send plain" to send the photo unencrypted')  # fmt: skip
    assert [(c["status"], c["message"]) for c in refused] == [("error", words)] * 2
    assert [(c["status"], c["sent"]) for c in sent] == [("done", "plain")] * 2


def test_the_page_comes_from_this_host_only_under_a_strict_policy(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    assert page.headers["x-content-type-options"] == "nosniff"
    for name in ("cipher.js", "app.js", "style.css"):
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and f'"static/{name}"' in page.text
        assert asset.content == (files("keyless.serve") / "static" / name).read_bytes()
        assert "://" not in asset.text  # no other host named anywhere
    assert "://" not in page.text
    missing = client.get("/static/other.js")
    assert missing.status_code == 404 and missing.json() == {"detail": "no page file 'other.js'"}
