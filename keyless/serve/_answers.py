"""The service's JSON answers as its client relies on them: one pydantic model per endpoint,
checked on arrival, so that a broken or foreign server is one line naming the endpoint and the
field, never a traceback deep in the client."""

from __future__ import annotations

from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    PositiveInt,
    ValidationError,
    ValidationInfo,
    field_validator,
)


class Answer(BaseModel):
    """JSON types as they are (no ``"3"`` for 3); fields the client does not use pass through."""

    model_config = ConfigDict(strict=True, extra="allow")


class ServedLimits(Answer):
    max_request_bytes: PositiveInt
    max_images: PositiveInt
    max_pixels: PositiveInt


class ModelAnswer(Answer):
    """``GET /v1/model``: what the client needs to encrypt and send images."""

    input_size: tuple[PositiveInt, PositiveInt]
    cipher: dict[str, Any]  # its settings(): keyless.cipher.cipher_from_settings checks them
    keys: str
    accepts: dict[str, float | None]
    limits: ServedLimits


class RankedClass(Answer):
    label: NonNegativeInt
    class_name: str
    probability: float = Field(ge=0, le=1)


class ImageResult(Answer):
    label: NonNegativeInt
    class_name: str
    top_k: list[RankedClass]


class ClassifyAnswer(Answer):
    """``POST /v1/classify``: one result per image sent (``context={"images": N}``)."""

    results: list[ImageResult]

    @field_validator("results")
    @classmethod
    def _one_per_image(cls, results: list[ImageResult], info: ValidationInfo) -> list[ImageResult]:
        images = (info.context or {}).get("images")
        if images is not None and len(results) != images:
            raise ValueError(f"{len(results)} results for {images} images")
        return results


def describe(exc: ValidationError) -> str:
    """A validation error on one line: the missing fields, then each wrong one with why."""
    errors = exc.errors(include_url=False)
    where = [".".join(map(str, e["loc"])) for e in errors]
    missing = [w for w, e in zip(where, errors, strict=True) if e["type"] == "missing"]
    wrong = [f"{w}: {e['msg'].removeprefix('Value error, ')}"
             for w, e in zip(where, errors, strict=True) if e["type"] != "missing"]  # fmt: skip
    return "; ".join((["has no " + ", ".join(missing)] if missing else []) + wrong)
