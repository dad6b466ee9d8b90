import json

from benchmarks.security.privacy_chart import best_accuracy, best_attack, chart, table
from keyless.cipher import LearnableCipher, PixelCipher
from keyless.train import recipe


def _record(folder, keys, cipher, test, seed=0, **config):
    folder.mkdir(parents=True)
    record = {
        "config": recipe("fast", keys=keys, cipher=cipher, seed=seed, **config).to_dict(),
        "seed": seed,
        "test": test,
        "machine": {"cpu": "Some CPU", "cores": 2},
        "train_seconds": 1.0,
    }
    (folder / "record.json").write_text(json.dumps(record))
    return folder / "record.json"


def _report(folder, cipher, keys, rows, attacker_images=10_000, victims=1000):
    folder.mkdir(parents=True)
    itself = {"attack": "encrypted image itself", "ssim_mean": 0.9, "ssim_std": 0.0,
              "psnr_mean": 9.0, "psnr_std": 1.0, "seconds": 0.0}  # fmt: skip
    rows = [itself, *rows]
    report = {"cipher": cipher, "keys": keys, "rows": rows, "victims": victims, "seed": 0,
              "attacker_images": attacker_images}  # fmt: skip
    (folder / "report.json").write_text(json.dumps(report))
    return folder / "report.json"


def test_each_cipher_and_key_mode_gets_its_best_mean_over_seeds_and_its_best_attack(tmp_path):
    pe = PixelCipher()
    records = [  # two seeds of one setting: their mean is its point, not the best seed
        _record(tmp_path / "a-s0", "independent", pe, {"fresh_key": 0.80, "fresh_key_tta": 0.82}),
        _record(tmp_path / "a-s1", "independent", pe, {"fresh_key": 0.90, "fresh_key_tta": 0.92},
                seed=1),
        _record(tmp_path / "b", "independent", pe, {"fresh_key": 0.84}, epochs=5),
        _record(
            tmp_path / "c", "independent", PixelCipher(shuffle=False), {"fresh_key": 0.99}
        ),  # a variant: not the cipher the attacks ran on
        _record(tmp_path / "d", "common", LearnableCipher(),
                {"common_key": 0.7, "common_key_tta": 0.75, "fresh_key": 0.9}),
        _record(tmp_path / "e", "plain", PixelCipher(), {"plain": 0.95}),
    ]  # fmt: skip
    accuracy = best_accuracy(records)
    assert set(accuracy) == {("pe", "independent"), ("le", "common")}
    pe = accuracy["pe", "independent"]
    assert (round(pe.mean, 6), pe.cell, pe.tta, pe.seeds) == (85.0, "85.00 ± 7.07", "87.00 ± 7.07",
                                                              "0,1")  # fmt: skip
    assert pe.runs == f"{tmp_path.as_posix()}/{{a-s0,a-s1}}"
    le = accuracy["le", "common"]  # TTA moves blocks of a block cipher: not valid, not shown
    assert (le.cell, le.tta, le.runs) == ("70.00", "", (tmp_path / "d").as_posix())
    reports = [
        _report(tmp_path / "r1", "pe", "independent",
                [{"attack": "fr", "ssim_mean": 0.1}, {"attack": "invariant", "ssim_mean": 0.6}]),
        _report(tmp_path / "r2", "le", "common", [{"attack": "helper", "ssim_mean": 1.0}]),
        _report(tmp_path / "r3", "etc", "common", [{"attack": "fr", "ssim_mean": 0.02}]),
    ]  # fmt: skip
    attack = best_attack(reports)  # the ciphertext itself is not an attack
    assert attack[("pe", "independent")] == (0.6, "invariant")
    points = chart(accuracy, attack, tmp_path / "privacy.png")
    assert points == [("le", "common"), ("pe", "independent")]  # etc has no accuracy record
    assert (tmp_path / "privacy.png").read_bytes()[:4] == b"\x89PNG"
    markdown = table(accuracy, attack, points)
    assert "| PE | independent | 85.00 ± 7.07 | 87.00 ± 7.07 | 0,1 |" in markdown
    assert "| LE | common | 70.00 | none | 0 |" in markdown


