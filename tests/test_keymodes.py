import pytest

from keyless.errors import ConfigError, ExitStatus
from keyless.keymodes import KEY_MODES, KEY_MODES_OF, key_mode
from keyless.runs import TrainConfig


def test_every_use_takes_names_of_the_one_vocabulary():
    assert set(KEY_MODES) == {"plain", "independent", "common", "master-key", "seed"}
    assert {mode for modes in KEY_MODES_OF.values() for mode in modes} == set(KEY_MODES)
    assert "independent" not in KEY_MODES_OF["decrypt"]  # thrown away: nothing to decrypt with
    assert "plain" not in KEY_MODES_OF["encrypt"]


@pytest.mark.parametrize("use", sorted(KEY_MODES_OF))
def test_key_mode_takes_its_uses_modes_and_refuses_the_others_in_one_line(use):
    for mode in KEY_MODES:
        if mode in KEY_MODES_OF[use]:
            assert key_mode(mode, use) == mode
        else:
            with pytest.raises(ConfigError) as refused:
                key_mode(mode, use)
            message = str(refused.value)
            assert "\n" not in message and f"for {use}, got {mode!r}" in message
            assert all(allowed in message for allowed in KEY_MODES_OF[use])
            assert refused.value.exit_code == ExitStatus.USAGE


def test_a_run_takes_the_train_modes_only():
    for mode in KEY_MODES_OF["train"]:
        assert TrainConfig(keys=mode).keys == mode
    with pytest.raises(ConfigError, match="keys must be one of plain, independent, common for "
                                          "train, got 'seed'"):  # fmt: skip
        TrainConfig(keys="seed")
