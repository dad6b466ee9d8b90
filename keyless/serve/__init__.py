"""The HTTP inference service for encrypted (or plain) images, and its encrypting client."""

from keyless.serve._app import create_app, read_body, serve
from keyless.serve._batcher import Batcher
from keyless.serve._client import Client, ServiceError, classify_files, results_table
from keyless.serve._limits import Limits, RequestRefused
from keyless.serve._model import ServedModel, top_k
from keyless.serve._request import SHAPE_HEADER, parse_images

__all__ = [
    "SHAPE_HEADER",
    "Batcher",
    "Client",
    "Limits",
    "RequestRefused",
    "ServedModel",
    "ServiceError",
    "classify_files",
    "create_app",
    "parse_images",
    "read_body",
    "results_table",
    "serve",
    "top_k",
]
