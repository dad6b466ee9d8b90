"""Attacks on ciphertexts of any registered cipher and the similarity metrics that score them.

``run_attacks`` and ``write_report`` back the ``keyless attack`` command.
"""

from keyless.attacks._classic import HelperImageAttack, fr_advanced_attack, fr_attack, keyspace_bits
from keyless.attacks._learned import GANAttack, ITNAttack, SmallUNet, pixel_stack
from keyless.attacks._metrics import per_image, similarity
from keyless.attacks._report import ATTACKS, run_attacks, write_report

__all__ = [
    "ATTACKS",
    "GANAttack",
    "HelperImageAttack",
    "ITNAttack",
    "SmallUNet",
    "fr_advanced_attack",
    "fr_attack",
    "keyspace_bits",
    "per_image",
    "pixel_stack",
    "run_attacks",
    "similarity",
    "write_report",
]
