"""Signed checkpoints: C2SP tlog-checkpoint bodies in signed notes, Ed25519.

A checkpoint is the text

    <origin>
    <tree size>
    <base64 root hash>

signed as a note (C2SP signed-note, the format of Go's sumdb and of
transparency-dev logs): after a blank line, one line per signature,
`— <key name> <base64(key id || signature)>`, where the key id is the first
four bytes of SHA-256(key name || "\\n" || 0x01 || public key) and 0x01 says
Ed25519. A verifier key is written `<name>+<hex key id>+<base64(0x01 || public key)>`,
so anyone can check a checkpoint with standard tools and this one string.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from aicp.errors import ConfigError

ED25519 = b"\x01"
KEY_FILE = "receipts-signing-key.pem"
DASH = "\u2014"  # the em dash that starts a signature line


class CheckpointError(ValueError):
    """A checkpoint that does not parse or whose signature does not verify."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    #: The whole signed note, as issued.
    note: str

    def as_dict(self) -> dict[str, object]:
        return {
            "origin": self.origin,
            "tree_size": self.size,
            "root_hash": self.root.hex(),
            "note": self.note,
        }


def key_id(name: str, public: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public).digest()[:4]


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


class Signer:
    def __init__(self, private: Ed25519PrivateKey, name: str) -> None:
        self._private = private
        self.name = name
        self.public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.key_id = key_id(name, self.public)

    @property
    def verifier_key(self) -> str:
        """The public verifier key string (what you publish for verifiers)."""
        encoded = base64.b64encode(ED25519 + self.public).decode()
        return f"{self.name}+{self.key_id.hex()}+{encoded}"

    def sign(self, origin: str, size: int, root: bytes) -> Checkpoint:
        body = checkpoint_body(origin, size, root)
        sig = self._private.sign(body.encode())
        line = f"{DASH} {self.name} {base64.b64encode(self.key_id + sig).decode()}\n"
        return Checkpoint(origin, size, root, body + "\n" + line)


def load_signer(configured: str | None, data_dir: str, name: str) -> Signer:
    """The configured key (a PEM file, or the PEM itself), else the data directory's,
    made (0600) on first start. Several hosts of one log must share one key."""
    if configured:
        pem = configured.encode()
        if b"-----BEGIN" not in pem:
            try:
                pem = Path(configured).read_bytes()
            except OSError as exc:
                raise ConfigError(
                    f"receipts.signing_key: cannot read {configured}: {exc}"
                ) from None
        return Signer(_private_from_pem(pem, "receipts.signing_key"), name)
    path = Path(data_dir) / KEY_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL: of two processes starting at once, one makes the key and both use it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(pem)
    return Signer(_private_from_pem(_read_complete(path), str(path)), name)


def _read_complete(path: Path) -> bytes:
    # Another process may be between creating the file and writing it.
    import time

    for _ in range(100):
        pem = path.read_bytes()
        if b"-----END" in pem:
            return pem
        time.sleep(0.01)
    return path.read_bytes()


def _private_from_pem(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: not a PEM private key: {exc}") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{where}: the receipts signing key must be Ed25519")
    return key


# --- verification (no database, no private key) ----------------------------------


@dataclass(frozen=True, slots=True)
class Verifier:
    name: str
    key_id: bytes
    public: Ed25519PublicKey

    @classmethod
    def parse(cls, text: str) -> Verifier:
        parts = text.strip().split("+", 2)
        if len(parts) != 3:
            raise CheckpointError("a verifier key is <name>+<hex key id>+<base64 key>")
        name, hex_id, encoded = parts
        try:
            raw = base64.b64decode(encoded, validate=True)
            kid = bytes.fromhex(hex_id)
        except ValueError:
            raise CheckpointError("the verifier key is not valid base64/hex") from None
        if len(raw) != 33 or raw[:1] != ED25519:
            raise CheckpointError("the verifier key is not an Ed25519 key")
        if key_id(name, raw[1:]) != kid:
            raise CheckpointError("the verifier key's id does not match its name and key")
        return cls(name, kid, Ed25519PublicKey.from_public_bytes(raw[1:]))

    def open(self, note: str) -> Checkpoint:
        """Parse `note` and check its signature by this key; CheckpointError if not."""
        body, sep, sigs = note.partition("\n\n")
        if not sep:
            raise CheckpointError("a checkpoint note has a blank line before its signatures")
        body += "\n"
        lines = body.split("\n")
        if len(lines) < 4:
            raise CheckpointError("a checkpoint has an origin, a size and a root hash")
        origin, size_text, root_text = lines[0], lines[1], lines[2]
        try:
            size = int(size_text)
            root = base64.b64decode(root_text, validate=True)
        except ValueError:
            raise CheckpointError("the checkpoint's size or root hash does not parse") from None
        if size < 0 or len(root) != 32 or str(size) != size_text:
            raise CheckpointError("the checkpoint's size or root hash is malformed")
        for line in sigs.splitlines():
            prefix = f"{DASH} {self.name} "
            if not line.startswith(prefix):
                continue
            try:
                blob = base64.b64decode(line[len(prefix) :], validate=True)
            except ValueError:
                continue
            if blob[:4] != self.key_id:
                continue
            try:
                self.public.verify(blob[4:], body.encode())
            except InvalidSignature:
                raise CheckpointError("the checkpoint's signature does not verify") from None
            return Checkpoint(origin, size, root, note)
        raise CheckpointError(f"the checkpoint carries no signature by {self.name}")
