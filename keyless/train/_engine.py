"""The training engine: the owner encrypts once, the cloud trains on ciphertexts only.

``train`` reads top to bottom: the owner's upload, the model and its optimizer, resume, the
epochs, the evaluation and the record. The tricks of each step live in
:mod:`keyless.train.recipes`; this module adds what a real run needs around them: processes
(``torchrun``: DistributedDataParallel with gloo on CPU, nccl on CUDA), atomic checkpoints at
every epoch's end and every ``checkpoint_minutes`` inside long epochs, and an exact resume (same
batches, same augmentation, same result).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Collection
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from tqdm import tqdm

from keyless.data import ImageSet
from keyless.errors import InputError
from keyless.evaluate import accuracy, evaluate_parts, predict
from keyless.hardware import resolve_device, resolve_precision
from keyless.runs import Checkpoint, Run, RunRecord, TrainConfig, build_model, git_commit, machine
from keyless.runs._folder import one_line
from keyless.train import recipes
from keyless.train._feed import MemoryFeed, ShardFeed
from keyless.upload import (
    Manifest,
    ShardSet,
    Upload,
    data_source,
    derived_source,
    load_received,
    prepare_upload,
    receive_upload,
    scored_parts,
    split_data,
    upload_config,
)


@dataclass
class Processes:
    """This process's rank among ``world`` (1 without ``torchrun``) and its device."""

    device: torch.device
    rank: int = 0
    world: int = 1

    @classmethod
    def start(cls, device: str | None) -> Processes:
        """Join the process group that ``torchrun`` describes in the environment, if any."""
        dev = resolve_device(device)
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if dev.type == "cuda" and world > 1:  # one GPU a process, before NCCL picks device 0
            dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(dev)
        if world > 1 and not dist.is_initialized():
            dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
        return cls(dev, int(os.environ.get("RANK", "0")), world)

    def wrap(self, model: nn.Module) -> nn.Module:
        return nn.parallel.DistributedDataParallel(model) if self.world > 1 else model

    def finish(self) -> None:
        if self.world > 1:
            dist.barrier()
            dist.destroy_process_group()


