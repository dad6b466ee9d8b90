import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from keyless.cipher import PixelCipher
from keyless.cli import main
from keyless.errors import ExitStatus, InputError
from keyless.runs import MEAN_NOTE, RunRecord, TrainConfig, mean_table, report_table
from keyless.train import recipe


def _record(seed, plain, commit="abc1234def", **config):
    return {
        "config": recipe(
            "fast", seed=seed, model_kwargs={"widths": [8, 16, 32]}, **config
        ).to_dict(),
        "seed": seed,
        "git_commit": commit,
        "test": {"plain": plain, "fresh_key": 0.1, "plain_tta": plain, "fresh_key_tta": 0.1},
        "machine": {"cpu": "Some CPU", "cores": 2},
        "precision": "bf16",
        "train_seconds": 10.0,
    }


def _rows(table):
    """The body rows of a Markdown table (after its header and rule, before any note)."""
    return [line for line in table.splitlines()[2:] if line.startswith("|")]


def test_mean_table_groups_runs_that_differ_only_in_their_seed():
    records = [_record(0, 0.80, keys="plain"), _record(1, 0.90, keys="plain"),
               _record(0, 0.70, keys="plain", commit="fff0000"), _record(2, 0.5)]  # fmt: skip
    lines = _rows(mean_table(records))
    assert len(lines) == 3  # another commit or another setting is another row
    assert lines[0].startswith(
        "| fastnet 8/16/32 | plain |  | plain |  |  | 10 | 0,1 | 85.00 ± 7.07 |"
    )
    assert "| Some CPU, 2 cores, bf16 | abc1234 |" in lines[0]
    assert "| 0 | 70.00 ± 0.00 |" in lines[1] and "| independent | pe | plain |" in lines[2]


def test_mean_table_pools_commits_on_request_and_lists_them():
    records = [_record(0, 0.80), _record(1, 0.90, commit="fff0000"), _record(2, 0.70)]
    lines = _rows(mean_table(records, pool_commits=True))
    assert len(lines) == 1
    assert "| 0,1,2 | 80.00 ± 10.00 |" in lines[0]
    assert lines[0].endswith("| abc1234,fff0000 |")


def test_mean_table_tells_common_key_settings_apart_and_shows_their_accuracy():
    records = [
        _record(0, 0.8, keys="common", adapt="pixel") | {"test": {"common_key": 0.75}},
        _record(0, 0.8, keys="common", cipher=PixelCipher(shuffle=False))
        | {"test": {"common_key": 0.7, "common_key_tta": 0.72}},
    ]
    lines = _rows(mean_table(records))
    assert "| common | pe | plain | pixel |  | 10 | 0 |  |  | 75.00 ± 0.00 |  |  |  |" in lines[0]
    assert "| common | pe shuffle=False | plain |  |" in lines[1]
    assert "| 70.00 ± 0.00 |  |  | 72.00 ± 0.00 |" in lines[1]


def test_report_pool_commits_needs_mean(tmp_path):
    (tmp_path / "record.json").write_text(json.dumps(_record(0, 0.8)))
    result = CliRunner().invoke(main, ["report", str(tmp_path), "--pool-commits"])
    assert result.exit_code == 2 and "--pool-commits needs --mean" in result.output


def test_report_table_names_widths_precision_and_commit():
    table = report_table([_record(0, 0.8)])
    assert "| fastnet 8/16/32 | independent | pe |" in table
    assert "| Some CPU, 2 cores, bf16 | abc1234 |" in table


def test_an_upload_run_shows_its_re_keyed_test_split_as_the_fresh_key_one():
    record = _record(0, 0.8)
    record["test"] = {"upload": 0.6, "upload_tta": 0.61, "upload_rekeyed": 0.62,
                      "upload_rekeyed_tta": 0.63}  # fmt: skip
    row = report_table([record]).splitlines()[2]
    assert "| 10 |  | 62.00 |  |  | 63.00 |  | 10 |" in row  # no plain or common-key test set
    assert "| 0 |  | 62.00 ± 0.00 |  |  | 63.00 ± 0.00 |  |" in _rows(mean_table([record]))[0]
    simulated = _record(1, 0.8) | {"data": "plain images (simulated owner)"}
    assert len(_rows(mean_table([record, simulated]))) == 2  # other data: another row
    cifar, other = (_record(s, 0.8) | {"data_source": f"plain images with sha256 {s}"}
                    for s in (0, 1))  # fmt: skip
    assert len(_rows(mean_table([cifar, other]))) == 2  # other plain data: another row


