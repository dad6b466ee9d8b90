"""Attacks on ciphertexts of any registered cipher and the similarity metrics that score them.

Every attack is registered by name (``list_attacks``, ``create_attack``); ``attack.run(ciphertexts,
scenario)`` returns an ``AttackResult``. ``run_attacks`` and ``write_report`` back the
``keyless attack`` command.
"""

from keyless.attacks._base import (
    ATTACKS,
    Attack,
    AttackResult,
    Scenario,
    create_attack,
    list_attacks,
    register_attack,
)
from keyless.attacks._classic import (
    BlockHelperAttack,
    HelperImageAttack,
    candidate_decryptions,
    fr_advanced_attack,
    fr_attack,
    keyspace_bits,
)
from keyless.attacks._jigsaw import BlockPlacer, JigsawPlacer, blocks_placed, greedy_assignment
from keyless.attacks._learned import GANAttack, ITNAttack, UNet, pixel_stack, ssim_loss
from keyless.attacks._metrics import per_image, similarity
from keyless.attacks._report import run_attacks, write_report

__all__ = [
    "ATTACKS",
    "Attack",
    "AttackResult",
    "BlockHelperAttack",
    "BlockPlacer",
    "GANAttack",
    "HelperImageAttack",
    "ITNAttack",
    "JigsawPlacer",
    "Scenario",
    "UNet",
    "blocks_placed",
    "candidate_decryptions",
    "create_attack",
    "fr_advanced_attack",
    "fr_attack",
    "greedy_assignment",
    "keyspace_bits",
    "list_attacks",
    "per_image",
    "pixel_stack",
    "register_attack",
    "run_attacks",
    "similarity",
    "ssim_loss",
    "write_report",
]
