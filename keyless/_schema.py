"""Reading back what keyless wrote: every file is checked against a declarative pydantic schema,
and a wrong type, a missing field or an unknown value is one line naming the file and the field.

Strict types throughout (no ``"12"`` for 12, no ``1`` for ``True``); a dataclass's schema comes
from its own type hints (:func:`fields_model`), so that its fields and its file cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from keyless.errors import InputError

T = TypeVar("T")

STRICT = ConfigDict(strict=True, extra="forbid", protected_namespaces=())


def problem(error: ValidationError) -> str:
    """Why data did not validate, in a few words: the fields it lacks, else the first wrong field
    (dotted path), what it should be and what it was."""
    problems = error.errors()
    missing = [".".join(map(str, p["loc"])) for p in problems if p["type"] == "missing"]
    if missing:
        return f"no {', '.join(missing)}"
    first = problems[0]
    cause = first.get("ctx", {}).get("error")
    message = str(cause) if isinstance(cause, Exception) else first["msg"]
    where = ".".join(map(str, first["loc"]))
    if first["type"] not in ("value_error", "assertion_error", "extra_forbidden"):
        message += f", got {_short(first.get('input'))}"
    return " ".join((f"{where}: {message}" if where else message).split())  # one line


def _short(value: Any, limit: int = 60) -> str:
    text = " ".join(repr(value).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def list_to_tuple(value: Any) -> Any:
    """A ``BeforeValidator`` for tuple fields: JSON and checkpoints store tuples as lists."""
    return tuple(value) if isinstance(value, list) else value


def read_as(validate: Callable[[Any], T], data: Any, where: Path | str, what: str) -> T:
    """``validate(data)``, or one :class:`InputError`: ``<where>: not a <what> (<problem>)``."""
    try:
        return validate(data)
    except ValidationError as exc:
        raise InputError(f"{where}: not a {what} ({problem(exc)})") from None


@cache
def fields_model(cls: type, **overrides: Any) -> type[BaseModel]:
    """A strict pydantic model of dataclass ``cls``'s fields: their type hints (``overrides``
    replace some, e.g. with an ``Annotated`` validator) and defaults; unknown fields refused."""
    hints = typing.get_type_hints(cls, include_extras=True)
    fields: dict[str, Any] = {}
    for field in dataclasses.fields(cls):
        default: Any = ...  # required
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        fields[field.name] = (overrides.get(field.name, hints[field.name]), default)
    return create_model(f"{cls.__name__}Fields", __config__=STRICT, **fields)


def build_dataclass(cls: type[T], values: Any, **overrides: Any) -> T:
    """``cls`` built from ``values`` (a dict of its fields) checked by :func:`fields_model`
    (raises :class:`ValidationError`); its own ``__post_init__`` checks what is left."""
    model = fields_model(cls, **overrides)
    checked = model.model_validate(values)
    return cls(**{name: getattr(checked, name) for name in model.model_fields})
