import pytest
from click.testing import CliRunner
from PIL import Image

from keyless.cipher import PixelCipher
from keyless.cli import main
from keyless.errors import ConfigError
from keyless.reproduce import Row, reproduce, table_rows
from keyless.reproduce._driver import _reuse
from keyless.reproduce._results import access_claims, ordering_differences
from keyless.runs import Run, read_record
from keyless.train import recipe
from tests.synthetic import save_quadrant_npz

TINY = {"epochs": 1, "model_kwargs": {"widths": [8, 8, 8]}, "batch_size": 64, "precision": "fp32"}


def test_tables_hold_the_papers_rows_and_figures():
    icip = {r.name: r for r in table_rows("icip", "cpu")}
    assert len(icip) == 10 and icip["plain"].paper == 92.98 and icip["le"].paper == 56.41
    assert icip["pe-np"].config.cipher == PixelCipher(shuffle=False)
    assert icip["client-le"].config.augment == "client" and icip["le"].config.adapt == "block"
    assert all(r.config.keys == "common" for n, r in icip.items() if n != "plain")
    assert {r.config.model for r in icip.values()} == {"fastnet"}
    assert {r.config.model for r in table_rows("icip", "paper")} == {"resnet18"}
    access = [r.name for r in table_rows("access", "cpu")]
    assert access[:5] == ["fastnet-plain", "fastnet-common", "fastnet-independent",
                          "fastnet-independent-noaug", "fastnet-independent-invariant"]  # fmt: skip
    assert "resnet18-common" not in access and "densenet-independent" in access
    assert all(r.config.epochs == 300 for r in table_rows("access", "paper"))


def _record(**test):
    return {"test": test, "train_seconds": 1.0, "machine": {"cpu": "x", "cores": 2}}


def test_ordering_differences_name_each_swapped_pair():
    config = recipe("fast")
    rows = [Row("a", "A", config, "plain", 90.0), Row("b", "B", config, "plain", 80.0),
            Row("c", "C", config, "plain", 70.0)]  # fmt: skip
    records = {"a": _record(plain=0.5), "b": _record(plain=0.6), "c": _record(plain=0.4)}
    assert ordering_differences(rows, records) == [
        "- The paper ranks **a** (90.00) above **b** (80.00); here it is below (50.00 vs 60.00)."
    ]


def test_access_claims_are_judged_with_numbers():
    records = {
        "m-plain": _record(plain=0.90),
        "m-independent": _record(plain=0.89, fresh_key=0.895),
        "m-independent-noaug": _record(plain=0.8, fresh_key=0.80),
        "m-independent-invariant": _record(plain=0.85, fresh_key=0.85),
    }
    claims = "\n".join(access_claims(records))
    assert "**m + invariant stem (a)** independent keys keep accuracy close to plain" in claims
    assert "85.00 % plain vs 85.00 % fresh-key (+0.00 points): holds" in claims
    assert "89.50 % (fresh-key test) vs 90.00 %, a gap of 0.50 points: holds" in claims
    assert "89.00 % plain vs 89.50 % fresh-key (-0.50 points): holds" in claims
    assert "+9.50 points: holds" in claims


