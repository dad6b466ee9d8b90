"""Ciphertext-only and chosen-plaintext attacks that learn nothing: key space, FR, helper images
(PE's one helper, and the block ciphers' few)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from keyless.attacks._base import Attack, Scenario, register_attack
from keyless.cipher import (
    NUM_CODES,
    BlockCipher,
    BlockKey,
    Cipher,
    PixelCipher,
    PixelKey,
    ScrambledKey,
    ScrambledPixelCipher,
)
from keyless.cipher._pe import DECRYPT_TABLE, ENCRYPT_TABLE
from keyless.invariant import blocks_of, fold, image_of


def keyspace_bits(cipher: Cipher, height: int, width: int) -> dict[str, float | str]:
    """Brute force: the key space of one image, and what finding one key would buy."""
    return {
        "bits": cipher.key_space_bits(height, width),
        "remark": "with independent keys a found key opens one image only",
    }


def fr_attack(ciphertexts: torch.Tensor, grey: bool = False) -> torch.Tensor:
    """Feature reconstruction: every value folded to min(p, 255 - p), stretched to 0..254.

    Args:
        ciphertexts: (N, H, W, 3) uint8.
        grey: average the three folded components (the shuffle hides which is which).
    """
    folded = fold(ciphertexts) * 2
    if grey:
        folded = folded.float().mean(-1, keepdim=True).round().to(torch.uint8).expand_as(folded)
    return folded.contiguous()


def candidate_decryptions(pixels: torch.Tensor) -> torch.Tensor:
    """(..., 3) uint8 ciphertext pixels -> (..., 48, 3): each pixel decrypted under every code
    (code 0 leaves it as it is); the same 48 for every encryption of one plain pixel."""
    table = torch.from_numpy(DECRYPT_TABLE).to(pixels.device)
    gathered = pixels[..., None, :].expand(*pixels.shape[:-1], NUM_CODES, 3)
    return torch.gather(
        gathered, -1, table[:, :3].expand(*pixels.shape[:-1], NUM_CODES, 3)
    ) ^ table[:, 3:].to(torch.uint8)


def fr_advanced_attack(ciphertexts: torch.Tensor) -> torch.Tensor:
    """Raster-order decoding: each pixel becomes the one of its 48 candidate decryptions closest
    (L1) to its decoded neighbour: the left one in the first row, the one above elsewhere.

    The first pixel is guessed as its fold (its darkest candidate); the first row is decoded
    column by column and every later row in one vectorised step.
    """
    n, h, w, _ = ciphertexts.shape
    candidates = candidate_decryptions(ciphertexts).int()  # (N, H, W, 48, 3)
    out = torch.empty(n, h, w, 3, dtype=torch.int32, device=ciphertexts.device)
    out[:, 0, 0] = fold(ciphertexts[:, 0, 0]).int()

    def closest(options: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        distance = (options - reference[..., None, :]).abs().sum(-1)
        index = distance.argmin(-1)
        return torch.gather(options, -2, index[..., None, None].expand(*index.shape, 1, 3)).squeeze(
            -2
        )

    for col in range(1, w):
        out[:, 0, col] = closest(candidates[:, 0, col], out[:, 0, col - 1])
    for row in range(1, h):
        out[:, row] = closest(candidates[:, row], out[:, row - 1])
    return out.to(torch.uint8)


@dataclass
class HelperImageAttack:
    """Chosen plaintext: the victim's key is used to encrypt a helper image of (1, 2, 3) pixels.

    Values above 127 reveal the inversion bits and the positions of 1, 2, 3 the shuffle, so the
    helper's key is recovered exactly. With a common key that key opens every image; with
    independent keys it opens only the helper.
    """

    encrypt_oracle: Callable[[torch.Tensor], torch.Tensor]

    def recover_key(self, height: int, width: int) -> PixelKey:
        helper = torch.tensor([1, 2, 3], dtype=torch.uint8).expand(1, height, width, 3).contiguous()
        seen = self.encrypt_oracle(helper)
        table = torch.from_numpy(ENCRYPT_TABLE)
        forms = (
            torch.gather(torch.tensor([1, 2, 3]).expand(NUM_CODES, 3), 1, table[:, :3])
            ^ table[:, 3:]
        )
        match = (seen[..., None, :].long() == forms).all(-1)  # (1, H, W, 48)
        return PixelKey(match.float().argmax(-1).to(torch.uint8))

    def reconstruct(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        key = self.recover_key(*ciphertexts.shape[1:3])
        return PixelCipher().decrypt(ciphertexts, key.to(ciphertexts.device))


@dataclass
class ScrambleHelperAttack:
    """Chosen plaintext on ``pe-scramble``: the (1, 2, 3) helper shows the PE code of the pixel
    that landed at each position; undoing those codes on a second helper, whose every block
    spells its own index in base 256, shows where each block came from. Exact under a common
    key."""

    cipher: ScrambledPixelCipher
    encrypt_oracle: Callable[[torch.Tensor], torch.Tensor]

    def recover_key(self, height: int, width: int) -> ScrambledKey:
        m, blocks = self.cipher.block_size, self.cipher.blocks(height, width)
        landed = HelperImageAttack(self.encrypt_oracle).recover_key(height, width)
        index = torch.arange(blocks)
        digits = torch.stack([index >> 16, index >> 8, index], -1).remainder(256).to(torch.uint8)
        helper = image_of(digits[None, :, None].expand(1, blocks, m * m, 3).flatten(2), height,
                          width, m)  # fmt: skip
        seen = blocks_of(PixelCipher().decrypt(self.encrypt_oracle(helper), landed), m)
        source = seen[..., :3].long()  # each output block's first pixel: its source's index
        # under independent keys the helpers meet different keys: the indices are noise
        positions = (source[..., 0] << 16 | source[..., 1] << 8 | source[..., 2]) % blocks
        moved = blocks_of(landed.codes[..., None], m)  # codes where the pixels landed
        codes = torch.empty_like(moved).scatter_(1, positions[..., None].expand_as(moved), moved)
        return ScrambledKey(PixelKey(image_of(codes, height, width, m)[..., 0]), positions.int())

    def reconstruct(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        key = self.recover_key(*ciphertexts.shape[1:3])
        return self.cipher.decrypt(ciphertexts, key.to(ciphertexts.device))


@dataclass
class BlockHelperAttack:
    """Chosen plaintext on a block-wise cipher (LE, ELE, EtC): a few helper images give the key.

    Every one of these ciphers sends each input symbol (a nibble for LE and ELE, a byte for EtC)
    to one output symbol, XORed with a mask. An all-zero helper shows each output symbol's mask;
    then helpers whose symbols spell out their own index, ``bits`` at a time (4 for a 32 x 32
    LE image of 6,144 nibbles, 2 for EtC), show where each output symbol came from. Together
    that is the key, up to its representation: with a common key it opens every image.
    """

    cipher: BlockCipher
    encrypt_oracle: Callable[[torch.Tensor], torch.Tensor]

    def helpers(self, height: int, width: int) -> int:
        """How many chosen images the attack asks for: the zero image and the index digits."""
        count = self.cipher.blocks(height, width) * self.cipher.symbols_per_block()
        return 1 + math.ceil(math.log2(count) / self._bits())

    def _bits(self) -> int:
        return 4 if self.cipher.nibbles else 8

    def recover_key(self, height: int, width: int) -> BlockKey:
        """The key as per-block masks, permutations and block positions."""
        cipher, bits = self.cipher, self._bits()
        blocks, size = cipher.blocks(height, width), cipher.symbols_per_block()

        def seen(symbols: torch.Tensor) -> torch.Tensor:
            image = cipher.from_symbols(symbols.view(1, blocks, size), height, width)
            return cipher.to_symbols(self.encrypt_oracle(image)).view(-1).long()

        index = torch.arange(blocks * size)
        mask_out = seen(torch.zeros(blocks * size, dtype=torch.uint8))
        source = torch.zeros_like(index)
        for digit in range(self.helpers(height, width) - 1):
            shift = bits * digit
            symbols = ((index >> shift) & (2**bits - 1)).to(torch.uint8)
            source |= (seen(symbols) ^ mask_out) << shift
        # under independent keys every helper had its own key: the digits then mean nothing
        source = (source % (blocks * size)).view(blocks, size)
        positions, perm_rows = source[:, 0] // size, source % size  # per output block
        perm = torch.zeros_like(perm_rows)
        perm[positions] = perm_rows
        mask = torch.zeros(blocks, size, dtype=torch.uint8)
        mask[positions[:, None], perm_rows] = mask_out.view(blocks, size).to(torch.uint8)
        return BlockKey(mask[None], perm[None].to(torch.int16), positions[None].to(torch.int32))

    def reconstruct(self, ciphertexts: torch.Tensor) -> torch.Tensor:
        key = self.recover_key(*ciphertexts.shape[1:3])
        return self.cipher.decrypt(ciphertexts, key.to(ciphertexts.device))


@register_attack("keyspace")
class KeySpace(Attack):
    """Brute force: :func:`keyspace_bits` of one victim image in ``extra``; no reconstructions."""

    def attack(self, ciphertexts: torch.Tensor, scenario: Scenario) -> tuple[None, dict[str, Any]]:
        return None, keyspace_bits(scenario.cipher, *ciphertexts.shape[1:3])


@register_attack("fr")
@dataclass(frozen=True)
class FR(Attack):
    """:func:`fr_attack`; ``grey`` averages each pixel's three folds."""

    grey: bool = False

    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        return fr_attack(ciphertexts, self.grey), {}


