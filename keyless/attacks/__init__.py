"""Attacks on PE ciphertexts and the similarity metrics that score them.

The ``keyless attack`` command and its report are not built yet.
"""

from keyless.attacks._classic import HelperImageAttack, fr_advanced_attack, fr_attack, keyspace_bits
from keyless.attacks._learned import GANAttack, ITNAttack, SmallUNet, pixel_stack
from keyless.attacks._metrics import similarity

__all__ = [
    "GANAttack",
    "HelperImageAttack",
    "ITNAttack",
    "SmallUNet",
    "fr_advanced_attack",
    "fr_attack",
    "keyspace_bits",
    "pixel_stack",
    "similarity",
]
