"""The PII vault: who a ``client_id_hash`` is, deletable (GDPR), escrowed to a regulator.

Each client gets a random 256-bit key; the salt of day ``D`` is HMAC-SHA256(key, ``D``) and
the client's hash that day is sha256(client id + salt) (hex). The vault (``vault.sqlite``)
holds the keys and the identities; nothing else links an audit record to a person.

* **Erasure** (:meth:`PiiVault.forget`) deletes the client's key and identity (SQLite's
  ``secure_delete`` overwrites the freed pages): their audit records stay and still verify in
  the Merkle tree, but nobody can compute their hashes again. A tombstone (sha256 of
  ``"erased:" + client id``) lets a query say the client was erased instead of returning
  nothing.
* **Escrow**: when a client is added, ``{client_id, key, identity}`` is sealed to the
  regulator's X25519 public key (ephemeral X25519, HKDF-SHA256, AES-256-GCM) and kept even
  after erasure. Only the regulator's private key opens it (:func:`recover_escrow`), which
  gives back the link for any day.
"""

import datetime
import hashlib
import hmac
import json
import os
import secrets
import sqlite3

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

__all__ = [
    "VAULT_FILE",
    "ClientErased",
    "PiiVault",
    "client_hash",
    "load_regulator_private_key",
    "load_regulator_public_key",
    "make_regulator_key",
    "recover_escrow",
    "seal",
    "unseal",
]

VAULT_FILE = "vault.sqlite"
_INFO = b"tickwire audit escrow v1"
_SCHEMA = """
create table if not exists clients (client_id text primary key, key blob not null,
                                    identity text not null);
create table if not exists escrow (id integer primary key, sealed blob not null);
create table if not exists erased (tag text primary key, at text not null);
create table if not exists meta (name text primary key, value text not null);
"""


class ClientErased(LookupError):
    """The client was erased from the vault (GDPR): their hashes can no longer be made."""


def client_hash(client_id, key, day):
    """sha256(client id + that day's salt), the salt being HMAC-SHA256(key, ISO date)."""
    salt = hmac.new(key, day.isoformat().encode(), hashlib.sha256).hexdigest()
    return hashlib.sha256((client_id + salt).encode()).hexdigest()


def _tag(client_id):
    return hashlib.sha256(b"erased:" + client_id.encode()).hexdigest()


def _derive(shared, eph_pub, reg_pub):
    return HKDF(hashes.SHA256(), 32, salt=eph_pub + reg_pub, info=_INFO).derive(shared)


def _raw(public_key):
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def seal(regulator_public, plaintext):
    """Encrypt ``plaintext`` to the regulator's X25519 public key."""
    eph = X25519PrivateKey.generate()
    eph_pub, reg_pub = _raw(eph.public_key()), _raw(regulator_public)
    key = _derive(eph.exchange(regulator_public), eph_pub, reg_pub)
    nonce = secrets.token_bytes(12)
    return eph_pub + nonce + AESGCM(key).encrypt(nonce, plaintext, _INFO)


def unseal(regulator_private, sealed):
    """Decrypt what :func:`seal` made; raises ValueError with any other key."""
    eph_pub, nonce, body = sealed[:32], sealed[32:44], sealed[44:]
    shared = regulator_private.exchange(X25519PublicKey.from_public_bytes(eph_pub))
    key = _derive(shared, eph_pub, _raw(regulator_private.public_key()))
    try:
        return AESGCM(key).decrypt(nonce, body, _INFO)
    except InvalidTag:
        raise ValueError("the escrow does not open with this regulator key") from None


