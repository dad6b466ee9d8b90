"""The rows of the papers' comparison tables, as training configs for a compute budget.

``icip``: ICIP 2019's table (common key, ResNet-18): plain training; PE with the NP step only
and with NP + shuffle, each without and with the adaptation network; Tanaka's LE (4-bit halves,
block-wise adaptation network); EtC; then augmentation done by the client before encryption.
``access``: IEEE Access 2019's claims: plain / common / independent keys per model, every model
tested on plain, fresh-key and common-key test images; at the cpu budget also fastnet without
augmentation (claim c) and with keyless's key-invariant stem. ``budget``: the claims across
training budgets (5 to 40 epochs of fastnet): plain training, independent keys encrypted once,
re-keyed every epoch, and the invariant stem. ``diagnostic``: where the fold's cost comes from.

Budgets: ``cpu`` trains fastnet with the 15-minute fast recipe (widths 32, 64, 128, 10
epochs) for every row, and ResNet-18 / DenseNet for one epoch (one-cycle) for the plain and
independent-key rows only; ``paper`` uses the papers' 300-epoch schedule (for a GPU).
"""

from __future__ import annotations

from dataclasses import dataclass

from keyless.cipher import EtCCipher, LearnableCipher, PixelCipher
from keyless.train import TrainConfig, recipe

BUDGETS = ("cpu", "paper")
TABLES = ("icip", "access", "budget", "diagnostic")


@dataclass(frozen=True)
class Row:
    """One training of a table.

    Args:
        name: run folder name.
        label: what the row is, in the paper's words.
        config: the training.
        metric: the test set the row is judged on (``plain``, ``fresh_key``, ``common_key``).
        paper: the paper's figure in %, where it gives one.
    """

    name: str
    label: str
    config: TrainConfig
    metric: str
    paper: float | None = None


def base_config(budget: str, model: str) -> TrainConfig:
    """The budget's training for ``model`` (seed 0)."""
    if budget == "paper":
        return recipe("paper", model=model, seed=0)
    if model == "fastnet":
        return recipe("fast", epochs=10, model_kwargs={"widths": [32, 64, 128]}, seed=0)
    return recipe("paper", model=model, epochs=1, schedule="triangle", seed=0)


_PE_NP = PixelCipher(shuffle=False)
_PE = PixelCipher()
_LE = LearnableCipher(block_size=4)
_ETC = EtCCipher(block_size=4)

# (name, label, changes, paper %) for ICIP 2019's table; all rows but plain use one common key.
_ICIP = [
    ("plain", "plain images", {"keys": "plain"}, 92.98),
    ("pe-np", "PE, NP only", {"cipher": _PE_NP}, 85.15),
    ("pe-np-adapt", "PE, NP only + adaptation network",
     {"cipher": _PE_NP, "adapt": "pixel"}, 86.99),
    ("pe-np-shuffle", "PE, NP + shuffle", {"cipher": _PE}, 82.51),
    ("pe-np-shuffle-adapt", "PE, NP + shuffle + adaptation network",
     {"cipher": _PE, "adapt": "pixel"}, 86.16),
    ("le", "Tanaka's LE (block-wise adaptation network)",
     {"cipher": _LE, "stem": "nibbles", "adapt": "block"}, 56.41),
    ("etc", "EtC (block scrambling)", {"cipher": _ETC}, 69.03),
    ("client-pe-np", "client augmentation: PE, NP only", {"cipher": _PE_NP, "augment": "client"},
     92.94),
    ("client-pe-np-adapt", "client augmentation: PE, NP only + adaptation network",
     {"cipher": _PE_NP, "adapt": "pixel", "augment": "client"}, 90.65),
    ("client-le", "client augmentation: Tanaka's LE",
     {"cipher": _LE, "stem": "nibbles", "adapt": "block", "augment": "client"}, 85.84),
]  # fmt: skip


_METRIC = {"plain": "plain", "common": "common_key", "independent": "fresh_key"}


