"""The owner's side of the service: encrypt locally with fresh keys, send, read labels back."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch
from pydantic import ValidationError

from keyless.cipher import cipher_from_settings
from keyless.data import fit_image, list_images, read_image
from keyless.errors import ConfigError, ExitStatus, InputError, KeylessError
from keyless.serve._answers import Answer, ClassifyAnswer, ModelAnswer, describe
from keyless.serve._request import SHAPE_HEADER


class ServiceError(KeylessError):
    """The service could not be reached, or refused a request (its message is kept)."""

    exit_code = ExitStatus.SERVICE


class Client:
    """A client of a keyless inference service.

    Images are encrypted here, each under a fresh key from the OS CSPRNG that is thrown away, with
    the cipher options the served model was trained for; the service sees ciphertexts only.

    Args:
        url: the service, e.g. ``http://127.0.0.1:8000``.
        timeout: seconds each HTTP request may take in all, from connecting to the last byte of
            the answer (a server that drips its answer does not hold the client longer).
        http: an httpx client to use instead (e.g. FastAPI's ``TestClient``); it is not closed.
    """

    def __init__(self, url: str, timeout: float = 15.0, http: httpx.Client | None = None) -> None:
        self.url, self.timeout = url.rstrip("/"), timeout
        self._owned = http is None
        try:
            self._http = http or httpx.Client(base_url=self.url, timeout=timeout)
        except (httpx.InvalidURL, ValueError) as exc:
            raise ServiceError(f"{url}: not a usable service URL ({exc})") from None
        self._info: dict[str, Any] | None = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owned:
            self._http.close()

    @property
    def info(self) -> dict[str, Any]:
        """The served model's description (``GET /v1/model``), fetched once."""
        if self._info is None:
            self._info = self._send("GET", "/v1/model", ModelAnswer)
        return self._info

    def classify(
        self, images: np.ndarray | torch.Tensor, top_k: int = 3, encrypt: bool = True
    ) -> list[dict[str, Any]]:
        """Per image: ``label``, ``class_name``, ``top_k`` (label, class name, probability) and
        ``sent`` (``"encrypted"`` or ``"plain"``: what left this machine).

        Args:
            images: (N, H, W, 3) or (H, W, 3) uint8, numpy or torch, of the model's input size.
            top_k: most probable classes returned per image.
            encrypt: encrypt each image with a fresh CSPRNG key first (``False`` sends plain).
        """
        batch = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.asarray(images))
        batch = batch[None] if batch.ndim == 3 else batch
        if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
            raise InputError(
                f"expected (N, H, W, 3) uint8 images, got {tuple(batch.shape)} {batch.dtype}"
            )
        if encrypt:
            if "fresh_key_ciphertexts" not in self.info["accepts"]:
                raise InputError(
                    f"{self.url}: the served model ({self.info['keys']} keys in training) does "
                    "not classify fresh-key ciphertexts; send plain images (--plain)"
                )
            try:
                cipher = cipher_from_settings(self.info["cipher"], "the served cipher")
            except ConfigError as exc:
                raise ServiceError(f"{self.url}: {exc}") from None
            batch, _ = cipher.encrypt_fresh(batch.cpu())  # CSPRNG keys, dropped here
        limits = self.info["limits"]  # requests of as many images as both limits allow
        image_bytes = batch[0].numel() if len(batch) else 1
        per_request = max(1, min(limits["max_images"], limits["max_request_bytes"] // image_bytes))
        results = []
        for chunk in batch.split(per_request):
            answer = self._send(
                "POST",
                "/v1/classify",
                ClassifyAnswer,
                {"images": len(chunk)},
                params={"top_k": top_k},
                content=chunk.contiguous().numpy().tobytes(),
                headers={
                    "Content-Type": "application/octet-stream",
                    SHAPE_HEADER: ",".join(map(str, chunk.shape)),
                },
            )
            results += answer["results"]
        sent = "encrypted" if encrypt else "plain"
        return [{**result, "sent": sent} for result in results]

    def _send(
        self,
        method: str,
        path: str,
        schema: type[Answer],
        context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """The answer to ``method path``, whole within ``timeout`` and valid as ``schema``."""
        done: Future[httpx.Response] = Future()

        def request() -> None:  # in a thread: httpx bounds each read, not the whole answer
            try:
                done.set_result(self._http.request(method, path, **kwargs))
            except Exception as exc:
                done.set_exception(exc)

        threading.Thread(target=request, name="keyless-request", daemon=True).start()
        try:
            response = done.result(self.timeout)
        except TimeoutError:
            raise ServiceError(f"{self.url}: no whole answer to {method} {path} within "
                               f"{self.timeout:g} s") from None  # fmt: skip
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise ServiceError(f"{self.url}: cannot reach the service ({exc})") from None
        if response.is_error:
            try:
                detail = response.json()["detail"]
            except (ValueError, KeyError, TypeError):
                detail = response.text[:200]
            raise ServiceError(f"{self.url}: {response.status_code} {detail}")
        try:
            return schema.model_validate_json(response.content, context=context).model_dump()
        except ValidationError as exc:
            if any(not e["loc"] for e in exc.errors()):  # not JSON, or not a JSON object
                kind = response.headers.get("content-type", "no content type")
                raise ServiceError(f"{self.url}: answered {path} with {kind}, not a keyless "
                                   "reply") from None  # fmt: skip
            raise ServiceError(f"{self.url}: not a keyless service ({method} {path} answer "
                               f"{describe(exc)})") from None  # fmt: skip


def classify_files(
    client: Client,
    inputs: Sequence[Path | str],
    top_k: int = 3,
    encrypt: bool = True,
    size: tuple[int, int] | None = None,
) -> tuple[list[tuple[str, dict[str, Any]]], list[KeylessError]]:
    """Classify image files and folders (recursively) through ``client``.

    Each file is read with the input policy of :func:`keyless.data.read_image`, fitted to
    ``size`` (H, W) when one is given (scaled and centre-cropped by
    :func:`keyless.data.fit_image`, as ``keyless encrypt --size`` does) and checked against the
    model's input size; a bad file is reported and the others are still classified.

    Returns:
        ((file, result) per classified image, one error per refused file).
    """
    paths = [p for i in map(Path, inputs) for p in (list_images(i) if i.is_dir() else [i])]
    if not paths:
        raise InputError(f"{', '.join(map(str, inputs))}: no image files to classify")
    height, width = client.info["input_size"]
    named, errors = [], []
    for path in paths:
        try:
            image = read_image(path)
        except InputError as exc:
            errors.append(exc)
            continue
        image = fit_image(image, size) if size else image
        if image.shape[:2] != (height, width):
            errors.append(
                InputError(
                    f"{path}: {image.shape[1]}x{image.shape[0]} pixels, the model takes "
                    f"{width}x{height}; resize it first, or fit it with --size {height}x{width}"
                )
            )
            continue
        named.append((str(path), image))
    if not named:
        return [], errors
    try:
        results = client.classify(np.stack([image for _, image in named]), top_k, encrypt)
    except KeylessError as exc:  # the service failed: still report the refused files
        return [], [*errors, exc]
    return [(name, r) for (name, _), r in zip(named, results, strict=True)], errors


def results_table(rows: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A plain-text table: image, label, class, what was sent (encrypted or plain) and the
    top-k classes with probabilities."""
    lines = [("image", "label", "class", "sent", "top-k")] + [
        (
            name,
            str(r["label"]),
            r["class_name"],
            r["sent"],
            ", ".join(f"{t['class_name']} {t['probability']:.3f}" for t in r["top_k"]),
        )
        for name, r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(4)]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line[:4], widths, strict=True)) + "  " + line[4]
        for line in lines
    )