def test_security_tables_are_rewritten_between_their_markers_only(tmp_path):
    from benchmarks.security.security_table import update

    for keys, ssim in (("independent", 0.25), ("common", 1.0)):
        _report(tmp_path / f"pe-{keys}", "pe", keys, [{"attack": "helper", "ssim_mean": ssim,
                "ssim_std": 0.0, "psnr_mean": 9.0, "psnr_std": 1.0, "seconds": 1.0}])  # fmt: skip
        report = json.loads((tmp_path / f"pe-{keys}" / "report.json").read_text())
        report["rows"][0].update(ssim_std=0.0, psnr_mean=9.0, psnr_std=1.0, seconds=0.0)
        (tmp_path / f"pe-{keys}" / "report.json").write_text(json.dumps(report))
    document = tmp_path / "SECURITY.md"
    document.write_text("Prose stays.\n<!-- security-table pe-independent pe-common -->\nstale\n"
                        "<!-- /security-table -->\nMore prose.\n")  # fmt: skip
    assert update(document) == 1
    text = document.read_text()
    assert text.startswith("Prose stays.\n<!-- security-table pe-independent pe-common -->\n")
    assert "stale" not in text and text.endswith("<!-- /security-table -->\nMore prose.\n")
    assert "| helper | 0.250 +/- 0.000 | 9.00 +/- 1.00 | 1.000 +/- 0.000 |" in text


def _row(attack, ssim):
    return {"attack": attack, "ssim_mean": ssim, "ssim_std": 0.1, "psnr_mean": 12.0,
            "psnr_std": 1.0, "seconds": 60.0}  # fmt: skip


def test_reports_of_one_cipher_and_key_mode_are_merged_in_order(tmp_path):
    import pytest

    from benchmarks.security.security_table import merged, table

    _report(tmp_path / "old", "pe", "independent", [_row("fr", 0.1), _row("invariant", 0.3)])
    _report(tmp_path / "new", "pe", "independent", [_row("invariant", 0.6)], 50_000)
    report = merged([tmp_path / "old", tmp_path / "new"])
    by_attack = {row["attack"]: row for row in report["rows"]}
    assert list(by_attack) == ["encrypted image itself", "fr", "invariant"]
    assert by_attack["invariant"]["ssim_mean"] == 0.6  # the later report wins
    assert by_attack["fr"]["attacker_images"] == 10_000
    assert by_attack["invariant"]["attacker_images"] == 50_000
    assert "attacker_images" not in by_attack["encrypted image itself"]  # not an attack
    common = merged([tmp_path / "old"])
    assert (
        "| invariant | 0.600 +/- 0.100 | 12.00 +/- 1.00 | 0.300 +/- 0.100 | 12.00 +/- 1.00 "
        "| 60 / 60 | 50,000 / 10,000 |" in table(report, common)
    )
    assert table(report, common).splitlines()[2].endswith("| 0 / 0 | - / - |")
    _report(tmp_path / "other", "pe", "independent", [_row("fr", 0.2)], victims=10)
    with pytest.raises(SystemExit, match="reports of different settings"):
        merged([tmp_path / "old", tmp_path / "other"])


def test_the_privacy_table_is_written_between_its_markers(tmp_path):
    import pytest

    from benchmarks.security.privacy_chart import update

    document = tmp_path / "SECURITY.md"
    document.write_text("Before.\n<!-- privacy-table -->\nold\n<!-- /privacy-table -->\nAfter.\n")
    update(document, "| new |\n")
    assert document.read_text() == (
        "Before.\n<!-- privacy-table -->\n| new |\n<!-- /privacy-table -->\nAfter.\n"
    )
    (tmp_path / "other.md").write_text("no markers\n")
    with pytest.raises(SystemExit, match="needs one privacy-table marker pair"):
        update(tmp_path / "other.md", "| new |\n")
