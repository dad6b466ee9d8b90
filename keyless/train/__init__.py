"""Training on encrypted images: the recipes (:mod:`keyless.train.recipes`) and the engine."""

from keyless.config import TrainConfig
from keyless.train._engine import evaluate_run, train
from keyless.train.recipes import RECIPES, airbench_sgd, recipe

__all__ = [
    "RECIPES",
    "TrainConfig",
    "airbench_sgd",
    "evaluate_run",
    "recipe",
    "train",
]
