import dataclasses
import io
import json
import os
import re
import sys

import httpx
import numpy as np
import pytest
import torch
from PIL import Image

import keyless.serve._model
from keyless.cipher import create_cipher
from keyless.errors import ConfigError, InputError
from keyless.invariant import sorted_fold
from keyless.serve import Client, Limits, ServedModel, create_app
from keyless.serve._client import ServiceError, classify_files
from tests.serve.conftest import TEST_IMAGES, TestClient, expected_labels, png, tiny_splits

# every test needs the ``tiny_run`` fixture, a model trained for ~20 s on one CPU thread
pytestmark = pytest.mark.slow

RAW = "application/octet-stream"


def post_raw(client, images, shape=None, **params):
    shape = shape or ",".join(map(str, images.shape))
    headers = {"Content-Type": RAW, "X-Image-Shape": shape}
    return client.post("/v1/classify", content=images.tobytes(), headers=headers, params=params)


def post_files(client, files, **params):
    parts = [("images", (name, data, "image/png")) for name, data in files]
    return client.post("/v1/classify", files=parts, params=params)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_model_describes_what_it_was_trained_for(client, tiny_run):
    """Every answer is a constant of how the ``tiny_run`` fixture was trained and served."""
    info = client.get("/v1/model").json()
    assert info["name"] == "tiny" and info["model"] == "fastnet"
    assert info["classes"] == ["a", "b", "c", "d"] and info["input_size"] == [32, 32]
    assert info["input"] == "uint8 RGB, (H, W, 3)"
    assert info["cipher"] == {
        "name": "pe",
        "shuffle": True,
        "np_mode": "coin",
        "np_per": "component",
    }
    assert (info["keys"], info["stem"], info["adapt"]) == ("independent", "invariant", "none")
    assert info["limits"] == {"max_request_bytes": 12288, "max_images": 3, "max_pixels": 2304}
    assert info["batching"] == {"max_batch": 128, "max_wait_ms": 2.0}
    # one forward pass: the record's figures without test-time augmentation, and only those
    assert info["tta"] is False
    accuracy = info["accuracy"]
    recorded = json.loads((tiny_run / "record.json").read_text())["test"]
    # independent keys: no common-key test set; the record also has the TTA figures
    assert set(recorded) == {"plain", "plain_tta", "fresh_key", "fresh_key_tta"}
    assert accuracy == {"plain": recorded["plain"], "fresh_key": recorded["fresh_key"]}
    for value in recorded.values():
        assert 0 <= value <= 1 and (value * TEST_IMAGES).is_integer(), recorded
    # the invariant stem predicts the same for a plain image and any encryption of it
    assert accuracy["plain"] == accuracy["fresh_key"]
    assert info["accepts"] == {"fresh_key_ciphertexts": accuracy["fresh_key"],
                               "plain_images": accuracy["plain"]}  # fmt: skip


@pytest.mark.parametrize("tta", [False, True], ids=["one-pass", "tta"])
def test_the_advertised_accuracy_is_the_services_own_on_the_test_set(tiny_run, tta):
    """What ``GET /v1/model`` advertises, with or without ``--tta``, is what the service answers
    on the run's test set: plain images and fresh-key ciphertexts sent by the client."""
    test = tiny_splits()["test"]
    with TestClient(create_app(tiny_run, device="cpu", tta=tta)) as http:
        service = Client("http://testserver", http=http)
        assert service.info["tta"] is tta
        suffix = "_tta" if tta else ""
        assert set(service.info["accuracy"]) == {"plain" + suffix, "fresh_key" + suffix}
        for encrypt, accepts, column in ((False, "plain_images", "plain"),
                                         (True, "fresh_key_ciphertexts", "fresh_key")):  # fmt: skip
            labels = [r["label"] for r in service.classify(test.images, encrypt=encrypt)]
            measured = (torch.tensor(labels) == test.labels).float().mean().item()
            assert measured == service.info["accepts"][accepts]
            assert measured == service.info["accuracy"][column + suffix]


def test_tta_is_refused_for_a_cipher_that_does_not_commute_with_moves(tiny_run, monkeypatch):
    load = keyless.serve._model.load_run

    def as_if_etc(*args):
        model, checkpoint = load(*args)
        checkpoint.config = checkpoint.config.replace(cipher=create_cipher("etc"))
        return model, checkpoint

    monkeypatch.setattr(keyless.serve._model, "load_run", as_if_etc)
    assert ServedModel.load(tiny_run, device="cpu").describe()["cipher"]["name"] == "etc"
    with pytest.raises(ConfigError, match=r"^--tta: the model's cipher etc does not commute"):
        ServedModel.load(tiny_run, device="cpu", tta=True)