@register_attack("fr-advanced")
class FRAdvanced(Attack):
    """:func:`fr_advanced_attack`."""

    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        return fr_advanced_attack(ciphertexts), {}


@register_attack("helper")
class Helper(Attack):
    """Chosen plaintext: :class:`HelperImageAttack` on PE, :class:`ScrambleHelperAttack` on
    pe-scramble, :class:`BlockHelperAttack` on LE, ELE and EtC, with the scenario's oracle; exact
    under a common key, one image's worth otherwise."""

    ciphers = ("pe", "pe-scramble", "le", "ele", "etc")

    def attack(
        self, ciphertexts: torch.Tensor, scenario: Scenario
    ) -> tuple[torch.Tensor, dict[str, Any]]:
        cipher = scenario.cipher
        if isinstance(cipher, ScrambledPixelCipher):
            scramble = ScrambleHelperAttack(cipher, scenario.oracle)
            return scramble.reconstruct(ciphertexts), {"helper_images": 2}
        if isinstance(cipher, BlockCipher):
            helper = BlockHelperAttack(cipher, scenario.oracle)
            extra = {"helper_images": helper.helpers(*ciphertexts.shape[1:3])}
            return helper.reconstruct(ciphertexts), extra
        return HelperImageAttack(scenario.oracle).reconstruct(ciphertexts), {"helper_images": 1}
