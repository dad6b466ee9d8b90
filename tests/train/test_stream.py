"""Training and evaluation streamed from a sharded upload: every image at most once an epoch,
bounded pools, disjoint shards per process, exact resume, one-line refusals."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from keyless.cipher import create_cipher
from keyless.cli import main
from keyless.errors import InputError
from keyless.runs import Run
from keyless.train import recipe, recipes, train
from keyless.train._feed import ShardFeed
from keyless.upload import ShardSet, encrypt_files, load_received
from tests.train.test_upload import _photo_folders

TINY = {"model_kwargs": {"widths": [16, 32, 32]}, "batch_size": 64, "seed": 0, "precision": "fp32"}


@pytest.fixture(scope="module")
def upload(tmp_path_factory):
    """320 training images of 16 x 16 in 8 shards of 40, 200 test images in 5 (seed keys)."""
    root = tmp_path_factory.mktemp("stream")
    _photo_folders(root / "photos")
    summary = encrypt_files([root / "photos"], root / "up", create_cipher(), shard_size=40,
                            keys="seed", seed=3)  # fmt: skip
    assert summary.errors == []
    return root / "up"


def _same(x, purpose):
    return x


def _feed(shards, **options):
    return ShardFeed(shards, torch.device("cpu"), seed=1, rekey=_same, **options)


def _epoch(feed, epoch, first=0, batch=64):
    feed.start_epoch(epoch, torch.Generator())
    return list(feed.batches(first, feed.steps_per_epoch(batch), batch))


def test_the_stream_is_the_upload_read_whole(upload):
    _, whole = load_received(upload)
    _, sets = load_received(upload, stream=True)
    assert isinstance(sets["train"], ShardSet) and len(sets["train"]) == 320
    for name in ("train", "test"):
        loaded = sets[name].load()
        assert torch.equal(loaded.images, whole[name].images)
        assert torch.equal(loaded.labels, whole[name].labels)


@pytest.mark.parametrize("readers", [0, 2])
def test_an_epoch_streams_each_image_at_most_once_with_its_label(upload, readers):
    train_set = load_received(upload, stream=True)[1]["train"]
    whole = train_set.load()
    feed = _feed(train_set, workers=readers, buffer=100)
    batches = _epoch(feed, 0)
    assert feed.steps_per_epoch(64) == len(batches) == 320 // 64
    index = torch.cat([i for _, _, i in batches])
    assert len(index) == 320 and len(set(index.tolist())) == 320  # 5 whole batches
    for images, labels, i in batches:
        assert torch.equal(images, whole.images[i]) and torch.equal(labels, whole.labels[i])
    again, other = _epoch(feed, 0), _epoch(feed, 1)
    assert all(torch.equal(a[2], b[2]) for a, b in zip(batches, again, strict=True))
    assert not torch.equal(index, torch.cat([i for _, _, i in other]))  # a fresh order


def test_pools_mix_shards_and_stay_bounded(upload):
    train_set = load_received(upload, stream=True)[1]["train"]
    feed = _feed(train_set, workers=0, buffer=100)
    feed.start_epoch(0, torch.Generator())
    pools = list(feed._pools(per_rank=64))
    assert all(len(pool) <= 100 + 40 + 64 for pool, _ in pools)  # buffer, a shard, a rest
    whole = train_set.load()
    pool, order = pools[1]
    images, labels, index = pool.take(order[:64])
    assert torch.equal(images, whole.images[index]) and torch.equal(labels, whole.labels[index])
    assert len({int(i) // 40 for i in index}) > 1  # drawn from several shards
    assert len(pool.images) > 1  # the shards' own tensors, not one copy of them


def test_a_resumed_epoch_gives_the_batches_it_had_left(upload):
    feed = _feed(load_received(upload, stream=True)[1]["train"], workers=0, buffer=100)
    whole, rest = _epoch(feed, 2), _epoch(feed, 2, first=3)
    assert len(rest) == 2
    assert all(torch.equal(a[0], b[0]) for a, b in zip(whole[3:], rest, strict=True))


def test_two_processes_read_disjoint_shards_in_equal_steps(upload):
    train_set = load_received(upload, stream=True)[1]["train"]
    ranks = [_feed(train_set, workers=0, buffer=100, rank=r, world=2) for r in (0, 1)]
    for epoch in range(3):
        shards = [set(_mine(feed, epoch)) for feed in ranks]
        assert not shards[0] & shards[1] and len(shards[0]) == len(shards[1]) == 4
        batches = [_epoch(feed, epoch) for feed in ranks]
        assert len(batches[0]) == len(batches[1]) == 160 // 32
        seen = [{int(i) // 40 for _, _, index in b for i in index} for b in batches]
        assert not seen[0] & seen[1]  # every image a process trains on is from its own shards
        assert all(len(x) == 32 for b in batches for x, _, _ in b)


def _mine(feed, epoch):
    feed.start_epoch(epoch, torch.Generator())
    return feed.my_shards()


def test_more_processes_than_shards_is_one_line(upload):
    train_set = load_received(upload, stream=True)[1]["train"]
    with pytest.raises(Exception, match="has 8 shards, fewer than the 9 processes"):
        _feed(train_set, world=9)


def test_hold_out_and_head_cut_whole_shards_and_images(upload):
    train_set = load_received(upload, stream=True)[1]["train"]
    rest, val = train_set.hold_out(50, seed=0)
    assert len(val) == 80 and len(rest) == 240  # two whole shards hold the 50
    assert not {s["file"] for s in val.shards} & {s["file"] for s in rest.shards}
    head = train_set.head(90)
    assert head.counts == (40, 40, 10)
    assert torch.equal(head.load().images, train_set.load().images[:90])
    with pytest.raises(Exception, match="takes every one of the 8 training shards"):
        train_set.hold_out(300, seed=0)


@pytest.mark.parametrize("readers", [0, 1])
def test_a_damaged_shard_in_the_stream_is_one_line_naming_it(upload, tmp_path, readers):
    copy = tmp_path / "up"
    shutil.copytree(upload, copy)
    damaged = copy / "train-000005.npz"
    data = bytearray(damaged.read_bytes())
    data[-100] ^= 1
    damaged.write_bytes(bytes(data))
    feed = _feed(load_received(copy, stream=True)[1]["train"], workers=readers)
    with pytest.raises(InputError) as caught:
        for epoch in range(3):  # some epoch reaches it
            _epoch(feed, epoch)
    message = str(caught.value)
    assert message.startswith(str(damaged)) and "SHA-256" in message and "\n" not in message


def _train_cli(upload, out, *extra):
    base = ["train", "--data", str(upload), "--upload", "--model", "fastnet", "--widths",
            "16,32,32", "--batch-size", "64", "--seed", "0", "--precision", "fp32", "--stem",
            "invariant", "--device", "cpu", "--out", str(out)]  # fmt: skip
    return [*base, *map(str, extra)]


@pytest.mark.slow
def test_the_cloud_trains_and_scores_by_streaming_the_shards(upload, tmp_path):
    result = CliRunner().invoke(main, _train_cli(upload, tmp_path / "run", "--epochs", "10"))
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["batch_order"].startswith("streamed from 8 shards")
    chance_plus_5_se = 0.25 + 5 * (0.25 * 0.75 / 200) ** 0.5
    assert record["test"]["upload"] > chance_plus_5_se, record["test"]
    assert record["test"]["upload_rekeyed"] == record["test"]["upload"]  # invariant stem
    again = CliRunner().invoke(main, ["evaluate", str(tmp_path / "run"), "--data", str(upload),
                                      "--device", "cpu"])  # fmt: skip
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout) == pytest.approx(record["test"])
    whole = CliRunner().invoke(main, _train_cli(upload, tmp_path / "mem", "--epochs", "10",
                                                "--in-memory"))  # fmt: skip
    assert whole.exit_code == 0, whole.output
    in_memory = json.loads((tmp_path / "mem" / "record.json").read_text())
    assert in_memory["batch_order"].startswith("in memory")
    assert in_memory["test"]["upload"] > chance_plus_5_se, in_memory["test"]


@pytest.mark.slow
def test_a_streamed_run_resumes_within_an_epoch_as_if_never_stopped(upload, tmp_path, monkeypatch):
    config = recipe("fast", keys="independent", rekey=True, epochs=2, val_size=40, **TINY)
    options = {"progress": False, "device": "cpu", "readers": 0}
    whole = train(config, upload, tmp_path / "whole", **options)
    assert whole["train_images"] == 280 and len(whole["history"]) == 2  # a shard held out
    schedule = recipes.lr_factor

    def interrupt_at_step_6(config, step, total, steps_per_epoch):
        if step == 6:  # 2 steps into the second epoch of 4
            raise KeyboardInterrupt
        return schedule(config, step, total, steps_per_epoch)

    monkeypatch.setattr(recipes, "lr_factor", interrupt_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        train(config, upload, tmp_path / "cut", checkpoint_minutes=0, **options)
    monkeypatch.undo()
    assert Run(tmp_path / "cut").load().partial["step"] == 2
    with pytest.raises(InputError, match="with or without --in-memory"):
        train(config, upload, tmp_path / "cut", resume=True, in_memory=True, **options)
    resumed = train(config, upload, tmp_path / "cut", resume=True, **options)

    def without_times(history):
        return [{k: v for k, v in entry.items() if k != "seconds"} for entry in history]

    assert without_times(resumed["history"]) == without_times(whole["history"])
    assert resumed["test"] == whole["test"]


TORCHRUN_SCRIPT = """
import json, os, sys
from keyless.cipher import create_cipher
from keyless.cli import main
from keyless.upload import ShardSet

