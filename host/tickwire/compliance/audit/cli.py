"""``tickwire audit``: export, verify, prove and query the audit trail."""

import json
import os
import shutil
import sys

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
    read_trail_lines,
    record_leaf_bytes,
)
from tickwire.compliance.audit.verify import verify_trail

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


def add_audit_arguments(parser, query=None):
    """The ``tickwire audit`` subcommands on ``parser``; ``query`` adds the query command."""
    sub = parser.add_subparsers(dest="audit_command", required=True, metavar="SUBCOMMAND")
    p = sub.add_parser("export", help="write the trail as JSON lines (records and tree heads)",
                       description="Write AUDIT_DIR's trail: one JSON object per line in log "
                       "order, records and signed tree heads; the last line is a tree head "
                       "covering every record.")
    p.add_argument("audit_dir", metavar="AUDIT_DIR", help="the audit directory")
    p.add_argument("-o", "--output", required=True, metavar="TRAIL.jsonl", help="output file")
    p.set_defaults(func=_export)
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
    if query is not None:
        query(sub)
    return parser
