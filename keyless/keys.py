"""Where key randomness comes from: the OS CSPRNG, a seed, or a master secret plus an image id.

Every source hands out AES-256-CTR keystreams (a standard CTR-DRBG construction): the stream key
comes from ``os.urandom`` (default, never stored), from SHA-256 of a seed (reproducible
experiments), or from HKDF-SHA256 of a master secret and the image id (the owner can decrypt
later without storing per-image keys).
"""

from __future__ import annotations

import hashlib
import os
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from keyless._atomic import write_bytes_atomic
from keyless.errors import KeyMaterialError

MASTER_MAGIC = "keyless-master-v1"
MASTER_BYTES = 32
MASTER_FILE_BYTES = 4096  # a master key file holds 83; room for other spaces and line ends


_BLOCK = 1 << 20
_ZEROS = bytes(_BLOCK)


CHECK_VALUE = "check-value"  # HKDF purpose of a master key's public check value


def check_value(secret: bytes, purpose: str = CHECK_VALUE) -> str:
    """A short public fingerprint of key material (4 bytes of HKDF-SHA256, never the material):
    manifests record it so that decrypting or adding images with another master key or common
    key is refused, not turned to noise."""
    hkdf = HKDF(hashes.SHA256(), length=4, salt=None, info=f"keyless/v1/{purpose}".encode())
    return hkdf.derive(secret).hex()


def read_key_file(path: Path | str, limit: int, what: str, magic: bytes = b"") -> bytes:
    """The bytes of key file ``path``, or one :class:`KeyMaterialError` naming it: when it cannot
    be read, or holds more than ``limit`` bytes (a regular file is refused on its size, before
    reading). A file that does not begin with ``magic`` is read no further (its parser refuses
    it), so /dev/zero, a pipe or a huge file costs neither time nor memory."""
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size  # 0 for a device or a pipe: read to know
            data = b""
            if size <= limit:
                data = file.read(len(magic))
                if data == magic:
                    data += file.read((size or limit) + 1 - len(magic))
    except OSError as exc:
        raise KeyMaterialError(f"{path}: cannot read {what} ({exc.strerror})") from None
    if size > limit or len(data) > limit:
        raise KeyMaterialError(f"{path}: not a keyless {what} file (over {limit:,} bytes)")
    return data


class ByteStream:
    """An AES-256-CTR keystream: ``read(n)`` returns the next ``n`` bytes as a uint8 array."""

    def __init__(self, key: bytes) -> None:
        self._encryptor = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()

    def read(self, n: int) -> np.ndarray:
        # Encrypting zeros yields the keystream; written in place, 1 MiB at a time.
        out = np.empty(n + 15, np.uint8)
        for start in range(0, n, _BLOCK):
            size = min(_BLOCK, n - start)
            self._encryptor.update_into(memoryview(_ZEROS)[:size], out[start : start + size + 15])
        return out[:n]


class KeySource(ABC):
    """Hands out independent byte streams, one per call (or one per image id)."""

    reproducible: bool = False

    @abstractmethod
    def stream(self, image_id: str | None = None) -> ByteStream:
        """A fresh stream; sources that derive keys from ids require ``image_id``."""


class CsprngSource(KeySource):
    """The OS CSPRNG: every stream is keyed by 32 fresh bytes of ``os.urandom``; ids are ignored."""

    def stream(self, image_id: str | None = None) -> ByteStream:
        return ByteStream(os.urandom(32))


class SeedSource(KeySource):
    """Reproducible keys from an integer seed.

    With an image id the stream depends only on (seed, id), whatever the batch order; without one
    each call takes the next stream of a counter, so successive batches get different keys.
    """

    reproducible = True

    def __init__(self, seed: int) -> None:
        self.seed = int(seed)
        self._calls = 0  # an int, not itertools.count: DataLoader workers get pickled copies

    def stream(self, image_id: str | None = None) -> ByteStream:
        if image_id is None:
            label, self._calls = f"n:{self._calls}", self._calls + 1
        else:
            label = f"id:{image_id}"
        return ByteStream(
            hashlib.sha256(
                f"keyless-seed/{self.seed}/{label}".encode("utf-8", "surrogateescape")
            ).digest()
        )


class MasterKeySource(KeySource):
    """Per-image keys derived with HKDF-SHA256 from a master secret and the image id."""

    reproducible = True

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 16:
            raise KeyMaterialError(f"master secret has {len(secret)} bytes; at least 16 needed")
        self._secret = secret

    def stream(self, image_id: str | None = None) -> ByteStream:
        if image_id is None:
            raise KeyMaterialError("a master key derives one key per image id, but none was given")
        if image_id == CHECK_VALUE:  # the same HKDF info: its key would begin with the check value
            raise KeyMaterialError(f"the image id {image_id!r} is reserved; rename the file")
        hkdf = HKDF(
            hashes.SHA256(),
            length=32,
            salt=None,
            info=f"keyless/v1/{image_id}".encode("utf-8", "surrogateescape"),
        )
        return ByteStream(hkdf.derive(self._secret))

    def check_value(self) -> str:
        """The secret's public fingerprint (:func:`check_value`)."""
        return check_value(self._secret)

    @classmethod
    def create(cls, path: Path) -> MasterKeySource:
        """Write a new random master secret to ``path`` (owner-only permissions) and load it."""
        secret = os.urandom(MASTER_BYTES)
        write_bytes_atomic(path, f"{MASTER_MAGIC}\n{secret.hex()}\n".encode(), mode=0o600)
        return cls(secret)

    @classmethod
    def load(cls, path: Path) -> MasterKeySource:
        """Read a master secret written by :meth:`create`."""
        data = read_key_file(path, MASTER_FILE_BYTES, "master key")
        try:
            magic, hexkey = data.decode().split()
            secret = bytes.fromhex(hexkey)
            if magic != MASTER_MAGIC or len(secret) != MASTER_BYTES:
                raise ValueError
            return cls(secret)
        except ValueError:
            raise KeyMaterialError(
                f"{path}: not a keyless master key file (or a truncated one)"
            ) from None
