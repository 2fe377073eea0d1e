"""The surveillance files: the owners file in, the alerts file out."""

import csv
import json
import os

__all__ = ["read_owners", "write_alerts", "OwnersFileError"]


class OwnersFileError(ValueError):
    """A malformed owners file; the message names the file and line."""


def read_owners(path):
    """``{firm: beneficial owner}`` from a CSV with the columns ``firm`` and ``owner``."""
    try:
        with open(path, newline="") as f:
            reader = csv.DictReader(f)
            columns = [c.strip() for c in reader.fieldnames or ()]
            if "firm" not in columns or "owner" not in columns:
                raise OwnersFileError(f"{path}: the header must name the columns firm and "
                                      f"owner (it has {', '.join(columns) or 'none'})")
            owners = {}
            for number, row in enumerate(reader, 2):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                if not row["firm"] or not row["owner"]:
                    raise OwnersFileError(f"{path}:{number}: a firm and its owner are needed")
                if row["firm"] in owners and owners[row["firm"]] != row["owner"]:
                    raise OwnersFileError(f"{path}:{number}: firm {row['firm']} has two "
                                          "owners")
                owners[row["firm"]] = row["owner"]
    except OSError as exc:
        raise OwnersFileError(f"{path}: {exc.strerror}") from None
    return owners


def write_alerts(path, alerts):
    """One alert per line (JSON), written whole or not at all."""
    with open(path + ".partial", "w") as f:
        for alert in alerts:
            f.write(json.dumps(alert.to_json(), separators=(",", ":")) + "\n")
    os.replace(path + ".partial", path)
