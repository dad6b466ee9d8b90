"""The service and its client: ``serve`` and ``classify``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import click

from keyless.cli._options import Size, device_option, run_argument
from keyless.errors import ExitStatus
from keyless.serve._address import DEFAULT_SERVER, SERVER_ENV
from keyless.serve._limits import MAX_PER_CLIENT, Limits


def _limit(name: str, default: float, text: str, positive: bool = False) -> Callable:
    """A serve limit option: an int or float (as its default) of at least 0, or 1 for ints
    (``positive``: above 0), with its default shown."""
    kind = (
        click.IntRange(min=1)
        if isinstance(default, int)
        else click.FloatRange(min=0, min_open=positive)
    )
    return click.option(name, default=default, type=kind, show_default=True, help=text)


@click.command("serve")
@run_argument
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback; put a TLS proxy in front to expose it).",
)
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@device_option
@_limit(
    "--max-batch", 128, "A forward pass starts, without waiting, once it holds this many images."
)
@_limit("--max-wait-ms", 2.0, "How long a forward pass waits to gather concurrent requests.")
@_limit("--max-request-bytes", Limits.max_request_bytes, "Largest request body.")
@_limit("--max-images", Limits.max_images, "Images per request.")
@_limit("--max-pixels", Limits.max_pixels, "Pixels per image.")
@_limit("--max-requests", 256, "Requests handled at once; more are answered 503.")
@_limit("--max-connections", 1024, "Open connections; more are closed on arrival.")
@_limit(
    "--max-connections-per-client",
    MAX_PER_CLIENT,
    "Open connections of one client address; more are closed on arrival (raise it behind a "
    "proxy, where every client has the proxy's address).",
)
@_limit(
    "--request-timeout",
    10.0,
    "Seconds a connection has to deliver a whole request (headers and body) after opening "
    "or after its previous answer; idle and slow connections are then closed.",
    positive=True,
)
@click.option(
    "--threads",
    type=click.IntRange(min=1),
    help="Torch threads for inference (default: all cores but one).",
)
@click.option(
    "--tta",
    is_flag=True,
    help="Answer with the evaluation's test-time augmentation (5 forward passes per image; PE "
    "only), so that the TTA accuracy GET /v1/model reports is the one served.",
)
@click.option("--no-access-log", is_flag=True, help="Do not log one line per request.")
def serve(run, host, port, max_request_bytes, max_images, max_pixels, no_access_log, **opts):
    """Serve RUN's model over HTTP: images in (encrypted or plain), labels out.

    The model takes the image size it was trained on (read from RUN's checkpoint). POST
    /v1/classify takes PNG files (multipart/form-data) or raw uint8 arrays
    (application/octet-stream with an X-Image-Shape: N,H,W,3 header); GET /v1/model describes the
    model; GET /healthz; GET / is a web page that encrypts photos in the browser; GET /docs
    documents the API. See docs/service.md.
    """
    from keyless.serve import serve as run_service

    limits = Limits(max_request_bytes, max_images, max_pixels)
    run_service(run, host, port, limits=limits, access_log=not no_access_log, **opts)


@click.command("classify")
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option(
    "--server",
    envvar=SERVER_ENV,
    default=DEFAULT_SERVER,
    show_default=True,
    show_envvar=True,
    help="The service.",
)
@click.option("--plain", is_flag=True, help="Send the images unencrypted.")
@click.option(
    "--timeout",
    default=15.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds each request may take in all, from connecting to the answer's last byte.",
)
@click.option(
    "--size",
    type=Size(),
    help="Scale and centre-crop every image to this size first, as encrypt --size does (the "
    "model's size; other sizes are refused).",
)
@click.option(
    "--top-k",
    default=3,
    show_default=True,
    type=click.IntRange(min=1),
    help="Most probable classes shown per image.",
)
def classify(images, server, plain, timeout, size, top_k) -> None:
    """Classify IMAGES (files or folders) on a keyless service.

    Each image is encrypted here under a fresh key from the OS CSPRNG, thrown away after sending
    (unless --plain): the service sees ciphertexts only. Each row says what was sent.
    """
    from keyless.serve import Client, classify_files, results_table

    with Client(server, timeout=timeout) as client:
        rows, errors = classify_files(client, images, top_k, encrypt=not plain, size=size)
    if rows:
        click.echo(results_table(rows))
    for error in errors:
        click.echo(f"keyless: error: {error}", err=True)
    if errors:
        raise SystemExit(max((e.exit_code for e in errors), default=ExitStatus.FAILED))
