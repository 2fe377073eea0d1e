"""A trading day's audit directory, written from its journal.

``AUDIT_DIR`` holds ``trail.jsonl`` (records and signed tree heads), ``public.pem`` (the tree
heads' Ed25519 public key) and ``vault.sqlite`` (the PII vault). The private signing key and
the regulator's key pair live elsewhere (``KEYS_DIR``): whoever can edit the audit directory
must not be able to sign for it, and the regulator's private key is the regulator's.
"""

import logging
import os

from tickwire.compliance.audit.keys import load_or_create_signing_key
from tickwire.compliance.audit.settlement import settlement_records
from tickwire.compliance.audit.source import journal_date, journal_records, read_entries
from tickwire.compliance.audit.trail import DEFAULT_HEAD_INTERVAL, TrailWriter
from tickwire.compliance.audit.vault import (
    VAULT_FILE,
    PiiVault,
    load_regulator_public_key,
    make_regulator_key,
)

__all__ = ["REGULATOR_KEY_FILE", "REGULATOR_PUB_FILE", "SIGNING_KEY_FILE", "regulator_public",
           "write_audit_dir"]

log = logging.getLogger(__name__)

SIGNING_KEY_FILE = "audit-signing.pem"
REGULATOR_KEY_FILE = "regulator.pem"
REGULATOR_PUB_FILE = "regulator.pub.pem"


def regulator_public(keys_dir, regulator_key=None):
    """The regulator's X25519 public key the vault escrows to: ``regulator_key`` (PEM), else
    ``KEYS_DIR/regulator.pub.pem``, else a demonstration pair made there (logged)."""
    if regulator_key:
        return load_regulator_public_key(regulator_key)
    pub = os.path.join(keys_dir, REGULATOR_PUB_FILE)
    if os.path.exists(pub):
        return load_regulator_public_key(pub)
    log.warning("no regulator key given: made a demonstration pair in %s (in production the "
                "regulator keeps the private half)", keys_dir)
    return make_regulator_key(os.path.join(keys_dir, REGULATOR_KEY_FILE), pub)


def write_audit_dir(audit_dir, wal_path, config, trade_date, keys_dir,
                    regulator_key=None, head_interval=DEFAULT_HEAD_INTERVAL,
                    server_id="tickwire-host", clearing_dir=None):
    """Derive the day's audit records from the WAL (and, given the day's clearing run, the
    settlement of its executions) and write the audit directory.

    Parameters
    ----------
    audit_dir, wal_path : str
    config : Config
        The venue's accounts; each becomes a client of the vault (if not already there).
    trade_date : datetime.date or None
        The session's date; None: the one the journal opened its day with.
    keys_dir : str
        Holds the signing key (made if missing) and, without ``regulator_key``, a regulator
        key pair made for demonstration.
    regulator_key : str, optional
        The regulator's X25519 public key (PEM) the vault escrows to.
    clearing_dir : str, optional
        The day's clearing directory: each execution's ``ORDER_SETTLED`` or
        ``SETTLEMENT_FAILED`` record follows the day's records
        (:mod:`tickwire.compliance.audit.settlement`).

    Returns
    -------
    dict
        ``records``, ``heads``, ``root`` (hex) and the paths written.
    """
    trade_date = trade_date or journal_date(wal_path)
    if trade_date is None:
        raise ValueError(f"{wal_path}: the journal records no trade date (a format-1 "
                         "journal): give it explicitly")
    os.makedirs(audit_dir, exist_ok=True)
    key = load_or_create_signing_key(os.path.join(keys_dir, SIGNING_KEY_FILE))
    vault = PiiVault(os.path.join(audit_dir, VAULT_FILE),
                     regulator_public(keys_dir, regulator_key))
    try:
        for name, account in sorted(config.accounts.items()):
            if vault.key(name) is None and not vault.erased(name):
                vault.add(name, {"account": name, "firm": account.firm})
        hashes = {}

        def client_hash(acct):
            if acct not in hashes:
                hashes[acct] = None if vault.erased(acct) else vault.hash_for(acct, trade_date)
            return hashes[acct]

        records = journal_records(read_entries(wal_path), config, trade_date, client_hash,
                                  server_id)
    finally:
        vault.close()
    if clearing_dir is not None:
        records += settlement_records(records, clearing_dir)
    writer = TrailWriter(audit_dir, key, head_interval)
    writer.extend(records)
    writer.close(trade_date)
    head = writer.heads[-1]
    log.info("audit trail %s: %d records, %d signed tree heads, root %s", writer.path,
             head["size"], len(writer.heads), head["root"])
    return {"records": head["size"], "heads": len(writer.heads), "root": head["root"],
            "trail": writer.path}
