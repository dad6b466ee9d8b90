import json
import re

import pytest

from benchmarks import results_table
from benchmarks.results_table import ROOT, Row, table, update
from keyless.train import recipe


def test_the_table_reads_the_committed_records_without_and_with_tta():
    text = table()
    sixty = next(line for line in text.splitlines() if "invariant96-60-s*" in line)
    assert "| **92.92 ± 0.47** | 93.80 ± 0.16 | 0,1,2 | 60 | NVIDIA H200, bf16 |" in sixty
    assert "chosen after reading the 31-epoch test figures" in sixty
    published = next(line for line in text.splitlines() if "Best published" in line)
    assert "| **93.51** | not used |" in published
    faithful = next(line for line in text.splitlines() if "Faithful" in line)
    assert "| 0,1 | 5 | AMD EPYC, 2 cores, bf16 |" in faithful  # two seeds, like every row
    links = re.findall(r"\]\(([^)]+)\)", text)
    assert len(links) == len(results_table.ROWS)
    assert all((ROOT / link).is_dir() for link in links)


def test_update_rewrites_between_the_markers_only_and_twice_gives_the_same(tmp_path):
    document = tmp_path / "README.md"
    document.write_text("Before.\n<!-- results-table -->\nstale\n<!-- /results-table -->\nAfter.\n")
    update(document)
    once = document.read_text()
    assert once.startswith("Before.\n<!-- results-table -->\n| training |")
    assert once.endswith("README.md`.\n<!-- /results-table -->\nAfter.\n") and "stale" not in once
    links = re.findall(r"\]\(([^)]+)\)", once)
    assert links and all((tmp_path / link).is_dir() for link in links)  # relative to the document
    update(document)
    assert document.read_text() == once
    (tmp_path / "other.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one results-table marker pair"):
        update(tmp_path / "other.md")


def _run(folder, seed, epochs):
    folder.mkdir(parents=True)
    record = {
        "config": recipe("fast", seed=seed, epochs=epochs).to_dict(),
        "seed": seed,
        "test": {"fresh_key": 0.5, "plain": 0.5},
        "machine": {"cpu": "Some CPU", "cores": 2},
        "train_seconds": 1.0,
    }
    (folder / "record.json").write_text(json.dumps(record))


def test_a_row_whose_runs_differ_in_more_than_their_seed_is_refused(tmp_path, monkeypatch):
    _run(tmp_path / "group" / "run-s0", 0, 10)
    _run(tmp_path / "group" / "run-s1", 1, 10)
    monkeypatch.setattr(results_table, "RECORDS", tmp_path)
    line = results_table.row(Row("same", "group/run-s*", "fresh_key"), tmp_path)
    assert "| **50.00 ± 0.00** | not measured | 0,1 | 10 |" in line
    _run(tmp_path / "group" / "run-s2", 2, 20)
    with pytest.raises(SystemExit, match="differ in more than their seed"):
        results_table.row(Row("mixed", "group/run-s*", "fresh_key"), tmp_path)
    with pytest.raises(SystemExit, match="no run folders"):
        results_table.row(Row("none", "group/absent-*", "fresh_key"), tmp_path)
