"""Training on encrypted images: the recipes (:mod:`keyless.train.recipes`) and the engine."""

from keyless.runs import TrainConfig
from keyless.train._engine import TrainOutcome, train, train_run
from keyless.train.recipes import RECIPES, airbench_sgd, recipe

__all__ = [
    "RECIPES",
    "TrainConfig",
    "TrainOutcome",
    "airbench_sgd",
    "recipe",
    "train",
    "train_run",
]
