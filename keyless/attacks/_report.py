"""Run every requested attack on victim ciphertexts and report SSIM/PSNR, as data and a grid."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from keyless._atomic import atomic_path, write_bytes_atomic
from keyless.attacks._base import Scenario, create_attack
from keyless.attacks._jigsaw import blocks_placed
from keyless.attacks._metrics import per_image, similarity
from keyless.cipher import Cipher
from keyless.data import ImageSet
from keyless.invariant import sorted_fold
from keyless.keys import SeedSource
from keyless.runs import git_commit, machine
from keyless.visualize import image_grid

GRID_ROWS = 6


def run_attacks(
    attacker: ImageSet,
    victims: ImageSet,
    cipher: Cipher,
    keys: str,
    attacks: list[str],
    budget_seconds: float,
    seed: int = 0,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Encrypt ``victims`` (independent or common keys) and run the named registered attacks.

    The attacker owns ``attacker`` (plain images disjoint from the victims) and may have one
    chosen image encrypted the way the victims' next image would be. Learned attacks train for
    at most ``budget_seconds`` each. An attack that does not apply to ``cipher`` is listed under
    ``skipped`` with the reason; one that returns no images (``keyspace``) reports its ``extra``
    under its name. One that lays out the invariant's blocks (``jigsaw``: ``placed_folds`` in its
    ``extra``) gets ``blocks_placed`` in its row, the fraction of the victims' blocks it put at
    their true position, and ``blocks_chance`` (1 / blocks per image).

    Returns:
        The report (rows of SSIM/PSNR mean and std, seconds per attack) and the images by column.
    """
    selected = [create_attack(name) for name in attacks]
    commit = git_commit()  # the code that runs now, whatever is committed while it runs
    n, h, w, _ = victims.images.shape
    source = SeedSource(seed)
    common = cipher.keygen(1, (h, w), source) if keys == "common" else None

    def encrypt(images: torch.Tensor) -> torch.Tensor:  # the victims' device encrypts them
        if common is not None:
            return cipher.encrypt(images, common)
        return cipher.encrypt_fresh(images, source)[0]

    if common is not None:
        encrypted, key = cipher.encrypt(victims.images, common), common
    else:
        encrypted, key = cipher.encrypt_fresh(victims.images, source)

    scenario = Scenario(cipher, attacker.images, encrypt, source, budget_seconds)
    rows = [
        {
            "attack": "encrypted image itself",
            **similarity(encrypted, victims.images),
            "seconds": 0.0,
        }
    ]
    columns = {"plain": victims.images, "encrypted": encrypted}
    report: dict[str, Any] = {
        "keys": keys,
        "cipher": cipher.name,
        "victims": n,
        "attacker_images": len(attacker),
        "skipped": {},
    }
    for attack in selected:
        why = attack.refusal(cipher)
        if why:
            report["skipped"][attack.name] = why
            continue
        result = attack.run(encrypted, scenario)
        if result.reconstructions is None:
            report[result.name] = result.extra
            continue
        columns[result.name] = result.reconstructions
        row = {
            "attack": result.name,
            **similarity(result.reconstructions, victims.images),
            "seconds": result.seconds,
        }
        placed = result.extra.pop("placed_folds", None)
        if placed is not None:  # against what the owners encrypted (any owner noise included)
            size = result.extra["block_size"]
            truth = sorted_fold(cipher.decrypt(encrypted, key))
            row["blocks_placed"] = blocks_placed(placed, truth, size)
            row["blocks_chance"] = size * size / (h * w)
        rows.append(row)
    report.update(rows=rows, machine=machine(), git_commit=commit, seed=seed)
    return report, columns


def write_report(report: dict[str, Any], columns: dict[str, torch.Tensor], out: Path | str) -> Path:
    """Write ``report.json``, ``report.md`` and ``grid.png`` (SSIM under each tile) into ``out``."""
    out = Path(out)
    write_bytes_atomic(out / "report.json", (json.dumps(report, indent=2) + "\n").encode())
    lines = [
        f"{report['cipher'].upper()}, {report['keys']} keys, {report['victims']} victims\n",
        "| attack | SSIM mean | SSIM std | PSNR mean (dB) | PSNR std | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["rows"]:
        ssim, psnr = (
            f"{r['ssim_mean']:.4f} | {r['ssim_std']:.4f}",
            f"{r['psnr_mean']:.2f} | {r['psnr_std']:.2f}",
        )
        lines.append(f"| {r['attack']} | {ssim} | {psnr} | {r['seconds']:.1f} |")
    for r in report["rows"]:
        if "blocks_placed" in r:
            lines.append(
                f"\n{r['attack']}: {r['blocks_placed']:.1%} of the victims' blocks placed at "
                f"their true position (chance {r['blocks_chance']:.1%})."
            )
    if "keyspace" in report:
        space = report["keyspace"]
        lines.append(f"\nKey space: {space['bits']:.0f} bits per image; {space['remark']}.")
    for name, why in report.get("skipped", {}).items():
        lines.append(f"\nNot run: {name} ({why}).")
    write_bytes_atomic(out / "report.md", ("\n".join(lines) + "\n").encode())
    plain = columns["plain"][:GRID_ROWS]
    scores = {name: per_image(images[:GRID_ROWS], plain)[0] for name, images in columns.items()}
    rows = [[images[i].numpy() for images in columns.values()] for i in range(len(plain))]
    captions = [[f"{scores[name][i]:.2f}" for name in columns] for i in range(len(plain))]
    grid = image_grid(rows, list(columns), captions, scale=3)
    with atomic_path(out / "grid.png") as tmp:
        grid.save(tmp, format="PNG")
    return out