@dataclass
class EpochTotals:
    """Running totals of an epoch, saved with a mid-epoch checkpoint so a resume continues it."""

    step: int = 0
    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seconds: float = 0.0
    rng: torch.Tensor | None = None  # the epoch generator's state at ``step``

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class Trainer:
    """A run in progress: the cloud's data on the device, the learner, and the run folder."""

    config: TrainConfig
    seed: int
    upload: Upload
    learner: recipes.Learner
    run: Run
    procs: Processes
    precision: str
    progress: bool
    checkpoint_minutes: float
    feed: MemoryFeed | ShardFeed  # where the batches come from (:mod:`keyless.train._feed`)
    data: str | None = None  # what the run trains on (:func:`data_source`)
    epoch: int = 0
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    resume_totals: EpochTotals | None = None

    def __post_init__(self) -> None:
        client = self.upload.client
        if client is not None:  # the owner's keys go where its augmented batches are encrypted
            client.key = client.key.to(self.procs.device)
        n = len(self.feed)
        self.first_flips = torch.rand(n, generator=torch.Generator().manual_seed(self.seed)) < 0.5

    @property
    def epochs(self) -> int:
        return math.ceil(self.learner.total_steps / self.learner.steps_per_epoch)

    def checkpoint(self, partial: EpochTotals | None = None) -> Checkpoint:
        lookahead = self.learner.lookahead
        return Checkpoint(
            config=self.config,
            seed=self.seed,
            classes=list(self.upload.train.classes),
            model=self.learner.model.state_dict(),
            input_size=self.feed.image_size,
            optimizer=self.learner.optimizer.state_dict(),
            lookahead=lookahead.ema if lookahead is not None else None,
            epoch=self.epoch,
            partial=partial.as_dict() if partial is not None else None,
            train_seconds=self.train_seconds,
            history=self.history,
            data=self.data,
            batch_order=self.feed.order,
        )

    def save(self, partial: EpochTotals | None = None) -> None:
        if self.procs.rank == 0:
            self.run.save(self.checkpoint(partial))

    def batch(
        self, images: torch.Tensor, index: torch.Tensor, flips: torch.Tensor,
        generator: torch.Generator,
    ) -> torch.Tensor:  # fmt: skip
        """The augmented batch of the images at ``index`` (the owner encrypts it under client
        augmentation)."""
        x = recipes.augment(images, flips[index], self.config, generator)
        client = self.upload.client
        return client.encrypt(self.config.cipher, x, index) if client is not None else x

    def run_epoch(self) -> None:
        """Train one epoch (or its rest, after a mid-epoch resume) and checkpoint it."""
        generator = torch.Generator().manual_seed(self.seed * 1000 + self.epoch)
        self.feed.start_epoch(self.epoch, generator)
        flips = recipes.epoch_flips(self.first_flips, self.epoch, self.config, generator)
        flips = flips.to(self.procs.device)
        totals, self.resume_totals = self.resume_totals or EpochTotals(), None
        if totals.rng is not None:
            generator.set_state(totals.rng)
        learner, size = self.learner, self.config.batch_size
        first_step = self.epoch * learner.steps_per_epoch
        steps = min(learner.steps_per_epoch, learner.total_steps - first_step)
        batches = self.feed.batches(totals.step, steps, size)
        start = last_save = time.perf_counter()
        earlier = totals.seconds
        bar = tqdm(range(totals.step, steps), initial=totals.step, total=steps, leave=False,
                   desc=f"epoch {self.epoch + 1}", mininterval=2,
                   disable=not self.progress or self.procs.rank != 0)  # fmt: skip
        self.learner.model.train()
        for i, (images, labels, index) in zip(bar, batches, strict=True):
            x = self.batch(images, index, flips, generator)
            loss, correct = learner.step(x, labels, first_step + i)
            totals.step, totals.seen = i + 1, totals.seen + len(index)
            totals.loss_sum, totals.correct = totals.loss_sum + loss, totals.correct + correct
            totals.seconds = earlier + time.perf_counter() - start
            rate = totals.seen * self.procs.world / totals.seconds
            bar.set_postfix(loss=f"{totals.loss_sum / totals.seen:.3f}", img_s=f"{rate:.0f}")
            if i + 1 < steps and time.perf_counter() - last_save >= 60 * self.checkpoint_minutes:
                totals.rng = generator.get_state()
                self.save(totals)
                last_save = time.perf_counter()
        self.end_epoch(totals)

    def end_epoch(self, totals: EpochTotals) -> None:
        """Log the epoch (with validation accuracy when a split was carved) and checkpoint."""
        self.train_seconds += totals.seconds
        entry = {
            "epoch": self.epoch + 1,
            "loss": totals.loss_sum / max(totals.seen, 1),
            "train_acc": totals.correct / max(totals.seen, 1),
            "seconds": totals.seconds,
        }
        val = self.upload.val
        if val is not None:
            logits = predict(self.learner.model, val.images, device=self.procs.device,
                             precision=self.precision)  # fmt: skip
            entry["val_acc"] = accuracy(logits, val.labels)
        self.history.append(entry)
        self.epoch += 1
        if self.progress and self.procs.rank == 0:
            tqdm.write(" ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                                for k, v in entry.items()))  # fmt: skip
        self.save()


def _learner(
    config: TrainConfig,
    upload: Upload,
    feed: MemoryFeed | ShardFeed,
    seed: int,
    procs: Processes,
    precision: str,
    compile_model: bool = False,
) -> recipes.Learner:
    """The model (whitening initialised on the uploaded images), its optimizer and lookahead;
    ``compile_model`` runs the training forward and backward through ``torch.compile``."""
    torch.manual_seed(seed)
    model = build_model(config, len(upload.train.classes))
    model.check_input_size(feed.image_size, config.model)
    train = upload.train  # ciphertexts, also when the owner keeps plain images to augment
    if model.inits_from_data:
        if isinstance(train, ShardSet):  # whole shards drawn at random, enough for the sample
            train = train.sample(recipes.WHITEN_SAMPLES, seed)
        model.init_from_data(recipes.whitening_sample(train.images, seed))
    model.to(procs.device)
    steps_per_epoch = feed.steps_per_epoch(config.batch_size)
    net = procs.wrap(model)
    return recipes.Learner(
        model=model,
        net=torch.compile(net) if compile_model else net,
        optimizer=recipes.make_optimizer(model, config),
        lookahead=recipes.Lookahead(model) if config.lookahead else None,
        config=config,
        total_steps=math.ceil(config.epochs * steps_per_epoch),
        steps_per_epoch=steps_per_epoch,
        autocast=torch.autocast(procs.device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else nullcontext(),
        world=procs.world,
    )


def _feed(
    config: TrainConfig, upload: Upload, seed: int, procs: Processes, readers: int
) -> MemoryFeed | ShardFeed:
    """Where the run's batches come from: the upload's shards streamed from disk, or the
    training images (the owner's plain ones under client augmentation) on the device."""

    def rekey(images: torch.Tensor, purpose: str) -> torch.Tensor:
        """The cloud's re-keying (``--rekey``), one fresh key source per purpose."""
        if not config.rekey or config.keys == "plain":
            return images
        return config.cipher.rekey(images, derived_source(seed, f"rekey/{purpose}"))[0]

    train, rank, world = upload.train, procs.rank, procs.world
    if isinstance(train, ShardSet):
        return ShardFeed(train, procs.device, seed, rekey, rank, world, readers)
    images = upload.client.images if upload.client is not None else train.images
    return MemoryFeed(images.to(procs.device), train.labels.to(procs.device), rekey, rank, world)


def _check_optimizer_state(optimizer: Any) -> None:
    """A ``ValueError`` naming the first tensor of a loaded optimizer state whose shape is not
    its parameter's: torch loads them unchecked, and the first step would fail mid-run."""
    for part in getattr(optimizer, "optimizers", (optimizer,)):
        for param, state in part.state.items():
            for name, value in state.items():
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                    raise ValueError(f"its optimizer state's {name} of shape "
                                     f"{tuple(value.shape)} is not of its parameter's "
                                     f"{tuple(param.shape)}")  # fmt: skip


def _restore(trainer: Trainer, checkpoint: Checkpoint) -> None:
    """Continue from ``checkpoint``: weights, optimizer, lookahead, history, epoch position; a
    checkpoint whose states do not fit its config is one line naming it."""
    learner, where = trainer.learner, trainer.run.checkpoint_path
    if checkpoint.optimizer is None:
        raise InputError(f"{where}: holds no optimizer state (a model saved for inference only); "
                         "it cannot be resumed")  # fmt: skip
    try:
        learner.model.load_state_dict(checkpoint.model)
        learner.optimizer.load_state_dict(checkpoint.optimizer)
        _check_optimizer_state(learner.optimizer)
        if learner.lookahead is not None:
            ema = checkpoint.lookahead or {}
            shapes = {k: v.shape for k, v in learner.lookahead.ema.items()}
            if {k: v.shape for k, v in ema.items()} != shapes:
                raise ValueError("its lookahead state is not of this model")
            device = next(learner.model.parameters()).device  # the checkpoint loads on the CPU
            learner.lookahead.ema = {k: v.to(device) for k, v in ema.items()}
    except (RuntimeError, KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"{where}: does not fit its config ({one_line(exc)})") from None
    trainer.epoch, trainer.train_seconds = checkpoint.epoch, checkpoint.train_seconds
    trainer.history = checkpoint.history
    if checkpoint.partial is not None:
        order = trainer.feed.order
        if checkpoint.batch_order not in (None, order):  # its next batches would be others
            raise InputError(f"{where}: stopped within an epoch whose batches were drawn "
                             f"{checkpoint.batch_order}; this call draws them {order} (resume "
                             "it as it ran: with or without --in-memory)")  # fmt: skip
        trainer.resume_totals = EpochTotals(**checkpoint.partial)


def train(
    config: TrainConfig,
    data: Path | str | dict[str, ImageSet],
    out: Path | str,
    resume: bool = False,
    device: str | None = None,
    progress: bool = True,
    command: str | None = None,
    checkpoint_minutes: float = 10.0,
    compile_model: bool = False,
    require_upload: bool = False,
    given: Collection[str] | None = None,
    in_memory: bool = False,
    readers: int = 1,
) -> dict[str, Any]:
    """Train and evaluate one configuration; writes the run folder ``out`` (:mod:`keyless.runs`).

    Args:
        config: the run's configuration (see :data:`keyless.train.RECIPES`).
        data: a dataset path for :func:`keyless.data.load_splits`, or loaded splits.
        resume: continue from ``out``'s checkpoint if it exists, under the config it was
            started with: values of ``config`` that contradict it are a :class:`ConfigError`
            (:meth:`TrainConfig.check_resume`); a finished run's record is returned as it is,
            once ``data`` is checked to be its.
        device: ``cpu`` or ``cuda``; default CUDA when available.
        command: the command line that started the run, kept in the record.
        checkpoint_minutes: also checkpoint within an epoch after this much training time.
        compile_model: ``torch.compile`` the training step's network (pays off on a GPU, where
            the first epoch absorbs the compile time; results match to rounding).
        require_upload: refuse ``data`` unless it is an owner's encrypted upload (the cloud's
            setting: no plain image may be trained on by mistake).
        given: on ``resume``, the values of ``config`` the caller set, which must agree with
            the run's (the CLI: the options on its command line); ``None``: every field.
        in_memory: read a sharded upload whole into memory (on the device) instead of
            streaming its shards (:mod:`keyless.train._feed`); uploads of one file per image
            and plain datasets are always read whole.
        readers: processes that read and check shards ahead of training (0: the training
            process reads them); when streaming.

    Returns:
        The run record as JSON-shaped data (:meth:`keyless.runs.RunRecord.to_dict`; also
        written to ``out/record.json``).
    """
    run, procs = Run(out), Processes.start(device)
    commit = git_commit()  # the code that trains, whatever is committed while it runs
    checkpoint = run.load() if resume and run.has_checkpoint() else None
    manifest, splits = (
        (None, data)
        if isinstance(data, dict)
        else load_received(Path(data), require_upload, stream=not in_memory)
    )
    source = data_source(manifest, splits)
    config = upload_config(config, manifest) if manifest is not None else config
    if checkpoint is not None:
        if checkpoint.data is not None and checkpoint.data != source:  # older ones did not say
            raise InputError(f"resuming {out}: the run trained on {checkpoint.data}, --data "
                             f"holds {source}")  # fmt: skip
        config.check_resume(checkpoint.config, given)
        config = checkpoint.config
        splits = checkpoint.adopt_classes(splits, f"resuming {out}")
        if (finished := run.finished_record()) is not None:  # the same data, checked above
            procs.finish()
            return finished.to_dict()  # nothing to encrypt, train or evaluate again
    else:
        config.check_new_run()
        run.record_path.unlink(missing_ok=True)  # a new run: no old record beside new weights
    seed = checkpoint.seed if checkpoint is not None else config.seed
    seed = seed if seed is not None else int.from_bytes(os.urandom(4), "little")
    train_plain, test = split_data(splits, config)
    if manifest is not None:  # the owner's ciphertexts: nothing to encrypt, no key here
        upload = receive_upload(train_plain, config, seed)
    else:  # the simulated owner encrypts (the owner's copy stays in upload.client if needed)
        upload = prepare_upload(train_plain, config, config.cipher, seed)
    del train_plain, splits
    precision = resolve_precision(config.precision, procs.device)
    feed = _feed(config, upload, seed, procs, readers)
    learner = _learner(config, upload, feed, seed, procs, precision, compile_model)
    trainer = Trainer(config, seed, upload, learner, run, procs, precision,
                      progress, checkpoint_minutes, feed, source)  # fmt: skip
    if checkpoint is not None:
        _restore(trainer, checkpoint)
    while trainer.epoch < trainer.epochs:
        trainer.run_epoch()
    metrics = evaluate_parts(learner.model, scored_parts(test, seed, readers), config.cipher,
                             upload.common_key, device=procs.device, precision=precision,
                             progress=progress and procs.rank == 0,
                             ciphertexts=manifest is not None)  # fmt: skip
    record = RunRecord(
        command=command,
        config=config,
        seed=seed,
        git_commit=commit,
        history=trainer.history,
        train_seconds=trainer.train_seconds,
        test=metrics,
        machine=machine(),
        world_size=procs.world,
        device=str(procs.device),
        train_images=len(upload.train),
        precision=precision,
        keys_note=_keys_note(config, seed, manifest),
        data="ciphertexts: an owner's upload" if manifest else "plain images (simulated owner)",
        data_source=source,
        batch_order=trainer.feed.order,
        **({"upload": manifest.to_dict()} if manifest else {}),
    )
    if procs.rank == 0:
        run.write_record(record)
    procs.finish()
    return record.to_dict()


@dataclass(frozen=True)
class TrainOutcome:
    """What :func:`train_run` did: the run record, and whether the run had finished before (then
    nothing was encrypted, trained or evaluated again)."""

    record: dict[str, Any]
    already_finished: bool


def train_run(
    config: TrainConfig,
    data: Path | str | dict[str, ImageSet],
    out: Path | str,
    resume: bool = False,
    **options: Any,
) -> TrainOutcome:
    """:func:`train` into a run folder as ``keyless train`` does: a folder that holds a run
    already is refused unless ``resume`` (a new run would replace its weights and record), and
    the outcome says whether a resumed run had finished before. ``options`` go to :func:`train`.
    """
    run = Run(out)
    if not resume and (run.has_checkpoint() or run.has_record()):
        raise InputError(f"{out} already holds a run: --resume continues it, another --out or "
                         "removing the folder starts a new one")  # fmt: skip
    finished = resume and run.finished_record() is not None
    return TrainOutcome(train(config, data, out, resume=resume, **options), finished)


def _keys_note(config: TrainConfig, seed: int, manifest: Manifest | None) -> str:
    """What the record says about keys: a simulated owner's all derive from the seed; an
    upload's never reached the cloud."""
    if manifest is not None:
        return (f"an owner's upload ({manifest.keys} keys): no owner key ever reached this run; "
                f"seed {seed} orders the batches and draws the cloud's re-keying only")  # fmt: skip
    if config.keys == "plain":
        return "plain training: no keys"
    return (f"simulated owner: every training and test key of this run can be regenerated from "
            f"seed {seed}; keep this folder private")  # fmt: skip
