"""The routing log (every decision, JSON lines) and a Rule 606-style routing report.

Each decision is logged with the seed's ``routing_decision`` fields; each execution is logged
against the NBBO at the time its order was routed, so the report can say how much volume was
done at or better than the NBBO, how much price improvement clients got, and how many fills
traded through a better protected quote (a buy above the NBBO ask, a sell below the bid).
"""

import json
import os
from collections import defaultdict

from tickwire.core.money import format_dollars

__all__ = ["RoutingLog"]


class RoutingLog:
    """Parameters
    ----------
    path : str, optional
        JSON lines file (rewritten at start); without it, memory only.
    """

    def __init__(self, path=None):
        self.file = None
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self.file = open(path, "w")
        self.decisions = []
        self.fills = []

    def _write(self, record):
        if self.file is not None:
            self.file.write(json.dumps(record) + "\n")

    def decision(self, decision, order_type):
        """Log a :class:`~tickwire.routing.router.RoutingDecision`; returns its record."""
        record = {"type": "routing_decision", "order_type": order_type, **decision.record()}
        self.decisions.append(record)
        self._write(record)
        return record

    def fill(self, order_id, venue, side, qty, price, nbbo_bid, nbbo_ask, limit,
             better_unswept=0):
        """Log an execution (1/10000 $) with the NBBO its child order was routed at, the child's
        limit, and the protected shares at better prices its decision left (Rule 611).

        It traded through if it is worse than its child's limit or its decision left better
        protected shares untaken; it got price improvement if it is better than the NBBO."""
        reference = nbbo_ask if side == "buy" else nbbo_bid
        improvement = 0 if reference is None else \
            (reference - price if side == "buy" else price - reference)
        worse = price > limit if side == "buy" else price < limit
        record = {"type": "fill", "order_id": order_id, "venue": venue, "side": side,
                  "qty": qty, "price": price, "reference": reference,
                  "improvement": improvement, "trade_through": bool(worse or better_unswept)}
        self.fills.append(record)
        self._write(record)
        return record

    def flush(self):
        if self.file is not None:
            self.file.flush()

    def close(self):
        if self.file is not None:
            self.file.close()
            self.file = None

    # -- reports ---------------------------------------------------------------------------

    def quality(self):
        """Routing quality: share of volume at or better than the NBBO at decision time (a
        sweep's fills beyond the NBBO are not), price improvement, trade-throughs."""
        volume = sum(f["qty"] for f in self.fills)
        referenced = [f for f in self.fills if f["reference"] is not None]
        at_nbbo = sum(f["qty"] for f in referenced if f["improvement"] >= 0)
        improved = [f for f in referenced if f["improvement"] > 0]
        through = [f for f in self.fills if f["trade_through"]]
        saved = sum(f["qty"] * f["improvement"] for f in improved)
        return {
            "decisions": len(self.decisions),
            "fills": len(self.fills),
            "volume": volume,
            "share_at_nbbo": round(at_nbbo / volume, 6) if volume else None,
            "price_improved_fills": len(improved),
            "price_improvement": format_dollars(saved),
            "trade_throughs": len(through),
        }

    def rule606(self):
        """Per venue, as Rule 606(a)(1) tabulates: orders routed by type, shares, executed
        volume and share of all routed orders."""
        venues = defaultdict(lambda: {"orders": 0, "market": 0, "marketable_limit": 0,
                                      "non_marketable_limit": 0, "shares_routed": 0,
                                      "shares_executed": 0})
        total = 0
        for d in self.decisions:
            for s in d["slices"]:
                row = venues[s["venue"]]
                row["orders"] += 1
                total += 1
                row["shares_routed"] += s["qty"]
                if d["order_type"] == "market":
                    row["market"] += 1
                elif s["time_in_force"] in ("ioc", "fok"):
                    row["marketable_limit"] += 1
                else:
                    row["non_marketable_limit"] += 1
        for f in self.fills:
            venues[f["venue"]]["shares_executed"] += f["qty"]
        for row in venues.values():
            row["pct_of_orders"] = round(100 * row["orders"] / total, 2) if total else 0.0
        return {"orders_routed": total, "venues": dict(sorted(venues.items()))}
