"""Training on encrypted images: the engine and its recipes."""

from keyless.train._config import RECIPES, TrainConfig, airbench_sgd, recipe
from keyless.train._engine import derived_source, evaluate_run, load_run, owner_encrypt, train

__all__ = [
    "RECIPES",
    "TrainConfig",
    "airbench_sgd",
    "derived_source",
    "evaluate_run",
    "load_run",
    "owner_encrypt",
    "recipe",
    "train",
]
