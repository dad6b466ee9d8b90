import json

from benchmarks.security.frontier_table import chart, pareto, read_settings, table, update
from keyless.cipher import PixelCipher, ScrambledPixelCipher
from keyless.train import recipe


def _run(records, name, seed, cipher, fresh, plain):
    folder = records / f"{name}-s{seed}"
    folder.mkdir(parents=True)
    config = recipe("invariant", cipher=cipher, epochs=5.0, seed=seed).to_dict()
    record = {"config": config, "seed": seed, "test": {"fresh_key": fresh, "plain": plain},
              "machine": {"cpu": "Some CPU", "cores": 2}, "precision": "bf16",
              "train_seconds": 1.0}  # fmt: skip
    (folder / "record.json").write_text(json.dumps(record))


def _report(reports, name, rows):
    folder = reports / f"frontier-{name}"
    folder.mkdir(parents=True)
    (folder / "report.json").write_text(json.dumps({"rows": rows}))


def _row(attack, ssim, **extra):
    return {"attack": attack, "ssim_mean": ssim, "psnr_mean": 10 + 10 * ssim, **extra}


def test_the_frontier_keeps_what_no_other_setting_beats_and_the_table_says_so(tmp_path):
    records, reports = tmp_path / "records", tmp_path / "reports"
    for seed, (a, b) in enumerate([(0.80, 0.60), (0.82, 0.58)]):
        _run(records, "pe", seed, PixelCipher(), a, a)
        _run(records, "scramble", seed, ScrambledPixelCipher(block_size=8), b, b)
    _run(records, "worse", 0, PixelCipher(noise=32.0), 0.55, 0.55)
    _report(reports, "pe", [_row("encrypted image itself", 0.01), _row("invariant", 0.6)])
    _report(reports, "scramble", [_row("invariant", 0.12), _row("jigsaw", 0.15, blocks_placed=0.2)])
    _report(reports, "worse", [_row("invariant", 0.5)])
    _run(records, "no-report", 0, PixelCipher(), 0.9, 0.9)
    settings = read_settings(records, reports)
    assert sorted(s.name for s in settings) == ["pe", "scramble", "worse"]  # reported only
    assert pareto(settings) == {"pe", "scramble"}  # "worse" is beaten on both counts
    scramble = next(s for s in settings if s.name == "scramble")
    assert (scramble.attack, scramble.ssim, scramble.placed) == ("jigsaw", 0.15, 0.2)
    text = table(settings, "Some CPU")
    assert "| PE | fastnet, invariant stem | 81.00 ± 1.41 | 81.00 ± 1.41 | 0.600 |" in text
    assert "| PE + scramble, M = 8 | fastnet, invariant stem | 59.00 ± 1.41 |" in text
    assert (
        "| 20.0 % | yes |" in text
        and "| PE, noise sigma = 32 | fastnet, invariant stem | 55.00 |" in text
    )
    chart(settings, tmp_path / "chart.png")
    assert (tmp_path / "chart.png").stat().st_size > 1000
    doc = tmp_path / "doc.md"
    doc.write_text("a\n<!-- frontier-table -->\nold\n<!-- /frontier-table -->\nb\n")
    update(doc, text)
    update(doc, text)  # idempotent
    assert doc.read_text() == f"a\n<!-- frontier-table -->\n{text}\n<!-- /frontier-table -->\nb\n"


def test_another_model_on_a_cipher_reads_that_ciphers_reports_and_names_its_model(tmp_path):
    records, reports = tmp_path / "records", tmp_path / "reports"
    _run(records, "pe", 0, PixelCipher(), 0.80, 0.80)
    _run(records, "pe-raw", 0, PixelCipher(), 0.70, 0.60)  # no report of its own
    _report(reports, "pe", [_row("invariant", 0.6)])
    raw = next(s for s in read_settings(records, reports) if s.name == "pe-raw")
    assert (raw.attack, raw.ssim) == ("invariant", 0.6)
    assert raw.display == "PE (the paper's model)"  # told apart from the "pe" row
    assert next(s for s in read_settings(records, reports) if s.name == "pe").display == "PE"