def test_report_refuses_files_that_are_not_run_records_in_one_line(tmp_path):
    (tmp_path / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    (tmp_path / "keyless.json").write_text(json.dumps({"format": "keyless-upload"}))
    bare = _record(0, 0.8) | {"config": {"model": "fastnet", "colour": "red"}}
    (tmp_path / "bare.json").write_text(json.dumps(bare))
    (tmp_path / "where.json").write_text(json.dumps(_record(0, 0.8) | {"machine": {"cpu": "x"}}))
    for name, words in (("chart.png", "not a JSON run record"),
                        ("keyless.json", "not a keyless run record (no config, "),
                        ("bare.json", "not a keyless run record (config.colour: "),
                        ("where.json", "not a keyless run record (machine: names")):  # fmt: skip
        result = CliRunner().invoke(main, ["report", str(tmp_path / name)])
        assert result.exit_code == ExitStatus.BAD_INPUT and words in result.stderr, result.output
        assert result.stderr.count("\n") == 1


def test_git_commit_is_none_for_keyless_inside_another_repository(tmp_path, monkeypatch):
    import subprocess

    from keyless.runs import _record as records

    git = ["git", "-C", str(tmp_path), "-c", "user.name=u", "-c", "user.email=u@e"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "theirs"], check=True)
    package = tmp_path / "site-packages" / "keyless"
    package.mkdir(parents=True)
    monkeypatch.setattr(records, "__file__", str(package / "runs" / "_record.py"))
    assert records.git_commit() is None


def test_mean_table_tells_fastnet_shapes_apart():
    shapes = [{"residual": True}, {"residual": True, "residual_depth": 1}, {"whiten_kernel": 3}]
    records = [_record(0, 0.9) for _ in shapes]
    for record, kw in zip(records, shapes, strict=True):
        record["config"]["model_kwargs"].update(kw)
    rows = [line.split(" | ")[0] for line in _rows(mean_table(records))]
    labels = ["residual", "residual depth 1", "whiten 3x3"]
    assert sorted(rows) == [f"| fastnet 8/16/32 {label}" for label in labels]


def test_report_mean_shows_each_accuracy_without_and_with_tta_over_named_seeds(tmp_path):
    """Like for like: a figure with TTA is never the only one shown."""
    for seed, (plain, tta) in enumerate([(0.90, 0.92), (0.80, 0.84)]):
        record = _record(seed, plain, keys="independent", stem="invariant")
        record["test"] = {"plain": plain, "fresh_key": plain, "plain_tta": tta,
                          "fresh_key_tta": tta}  # fmt: skip
        (tmp_path / f"s{seed}").mkdir()
        (tmp_path / f"s{seed}" / "record.json").write_text(json.dumps(record))
    result = CliRunner().invoke(main, ["report", "--mean", str(tmp_path / "s0"),
                                       str(tmp_path / "s1")])  # fmt: skip
    assert result.exit_code == 0, result.output
    header, _, row = result.stdout.splitlines()[:3]
    cells = dict(zip(header.split(" | "), row.split(" | "), strict=True))
    assert cells["seeds"] == "0,1"
    assert cells["plain, no TTA"] == cells["fresh key, no TTA"] == "85.00 ± 7.07"
    assert cells["plain, TTA"] == cells["fresh key, TTA"] == "88.00 ± 5.66"
    assert cells["common key, no TTA"] == cells["common key, TTA"] == ""
    assert result.stdout.rstrip().endswith(MEAN_NOTE)
    plain_row = report_table([_record(0, 0.8)]).splitlines()[0]
    assert "| plain, no TTA |" in plain_row and "| plain, TTA |" in plain_row


def test_a_record_reads_back_typed_and_writes_back_what_it_was_given(tmp_path):
    raw = _record(3, 0.8, keys="common") | {"upload": None, "from_a_newer_keyless": [1, 2]}
    raw["config"]["cipher"] = {}  # PE, as older keyless stored it
    (tmp_path / "record.json").write_text(json.dumps(raw))
    record = RunRecord.read(tmp_path)
    assert record.config == TrainConfig.from_dict(raw["config"]) and record.seed == 3
    assert record.config.cipher == PixelCipher() and record.test["plain"] == 0.8
    again = json.loads(record.to_json())
    config = json.loads(json.dumps(record.config.to_dict()))
    assert again == raw | {"config": config}  # nothing added, nothing lost
    assert again["config"]["cipher"] == PixelCipher().settings()


def test_every_committed_record_reads_as_a_run_record():
    records = sorted((Path(__file__).parent.parent / "benchmarks" / "records").rglob("record.json"))
    assert records
    for path in records:
        raw = json.loads(path.read_text())
        written = RunRecord.read(path).to_dict()
        assert {k: v for k, v in written.items() if k != "config"} == {
            k: v for k, v in raw.items() if k != "config"
        }, path


def test_a_record_of_a_wrong_type_names_the_field(tmp_path):
    (tmp_path / "record.json").write_text(json.dumps(_record(0, 0.8) | {"test": {"plain": "x"}}))
    with pytest.raises(InputError, match=r"not a keyless run record \(test\.plain: "):
        RunRecord.read(tmp_path)
