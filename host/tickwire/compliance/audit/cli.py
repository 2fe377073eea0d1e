"""``tickwire audit``: build, export, verify, prove, correct and query the audit trail."""

import datetime
import json
import os
import shutil
import sys

from sqlalchemy.exc import SQLAlchemyError
from tickwire.accounts.config import load_config
from tickwire.compliance.audit.cat import write_cat
from tickwire.compliance.audit.day import write_audit_dir
from tickwire.compliance.audit.correction import CORRECTABLE, append_correction
from tickwire.compliance.audit.keys import KeyFileError, load_or_create_signing_key, load_public_key
from tickwire.compliance.audit.merkle import (
    MerkleTree,
    ProofError,
    verify_consistency,
    verify_inclusion,
)
from tickwire.compliance.audit.trail import (
    PUBLIC_KEY_FILE,
    TRAIL_FILE,
    read_records,
    read_trail_lines,
    record_leaf_bytes,
    trail_date,
)
from tickwire.compliance.audit.tiers import AuditStore, days_between
from tickwire.compliance.audit.vault import (
    VAULT_FILE,
    ClientErased,
    PiiVault,
    client_hash,
    load_regulator_private_key,
    recover_escrow,
)
from tickwire.compliance.audit.verify import verify_trail
from tickwire.sequencer.journal.port import RecoveryError
from tickwire.sequencer.journal.wal import WalError

__all__ = ["add_audit_arguments"]


def _err(command, message):
    print(f"tickwire audit {command}: {message}", file=sys.stderr)
    return 2


def _trail_path(path):
    return os.path.join(path, TRAIL_FILE) if os.path.isdir(path) else path


def _export(args):
    src = os.path.join(args.audit_dir, TRAIL_FILE)
    if not os.path.isfile(src):
        return _err("export", f"{args.audit_dir}: not an audit directory (no {TRAIL_FILE})")
    tmp = args.output + ".partial"
    shutil.copyfile(src, tmp)
    os.replace(tmp, args.output)
    with open(args.output, "rb") as f:
        lines = sum(1 for _ in f)
    print(f"wrote {args.output}: {lines} lines (records and tree heads, in log order)")
    return 0


def _key_for(args, command):
    if args.public_key:
        return load_public_key(args.public_key)
    if os.path.isdir(args.path):
        return load_public_key(os.path.join(args.path, PUBLIC_KEY_FILE))
    raise KeyFileError(f"{args.path} is an exported trail: give the key with --public-key "
                       "(it is never taken from the trail itself)")


def _verify(args):
    trail = _trail_path(args.path)
    if not os.path.isfile(trail):
        return _err("verify", f"{args.path}: no such audit directory or trail file")
    try:
        key = _key_for(args, "verify")
        lines = read_trail_lines(trail)
    except KeyFileError as exc:
        return _err("verify", exc)
    except OSError as exc:
        return _err("verify", f"{trail}: {exc.strerror}")
    result = verify_trail(lines, key)
    if result.ok:
        print(f"{trail}: intact: {result.message}; root {result.root}")
        return 0
    print(f"{trail}: {result.kind.upper()}: {result.message}")
    return 1


def _load_tree(path):
    tree = MerkleTree()
    for _, line in read_trail_lines(_trail_path(path)):
        obj = json.loads(line)
        if obj["kind"] == "record":
            tree.append(record_leaf_bytes(obj))
    return tree


def _prove(args):
    """An inclusion proof (--index) or a consistency proof (--first/--second), checked here
    with the verifier before it is printed."""
    try:
        tree = _load_tree(args.path)
    except (OSError, ValueError, KeyError) as exc:
        return _err("prove", f"{args.path}: cannot read the trail ({exc})")
    size = args.size or len(tree)
    try:
        if args.index is not None:
            path = tree.inclusion_proof(args.index, size)
            verify_inclusion(args.index, size, tree.levels[0][args.index], path, tree.root(size))
            out = {"leaf_index": args.index, "tree_size": size,
                   "leaf_hash": tree.levels[0][args.index].hex(),
                   "root": tree.root(size).hex(), "inclusion_path": [p.hex() for p in path]}
        elif args.first is not None:
            path = tree.consistency_proof(args.first, size)
            verify_consistency(args.first, size, tree.root(args.first), tree.root(size), path)
            out = {"first": args.first, "second": size, "first_root": tree.root(args.first).hex(),
                   "second_root": tree.root(size).hex(),
                   "consistency_path": [p.hex() for p in path]}
        else:
            return _err("prove", "give --index N or --first M")
    except (ValueError, ProofError) as exc:
        return _err("prove", exc)
    print(json.dumps(out, indent=2))
    return 0


