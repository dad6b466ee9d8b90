"""The HTTP inference service for encrypted (or plain) images, its web page that encrypts in
the browser, and its encrypting command-line client.

Names load their module on first use (as :mod:`keyless` does), so the command line can read the
service's limits without waiting for torch and the web framework.
"""

from __future__ import annotations

from keyless._lazy import lazy_exports

_EXPORTS = {
    "keyless.serve._app": ("create_app", "read_body", "serve"),
    "keyless.serve._batcher": ("Batcher",),
    "keyless.serve._address": ("DEFAULT_SERVER", "SERVER_ENV"),
    "keyless.serve._client": ("Client", "ServiceError", "classify_files", "results_table"),
    "keyless.serve._limits": ("Limits", "RequestRefused"),
    "keyless.serve._model": ("ServedModel", "top_k"),
    "keyless.serve._request": ("SHAPE_HEADER", "parse_images"),
}
__getattr__, __dir__, __all__ = lazy_exports(globals(), _EXPORTS)
