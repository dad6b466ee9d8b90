"""Attacks on PE ciphertexts and the similarity metrics that score them.

Learned attacks (ITN, GAN), the ``keyless attack`` command and its report are not built yet.
"""

from keyless.attacks._classic import HelperImageAttack, fr_advanced_attack, fr_attack, keyspace_bits
from keyless.attacks._metrics import similarity

__all__ = ["HelperImageAttack", "fr_advanced_attack", "fr_attack", "keyspace_bits", "similarity"]
