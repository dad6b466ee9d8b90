"""Compare to vanilla: a cipher that changes nothing must train exactly like plain images."""

from dataclasses import dataclass

import pytest
import torch

from keyless.cipher import CIPHERS
from keyless.cipher._base import CipherBase
from keyless.train import recipe, train
from tests.synthetic import quadrant_splits


@dataclass(frozen=True)
class NoKey:
    """Keys of the identity cipher: only their number."""

    n: int

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index) -> "NoKey":
        return NoKey(len(torch.arange(self.n)[index]))

    def to(self, device) -> "NoKey":
        return self

    def to_bytes(self) -> bytes:
        return b""

    def save(self, path) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class IdentityCipher(CipherBase):
    name = "identity"
    commutes_with_moves = True

    def keygen(self, n, size, source=None, ids=None, device="cpu") -> NoKey:
        return NoKey(n)

    def encrypt(self, images, key):
        return images.clone()

    decrypt = encrypt

    def key_space_bits(self, height, width) -> float:
        return 0.0

    def load_key(self, path) -> NoKey:
        return NoKey(1)


@pytest.mark.slow
def test_identity_cipher_trains_bit_identically_to_plain_images(
    tmp_path, monkeypatch, exact_device
):
    monkeypatch.setitem(CIPHERS._entries, "identity", IdentityCipher)  # removed after the test
    tiny = {"model_kwargs": {"widths": [16, 32, 32]}, "batch_size": 64, "seed": 0,
            "precision": "fp32", "epochs": 3, "rekey": True}  # fmt: skip
    plain = train(recipe("fast", keys="plain", **tiny), quadrant_splits(), tmp_path / "plain",
                  progress=False, device=exact_device)  # fmt: skip
    identity = recipe("fast", keys="independent", cipher=IdentityCipher(), **tiny)
    encrypted = train(identity, quadrant_splits(), tmp_path / "identity", progress=False,
                      device=exact_device)  # fmt: skip

    def without_times(history):
        return [{k: v for k, v in entry.items() if k != "seconds"} for entry in history]

    assert without_times(encrypted["history"]) == without_times(plain["history"])
    for name in ("plain", "plain_tta"):
        assert encrypted["test"][name] == plain["test"][name]
    assert encrypted["test"]["fresh_key"] == encrypted["test"]["plain"]  # nothing to undo