@pytest.mark.slow
def test_reproduce_trains_the_chosen_rows_and_resumes(tmp_path):
    save_quadrant_npz(tmp_path / "d.npz", n_train=128, n_test=64)
    out = tmp_path / "icip"
    path = reproduce("icip", "cpu", tmp_path / "d.npz", out, progress=False,
                     only=["plain", "le"], changes=TINY)  # fmt: skip
    text = path.read_text()
    assert "| plain | plain images |" in text and text.count("not run yet") == 8
    assert Image.open(out / "chart.png").size[0] > 100
    stamp = (out / "le" / "record.json").stat().st_mtime_ns
    again = reproduce("icip", "cpu", tmp_path / "d.npz", out, progress=False, changes=TINY,
                      only=["plain", "le"])  # fmt: skip
    assert "2 of 10 runs finished" in again.read_text()
    assert (out / "le" / "record.json").stat().st_mtime_ns == stamp  # finished runs are skipped
    # the same folder read as the cpu budget's table (without TINY's changes): not its runs
    result = CliRunner().invoke(main, ["reproduce", "--table", "icip", "--out", str(out),
                                       "--results-only"])  # fmt: skip
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert "icip/plain: holds a run of another training than row plain of " in result.stderr
    typo = ["--only", "pe_np", "--data", str(tmp_path / "d.npz")]
    result = CliRunner().invoke(main, ["reproduce", "--table", "icip", "--out", str(out), *typo])
    assert (
        result.exit_code == 2
        and "--only: no row pe_np in the icip table; its rows: " in result.stderr
    )
    access = reproduce("access", "cpu", tmp_path / "d.npz", tmp_path / "access", progress=False,
                       only=["fastnet-plain"], changes=TINY, reuse=[out])  # fmt: skip
    copied = read_record(tmp_path / "access" / "fastnet-plain")
    assert copied["reused_from"] == str(out / "plain")
    assert copied["test"] == read_record(out / "plain")["test"]
    copy = tmp_path / "access" / "fastnet-plain"  # the owner's seed inside: owner-only
    assert copy.stat().st_mode & 0o777 == 0o700
    assert (copy / "checkpoint.pt").stat().st_mode & 0o777 == 0o600
    assert "**fastnet-plain** from" in access.read_text()
    independent = table_rows("access", "cpu")[2]
    row = Row(independent.name, "", independent.config.replace(**TINY), "fresh_key")
    finished = {run: run.read_record() for run in (Run(out / "plain"), Run(out / "le"))}
    assert not _reuse(row, finished, tmp_path / "x")  # no ICIP run trains with independent keys
    # other data: the finished rows are not this table's, and are not copied
    save_quadrant_npz(tmp_path / "other.npz", n_train=96, n_test=64)
    with pytest.raises(ConfigError, match=r"icip/plain: holds a run on plain images .* --data's"):
        reproduce("icip", "cpu", tmp_path / "other.npz", out, progress=False, changes=TINY)
    reproduce("access", "cpu", tmp_path / "other.npz", tmp_path / "access2", progress=False,
              only=["fastnet-plain"], changes=TINY, reuse=[out])  # fmt: skip
    assert "reused_from" not in read_record(tmp_path / "access2" / "fastnet-plain")


def test_budget_table_rows_cover_four_curves_at_four_budgets():
    rows = table_rows("budget", "cpu")
    assert len(rows) == 16 and rows[0].config.epochs == 5 and rows[-1].config.epochs == 40
    by_name = {r.name: r.config for r in rows}
    assert by_name["rekey-e10"].rekey and by_name["invariant-e20"].stem == "invariant"
    assert by_name["plain-e40"].keys == "plain" and by_name["independent-e5"].keys == "independent"
    assert {tuple(c.model_kwargs["widths"]) for c in by_name.values()} == {(32, 64, 128)}
    assert "widths" not in table_rows("budget", "paper")[0].config.model_kwargs  # full width
    stems = [r.config.stem for r in table_rows("diagnostic", "cpu")]
    assert stems == ["plain", "grey", "fold", "invariant"]


def _tta_record(plain, fresh=None):
    return _record(plain_tta=plain, **({} if fresh is None else {"fresh_key_tta": fresh}))


def test_budget_results_judge_each_budget_and_draw_the_chart(tmp_path):
    from keyless.reproduce._results import budget_chart, budget_claims, budget_table

    rows = [r for r in table_rows("budget", "cpu") if r.config.epochs in (5, 10)]
    records = {"plain-e5": _tta_record(0.85), "invariant-e5": _tta_record(0.84, 0.84),
               "plain-e10": _tta_record(0.9), "invariant-e10": _tta_record(0.87, 0.87)}  # fmt: skip
    table = budget_table(rows, records)
    assert "| invariant | 84.00 / 84.00 (gap 1.00) | 87.00 / 87.00 (gap 3.00) |" in table
    assert "| rekey | not run yet | not run yet |" in table
    claims = "\n".join(budget_claims(rows, records))
    assert "5 ep: gap 1.00 (holds); 10 ep: gap 3.00 (no)" in claims
    assert "5 ep: +0.00 (holds); 10 ep: +0.00 (holds)" in claims
    budget_chart(rows, records, tmp_path / "chart.png", "t")
    assert Image.open(tmp_path / "chart.png").size[0] > 100


def test_diagnostic_table_gives_each_input_its_cost():
    from keyless.reproduce._results import diagnostic_table

    rows = table_rows("diagnostic", "cpu")
    records = {"plain": _record(plain=0.88, plain_tta=0.90),
               "grey": _record(plain=0.85, plain_tta=0.875)}  # fmt: skip
    table = diagnostic_table(rows, records)
    assert "| grey | grey (luma) images | 85.00 | 87.50 | 2.50 | 1 |" in table
    assert "| fold | fold min(p, 255 - p), unsorted (NP's invariant) | not run yet | | | |" in table
