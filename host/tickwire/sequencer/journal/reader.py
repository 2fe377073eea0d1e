"""Reading a journal from outside the venue (clearing, compliance, audits): read only.

::

    from tickwire.sequencer.journal.reader import read_journal, trade_date

    for entry in read_journal("build/serve/session.wal"):
        entry.index, entry.request, entry.command     # int, typed request, Command or None
    trade_date("build/serve/session.wal")             # datetime.date or None

``request`` is one of the typed records of :mod:`tickwire.core.requests` (``NewOrder``,
``CancelOrder``, ``ReplaceOrder``, ``Reject``, ``SystemEvent``...); ``command`` the engine
command it made (its ``seq`` is the ITCH/feed sequence of the command). Both journal formats
are read (a format-1 file is not upgraded: it is never written here). A torn tail (a crash in
the middle of a write) ends the records; the file is not modified.
"""

import datetime
from dataclasses import dataclass

from tickwire.core.requests import SystemEvent
from tickwire.protocol.link import Command
from tickwire.sequencer.journal.wal import decode_record, read_header, scan_payloads

__all__ = ["JournalEntry", "read_journal", "trade_date"]


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One journal record: its index (from 0), the typed request, the engine command."""
    index: int
    request: object
    command: Command | None


def read_journal(path):
    """Iterate over the :class:`JournalEntry` s of the journal at ``path``.

    Raises
    ------
    ValueError
        The file is not a tickwire journal, or a record (CRC intact) does not decode.
    """
    with open(path, "rb") as f:
        try:
            magic = read_header(f)
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
        payloads, _, _ = scan_payloads(f)
    for index, payload in enumerate(payloads):
        try:
            record = decode_record(payload, magic)
        except ValueError as exc:
            raise ValueError(f"{path}: record {index}: {exc}") from None
        yield JournalEntry(index, record.request, record.command)


def trade_date(path):
    """The trade date the journal's day opened with (``datetime.date``), None if the open
    (system event ``O``) records none (format-1 journals) or the day has not opened."""
    for entry in read_journal(path):
        request = entry.request
        if request.__class__ is SystemEvent and request.code == "O":
            if request.trade_date is None:
                return None
            return datetime.date.fromisoformat(request.trade_date)
    return None
