"""Ed25519 keys of the audit trail and the signed tree heads.

A tree head's signature is Ed25519 over the canonical JSON of ``{"size", "root",
"timestamp"}`` (``root`` in hex); the signature is written in hex.
"""

import os

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from tickwire.compliance.audit.canonical import canonical_json

__all__ = [
    "KeyFileError",
    "head_message",
    "head_signature_ok",
    "load_or_create_signing_key",
    "load_public_key",
    "public_key_bytes",
    "sign_head",
    "write_public_key",
]


class KeyFileError(ValueError):
    """A key file that is missing, unreadable or not an Ed25519 key."""


def load_or_create_signing_key(path):
    """The Ed25519 private key in ``path`` (PEM, PKCS#8), made (mode 0600) if missing."""
    if os.path.exists(path):
        try:
            with open(path, "rb") as f:
                key = serialization.load_pem_private_key(f.read(), password=None)
        except (ValueError, TypeError) as exc:
            raise KeyFileError(f"{path}: not a PEM private key ({exc})") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 private key")
        return key
    key = Ed25519PrivateKey.generate()
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return key


def write_public_key(key, path):
    """Write the public half of ``key`` to ``path`` (PEM, SubjectPublicKeyInfo)."""
    with open(path, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))


def load_public_key(path):
    """The Ed25519 public key in ``path`` (PEM).

    Raises
    ------
    KeyFileError
        Missing file, not PEM, or another kind of key.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read the public key ({exc.strerror})") from None
    try:
        key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyFileError(f"{path}: not a PEM public key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"{path}: not an Ed25519 public key")
    return key


def public_key_bytes(public_key):
    """The raw 32 bytes of an Ed25519 public key (to compare two keys)."""
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def head_message(size, root_hex, timestamp):
    """The bytes a tree head's signature covers."""
    return canonical_json({"size": size, "root": root_hex, "timestamp": timestamp})


def sign_head(key, size, root_hex, timestamp):
    """A signed tree head as its trail line object."""
    signature = key.sign(head_message(size, root_hex, timestamp)).hex()
    return {"kind": "tree_head", "size": size, "root": root_hex, "timestamp": timestamp,
            "signature": signature}


def head_signature_ok(public_key, head):
    """Whether ``head``'s signature verifies with ``public_key``."""
    try:
        signature = bytes.fromhex(head["signature"])
        public_key.verify(signature, head_message(head["size"], head["root"],
                                                  head["timestamp"]))
    except (InvalidSignature, ValueError, TypeError, KeyError):
        return False
    return True