def _correct(args):
    changes = {}
    for spec in args.set:
        name, sep, value = spec.partition("=")
        if not sep:
            return _err("correct", f"--set {spec!r} is not FIELD=VALUE")
        changes[name] = int(value) if name == "quantity" and value.isdigit() else value
    if not os.path.isfile(args.signing_key):
        return _err("correct", f"{args.signing_key}: no such signing key")
    try:
        key = load_or_create_signing_key(args.signing_key)
        index, head = append_correction(args.audit_dir, key, args.event_id, changes,
                                        args.reason)
    except (KeyFileError, LookupError, ValueError) as exc:
        return _err("correct", exc)
    print(f"appended correction record {index} (corrects {args.event_id}); tree head size "
          f"{head['size']} root {head['root']}")
    return 0


def _audit_dir(path):
    if not os.path.isfile(os.path.join(path, TRAIL_FILE)):
        raise FileNotFoundError(f"{path}: not an audit directory (no {TRAIL_FILE})")
    return path


def _open_store(args):
    """The tiers of ``args.audit_dir`` (an audit directory) at ``args.hot_url``.

    Raises
    ------
    FileNotFoundError
        Not an audit directory.
    ValueError
        The hot tier cannot be opened (a bad URL, an unreachable server).
    """
    _audit_dir(args.audit_dir)
    try:
        return AuditStore(args.audit_dir, args.hot_url)
    except SQLAlchemyError as exc:
        where = (args.hot_url or "the SQLite hot tier").split("@")[-1]
        raise ValueError(f"cannot open the hot tier ({where}): "
                         f"{str(exc.orig if getattr(exc, 'orig', None) else exc).strip()}") \
            from None


def _daily_hashes(args, days):
    """{day: the client's hash that day} from the vault, or from the escrow with the
    regulator's key (break glass); None when the client is unknown."""
    vault_path = os.path.join(args.audit_dir, VAULT_FILE)
    if args.regulator_key:
        entry = recover_escrow(vault_path, load_regulator_private_key(args.regulator_key)).get(
            args.client)
        if entry is None:
            return None
        print(f"break glass: client {args.client!r} recovered from the regulator escrow",
              file=sys.stderr)
        return {d: client_hash(args.client, entry[0], d) for d in days}
    vault = PiiVault(vault_path)
    try:
        if vault.key(args.client) is None and not vault.erased(args.client):
            return None
        return {d: vault.hash_for(args.client, d) for d in days}
    finally:
        vault.close()


