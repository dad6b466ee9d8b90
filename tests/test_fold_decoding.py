import torch

from benchmarks.security.fold_decoding import error_after_best_global_map, raster_decode
from keyless.attacks import candidate_decryptions
from keyless.invariant import sorted_fold


def _images(n=6, size=8, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, size, size, 3), generator=generator, dtype=torch.uint8)


def test_candidates_hold_every_reordering_and_inversion_of_a_pixel_itself_first():
    pixel = torch.tensor([10, 200, 77], dtype=torch.uint8)
    assert candidate_decryptions(pixel)[0].tolist() == [10, 200, 77]
    candidates = {tuple(c.tolist()) for c in candidate_decryptions(pixel)}
    assert len(candidates) == 48
    assert (200, 10, 255 - 77) in candidates and (255 - 10, 77, 200) in candidates
    assert {tuple(sorted(min(v, 255 - v) for v in c)) for c in candidates} == {(10, 55, 77)}


def test_an_image_wide_inversion_and_reordering_costs_nothing_but_any_other_change_does():
    plain = _images()
    mapped = plain[..., [2, 0, 1]].clone()
    mapped[..., 1] = 255 - mapped[..., 1]
    assert error_after_best_global_map(mapped, plain) == 0
    assert error_after_best_global_map(sorted_fold(plain), plain) > 10


def test_neighbour_only_decoding_returns_the_sorted_fold_itself():
    # the sorted fold is the L1-nearest of each pixel's candidates to any sorted-fold neighbour
    plain = _images()
    assert torch.equal(raster_decode(sorted_fold(plain), 1, 0), sorted_fold(plain))
    assert not torch.equal(raster_decode(sorted_fold(plain), 0, 1), sorted_fold(plain))