def make_regulator_key(private_path, public_path):
    """Write a new regulator X25519 key pair (PEM; private mode 0600); return the public key."""
    key = X25519PrivateKey.generate()
    os.makedirs(os.path.dirname(os.path.abspath(private_path)), exist_ok=True)
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(public_path, "wb") as f:
        f.write(key.public_key().public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return key.public_key()


def _load(path, loader, kind, what):
    try:
        with open(path, "rb") as f:
            key = loader(f.read())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read the {what} ({exc.strerror})") from None
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a PEM {what} ({exc})") from None
    if not isinstance(key, kind):
        raise ValueError(f"{path}: not an X25519 {what}")
    return key


def load_regulator_public_key(path):
    return _load(path, serialization.load_pem_public_key, X25519PublicKey,
                 "regulator public key")


def load_regulator_private_key(path):
    return _load(path, lambda b: serialization.load_pem_private_key(b, None), X25519PrivateKey,
                 "regulator private key")


class PiiVault:
    """Client keys and identities, in ``AUDIT_DIR/vault.sqlite``.

    Parameters
    ----------
    path : str
    regulator_public : X25519PublicKey, optional
        Escrow new clients to this key (needed to add clients).
    """

    def __init__(self, path, regulator_public=None):
        self.path = path
        self.db = sqlite3.connect(path)
        self.db.execute("pragma secure_delete = on")
        self.db.executescript(_SCHEMA)
        self.regulator_public = regulator_public
        self._keys = {}

    def close(self):
        self.db.commit()
        self.db.close()

    def add(self, client_id, identity):
        """Register a client (idempotent); ``identity`` is a JSON-able dict of their PII."""
        if self.key(client_id) is not None:
            return
        if self.db.execute("select 1 from erased where tag = ?", (_tag(client_id),)).fetchone():
            raise ClientErased(f"client {client_id!r} was erased from the PII vault")
        if self.regulator_public is None:
            raise ValueError("the vault needs the regulator's public key to add a client")
        key = secrets.token_bytes(32)
        entry = json.dumps({"client_id": client_id, "key": key.hex(), "identity": identity},
                           sort_keys=True).encode()
        self.db.execute("insert into clients values (?, ?, ?)",
                        (client_id, key, json.dumps(identity, sort_keys=True)))
        self.db.execute("insert into escrow (sealed) values (?)",
                        (seal(self.regulator_public, entry),))
        self.db.commit()
        self._keys[client_id] = key

    def key(self, client_id):
        key = self._keys.get(client_id)
        if key is None:
            row = self.db.execute("select key from clients where client_id = ?",
                                  (client_id,)).fetchone()
            if row is None:
                return None
            key = self._keys[client_id] = bytes(row[0])
        return key

    def identity(self, client_id):
        row = self.db.execute("select identity from clients where client_id = ?",
                              (client_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def erased(self, client_id):
        return self.db.execute("select at from erased where tag = ?",
                               (_tag(client_id),)).fetchone() is not None

    def hash_for(self, client_id, day):
        """The client's hash on ``day``; None for an unknown client.

        Raises
        ------
        ClientErased
        """
        key = self.key(client_id)
        if key is None:
            if self.erased(client_id):
                raise ClientErased(f"client {client_id!r} was erased from the PII vault (GDPR): "
                                   "their records remain but can no longer be linked to them")
            return None
        return client_hash(client_id, key, day)

    def forget(self, client_id, when=None):
        """Erase a client (crypto-shredding); return False if they were not in the vault."""
        if self.key(client_id) is None:
            return False
        when = when or datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
        self.db.execute("delete from clients where client_id = ?", (client_id,))
        self.db.execute("insert or replace into erased values (?, ?)", (_tag(client_id), when))
        self.db.commit()
        self.db.execute("vacuum")
        self._keys.pop(client_id, None)
        return True


def recover_escrow(vault_path, regulator_private):
    """Break glass: {client id: (key, identity)} from the escrow, with the regulator's key.

    Raises
    ------
    ValueError
        If the key does not open the escrow.
    """
    db = sqlite3.connect(vault_path)
    try:
        rows = db.execute("select sealed from escrow order by id").fetchall()
    finally:
        db.close()
    out = {}
    for (sealed,) in rows:
        entry = json.loads(unseal(regulator_private, bytes(sealed)))
        out[entry["client_id"]] = (bytes.fromhex(entry["key"]), entry["identity"])
    return out
