"""The training engine: the owner encrypts once, the cloud trains on ciphertexts only.

Runs in one process or under ``torchrun`` (DistributedDataParallel: gloo on CPU, nccl on CUDA).
Every epoch ends with an atomic checkpoint, and a long epoch (ResNet-18 on a CPU) gets more every
``checkpoint_minutes``; ``resume=True`` continues from the last one, mid-epoch included. The
owner's keys come from a seed recorded in the run (so an interrupted run resumes on the same
ciphertexts); in deployment the owner uses ``keyless encrypt`` with CSPRNG keys instead.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from keyless._atomic import atomic_path
from keyless.augment import flip_where, random_translate
from keyless.cipher import Cipher, Key, create_cipher
from keyless.data import ImageSet, load_splits
from keyless.errors import InputError
from keyless.evaluate import accuracy, evaluate, predict
from keyless.keys import SeedSource
from keyless.models import create_model
from keyless.records import git_commit, machine, write_record
from keyless.train._config import TrainConfig

WHITEN_SAMPLES = 5000
LOOKAHEAD_EVERY = 5


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` picks bf16 on CUDA and on CPUs with native bf16 (AMX or AVX-512 BF16), else fp32.

    Without native support bf16 autocast is emulated and ran 20x slower than fp32 (measured on a
    2-core AVX2 AMD EPYC).
    """
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16"
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "fp32"
    return "bf16" if ("amx_bf16" in flags or "avx512_bf16" in flags) else "fp32"


def derived_source(seed: int, purpose: str) -> SeedSource:
    """An independent seeded key source per purpose (owner's keys, test keys, re-keying...)."""
    return SeedSource(int.from_bytes(hashlib.sha256(f"{seed}/{purpose}".encode()).digest()[:8]))


@dataclass
class Distributed:
    rank: int = 0
    world: int = 1

    @classmethod
    def from_env(cls, device: torch.device) -> Distributed:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        return cls(int(os.environ.get("RANK", "0")), world)


def owner_encrypt(
    train: ImageSet, config: TrainConfig, cipher: Cipher, seed: int
) -> tuple[ImageSet, Key | None]:
    """What the owner uploads (training images as plain, common-key or independent-key
    ciphertexts) and the owner's key: the common key, the per-image keys, or None for plain."""
    if config.keys == "plain":
        return train, None
    if config.keys not in ("common", "independent"):
        raise ValueError(f"keys must be plain, common or independent, got {config.keys!r}")
    n, h, w, _ = train.images.shape
    key = cipher.keygen(1 if config.keys == "common" else n, (h, w), derived_source(seed, "owner"))
    return ImageSet(cipher.encrypt(train.images, key), train.labels, train.classes), key


def split_data(splits: dict[str, ImageSet], config: TrainConfig) -> tuple[ImageSet, ImageSet]:
    """(train, test): the owner's training images (optionally the first N) and the test split."""
    if "train" not in splits or "test" not in splits:
        raise InputError(f"training needs train and test splits, found {', '.join(splits)}")
    train = splits["train"]
    if config.max_train_images:
        train = train.subset(slice(0, config.max_train_images))
    return train, splits["test"]


