"""Registry-driven: every registered attack on every registered cipher, on tiny images."""

import inspect
import itertools
import math

import pytest
import torch

from keyless.attacks import (
    Attack,
    AttackResult,
    Scenario,
    create_attack,
    list_attacks,
    register_attack,
)
from keyless.attacks._learned import _Learned
from keyless.cipher import create_cipher, list_ciphers
from keyless.errors import InputError, UnknownNameError
from keyless.invariant import sorted_fold
from keyless.keys import SeedSource
from tests.synthetic import quadrant_images

SIZE = 8
PAIRS = list(itertools.product(list_ciphers(), list_attacks()))
APPLIES = [p for p in PAIRS if create_attack(p[1]).applies_to(create_cipher(p[0]))]


def learned(name: str) -> bool:
    """Whether the attack trains a network (its tests are slow)."""
    return isinstance(create_attack(name), _Learned)


def setting(
    cipher_name: str, keys: str, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor, Scenario]:
    """Plain victims, their ciphertexts and the attacker's scenario (tiny learning budget)."""
    cipher, source = create_cipher(cipher_name), SeedSource(seed)
    plain = quadrant_images(6, SIZE, seed=1).images
    common = cipher.keygen(1, (SIZE, SIZE), source) if keys == "common" else None

    def key(n: int):
        return common if common is not None else cipher.keygen(n, (SIZE, SIZE), source)

    scenario = Scenario(
        cipher,
        quadrant_images(8, SIZE, seed=2).images,
        lambda chosen: cipher.encrypt(chosen, key(1)),
        source,
        budget_seconds=1e-6,  # learned attacks stop after their first epoch
    )
    return plain, cipher.encrypt(plain, key(len(plain))), scenario


def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)


def test_every_attack_class_is_registered_under_the_name_it_carries():
    """An attack class of the package left out of the registry, or misnamed, fails."""
    concrete = {c for c in subclasses(Attack) if c.__module__.startswith("keyless.")
                and not inspect.isabstract(c)}  # fmt: skip
    registered = {name: type(create_attack(name)) for name in list_attacks()}
    assert concrete and set(registered.values()) == concrete
    assert all(cls.name == name for name, cls in registered.items())


@pytest.mark.parametrize(
    ("cipher_name", "attack_name"),
    [pytest.param(*p, marks=[pytest.mark.slow] if learned(p[1]) else []) for p in APPLIES],
)
def test_every_applicable_attack_returns_one_result_type(cipher_name, attack_name):
    torch.manual_seed(0)
    _, ciphertexts, scenario = setting(cipher_name, "independent")
    result = create_attack(attack_name).run(ciphertexts, scenario)
    assert isinstance(result, AttackResult) and result.name == attack_name
    assert result.seconds >= 0 and isinstance(result.extra, dict)
    if result.reconstructions is None:  # an estimate, not images
        assert result.extra
    else:
        assert result.reconstructions.shape == ciphertexts.shape
        assert result.reconstructions.dtype == torch.uint8


@pytest.mark.parametrize("cipher_name", list_ciphers())
def test_helper_recovers_every_ciphers_common_key_exactly_and_no_independent_one(cipher_name):
    assert (cipher_name, "helper") in APPLIES
    plain, ciphertexts, scenario = setting(cipher_name, "common")
    result = create_attack("helper").run(ciphertexts, scenario)
    assert torch.equal(result.reconstructions, plain)
    assert (
        result.extra["helper_images"]
        == {"pe": 1, "pe-scramble": 2, "etc": 2, "le": 4, "ele": 4}[cipher_name]
    )
    plain, ciphertexts, scenario = setting(cipher_name, "independent")
    assert not torch.equal(
        create_attack("helper").run(ciphertexts, scenario).reconstructions, plain
    )


@pytest.mark.parametrize("cipher_name", ["le", "ele", "etc"])
def test_block_helper_finds_the_key_itself(cipher_name):
    from keyless.attacks._classic import BlockHelperAttack

    cipher = create_cipher(cipher_name)
    key = cipher.keygen(1, (SIZE, SIZE), SeedSource(5))
    found = BlockHelperAttack(cipher, lambda image: cipher.encrypt(image, key))
    found = found.recover_key(SIZE, SIZE)
    blocks = cipher.blocks(SIZE, SIZE)
    positions = key.positions if key.positions is not None else torch.arange(blocks)[None]
    assert torch.equal(found.positions, positions.to(torch.int32))
    assert torch.equal(found.perm, key.perm.expand_as(found.perm))
    assert torch.equal(found.mask, key.mask.expand_as(found.mask))


def test_fr_on_pe_is_key_invariant():
    first = setting("pe", "independent", seed=1)
    second = setting("pe", "independent", seed=2)
    assert not torch.equal(first[1], second[1])
    fr = create_attack("fr")
    outputs = [
        fr.run(ciphertexts, scenario).reconstructions
        for _, ciphertexts, scenario in (first, second)
    ]
    assert torch.equal(*(o.sort(-1).values for o in outputs))
    grey = create_attack("fr", grey=True)
    assert torch.equal(*(grey.run(c, s).reconstructions for _, c, s in (first, second)))


@pytest.mark.parametrize("cipher_name", list_ciphers())
def test_fr_advanced_picks_each_pixel_among_its_candidate_decryptions(cipher_name):
    _, ciphertexts, scenario = setting(cipher_name, "independent")
    decoded = create_attack("fr-advanced").run(ciphertexts, scenario).reconstructions
    assert torch.equal(sorted_fold(decoded), sorted_fold(ciphertexts))
    assert not torch.equal(decoded, ciphertexts)  # it chose, rather than echo its input


@pytest.mark.parametrize("cipher_name", list_ciphers())
def test_keyspace_reports_the_ciphers_bits(cipher_name):
    _, ciphertexts, scenario = setting(cipher_name, "independent")
    result = create_attack("keyspace").run(ciphertexts, scenario)
    assert result.reconstructions is None
    assert result.extra["bits"] == scenario.cipher.key_space_bits(SIZE, SIZE) > 0


@pytest.mark.slow
@pytest.mark.parametrize("attack_name", ["itn", "itn-unet", "invariant", "gan"])
def test_learned_attacks_stop_on_the_budget_and_record_finite_losses(attack_name):
    torch.manual_seed(0)
    _, ciphertexts, scenario = setting("pe", "independent")
    losses = create_attack(attack_name).run(ciphertexts, scenario).extra["losses"]
    assert len(losses) == 1 and all(map(math.isfinite, torch.tensor(losses).flatten().tolist()))


def test_options_merge_over_defaults_and_unknown_names_suggest_close_ones():
    assert create_attack("itn", epochs=3, lr=None).epochs == 3
    assert create_attack("itn-unet").lr == create_attack("itn").lr
    with pytest.raises(UnknownNameError, match="did you mean fr-advanced"):
        create_attack("fr-advance")
    with pytest.raises(TypeError):
        create_attack("fr-advanced", grey=True)


def test_an_attack_of_ones_own_runs_through_the_same_interface_but_names_stay_unique():
    class Identity(Attack):
        name, ciphers = "identity", ("pe",)

        def attack(self, ciphertexts, scenario):
            return ciphertexts, {}

    _, ciphertexts, scenario = setting("pe", "independent")
    assert torch.equal(Identity().run(ciphertexts, scenario).reconstructions, ciphertexts)
    with pytest.raises(InputError, match=r"attack 'identity' decodes PE keys only, not le$"):
        Identity().run(*setting("le", "independent")[1:])
    with pytest.raises(ValueError, match="already registered"):
        register_attack("fr")(Identity)
    assert Identity.name == "identity"