def test_raw_array_gets_the_models_labels_and_top_k(client, tiny_run, images):
    response = post_raw(client, images[:3], top_k=4)
    assert response.status_code == 200
    body = response.json()
    assert body["model"] == "tiny"
    labels = [r["label"] for r in body["results"]]
    assert labels == expected_labels(tiny_run, images[:3])
    for result in body["results"]:
        top = result["top_k"]
        assert len(top) == 4 and top[0]["label"] == result["label"]
        assert result["class_name"] == "abcd"[result["label"]]
        probabilities = [t["probability"] for t in top]
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) == pytest.approx(1, abs=1e-5)  # all 4 classes


def test_single_image_shape_and_default_top_k(client, images):
    response = post_raw(client, images[0], shape="32,32,3")
    assert response.status_code == 200
    [result] = response.json()["results"]
    assert len(result["top_k"]) == 3


def test_png_files_get_the_same_labels_as_raw_arrays(client, images):
    files = [(f"{i}.png", png(image)) for i, image in enumerate(images[:3])]
    from_png, from_raw = post_files(client, files), post_raw(client, images[:3])
    assert from_png.status_code == from_raw.status_code == 200
    assert len(from_png.json()["results"]) == 3
    assert from_png.json()["results"] == from_raw.json()["results"]


def test_greyscale_png_is_converted_to_rgb(client, images):
    grey = images[0].mean(2).astype(np.uint8)
    response = post_files(client, [("grey.png", png(grey))])
    expected = post_raw(client, np.repeat(grey[..., None], 3, axis=2))
    assert response.status_code == expected.status_code == 200
    assert len(response.json()["results"]) == 1 and response.json() == expected.json()


def test_client_encrypts_with_fresh_keys_and_gets_the_plain_label(
    client, tiny_run, images, monkeypatch
):
    """The invariant stem gives a plain image and any encryption of it the same prediction, so
    what the client sends is checked byte for byte: fresh-key ciphertexts, or the plain images."""
    sent, request = [], client.request

    def record(method, path, **kwargs):
        if "content" in kwargs:
            sent.append(kwargs["content"])
        return request(method, path, **kwargs)

    monkeypatch.setattr(client, "request", record)
    service = Client("http://testserver", http=client)
    encrypted = service.classify(images, top_k=4)  # 8 images: sent in requests of 3
    first, sent[:] = b"".join(sent), []
    service.classify(images, top_k=4)
    again, sent[:] = b"".join(sent), []
    plain = service.classify(images, top_k=4, encrypt=False)
    assert b"".join(sent) == images.tobytes()
    ciphertexts = torch.frombuffer(bytearray(first), dtype=torch.uint8).view(images.shape)
    assert not torch.equal(ciphertexts, torch.from_numpy(images)) and first != again
    assert torch.equal(sorted_fold(ciphertexts), sorted_fold(torch.from_numpy(images)))
    assert [r["label"] for r in encrypted] == [r["label"] for r in plain]
    assert [r["label"] for r in plain] == expected_labels(tiny_run, images)
    for e, p in zip(encrypted, plain, strict=True):
        assert [t["label"] for t in e["top_k"]] == [t["label"] for t in p["top_k"]]
        assert [t["probability"] for t in e["top_k"]] == pytest.approx(
            [t["probability"] for t in p["top_k"]], abs=1e-6
        )


@pytest.mark.parametrize("keys", ["plain", "common"])
def test_client_refuses_to_encrypt_for_a_model_that_takes_no_fresh_key_ciphertexts(
    client, tiny_run, images, keys
):
    served = ServedModel.load(tiny_run, device="cpu")
    served = dataclasses.replace(served, config=served.config.replace(keys=keys))
    assert served.accepts() == {"plain_images": served.accuracy["plain"]}
    service = Client("http://testserver", http=client)
    service._info = {**service.info, "keys": keys, "accepts": served.accepts()}
    words = f"({keys} keys in training) does not classify fresh-key ciphertexts"
    with pytest.raises(InputError, match=re.escape(words)):
        service.classify(images)