def _query(args):
    if args.to < args.start:
        return _err("query", f"--to {args.to} is before --from {args.start}")
    try:
        _audit_dir(args.audit_dir)
        days = days_between(args.start, args.to)
        hashes = _daily_hashes(args, days)
        store = _open_store(args)
    except ClientErased as exc:
        print(f"tickwire audit query: {exc}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as exc:
        return _err("query", exc)
    try:
        plan = store.plan(days)
        print(plan.describe(), file=sys.stderr)
        rows = [] if hashes is None else store.query(plan, hashes)
    finally:
        store.close()
    if hashes is None:
        print(f"client {args.client!r} is not in the vault: no records", file=sys.stderr)
    out = open(args.output, "w") if args.output else sys.stdout
    try:
        for day, index, _, record in rows:
            out.write(json.dumps(dict(record, trade_date=day.isoformat(), index=index),
                                 sort_keys=True) + "\n")
    finally:
        if args.output:
            out.close()
    tiers = {t: sum(1 for r in rows if r[2] == t) for t in ("hot", "warm")}
    print(f"{len(rows)} records ({tiers['hot']} hot, {tiers['warm']} warm)", file=sys.stderr)
    return 0


def _forget(args):
    try:
        _audit_dir(args.audit_dir)
    except FileNotFoundError as exc:
        return _err("forget", exc)
    vault = PiiVault(os.path.join(args.audit_dir, VAULT_FILE))
    try:
        done = vault.forget(args.client)
    finally:
        vault.close()
    if not done:
        return _err("forget", f"client {args.client!r} is not in the vault")
    print(f"client {args.client!r} erased: key and identity deleted from the vault; their "
          "audit records remain (still verifiable, no longer linkable)")
    return 0


def _ingest(args):
    try:
        trail = os.path.join(_audit_dir(args.audit_dir), TRAIL_FILE)
        result = verify_trail(read_trail_lines(trail),
                              load_public_key(os.path.join(args.audit_dir, PUBLIC_KEY_FILE)))
        if not result.ok:
            print(f"tickwire audit ingest: {trail} does not verify, nothing loaded: "
                  f"{result.kind.upper()}: {result.message}", file=sys.stderr)
            return 1
        records = read_records(args.audit_dir)
        day = trail_date(records)
        store = _open_store(args)
    except (FileNotFoundError, ValueError) as exc:
        return _err("ingest", exc)
    try:
        count = store.load_day(day, records)
        moved = store.age_out(args.today or day, args.hot_days)
    finally:
        store.close()
    print(f"hot tier: {count} records of {day}; moved to the warm tier: "
          f"{', '.join(map(str, moved)) or 'nothing'} (older than {args.hot_days} days)")
    return 0


def _age(args):
    try:
        store = _open_store(args)
    except (FileNotFoundError, ValueError) as exc:
        return _err("age", exc)
    try:
        moved = store.age_out(args.today, args.hot_days)
    finally:
        store.close()
    print(f"moved to the warm tier: {', '.join(map(str, moved)) or 'nothing'}")
    return 0


def _cat(args):
    try:
        records = read_records(_audit_dir(args.audit_dir))
        day = trail_date(records)
    except (FileNotFoundError, ValueError) as exc:
        return _err("cat", exc)
    count = write_cat(args.output, records, day.isoformat())
    print(f"wrote {args.output}: {count} CAT-style order events")
    return 0


def _build(args):
    """The audit directory of a session's journal (``tickwire serve``'s WAL or the main
    job's), verified; the same journal and vault give the same trail byte for byte."""
    try:
        config = load_config(args.config)
        written = write_audit_dir(args.audit_dir, args.wal, config, args.trade_date,
                                  args.keys, regulator_key=args.regulator_key,
                                  clearing_dir=args.clearing)
    except (OSError, ValueError, KeyError, WalError, RecoveryError) as exc:
        return _err("build", exc)
    result = verify_trail(read_trail_lines(written["trail"]),
                          load_public_key(os.path.join(args.audit_dir, PUBLIC_KEY_FILE)))
    if not result.ok:
        return _err("build", f"the trail just written does not verify: {result.message}")
    records = read_records(args.audit_dir)
    try:
        store = _open_store(args)
    except ValueError as exc:
        return _err("build", exc)
    try:
        hot = store.load_day(trail_date(records), records)
    finally:
        store.close()
    print(f"wrote {written['trail']}: {written['records']:,} records, {written['heads']} "
          f"signed tree heads, verified (root {written['root']}); keys in {args.keys}; "
          f"{hot:,} records loaded into the hot tier")
    return 0


def _date(text):
    return datetime.date.fromisoformat(text)


def _add_hot_url(p):
    p.add_argument("--hot-url", metavar="URL", help="hot tier SQLAlchemy URL (default: SQLite "
                   "AUDIT_DIR/hot.sqlite; PostgreSQL: postgresql+psycopg://USER:PW@HOST/DB)")


def add_audit_arguments(parser):
    """The ``tickwire audit`` subcommands on ``parser``."""
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("export", help="write the trail as JSON lines (records and tree heads)",
                       description="Write AUDIT_DIR's trail: one JSON object per line in log "
                       "order, records and signed tree heads; the last line is a tree head "
                       "covering every record.")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("-o", "--output", required=True, metavar="TRAIL.jsonl", help="output file")
    p.set_defaults(func=_export)
    p = sub.add_parser("build", help="write the audit directory of a session's journal",
                       description="Derive the day's audit records from a session's journal "
                       "(tickwire serve's --wal, or the main job's session.wal) and write them "
                       "into AUDIT_DIR (trail.jsonl, public.pem, the PII vault), signed with "
                       "KEYS/audit-signing.pem (made if missing), verified and loaded into the "
                       "hot tier. With the same vault, the same journal gives the same trail "
                       "byte for byte.")
    p.add_argument("wal", metavar="WAL", help="the session's journal")
    p.add_argument("--config", required=True, metavar="VENUE.json",
                   help="the venue's config (its accounts are the vault's clients)")
    p.add_argument("-o", "--output", dest="audit_dir", required=True, metavar="AUDIT_DIR",
                   help="the audit directory to write")
    p.add_argument("--keys", required=True, metavar="KEYS_DIR",
                   help="where the signing key is (made if missing) and, without "
                   "--regulator-key, a demonstration regulator key pair; keep it outside "
                   "AUDIT_DIR")
    p.add_argument("--regulator-key", metavar="PEM",
                   help="the regulator's X25519 public key the vault escrows clients to")
    p.add_argument("--trade-date", type=_date, metavar="YYYY-MM-DD",
                   help="the session's date (default: the one the journal opened with)")
    p.add_argument("--clearing", metavar="DIR",
                   help="the day's clearing directory (tickwire clear/settle): each "
                   "execution's settlement record is added")
    _add_hot_url(p)
    p.set_defaults(func=_build)
    p = sub.add_parser("verify", help="check a trail: exit 0 intact, 1 tampered",
                       description="Check every record and tree head of an audit directory or "
                       "an exported trail; name the first record or tree head that was edited, "
                       "deleted, inserted, reordered, truncated or forged (exit 1).")
    p.add_argument("path", metavar="PATH", help="an audit directory or an exported trail")
    p.add_argument("--public-key", metavar="PEM",
                   help="Ed25519 public key of the tree heads (default: AUDIT_DIR/public.pem; "
                   "required for an exported trail)")
    p.set_defaults(func=_verify)
    p = sub.add_parser("prove", help="print an inclusion or consistency proof (RFC 9162)",
                       description="Print the RFC 9162 inclusion proof of a record, or the "
                       "consistency proof between two tree sizes, as JSON (hex hashes).")
    p.add_argument("path", metavar="PATH", help="an audit directory or an exported trail")
    p.add_argument("--index", type=int, help="the record's index (inclusion proof)")
    p.add_argument("--first", type=int, help="the earlier tree size (consistency proof)")
    p.add_argument("--size", type=int, help="the tree size (default: the whole trail)")
    p.set_defaults(func=_prove)
    p = sub.add_parser("correct", help="append a correction record (never edits)",
                       description="Append a CORRECTION record that references the original "
                       "record's event_id, with the corrected fields and the reason, and sign "
                       "a new tree head.")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("--event-id", required=True, help="event_id of the record to correct")
    p.add_argument("--set", action="append", default=[], required=True, metavar="FIELD=VALUE",
                   help=f"a corrected field (repeatable): {', '.join(CORRECTABLE)}")
    p.add_argument("--reason", required=True, help="why the record is corrected")
    p.add_argument("--signing-key", required=True, metavar="PEM",
                   help="the trail's Ed25519 private key (the main job's: build/run/keys/"
                   "audit-signing.pem)")
    p.set_defaults(func=_correct)
    p = sub.add_parser("query", help="all records of a client between two dates (JSON lines)",
                       description="The regulator's query: hash the client with each day's salt, "
                       "say what will be scanned (hot and warm tiers), print the records as "
                       "JSON lines in (date, index) order. An unknown client gives no records; "
                       "an erased one exits 1 unless --regulator-key opens the escrow.")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("--client", required=True, metavar="ID", help="the client (account) id")
    p.add_argument("--from", dest="start", required=True, type=_date, metavar="YYYY-MM-DD",
                   help="first day")
    p.add_argument("--to", required=True, type=_date, metavar="YYYY-MM-DD", help="last day")
    p.add_argument("--regulator-key", metavar="PEM",
                   help="break glass: the regulator's X25519 private key opens the escrow")
    p.add_argument("-o", "--output", help="write here instead of stdout")
    _add_hot_url(p)
    p.set_defaults(func=_query)
    p = sub.add_parser("ingest", help="load the day's trail into the hot tier, then age",
                       description="Verify AUDIT_DIR's trail (exit 1, nothing loaded, if it "
                       "does not), load it into the hot tier (replacing that day) and move "
                       "days older than --hot-days to the warm tier (Parquet).")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("--hot-days", type=int, default=90, help="days kept hot (default 90)")
    p.add_argument("--today", type=_date, metavar="YYYY-MM-DD",
                   help="the date the age is counted from (default: the trail's)")
    _add_hot_url(p)
    p.set_defaults(func=_ingest)
    p = sub.add_parser("age", help="move days older than --hot-days from hot to warm",
                       description="The age policy: days older than --hot-days before --today "
                       "move from the hot tier to Parquet files partitioned by date.")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("--hot-days", type=int, default=90, help="days kept hot (default 90)")
    p.add_argument("--today", type=_date, required=True, metavar="YYYY-MM-DD",
                   help="the date the age is counted from")
    _add_hot_url(p)
    p.set_defaults(func=_age)
    p = sub.add_parser("forget", help="GDPR erasure of a client (crypto-shredding)",
                       description="Delete the client's key and identity from the PII vault: "
                       "their records stay and verify but can no longer be linked to them "
                       "(the regulator's escrow still can).")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("--client", required=True, metavar="ID", help="the client (account) id")
    p.set_defaults(func=_forget)
    p = sub.add_parser("cat", help="CAT-style order events as JSON lines",
                       description="Write the day's reportable order events (MENO new, MEOA "
                       "accepted, MEOM modified, MEOC cancelled, MEOT trade) as JSON lines with "
                       "actionType NEW, or COR for corrections.")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("-o", "--output", required=True, metavar="CAT.jsonl", help="output file")
    p.set_defaults(func=_cat)
    return parser
