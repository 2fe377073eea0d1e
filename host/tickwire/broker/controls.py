"""Account controls — blocked accounts and restricted symbols — kept in a file.

The market writes ``accounts.json`` in its directory at start (each user's account number and
controls, and the symbols), keeping what an earlier run recorded; ``tickwire broker account``
changes it (replacing the file whole, under a lock). The running broker looks at the file
before each order, replace and account request (one ``stat``), so a change holds from the next
request on, and a restart keeps it. A file that cannot be read is logged and the controls in
force stay as they were.
"""

import contextlib
import fcntl
import json
import logging
import os
from dataclasses import dataclass

__all__ = ["ACTIONS", "CONTROLS", "Control", "ControlsError", "ControlsFile", "change_control",
           "read_controls"]

log = logging.getLogger(__name__)

CONTROLS = "accounts.json"
ACTIONS = ("block", "unblock", "restrict", "unrestrict", "show")


class ControlsError(ValueError):
    """A controls file or a change to it that cannot be used."""


@dataclass(frozen=True)
class Control:
    """One user's account controls."""
    account_number: str
    blocked: bool = False
    restricted: tuple = ()


def read_controls(path):
    """(user → :class:`Control`, symbols) of a controls file; ControlsError if malformed."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        users = {user: Control(c["account_number"], bool(c["blocked"]),
                               tuple(sorted(c["restricted"])))
                 for user, c in data["users"].items()}
        return users, tuple(data["symbols"])
    except FileNotFoundError:
        raise ControlsError(f"{path}: no such file (start tickwire market with --out "
                            f"{os.path.dirname(path) or '.'} first)") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ControlsError(f"{path}: not an accounts file ({exc!r})") from None


def _write(path, users, symbols):
    data = {"symbols": list(symbols),
            "users": {u: {"account_number": c.account_number, "blocked": c.blocked,
                          "restricted": list(c.restricted)} for u, c in sorted(users.items())}}
    tmp = f"{path}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@contextlib.contextmanager
def _locked(path):
    with open(f"{path}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def change_control(path, who, action, symbols=()):
    """Apply ``action`` (block, unblock, restrict, unrestrict; show changes nothing) to the
    user or account number ``who``; returns (user, its new :class:`Control`)."""
    if action not in ACTIONS:
        raise ControlsError(f"action must be one of {', '.join(ACTIONS)}")
    read_controls(path)                     # a missing or broken file: say so, take no lock
    with _locked(path):
        users, listed = read_controls(path)
        user = who if who in users else next(
            (u for u, c in users.items() if c.account_number == who), None)
        if user is None:
            raise ControlsError(f"no user or account {who!r} (users: {', '.join(sorted(users))})")
        control = users[user]
        symbols = {s.upper() for s in symbols}
        if action in ("restrict", "unrestrict"):
            if not symbols:
                raise ControlsError(f"{action} needs one or more symbols")
            unknown = sorted(symbols - set(listed))
            if unknown:
                raise ControlsError(f"unknown symbol(s) {', '.join(unknown)} (the market lists "
                                    f"{', '.join(listed)})")
        elif symbols:
            raise ControlsError(f"{action} takes no symbols")
        restricted = set(control.restricted)
        if action == "restrict":
            restricted |= symbols
        elif action == "unrestrict":
            restricted -= symbols
        blocked = {"block": True, "unblock": False}.get(action, control.blocked)
        new = Control(control.account_number, blocked, tuple(sorted(restricted)))
        if new != control:
            users[user] = new
            _write(path, users, listed)
        return user, new


class ControlsFile:
    """A market's controls file, applied to its :class:`~tickwire.broker.accounts.AccountBook`.

    Parameters
    ----------
    path : str
    accounts : AccountBook
    symbols : iterable of str
        The market's symbols (what may be restricted).
    """

    def __init__(self, path, accounts, symbols):
        self.path, self.accounts, self.symbols = path, accounts, tuple(symbols)
        self._seen = None

    def start(self):
        """Apply what the file recorded to the book's users and write it with every user."""
        users = {}
        if os.path.exists(self.path):
            users = read_controls(self.path)[0]
        for user, account in self.accounts.accounts.items():
            if user in users:
                self._apply(user, users[user])
            users[user] = Control(account.number, account.blocked,
                                  tuple(sorted(account.restricted)))
        with _locked(self.path):
            _write(self.path, users, self.symbols)
        self._seen = self._stamp()

    def refresh(self):
        """Apply the file again if it changed since it was last read."""
        stamp = self._stamp()
        if stamp == self._seen:
            return
        try:
            users = read_controls(self.path)[0]
        except ControlsError as exc:
            log.error("account controls not reloaded, the last ones stay in force: %s", exc)
            return
        self._seen = stamp
        for user, control in users.items():
            if user in self.accounts.accounts:
                self._apply(user, control)

    def _apply(self, user, control):
        account = self.accounts.get(user)
        restricted = frozenset(control.restricted)
        if (account.blocked, account.restricted) != (control.blocked, restricted):
            log.info("account %s (%s): %s, restricted symbols: %s", account.number, user,
                     "blocked" if control.blocked else "not blocked",
                     ", ".join(sorted(restricted)) or "none")
        account.blocked, account.restricted = control.blocked, restricted

    def _stamp(self):
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns, st.st_size)
