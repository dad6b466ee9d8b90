"""Modules imported on first use, so that ``keyless --help`` need not wait for torch."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any


class LazyModule(ModuleType):
    """Stands for the module ``name`` and imports it when an attribute is first read (torch
    takes over a second to import; the cipher classes are needed earlier, to list options)."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str) -> Any:
        if self._module is None:
            self._module = importlib.import_module(self.__name__)
        return getattr(self._module, attr)


torch: Any = LazyModule("torch")
