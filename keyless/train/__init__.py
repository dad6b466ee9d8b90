"""Training on encrypted images: the recipes (:mod:`keyless.train.recipes`) and the engine."""

from keyless.runs import TrainConfig
from keyless.train._engine import train
from keyless.train._owner import data_source, derived_source, prepare_upload
from keyless.train.recipes import RECIPES, airbench_sgd, recipe, with_model_options

__all__ = [
    "RECIPES",
    "TrainConfig",
    "airbench_sgd",
    "data_source",
    "derived_source",
    "prepare_upload",
    "recipe",
    "train",
    "with_model_options",
]