def test_client_refuses_a_service_that_does_not_describe_a_keyless_model(client, images):
    def answer(request):
        return httpx.Response(200, json={"name": "something else"})

    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://x") as http:
        service = Client("http://x", http=http)
        with pytest.raises(ServiceError, match=r"not a keyless service .*has no input_size, "):
            service.classify(images)
    service = Client("http://testserver", http=client)
    for served, words in (
        ({"name": "pe", "rounds": 3}, "not the settings of a keyless cipher"),
        ({"name": "pe9"}, "unknown cipher 'pe9'"),
        ("pe", "expected the"),
    ):
        service._info = {**service.info, "cipher": served}
        with pytest.raises(ServiceError, match=rf"^http://testserver: the served cipher: {words}"):
            service.classify(images)


def test_a_service_failure_still_reports_the_files_refused_before_it(client, images, tmp_path):
    info = Client("http://testserver", http=client).info

    def answer(request):
        if request.method == "GET":
            return httpx.Response(200, json=info)
        return httpx.Response(503, json={"detail": "busy"})

    Image.fromarray(images[0]).save(tmp_path / "good.png")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with httpx.Client(transport=httpx.MockTransport(answer), base_url="http://x") as http:
        rows, errors = classify_files(Client("http://x", http=http), [tmp_path])
    assert rows == [] and len(errors) == 2
    assert "bad.png" in str(errors[0]) and str(errors[1]) == "http://x: 503 busy"


