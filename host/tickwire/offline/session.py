"""A trading session: one exchange, its feed and its reports, from the opening to the close.

Both ``tickwire replay`` and the main job (``tickwire run``) play their requests through a
:class:`TradingSession`. It sends the day's system events around the requests (``O S Q`` at
the first request, ``M E C`` after the last, ``M`` expiring DAY orders), publishes the feed as
MoldUDP64 in Ethernet/IPv4/UDP multicast frames to a pcap, writes the private reports as JSON
lines, builds a book from its own feed and counts what happened for the summary.
"""

import json
from collections import Counter

from tickwire.exchange.front import Exchange, SymbolDefaults
from tickwire.marketdata.recorder import FeedRecorder
from tickwire.offline.commands import apply_row
from tickwire.protocol.feed import DEFAULT_SESSION
from tickwire.protocol.link import REASON_TEXT, EventKind

__all__ = ["TradingSession"]

_E = EventKind
_REASONS = {chr(reason): text for reason, text in REASON_TEXT.items()}


class TradingSession:
    """Plays requests into an engine and records everything that comes out.

    Parameters
    ----------
    engine : object
        An engine transport (``tickwire.engine``).
    pcap_file, reports_file : binary / text file objects, optional
        Where the feed frames and the report lines go.
    defaults : SymbolDefaults
    feed_session : str
        MoldUDP64 session name.
    """

    def __init__(self, engine, pcap_file=None, reports_file=None, defaults=SymbolDefaults(),
                 feed_session=DEFAULT_SESSION):
        self.recorder = FeedRecorder(pcap_file, feed_session)
        self.book, self.feed = self.recorder.book, self.recorder.publisher
        self.reports_file = reports_file
        self.exchange = Exchange(engine, defaults, listeners=[self.feed.publish, self._count])
        self.counts = Counter()
        self.rejects = Counter()
        self.cancels = Counter()
        self.volume = 0
        self.opened = self.closed = False
        self.top_at_close = {}

    # -- driving --------------------------------------------------------------------------

    def open(self, timestamp):
        for code in "OSQ":
            self.exchange.system(code, timestamp)
        self.opened = True

    def play(self, row):
        if not self.opened:
            self.open(row.time)
        if row.action == "new":
            self.counts["orders"] += 1
        reports = apply_row(self.exchange, row)
        for report in reports:
            if report.type in ("rejected", "cancel_rejected"):
                self.rejects[f"{report.type}: {report.reason.text}"] += 1
            if self.reports_file is not None:
                self.reports_file.write(json.dumps(report.to_json()) + "\n")
        return reports

    def close(self, timestamp=None):
        timestamp = self.exchange.timestamp if timestamp is None else timestamp
        if not self.opened:
            self.open(timestamp)
        self.top_at_close = self.top_of_book()
        for code in "MEC":
            self.exchange.system(code, timestamp)
        self.feed.end_of_session()
        self.closed = True

    # -- recording ------------------------------------------------------------------------

    def _count(self, events):
        counts = self.counts
        for ev in events:
            kind = ev.kind
            if kind == _E.EXECUTE:
                counts["trades"] += 1
                self.volume += ev.qty
            elif kind == _E.ACCEPT:
                counts["accepted"] += 1
            elif kind in (_E.KILL, _E.DELETE, _E.REDUCE):
                self.cancels[_REASONS.get(chr(ev.reason), chr(ev.reason))] += 1
            elif kind == _E.REPLACE:
                counts["replaced"] += 1
            elif kind == _E.TRADING and ev.halted:
                counts["halts"] += 1

    # -- results --------------------------------------------------------------------------

    def top_of_book(self):
        return self.book.top_of_book(self.exchange.symbols)

    def summary(self):
        return {
            "commands": self.exchange.seq,
            "orders": self.counts["orders"],
            "accepted": self.counts["accepted"],
            "trades": self.counts["trades"],
            "volume": self.volume,
            "replaced": self.counts["replaced"],
            "halts": self.counts["halts"],
            "rejects": dict(sorted(self.rejects.items())),
            "cancels": dict(sorted(self.cancels.items())),
            "feed": {"messages": self.book.messages, "packets": self.recorder.packets,
                     "next_sequence": self.feed.packetizer.next_sequence},
            "top_of_book_at_close": self.top_at_close,
            "resting_after_close": len(self.book.orders),
        }