def hold_out(n: int, size: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices (train, validation): ``size`` random uploaded images kept aside for validation
    (never the test set)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[size:], order[:size]


def build_model(config: TrainConfig, num_classes: int) -> nn.Module:
    """The run's classifier (a block-wise adaptation network takes the cipher's block size)."""
    return create_model(
        config.model,
        num_classes,
        config.stem,
        config.adapt,
        block_size=config.cipher.get("block_size", 4),
        **config.model_kwargs,
    )


def lr_factor(config: TrainConfig, step: int, total: int, steps_per_epoch: int) -> float:
    """The schedule: airbench's triangle (rise, then linear decay) or the paper's step decay."""
    if config.schedule == "step":
        epoch = step / steps_per_epoch
        return 0.1 ** sum(epoch >= m for m in config.milestones)
    peak = int(config.warmup_fraction * total)
    if step < peak:
        return config.lr_start + (1 - config.lr_start) * step / max(peak, 1)
    return 1 + (config.lr_end - 1) * (step - peak) / max(total - peak, 1)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.SGD:
    """SGD with three groups: the whitening bias, the backbone's BatchNorm parameters, the rest.

    Biases learn ``bias_lr_scale`` times faster (airbench); each group's ``base`` lr is scaled by
    the schedule; the whitening bias group is frozen (lr 0) after ``whiten_bias_epochs``.
    """
    whiten = getattr(model.backbone, "whiten", None)
    whiten_bias = [whiten.bias] if whiten is not None else []
    norms = [
        p
        for m in model.backbone.modules()  # the adaptation network's norms learn at the base lr
        if isinstance(m, nn.BatchNorm2d)
        for p in m.parameters()
        if p.requires_grad
    ]
    special = {id(p) for p in whiten_bias + norms}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in special]
    fast_lr = config.lr * config.bias_lr_scale
    groups = [
        {
            "params": whiten_bias,
            "base": fast_lr,
            "weight_decay": config.weight_decay / config.bias_lr_scale,
        },
        {
            "params": norms,
            "base": fast_lr,
            "weight_decay": config.weight_decay / config.bias_lr_scale,
        },
        {"params": rest, "base": config.lr, "weight_decay": config.weight_decay},
    ]
    for group in groups:
        group["lr"] = group["base"]
    return torch.optim.SGD(groups, momentum=config.momentum, nesterov=config.nesterov)


class Lookahead:
    """airbench's lookahead: every few steps the weights move to an EMA of themselves."""

    def __init__(self, model: nn.Module) -> None:
        self.ema = {
            k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()
        }

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float) -> None:
        state = model.state_dict()
        for name, ema in self.ema.items():
            ema.lerp_(state[name], 1 - decay)
            state[name].copy_(ema)


