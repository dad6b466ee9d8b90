"""The jigsaw attack: one-to-one placement, learning where blocks go, the attack and its report."""

import json

import pytest
import torch

from keyless.attacks import (
    BlockPlacer,
    JigsawPlacer,
    Scenario,
    blocks_placed,
    create_attack,
    greedy_assignment,
    run_attacks,
    write_report,
)
from keyless.attacks._jigsaw import place_blocks
from keyless.cipher import create_cipher
from keyless.data import ImageSet
from keyless.errors import InputError
from keyless.invariant import sorted_fold
from keyless.keys import SeedSource

SIZE, BLOCK = 16, 4  # 16 blocks: chance places 1 / 16 of them


def gradient_images(n: int, seed: int) -> torch.Tensor:
    """(n, 16, 16, 3) uint8 images whose sorted fold is 4 + 8 b in block b (raster order) plus
    small noise, each value flipped (p -> 255 - p) at random: where a block goes shows in it."""
    g = torch.Generator().manual_seed(seed)
    side = SIZE // BLOCK
    level = (4 + 8 * torch.arange(side * side)).reshape(side, side).float()
    level = level.repeat_interleave(BLOCK, 0).repeat_interleave(BLOCK, 1)[None, :, :, None]
    fold = (level + 1.5 * torch.randn(n, SIZE, SIZE, 3, generator=g)).round().clamp(0, 127)
    flip = torch.rand(n, SIZE, SIZE, 3, generator=g) < 0.5
    return torch.where(flip, 255 - fold, fold).to(torch.uint8)


def is_permutation(positions: torch.Tensor) -> bool:
    return bool((positions.sort(-1).values == torch.arange(positions.shape[-1])).all())


def test_greedy_assignment_gives_a_permutation_and_keeps_a_one_to_one_argmax():
    g = torch.Generator().manual_seed(0)
    scores = torch.randn(50, 9, 9, generator=g)
    assert is_permutation(greedy_assignment(scores))
    crowded = torch.zeros(1, 3, 3)
    crowded[0, :, 0] = torch.tensor([3.0, 2.0, 1.0])  # every block prefers position 0
    assert greedy_assignment(crowded)[0, 0] == 0 and is_permutation(greedy_assignment(crowded))
    want = torch.stack([torch.randperm(9, generator=g) for _ in range(50)])
    peaked = scores + 10 * torch.nn.functional.one_hot(want, 9)
    assert torch.equal(peaked.argmax(-1), want)
    assert torch.equal(greedy_assignment(peaked), want)


def test_the_true_positions_lay_the_invariant_out_as_the_plain_images_sorted_fold():
    cipher = create_cipher("pe-scramble", block_size=BLOCK)
    plain = gradient_images(4, seed=0)
    _, rows, truth = JigsawPlacer(cipher).examples(plain, SeedSource(0))
    folds = place_blocks(rows, truth, SIZE, SIZE, BLOCK)
    assert torch.equal(folds, sorted_fold(plain))
    assert blocks_placed(folds, sorted_fold(plain), BLOCK) == 1.0
    assert blocks_placed(folds.flip(1), sorted_fold(plain), BLOCK) == 0.0


def test_block_placer_sees_a_set_permuting_the_blocks_permutes_the_scores():
    torch.manual_seed(0)
    net = BlockPlacer(BLOCK, 16).eval()
    rows = torch.randint(0, 128, (2, 16, BLOCK * BLOCK * 3), dtype=torch.uint8)
    order = torch.randperm(16)
    with torch.no_grad():
        assert torch.allclose(net(rows)[:, order], net(rows[:, order]), atol=1e-5)


@pytest.mark.slow
def test_placer_learns_where_blocks_go_far_better_than_chance():
    torch.manual_seed(0)
    cipher, source = create_cipher("pe-scramble", block_size=BLOCK), SeedSource(0)
    placer = JigsawPlacer(cipher, epochs=8, batch_size=16, precision="fp32")
    placer.fit(gradient_images(256, seed=1), source)
    victims = gradient_images(32, seed=2)
    placed = placer.place(cipher.encrypt_fresh(victims, source)[0])
    assert placed.dtype == torch.uint8 and placed.shape == victims.shape
    assert blocks_placed(placed, sorted_fold(victims), BLOCK) > 0.8  # chance: 1 / 16


@pytest.mark.slow
def test_jigsaw_runs_end_to_end_and_the_report_says_how_many_blocks_it_placed(tmp_path):
    torch.manual_seed(0)
    cipher = create_cipher("pe-scramble", block_size=BLOCK)
    labels = torch.zeros(20, dtype=torch.long)
    attacker = ImageSet(gradient_images(20, seed=1), labels, ("a",))
    victims = ImageSet(gradient_images(6, seed=2), labels[:6], ("a",))
    report, columns = run_attacks(attacker, victims, cipher, "independent", ["jigsaw"], 0.5)
    assert columns["jigsaw"].shape == victims.images.shape
    assert columns["jigsaw"].dtype == torch.uint8
    row = report["rows"][-1]
    assert row["attack"] == "jigsaw" and 0 <= row["blocks_placed"] <= 1
    assert row["blocks_chance"] == 1 / 16
    write_report(report, columns, tmp_path)
    assert json.loads((tmp_path / "report.json").read_text())["rows"][-1] == row
    assert (
        "of the victims' blocks placed at their true position"
        in (tmp_path / "report.md").read_text()
    )


@pytest.mark.slow
def test_jigsaw_extra_reports_own_held_out_placement():
    torch.manual_seed(0)
    cipher, source = create_cipher("pe-scramble", block_size=BLOCK), SeedSource(0)
    scenario = Scenario(cipher, gradient_images(20, seed=1), lambda x: x, source, 1e-6)
    result = create_attack("jigsaw").run(cipher.encrypt_fresh(gradient_images(3, 2))[0], scenario)
    assert result.reconstructions.shape == (3, SIZE, SIZE, 3)
    assert 0 <= result.extra["own_blocks_placed"] <= 1  # 2 of the 20 images held out
    assert result.extra["placed_folds"].shape == (3, SIZE, SIZE, 3)


def test_jigsaw_refuses_other_ciphers_in_one_line():
    cipher = create_cipher("pe")
    images = gradient_images(2, seed=0)
    scenario = Scenario(cipher, images, lambda x: x)
    with pytest.raises(InputError, match="jigsaw") as error:
        create_attack("jigsaw").run(cipher.encrypt_fresh(images)[0], scenario)
    assert "\n" not in str(error.value)
