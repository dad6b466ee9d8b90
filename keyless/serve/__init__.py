"""The HTTP inference service for encrypted (or plain) images, its web page that encrypts in
the browser, and its encrypting command-line client.

Names load their module on first use (as :mod:`keyless` does), so the command line can read the
service's limits without waiting for torch and the web framework.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "keyless.serve._app": ("create_app", "read_body", "serve"),
    "keyless.serve._batcher": ("Batcher",),
    "keyless.serve._address": ("DEFAULT_SERVER", "SERVER_ENV"),
    "keyless.serve._client": ("Client", "ServiceError", "classify_files", "results_table"),
    "keyless.serve._limits": ("Limits", "RequestRefused"),
    "keyless.serve._model": ("ServedModel", "top_k"),
    "keyless.serve._request": ("SHAPE_HEADER", "parse_images"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'keyless.serve' has no attribute {name!r}")
    value = getattr(import_module(_MODULE_OF[name]), name)
    globals()[name] = value  # loaded once
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULE_OF})
