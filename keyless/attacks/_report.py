"""Run every requested attack on victim ciphertexts and report SSIM/PSNR, as data and a grid."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from keyless._atomic import atomic_path, write_bytes_atomic
from keyless.attacks._classic import HelperImageAttack, fr_advanced_attack, fr_attack, keyspace_bits
from keyless.attacks._learned import GANAttack, ITNAttack
from keyless.attacks._metrics import per_image, similarity
from keyless.cipher import Cipher, Key, PixelCipher
from keyless.data import ImageSet
from keyless.errors import UnknownNameError
from keyless.keys import SeedSource
from keyless.records import git_commit, machine
from keyless.visualize import image_grid

ATTACKS = ("keyspace", "fr", "fr-advanced", "helper", "itn", "itn-unet", "gan")
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
    """Encrypt ``victims`` (independent or common keys) and attack them.

    The attacker owns ``attacker`` (plain images disjoint from the victims) and, for the helper
    attack, may have one chosen image encrypted the way the victims' next image would be.
    Learned attacks train for at most ``budget_seconds`` each. The helper attack decodes PE
    keys only; on other ciphers it is listed under ``skipped``.

    Returns:
        The report (rows of SSIM/PSNR mean and std, seconds per attack) and the images by column.
    """
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise UnknownNameError(f"unknown attack {', '.join(unknown)} (known: {', '.join(ATTACKS)})")
    n, h, w, _ = victims.images.shape
    source = SeedSource(seed)
    common = cipher.keygen(1, (h, w), source) if keys == "common" else None
    encrypted = cipher.encrypt(
        victims.images, common if common is not None else cipher.keygen(n, (h, w), source)
    )
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
    for name in attacks:
        if name == "keyspace":
            report["keyspace"] = keyspace_bits(cipher, h, w)
            continue
        if name == "helper" and not isinstance(cipher, PixelCipher):
            report["skipped"][name] = f"decodes PE keys only, not {cipher.name}"
            continue
        start = time.perf_counter()
        columns[name] = _reconstruct(
            name, encrypted, attacker, cipher, common, source, budget_seconds
        )
        rows.append(
            {
                "attack": name,
                **similarity(columns[name], victims.images),
                "seconds": time.perf_counter() - start,
            }
        )
    report.update(rows=rows, machine=machine(), git_commit=git_commit(), seed=seed)
    return report, columns


def _reconstruct(
    name: str,
    encrypted: torch.Tensor,
    attacker: ImageSet,
    cipher: Cipher,
    common: Key | None,
    source: SeedSource,
    budget_seconds: float,
) -> torch.Tensor:
    """One attack's guesses of the victims' plain images."""
    if name == "fr":
        return fr_attack(encrypted)
    if name == "fr-advanced":
        return fr_advanced_attack(encrypted)
    if name == "helper":
        h, w = encrypted.shape[1:3]

        def oracle(helper: torch.Tensor) -> torch.Tensor:  # the victim's device encrypts it
            key = common if common is not None else cipher.keygen(1, (h, w), source)
            return cipher.encrypt(helper, key)

        return HelperImageAttack(oracle).reconstruct(encrypted)
    epochs = 1000  # learned attacks stop on their time budget
    if name == "gan":
        attack = GANAttack(epochs, budget_seconds=budget_seconds).fit(attacker.images, encrypted)
    else:
        generator = "unet" if name == "itn-unet" else "pixel"
        attack = ITNAttack(generator, cipher, epochs, budget_seconds=budget_seconds)
        attack.fit(attacker.images, source)
    return attack.reconstruct(encrypted)


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
