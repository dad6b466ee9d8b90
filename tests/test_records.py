import json

from click.testing import CliRunner

from keyless.cli import main
from keyless.records import mean_table, report_table
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


def test_mean_table_groups_runs_that_differ_only_in_their_seed():
    records = [_record(0, 0.80, keys="plain"), _record(1, 0.90, keys="plain"),
               _record(0, 0.70, keys="plain", commit="fff0000"), _record(2, 0.5)]  # fmt: skip
    lines = mean_table(records).splitlines()[2:]
    assert len(lines) == 3  # another commit or another setting is another row
    assert lines[0].startswith("| fastnet 8/16/32 | plain | plain |  | 10 | 0,1 | 85.00 ± 7.07 |")
    assert "| Some CPU, 2 cores, bf16 | abc1234 |" in lines[0]
    assert "| 0 | 70.00 ± 0.00 |" in lines[1] and "| independent |" in lines[2]


def test_mean_table_pools_commits_on_request_and_lists_them():
    records = [_record(0, 0.80), _record(1, 0.90, commit="fff0000"), _record(2, 0.70)]
    lines = mean_table(records, pool_commits=True).splitlines()[2:]
    assert len(lines) == 1
    assert "| 0,1,2 | 80.00 ± 10.00 |" in lines[0]
    assert lines[0].endswith("| abc1234,fff0000 |")


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
    assert "| 0 |  | 62.00 ± 0.00 |  | 63.00 ± 0.00 |" in mean_table([record]).splitlines()[2]
    simulated = _record(1, 0.8) | {"data": "plain images (simulated owner)"}
    assert len(mean_table([record, simulated]).splitlines()) == 4  # other data: another row
