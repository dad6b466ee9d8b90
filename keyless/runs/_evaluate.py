"""A finished run scored again: the evaluation protocol of :mod:`keyless.evaluate` on a run folder.

It replays the owner's side of the run (the test keys and the common key derive from the run's
seed), so it sits above the owner's code, unlike the rest of :mod:`keyless.runs`, which loads it
on first use.
"""

from __future__ import annotations

from pathlib import Path

from keyless.evaluate import evaluate_parts
from keyless.hardware import resolve_device, resolve_precision
from keyless.runs._folder import load_run
from keyless.upload import PLAIN_SOURCE, load_received, owner_key, scored_parts, split_data


def evaluate_run(
    run: Path | str,
    data: Path | str,
    tta: bool = True,
    device: str | None = None,
    require_upload: bool = False,
    readers: int = 1,
) -> dict[str, float]:
    """Re-run the evaluation protocol on a finished run (common key rebuilt from its seed); on
    an owner's upload (a folder with a manifest), its test split as encrypted and re-keyed (a
    sharded upload's streamed shard by shard, as training scored it, read by ``readers``
    processes)."""
    manifest, splits = load_received(Path(data), require_upload, stream=True)
    dev = resolve_device(device)
    model, checkpoint = load_run(run, str(dev))
    splits = checkpoint.adopt_classes(splits, f"evaluating {run}")
    config, seed = checkpoint.config, checkpoint.seed
    train_set, test = split_data(splits, config)
    cipher = manifest.cipher if manifest else config.cipher
    common_key = None  # rebuilt for a simulated owner's run only: an upload's key is the owner's
    simulated = checkpoint.data is None or checkpoint.data.startswith(PLAIN_SOURCE)
    if config.keys == "common" and manifest is None and simulated:
        common_key = owner_key(config, cipher, 1, train_set.image_size, seed)
    precision = resolve_precision(config.precision, dev)
    return evaluate_parts(model, scored_parts(test, seed, readers), cipher, common_key, tta, dev,
                          precision, progress=True, ciphertexts=manifest is not None)  # fmt: skip
