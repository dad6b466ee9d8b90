"""The demo: encrypt the bundled sample photos and show what a ciphertext-only viewer sees; then
(``make demo``) the main job on CIFAR-10, told in a few sentences."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, PngImagePlugin

from keyless._atomic import atomic_path
from keyless.cipher import PixelCipher
from keyless.data import find_dataset, read_image
from keyless.errors import OutputError
from keyless.invariant import sorted_fold
from keyless.keys import KeySource
from keyless.runs import TrainConfig
from keyless.train import recipe, train_run
from keyless.visualize import image_grid


def sample_images() -> list[tuple[str, np.ndarray]]:
    """The bundled 96x96 sample photos (from scikit-image's public-domain data) by name."""
    folder = resources.files("keyless") / "samples"
    return [
        (p.name.removesuffix(".png"), read_image(Path(str(p))))
        for p in sorted(folder.iterdir(), key=lambda p: p.name)
        if p.name.endswith(".png")
    ]


def encryption_grid(out: Path, source: KeySource | None = None, scale: int = 2) -> Path:
    """Write a PNG grid, a row per photo: plain | encrypted under two keys | what every key
    leaves visible (the sorted fold, the same for both keys and the plain photo, brightened)."""
    cipher = PixelCipher()
    _names, images = zip(*sample_images(), strict=True)
    plain = torch.from_numpy(np.stack(images))
    first, _ = cipher.encrypt_fresh(plain, source)
    second, _ = cipher.encrypt_fresh(plain, source)
    columns = [plain, first, second, sorted_fold(first) * 2]
    rows = [[col[i].numpy() for col in columns] for i in range(len(plain))]
    grid = image_grid(
        rows,
        ["plain", "encrypted, key 1", "encrypted, key 2", "left by every key (x2)"],
        scale=scale,
    )
    if out.exists() and not _is_grid(out):
        raise OutputError(f"{out}: already exists and is not a grid the demo drew; refusing to "
                          "replace it (choose another --out)")  # fmt: skip
    info = PngImagePlugin.PngInfo()
    info.add_text("Software", GRID_SOFTWARE)
    with atomic_path(out) as tmp:
        grid.save(tmp, format="PNG", pnginfo=info)
    return out


GRID_SOFTWARE = "keyless demo"  # the grid's PNG says it; the demo replaces only such a file


def _is_grid(path: Path) -> bool:
    """Whether ``path`` is a grid the demo drew (which it may draw again)."""
    try:
        with Image.open(path) as image:
            return image.format == "PNG" and image.info.get("Software") == GRID_SOFTWARE
    except (OSError, ValueError):  # not an image, not readable
        return False


@dataclass(frozen=True)
class DemoRun:
    """What the demo did: its grid, its run folder and record, and whether the run had finished
    before (then nothing was trained or evaluated again)."""

    grid: Path
    run: Path
    record: dict[str, Any]
    finished_before: bool


def demo_config() -> TrainConfig:
    """The demo's training, as ``keyless train --model fastnet --widths 32,64,128 --epochs 3
    --keys independent --stem invariant --seed 0`` builds it: a few minutes on 2 CPU cores."""
    return recipe("fast", model="fastnet", keys="independent", stem="invariant", epochs=3,
                  seed=0, cipher=PixelCipher(),
                  model_kwargs={"widths": [32, 64, 128]})  # fmt: skip


def run_demo(
    grid: Path, run: Path, data: Path | str | None = None, command: str | None = None
) -> DemoRun:
    """Draw the grid, then train the demo's run in ``run`` (resuming an interrupted one); a run
    that finished already is only read back (:func:`keyless.train.train_run`). ``data``: as
    :func:`keyless.data.find_dataset`."""
    encryption_grid(grid)
    outcome = train_run(demo_config(), find_dataset(data), run, resume=True, command=command)
    return DemoRun(grid, run, outcome.record, finished_before=outcome.already_finished)


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"


_KEYS = {
    "independent": "each under its own key, which no other image shares",
    "common": "all under one common key",
}


def demo_summary(demo: DemoRun) -> str:
    """The demo's outcome in a few plain sentences, from its record."""
    r, c, t = demo.record, demo.record["config"], demo.record["test"]
    lines = []
    if demo.finished_before:
        lines.append(f"{demo.run} holds a finished run: nothing was trained or evaluated again "
                     f"(remove {demo.run} to start over).")  # fmt: skip
    if c["keys"] == "plain":
        lines.append(f"The {r['train_images']:,} training images stayed plain (no encryption).")
    else:
        lines.append(f"The owner encrypted {r['train_images']:,} training images with "
                     f"pixel-based encryption (PE), {_KEYS[c['keys']]}.")  # fmt: skip
        if str(r.get("data", "")).startswith("plain images"):
            lines.append(f"This owner is simulated: every key comes from seed {r['seed']}, so "
                         f"keep {demo.run} private.")  # fmt: skip
    model = " ".join([c["model"], "/".join(map(str, c["model_kwargs"].get("widths", [])))])
    stem = (", through its key-invariant stem (it sees only what every key leaves unchanged)"
            if c["stem"] == "invariant" else f", with the {c['stem']} stem")  # fmt: skip
    m = r["machine"]
    where = m.get("gpu") or f"{m['cpu']}, {m['cores']} cores"
    data = "them" if c["keys"] == "plain" else "the ciphertexts alone"
    lines.append(f"The cloud trained {model.strip()} on {data}{stem}, for "
                 f"{c['epochs']:g} epochs in {_duration(r['train_seconds'])} ({where}, "
                 f"{r['precision']}).")  # fmt: skip
    if "plain" in t:
        scores = f"It classifies {_percent(t['plain'])} of the plain test images correctly"
        if "fresh_key" in t:
            scores += f" and {_percent(t['fresh_key'])} of those encrypted with fresh keys"
        if "plain_tta" in t:
            tta = " and ".join(_percent(t[k]) for k in ("plain_tta", "fresh_key_tta") if k in t)
            scores += (f"; with test-time augmentation (TTA: each image also scored mirrored "
                       f"and shifted) {tta}")  # fmt: skip
        lines.append(scores + ".")
    lines.append(f"The picture of what the cipher does is {demo.grid}; the run (checkpoint and "
                 f"record.json) is in {demo.run}.")  # fmt: skip
    lines.append(f"Try next: keyless report {demo.run}")
    return "\n".join(lines) + "\n"