def _icip_rows(budget: str) -> list[Row]:
    base = base_config(budget, "fastnet" if budget == "cpu" else "resnet18")
    return [
        Row(name, label, base.replace(**{"keys": "common", **changes}),
            "plain" if changes.get("keys") == "plain" else "common_key", paper)
        for name, label, changes, paper in _ICIP
    ]  # fmt: skip


def _access_rows(budget: str) -> list[Row]:
    rows = []
    for model in (
        ("fastnet", "resnet18", "densenet") if budget == "cpu" else ("resnet18", "densenet")
    ):
        base = base_config(budget, model).replace(cipher=_PE)
        reduced = budget == "cpu" and model != "fastnet"  # an hour per run on 2 cores
        for keys in ("plain", "independent") if reduced else ("plain", "common", "independent"):
            rows.append(Row(f"{model}-{keys}", f"{model}, {keys} keys", base.replace(keys=keys),
                            _METRIC[keys]))  # fmt: skip
        if budget == "cpu" and model == "fastnet":
            independent = base.replace(keys="independent")
            rows += [
                Row("fastnet-independent-noaug", "fastnet, independent keys, no augmentation",
                    independent.replace(translate=0, flip=False), "fresh_key"),
                Row("fastnet-independent-invariant", "fastnet, independent keys, "
                    "key-invariant stem (keyless)", independent.replace(stem="invariant"),
                    "fresh_key"),
            ]  # fmt: skip
    return rows


BUDGET_EPOCHS = (5, 10, 20, 40)
# (curve, label, changes, judged on): the paper's claim at every budget, same net and recipe
CURVES = [
    ("plain", "plain training", {"keys": "plain"}, "plain"),
    ("independent", "independent keys, encrypted once (the paper)", {}, "fresh_key"),
    ("rekey", "independent keys, re-keyed every epoch", {"rekey": True}, "fresh_key"),
    ("invariant", "independent keys, key-invariant stem (keyless)", {"stem": "invariant"},
     "fresh_key"),
]  # fmt: skip


def _fastnet(budget: str) -> TrainConfig:
    """The fast recipe's fastnet: CPU width (32, 64, 128) or airbench94's (64, 256, 256)."""
    widths = {"widths": [32, 64, 128]} if budget == "cpu" else {}
    return recipe("fast", model_kwargs=widths, seed=0, cipher=_PE, keys="independent")


def _budget_rows(budget: str) -> list[Row]:
    base = _fastnet(budget)
    return [
        Row(f"{curve}-e{epochs}", f"{label}, {epochs} epochs",
            base.replace(epochs=float(epochs), **changes), metric)
        for epochs in BUDGET_EPOCHS
        for curve, label, changes, metric in CURVES
    ]  # fmt: skip


def _diagnostic_rows(budget: str) -> list[Row]:
    """Where the fold's cost comes from: the same net and budget on plain, grey (colour gone),
    the unsorted fold (NP's invariant) and the sorted fold (every PE key's invariant)."""
    base = _fastnet(budget)
    return [
        Row("plain", "plain images", base.replace(keys="plain"), "plain"),
        Row("grey", "grey (luma) images", base.replace(keys="plain", stem="grey"), "plain"),
        Row("fold", "fold min(p, 255 - p), unsorted (NP's invariant)",
            base.replace(keys="plain", stem="fold"), "plain"),
        Row("sorted-fold", "sorted fold (every key's invariant: the invariant stem)",
            base.replace(stem="invariant"), "plain"),
    ]  # fmt: skip


def table_rows(table: str, budget: str) -> list[Row]:
    """Every training ``table`` needs at ``budget``, cheapest first."""
    if budget not in BUDGETS:
        raise ValueError(f"budget must be one of {BUDGETS}, got {budget!r}")
    builders = {"icip": _icip_rows, "access": _access_rows, "budget": _budget_rows,
                "diagnostic": _diagnostic_rows}  # fmt: skip
    if table not in builders:
        raise ValueError(f"table must be one of {TABLES}, got {table!r}")
    return builders[table](budget)
