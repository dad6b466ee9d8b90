"""One registry pattern for ciphers, models and attacks (after timm's ``_registry.py``)."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from keyless.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named factories of one kind; ``create`` merges keyword arguments over defaults."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, Callable[..., T]] = {}

    def register(self, name: str) -> Callable[[Callable[..., T]], Callable[..., T]]:
        """Decorator registering ``factory`` under ``name``; a second use of a name is an error."""

        def decorate(factory: Callable[..., T]) -> Callable[..., T]:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._entries[name] = factory
            return factory

        return decorate

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._entries)

    def get(self, name: str) -> Callable[..., T]:
        """The factory for ``name``, or an error listing close matches."""
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, self._entries, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names())})"
            ) from None

    def create(self, name: str, **kwargs: Any) -> T:
        """Build ``name``; keyword arguments that are ``None`` are dropped, keeping defaults."""
        return self.get(name)(**{k: v for k, v in kwargs.items() if v is not None})
