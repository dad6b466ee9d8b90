"""Class names and outputs follow an npz's labels; records from older keyless keep theirs."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from keyless.cli import main
from keyless.data import CIFAR10_CLASSES, ImageSet, load_splits
from keyless.errors import InputError
from keyless.runs import evaluate_run, load_run
from keyless.train import recipe, train
from keyless.upload import MANIFEST
from tests.synthetic import quadrant_splits, save_quadrant_npz

TINY = {"model_kwargs": {"widths": [8, 16, 16]}, "batch_size": 64, "seed": 0, "precision": "fp32"}


def test_an_npz_names_one_class_per_label_of_either_split(tmp_path):
    x = np.zeros((4, 2, 2, 3), np.uint8)
    np.savez(tmp_path / "d.npz", x_train=x, y_train=np.array([0, 1, 2, 2]), x_test=x[:2],
             y_test=np.array([4, 0]))  # fmt: skip
    splits = load_splits(tmp_path / "d.npz")
    assert splits["train"].classes == splits["test"].classes == ("0", "1", "2", "3", "4")
    np.savez(tmp_path / "ten.npz", x_train=x, y_train=np.array([0, 1, 9, 2]), x_test=x[:2],
             y_test=np.array([3, 0]))  # fmt: skip
    assert load_splits(tmp_path / "ten.npz")["test"].classes == CIFAR10_CLASSES


@pytest.mark.slow
def test_a_four_class_npz_trains_a_four_output_model(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    train(recipe("fast", epochs=1, **TINY), tmp_path / "d.npz", tmp_path / "run", progress=False)
    model, checkpoint = load_run(tmp_path / "run")
    assert checkpoint.classes == ["0", "1", "2", "3"]
    assert model(torch.zeros((1, 16, 16, 3), dtype=torch.uint8)).shape == (1, 4)


def _as_cifar(splits):
    return {s: ImageSet(d.images, d.labels, CIFAR10_CLASSES) for s, d in splits.items()}


@pytest.mark.slow
def test_an_older_run_of_ten_outputs_resumes_and_evaluates_on_its_four_class_npz(
    tmp_path, exact_device
):
    """Older keyless named every npz of fewer than 10 classes with CIFAR-10's names."""
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    config = recipe("fast", epochs=1, **TINY)
    old = train(config, _as_cifar(load_splits(tmp_path / "d.npz")), tmp_path / "run",
                progress=False, device=exact_device)  # fmt: skip
    again = train(config, tmp_path / "d.npz", tmp_path / "run", resume=True, progress=False)
    assert again["test"] == old["test"] and load_run(tmp_path / "run")[1].classes == list(
        CIFAR10_CLASSES
    )
    again = evaluate_run(tmp_path / "run", tmp_path / "d.npz", device=exact_device)
    assert again == pytest.approx(old["test"])
    other = {s: ImageSet(d.images, d.labels, ("a", "b", "c", "d")) for s, d in
             quadrant_splits(64, 16).items()}  # fmt: skip
    words = r"^resuming .*run: the data has classes \['a', 'b', 'c', 'd'\], the run \['airplane'"
    with pytest.raises(InputError, match=words):
        train(config, other, tmp_path / "run", resume=True, progress=False)
    (tmp_path / "other").mkdir()
    np.savez(tmp_path / "other" / "d.npz", x_train=np.zeros((2, 16, 16, 3), np.uint8),
             y_train=np.array([0, 11]), x_test=np.zeros((1, 16, 16, 3), np.uint8),
             y_test=np.array([0]))  # fmt: skip
    with pytest.raises(InputError, match=r"^evaluating .*run: the data has classes \['0', '1', "):
        evaluate_run(tmp_path / "run", tmp_path / "other" / "d.npz")


@pytest.mark.slow
def test_an_older_npz_upload_keeps_its_ten_recorded_names(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    runner = CliRunner()
    assert runner.invoke(main, ["encrypt", str(tmp_path / "d.npz"), "--out",
                                str(tmp_path / "up")]).exit_code == 0  # fmt: skip
    manifest = json.loads((tmp_path / "up" / MANIFEST).read_text())
    assert manifest["classes"] == ["0", "1", "2", "3"]
    (tmp_path / "up" / MANIFEST).write_text(
        json.dumps({**manifest, "classes": list(CIFAR10_CLASSES)})
    )
    config = recipe("fast", epochs=1, stem="invariant", **TINY)
    train(config, tmp_path / "up", tmp_path / "run", progress=False)
    assert load_run(tmp_path / "run")[1].classes == list(CIFAR10_CLASSES)
    (tmp_path / "up" / MANIFEST).write_text(json.dumps({**manifest, "classes": ["0", "1", "2"]}))
    words = r"these files \(classes \['0', '1', '2', '3'\], recorded \['0', '1', '2'\]\)$"
    with pytest.raises(InputError, match=words):
        train(config, tmp_path / "up", tmp_path / "run2", progress=False)


@pytest.mark.slow
def test_a_new_run_evaluates_on_an_older_upload_of_its_npz(tmp_path):
    """The other way round: the run names the classes by label, the upload has the old ten."""
    save_quadrant_npz(tmp_path / "d.npz", n_train=64, n_test=16)
    config = recipe("fast", epochs=1, stem="invariant", **TINY)
    train(config, tmp_path / "d.npz", tmp_path / "run", progress=False)
    assert CliRunner().invoke(main, ["encrypt", str(tmp_path / "d.npz"), "--out",
                                     str(tmp_path / "up")]).exit_code == 0  # fmt: skip
    manifest = json.loads((tmp_path / "up" / MANIFEST).read_text())
    (tmp_path / "up" / MANIFEST).write_text(
        json.dumps({**manifest, "classes": list(CIFAR10_CLASSES)})
    )
    metrics = evaluate_run(tmp_path / "run", tmp_path / "up")
    assert set(metrics) >= {"upload", "upload_rekeyed"}