def train(
    config: TrainConfig,
    data: Path | str | dict[str, ImageSet],
    out: Path | str,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    command: str | None = None,
    checkpoint_minutes: float = 10.0,
) -> dict[str, Any]:
    """Train and evaluate one configuration; writes ``out/checkpoint.pt`` and ``out/record.json``.

    Args:
        config: the run's configuration (see :data:`keyless.train.RECIPES`).
        data: a dataset path for :func:`keyless.data.load_splits`, or loaded splits.
        out: the run folder.
        resume: continue from ``out/checkpoint.pt`` if it exists.
        device: ``cpu`` or ``cuda``; default CUDA when available.
        command: the command line that started the run, kept in the record.
        checkpoint_minutes: also checkpoint within an epoch after this much training time
            (the epoch's order, random state and running totals are saved with it).

    Returns:
        The run record (also written to ``out/record.json``).
    """
    out = Path(out)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    ddp = Distributed.from_env(dev)
    if dev.type == "cuda" and ddp.world > 1:
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    checkpoint_path = out / "checkpoint.pt"
    checkpoint = (
        torch.load(checkpoint_path, weights_only=False)
        if resume and checkpoint_path.exists()
        else None
    )
    if checkpoint is not None:
        config = TrainConfig.from_dict(checkpoint["config"])
    seed = config.seed if config.seed is not None else int.from_bytes(os.urandom(4), "little")
    if checkpoint is not None:
        seed = checkpoint["seed"]

    splits = load_splits(data) if not isinstance(data, dict) else data
    train_plain, test = split_data(splits, config)
    cipher = create_cipher(**config.cipher)
    client = config.augment == "client" and config.keys != "plain"
    if client and config.rekey:
        raise ValueError("rekey re-encrypts in the cloud; it does not go with client augmentation")
    uploaded, owner_key = owner_encrypt(train_plain, config, cipher, seed)
    common_key = owner_key if config.keys == "common" else None
    train_index, val_index = hold_out(len(uploaded), config.val_size, seed)
    val = uploaded.subset(val_index) if config.val_size else None
    uploaded = uploaded.subset(train_index)
    client_key = None
    if client:  # the owner augments plain images and encrypts every augmented batch itself
        client_key = owner_key if len(owner_key) == 1 else owner_key[train_index]
        client_key = client_key.to(dev)
        client_images = train_plain.subset(train_index).images
    del train_plain  # from here on the cloud holds ciphertexts only (unless client augmentation)

    torch.manual_seed(seed)
    model = build_model(config, len(uploaded.classes))
    whiten_sample = uploaded.images[
        torch.randperm(len(uploaded), generator=torch.Generator().manual_seed(seed))[
            :WHITEN_SAMPLES
        ]
    ]
    model.init_from_data(whiten_sample)
    model.to(dev)
    optimizer = make_optimizer(model, config)
    lookahead = Lookahead(model) if config.lookahead else None
    net = nn.parallel.DistributedDataParallel(model) if ddp.world > 1 else model

    n = len(uploaded)
    steps_per_epoch = n // config.batch_size if n >= config.batch_size else 1
    total_steps = math.ceil(config.epochs * steps_per_epoch)
    history: list[dict[str, Any]] = []
    start_epoch, train_seconds, partial = 0, 0.0, None
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        if lookahead is not None:
            lookahead.ema = checkpoint["lookahead"]
        start_epoch, train_seconds, history = (
            checkpoint["epoch"],
            checkpoint["train_seconds"],
            checkpoint["history"],
        )
        partial = checkpoint.get("partial")  # set when saved within an epoch

    images = (client_images if client else uploaded.images).to(dev)
    labels = uploaded.labels.to(dev)
    flip_base = torch.rand(n, generator=torch.Generator().manual_seed(seed)) < 0.5
    per_rank = config.batch_size // ddp.world
    precision = resolve_precision(config.precision, dev)
    autocast = (
        torch.autocast(dev.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
    )
    loss_fn = nn.CrossEntropyLoss(
        label_smoothing=config.label_smoothing, reduction=config.loss_reduction
    )

    def save(epoch: int, partial: dict[str, Any] | None = None) -> None:
        """Checkpoint after ``epoch`` whole epochs (and ``partial``'s steps of the next)."""
        state = {
            "config": config.to_dict(),
            "seed": seed,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "lookahead": lookahead.ema if lookahead else None,
            "epoch": epoch,
            "partial": partial,
            "train_seconds": train_seconds,
            "history": history,
            "classes": uploaded.classes,
        }
        with atomic_path(checkpoint_path) as tmp:
            torch.save(state, tmp)

    for epoch in range(start_epoch, math.ceil(total_steps / steps_per_epoch)):
        generator = torch.Generator().manual_seed(seed * 1000 + epoch)
        epoch_images = images
        if config.rekey and config.keys != "plain":
            epoch_images = cipher.rekey(images, derived_source(seed, f"rekey/{epoch}"))[0]
        order = torch.randperm(n, generator=generator).to(dev)
        flips = (
            flip_base ^ bool(epoch % 2)
            if config.alternating_flip
            else torch.rand(n, generator=generator) < 0.5
        ).to(dev)  # moved once per epoch, not per step
        steps = min(steps_per_epoch, total_steps - epoch * steps_per_epoch)
        model.train()
        first, seen, loss_sum, correct, earlier = 0, 0, 0.0, 0, 0.0
        if partial is not None:  # resume mid-epoch: same order and flips, then the saved state
            generator.set_state(partial["rng"])
            first, seen, loss_sum, correct, earlier = (
                partial[k] for k in ("step", "seen", "loss_sum", "correct", "seconds")
            )
            partial = None
        start = last_save = time.perf_counter()
        bar = tqdm(
            range(first, steps),
            initial=first,
            total=steps,
            desc=f"epoch {epoch + 1}",
            disable=not progress or ddp.rank != 0,
            mininterval=2,
            leave=False,
        )
        for i in bar:
            step = epoch * steps_per_epoch + i
            index = order[i * config.batch_size : (i + 1) * config.batch_size][
                ddp.rank * per_rank : (ddp.rank + 1) * per_rank
            ]
            x = epoch_images[index]
            if config.flip:
                x = flip_where(x, flips[index])
            x = random_translate(x, config.translate, generator)
            if client_key is not None:
                x = cipher.encrypt(x, client_key if len(client_key) == 1 else client_key[index])
            factor = lr_factor(config, step, total_steps, steps_per_epoch)
            for group in optimizer.param_groups:
                group["lr"] = group["base"] * factor
            if step >= config.whiten_bias_epochs * steps_per_epoch:
                optimizer.param_groups[0]["lr"] = 0.0  # whitening bias frozen from here on
            with autocast:
                logits = net(x)
                loss = loss_fn(logits.float(), labels[index]) * (
                    ddp.world if config.loss_reduction == "sum" else 1
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if lookahead is not None and step % LOOKAHEAD_EVERY == 0:
                lookahead.update(model, decay=0.95**LOOKAHEAD_EVERY * factor**3)
            seen += len(index)
            loss_sum += (
                loss.item() / ddp.world
                if config.loss_reduction == "sum"
                else loss.item() * len(index)
            )
            correct += (logits.argmax(1) == labels[index]).sum().item()
            now = time.perf_counter()
            bar.set_postfix(
                loss=f"{loss_sum / seen:.3f}",
                img_s=f"{seen * ddp.world / (earlier + now - start):.0f}",
            )
            if ddp.rank == 0 and i + 1 < steps and now - last_save >= 60 * checkpoint_minutes:
                save(epoch, {"step": i + 1, "seen": seen, "loss_sum": loss_sum,
                             "correct": correct, "seconds": earlier + now - start,
                             "rng": generator.get_state()})  # fmt: skip
                last_save = time.perf_counter()
        if lookahead is not None and (epoch + 1) * steps_per_epoch >= total_steps:
            lookahead.update(model, decay=1.0)
        seconds = earlier + time.perf_counter() - start
        train_seconds += seconds
        entry = {
            "epoch": epoch + 1,
            "loss": loss_sum / max(seen, 1),
            "train_acc": correct / max(seen, 1),
            "seconds": seconds,
        }
        if val is not None:
            logits = predict(model, val.images, device=dev, precision=precision)
            entry["val_acc"] = accuracy(logits, val.labels)
        history.append(entry)
        if ddp.rank == 0:
            if progress:
                tqdm.write(
                    " ".join(
                        f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in entry.items()
                    )
                )
            save(epoch + 1)

    metrics = evaluate(
        model,
        test,
        cipher,
        derived_source(seed, "test"),
        common_key,
        device=dev,
        precision=precision,
        progress=progress and ddp.rank == 0,
    )
    record = {
        "command": command,
        "config": config.to_dict(),
        "seed": seed,
        "git_commit": git_commit(),
        "history": history,
        "train_seconds": train_seconds,
        "test": metrics,
        "machine": machine(),
        "world_size": ddp.world,
        "device": str(dev),
        "train_images": n,
        "precision": precision,
    }
    if ddp.rank == 0:
        write_record(out / "record.json", record)
    if ddp.world > 1:
        dist.barrier()
        dist.destroy_process_group()
    return record


def load_run(run: Path | str, device: str = "cpu") -> tuple[nn.Module, TrainConfig, dict[str, Any]]:
    """The trained model, its config and the raw checkpoint of a run folder."""
    path = Path(run) / "checkpoint.pt"
    if not path.exists():
        raise InputError(f"{run}: no checkpoint.pt; is it a keyless run folder?")
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=False)
        config = TrainConfig.from_dict(checkpoint["config"])
        model = build_model(config, len(checkpoint["classes"]))
        model.load_state_dict(checkpoint["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a keyless checkpoint ({exc})") from None
    return model.to(device).eval(), config, checkpoint


def evaluate_run(
    run: Path | str, data: Path | str, tta: bool = True, device: str | None = None
) -> dict[str, float]:
    """Re-run the evaluation protocol on a finished run (common key rebuilt from its seed)."""
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, config, checkpoint = load_run(run, str(dev))
    seed = checkpoint["seed"]
    splits = load_splits(data)
    train_set, test = split_data(splits, config)
    cipher = create_cipher(**config.cipher)
    common_key = None
    if config.keys == "common":
        h, w = train_set.images.shape[1:3]
        common_key = cipher.keygen(1, (h, w), derived_source(seed, "owner"))
    precision = resolve_precision(config.precision, dev)
    source = derived_source(seed, "test")
    return evaluate(model, test, cipher, source, common_key, tta, dev, precision, progress=True)
