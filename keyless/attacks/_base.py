"""One interface for every attack: a registered ``Attack`` runs on ciphertexts in a ``Scenario``
and returns an ``AttackResult``."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import torch

from keyless.cipher import Cipher
from keyless.errors import InputError
from keyless.keys import CsprngSource, KeySource
from keyless.registry import Registry


@dataclass(frozen=True)
class Scenario:
    """What the attacker has besides the victims' ciphertexts.

    Attributes:
        cipher: the victims' cipher (public: only the keys are secret).
        attacker_images: (M, H, W, 3) uint8 plain images the attacker owns.
        oracle: encrypts a chosen (1, H, W, 3) uint8 image the way the victims' next image would
            be (common key: under that key; independent keys: under a fresh one).
        source: randomness for the keys the attacker draws.
        budget_seconds: training time for each learned attack; ``None``: no limit.
    """

    cipher: Cipher
    attacker_images: torch.Tensor
    oracle: Callable[[torch.Tensor], torch.Tensor]
    source: KeySource = field(default_factory=CsprngSource)
    budget_seconds: float | None = None


@dataclass(frozen=True, eq=False)
class AttackResult:
    """What one attack got back.

    Attributes:
        name: the attack's registered name.
        reconstructions: (N, H, W, 3) uint8 guesses of the victims' plain images, or ``None`` for
            an attack that only estimates (``keyspace``).
        extra: further findings: key-space bits, training losses.
        seconds: wall time of the attack.
    """

    name: str
    reconstructions: torch.Tensor | None
    extra: dict[str, Any]
    seconds: float


class Attack(ABC):
    """A registered attack; ``ciphers`` names the ciphers it applies to (``None``: any)."""

    name: ClassVar[str]
    ciphers: ClassVar[tuple[str, ...] | None] = None

    def refusal(self, cipher: Cipher) -> str | None:
        """Why the attack cannot run on ``cipher``'s ciphertexts, or ``None`` when it can."""
        if self.ciphers is None or cipher.name in self.ciphers:
            return None
        return f"decodes {'/'.join(c.upper() for c in self.ciphers)} keys only, not {cipher.name}"

    def applies_to(self, cipher: Cipher) -> bool:
        """Whether the attack can run on ``cipher``'s ciphertexts."""
        return self.refusal(cipher) is None

    def run(self, ciphertexts: torch.Tensor, scenario: Scenario) -> AttackResult:
        """Attack (N, H, W, 3) uint8 ``ciphertexts``; ``InputError`` if the cipher does not fit."""
        why = self.refusal(scenario.cipher)
        if why:
            raise InputError(f"attack {self.name!r} {why}")
        start = time.perf_counter()
        reconstructions, extra = self.attack(ciphertexts, scenario)
        return AttackResult(self.name, reconstructions, extra, time.perf_counter() - start)

    @abstractmethod
    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor | None, dict[str, Any]]:
        """The reconstructions (or ``None``) and extra findings; ``run`` checks and times it."""


ATTACKS: Registry[Attack] = Registry("attack")
A = TypeVar("A", bound=type[Attack])


def register_attack(name: str) -> Callable[[A], A]:
    """Class decorator: registers an ``Attack`` subclass under ``name`` and names it so."""

    def decorate(cls: A) -> A:
        ATTACKS.register(name)(cls)
        cls.name = name
        return cls

    return decorate


def create_attack(name: str, **kwargs: Any) -> Attack:
    """Build a registered attack; ``None`` keyword arguments keep the defaults."""
    return ATTACKS.create(name, **kwargs)


def list_attacks() -> list[str]:
    """Registered attack names, sorted."""
    return ATTACKS.names()
