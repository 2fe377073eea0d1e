"""The broker's blotter: every execution of its customers' orders, one JSON line each.

It is the broker's books and records of the day (what it bought and sold for whom, where, at
what price, under which venue match number), and what its positions are reconciled from
against clearing's (:mod:`tickwire.broker.reconcile`). Prices are integers in 1/10000 $.
"""

import json
import os
from dataclasses import asdict, dataclass

__all__ = ["BLOTTER", "Blotter", "Execution", "blotter_path", "read_blotter"]

BLOTTER = "blotter.jsonl"
"""The blotter's file name in the market's directory."""


@dataclass(frozen=True)
class Execution:
    """One fill of a customer's order at a venue."""
    user: str
    account: str
    order_id: str
    venue: str
    symbol: str
    side: str           # buy or sell
    qty: int
    price: int
    match: int          # the venue's match number

    @property
    def signed_qty(self):
        return self.qty if self.side == "buy" else -self.qty

    @property
    def cash(self):
        """The cash it moves for the customer (a buy pays)."""
        return -self.signed_qty * self.price


class Blotter:
    """Parameters
    ----------
    path : str, optional
        The file, started afresh (a market's day); without one executions are only counted.
    """

    def __init__(self, path=None):
        self.file = open(path, "w", encoding="utf-8") if path else None
        self.count = 0

    def record(self, execution):
        """Append one :class:`Execution` (written through, so a reader sees it at once)."""
        self.count += 1
        if self.file is not None:
            self.file.write(json.dumps(asdict(execution)) + "\n")
            self.file.flush()

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None


def read_blotter(path):
    """The executions of a blotter file; ValueError naming the line if one is malformed."""
    out = []
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            try:
                out.append(Execution(**json.loads(line)))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a blotter line ({exc})") from None
    return out


def blotter_path(directory):
    return os.path.join(directory, BLOTTER)