read, files = ShardSet.read, []

def logged(self, i):
    files.append(self.shards[i]["file"])
    return read(self, i)

ShardSet.read = logged
main(sys.argv[2:], standalone_mode=False)
with open(f"{sys.argv[1]}/read{os.environ['RANK']}.json", "w") as f:
    json.dump(files, f)
"""


@pytest.mark.slow
def test_torchrun_processes_read_disjoint_shards_of_a_sharded_upload(upload, tmp_path):
    (tmp_path / "script.py").write_text(TORCHRUN_SCRIPT)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
                "--standalone", str(tmp_path / "script.py"), str(tmp_path)]  # fmt: skip
    train_args = _train_cli(upload, tmp_path / "run", "--epochs", "3", "--readers", "0")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path.cwd())}
    result = subprocess.run([*torchrun, *train_args], env=env, capture_output=True, text=True,
                            timeout=300)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["world_size"] == 2 and len(record["history"]) == 3
    assert record["train_images"] == 320 and 0 <= record["test"]["upload"] <= 1
    assert all(entry["loss"] > 0 for entry in record["history"])
    reads = [json.loads((tmp_path / f"read{r}.json").read_text()) for r in (0, 1)]
    # each first reads every shard for the whitening sample (5,000 images: all 320 here)
    assert all(files[:8] == [f"train-{i:06d}.npz" for i in range(8)] for files in reads)
    training = [[f for f in files[8:] if f.startswith("train-")] for files in reads]
    for epoch in range(3):  # 4 shards each per epoch, none read by both
        mine = [set(files[4 * epoch : 4 * epoch + 4]) for files in training]
        assert len(mine[0]) == len(mine[1]) == 4 and not mine[0] & mine[1]
    assert all(len(files) == 12 for files in training)