def _bad_pngs(images):
    rng = np.random.default_rng(0)
    good = png(images[0])
    return {
        "text.png": (b"not an image at all", 415, "not a PNG file"),
        "photo.jpg": (_jpeg(images[0]), 415, "not a PNG file"),
        "truncated.png": (good[: len(good) // 2], 422, "truncated"),
        "rgba.png": (png(rng.integers(0, 256, (32, 32, 4), np.uint8)), 422, "alpha channel"),
        "deep.png": (png(rng.integers(0, 65535, (32, 32), np.uint16)), 422, "more than 8 bits"),
        "big.png": (png(np.zeros((64, 64, 3), np.uint8)), 413, "4096 pixels exceeds the limit"),
        "wide.png": (
            png(np.zeros((32, 40, 3), np.uint8)),
            422,
            "40x32 pixels (width x height), the model takes 32x32",
        ),
    }


def _jpeg(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG")
    return buffer.getvalue()


def test_each_bad_png_is_refused_with_its_reason(client, images):
    for name, (data, status, words) in _bad_pngs(images).items():
        response = post_files(client, [("ok.png", png(images[0])), (name, data)])
        assert response.status_code == status, (name, response.json())
        assert response.json()["detail"].startswith(f"image 2 ({name}): "), response.json()
        assert words in response.json()["detail"], (name, response.json())


@pytest.mark.parametrize(
    ("shape", "size", "status", "words"),
    [
        (None, 3072, 400, "needs an X-Image-Shape header"),
        ("32,32", 3072, 400, "is not N,H,W,3 or H,W,3"),
        ("1,32,x,3", 3072, 400, "is not N,H,W,3"),
        ("0,32,32,3", 0, 400, "positive integers"),
        ("1,32,32,3", 3000, 400, "the body holds 3000 bytes; shape 1,32,32,3 needs 3072"),
        ("4,32,32,3", 4 * 3072, 413, "4 images in one request; the limit is 3"),
        ("1,64,64,3", 64 * 64 * 3, 413, "64x64 = 4096 pixels exceeds the limit of 2304"),
        ("1,16,32,3", 16 * 32 * 3, 422, "32x16 pixels (width x height), the model takes 32x32"),
        ("1,32,32,4", 32 * 32 * 4, 422, "4 values per pixel; the model takes RGB"),
    ],
)
def test_bad_raw_arrays_are_refused(client, shape, size, status, words):
    headers = {"Content-Type": RAW} | ({"X-Image-Shape": shape} if shape else {})
    response = client.post("/v1/classify", content=bytes(size), headers=headers)
    assert response.status_code == status and words in response.json()["detail"]


def test_request_size_limit_on_declared_and_streamed_bodies(client):
    body = bytes(5 * 3072)
    response = client.post(
        "/v1/classify", content=body, headers={"Content-Type": RAW, "X-Image-Shape": "5,32,32,3"}
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "request body of 15360 bytes exceeds the limit of 12288"
    chunked = client.post(  # no Content-Length: counted while reading
        "/v1/classify",
        content=iter([body[:8000], body[8000:]]),
        headers={"Content-Type": RAW, "X-Image-Shape": "5,32,32,3"},
    )
    assert chunked.status_code == 413
    assert chunked.json()["detail"] == "request body exceeds the limit of 12288 bytes"


def test_too_many_png_files(client, images):
    small = png(np.zeros((8, 8, 3), np.uint8))  # 4 files under the byte limit
    response = post_files(client, [(f"{i}.png", small) for i in range(4)])
    assert response.status_code == 413
    assert response.json()["detail"].startswith("more than 3 images in one request")


@pytest.mark.parametrize(
    ("content_type", "body", "status", "words"),
    [
        ("text/plain", b"hello", 415, "content type 'text/plain' is not supported"),
        ("application/json", b'{"images": []}', 415, "'application/json' is not supported"),
        (None, b"", 415, "content type '(none)' is not supported"),
        ("multipart/form-data", b"--x--\r\n", 400, "without a boundary"),
        ("multipart/form-data; boundary=x", b"--x--\r\n", 400, "no images"),
        ("multipart/form-data; boundary=x", b"garbage", 400, "malformed multipart"),
        ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; "
         b'name="f"; filename="a.png"\r\n\r\nabc', 400, "truncated multipart"),
        ("multipart/form-data; boundary=x", b'--x\r\nContent-Disposition: form-data; name="k"'
         b"\r\n\r\n3\r\n--x--\r\n", 400, "form field 'k' is not a file"),
    ],
)  # fmt: skip
def test_wrong_content_is_refused(client, content_type, body, status, words):
    headers = {"Content-Type": content_type} if content_type else {}
    response = client.post("/v1/classify", content=body, headers=headers)
    assert response.status_code == status and words in response.json()["detail"]


def test_the_service_keeps_serving_after_errors(client, images):
    for name, (data, _, _) in _bad_pngs(images).items():
        post_files(client, [(name, data)])
    client.post("/v1/classify", content=b"x" * 100_000, headers={"Content-Type": RAW})
    response = post_raw(client, images[:2])
    assert response.status_code == 200 and len(response.json()["results"]) == 2
    assert client.get("/healthz").status_code == 200


def test_unknown_path_and_method(client):
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/classify").status_code == 405


def test_uploads_are_parsed_in_memory_without_writing_a_file(tiny_run, images):
    """A part of 1.5 MiB: starlette's and python-multipart's form parsers would spool it to a
    temporary file (past 1 MiB); an audit hook sees every file any thread opens for writing."""
    opened, watching = [], [True]

    def hook(event, args):
        if watching and event == "open" and (args[2] or 0) & (os.O_WRONLY | os.O_RDWR):
            opened.append(args[0])

    sys.addaudithook(hook)  # cannot be removed: ``watching`` turns it off
    big = png(images[0]) + bytes(3 * 2**19)  # Pillow stops reading at the PNG's end
    with TestClient(create_app(tiny_run, device="cpu")) as http:  # 4 MiB requests
        try:
            response = post_files(http, [("big.png", big), ("small.png", png(images[1]))])
        finally:
            watching.clear()
    assert opened == []
    assert response.status_code == 200, response.text
    labels = [r["label"] for r in response.json()["results"]]
    assert labels == expected_labels(tiny_run, images[:2])


def test_top_k_above_the_class_count_gives_every_class(client, images):
    response = post_raw(client, images[:2], top_k=9)  # the model has 4 classes
    assert response.status_code == 200
    assert [len(r["top_k"]) for r in response.json()["results"]] == [4, 4]
    response = post_raw(client, images[:1], top_k=0)
    assert response.status_code == 422
    assert response.json()["detail"].startswith("top_k: ") and "or equal to 1" in response.text


def test_client_splits_requests_by_bytes_as_well_as_images(tiny_run, images, monkeypatch):
    limits = Limits(max_request_bytes=2 * 32 * 32 * 3, max_images=8, max_pixels=48 * 48)
    with TestClient(create_app(tiny_run, limits=limits, device="cpu")) as http:
        sizes, request = [], http.request

        def record(method, path, **kwargs):
            if "content" in kwargs:
                sizes.append(len(kwargs["content"]))
            return request(method, path, **kwargs)

        monkeypatch.setattr(http, "request", record)
        results = Client("http://testserver", http=http).classify(images, encrypt=False)
    assert sizes == [2 * 32 * 32 * 3] * 4 and len(results) == 8
    assert [r["label"] for r in results] == expected_labels(tiny_run, images)


def test_an_input_size_over_the_limits_is_refused_before_serving(tiny_run):
    with pytest.raises(ConfigError, match=r"^a 300x300 image is over --max-pixels 65536 or "):
        create_app(tiny_run, input_size=(300, 300), device="cpu")
    small = Limits(max_request_bytes=32 * 32 * 3 - 1)
    with pytest.raises(ConfigError, match="--max-request-bytes 3071: every request would be"):
        create_app(tiny_run, limits=small, device="cpu")
