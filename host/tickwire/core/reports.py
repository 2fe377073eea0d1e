"""What the venue tells a firm about its orders: protocol-neutral execution reports.

The exchange (:mod:`tickwire.exchange.front`) makes them from the engine's events and from its
own refusals; the sequencer adds its and the risk's refusals and the day's system events, and
publishes each to its account's stream; each gateway encodes them in its protocol.
"""

import msgspec
from tickwire.core.reasons import Origin, Reason

__all__ = ["Report", "REPORT_TYPES"]

#: ``type`` of a report.
REPORT_TYPES = ("accepted", "executed", "canceled", "rejected", "replaced", "cancel_rejected",
                "system")


class Report(msgspec.Struct, gc=False):
    """One private report (prices in 1/10000 $, ``timestamp`` in ns since midnight).

    Not tracked by Python's cyclic garbage collector (``gc=False``): a report holds only
    numbers, texts, a reason and its (untracked) request, so it is never part of a cycle; the
    day's reports stay in the sequencer's streams, and as tracked objects they made every
    collection rescan them (about 25 µs more venue CPU per order by 90k orders, measured).

    Parameters
    ----------
    type : str
        One of :data:`REPORT_TYPES`.
    firm, token : str
        The order's firm and token (the replacement's token for ``replaced``).
    reason : Reason, optional
        Why it was refused or cancelled.
    previous_token : str, optional
        ``replaced``: the token it replaced.
    code : str, optional
        ``system``: the day's event (``"S"`` start of day, ``"E"`` end of day).
    request : object, optional
        The typed request (:mod:`tickwire.core.requests`) that produced this report, set by
        the sequencer: a gateway echoes back what its client entered from it.
    """
    type: str
    firm: str
    token: str
    timestamp: int
    seq: int | None = None
    symbol: str | None = None
    side: str | None = None
    qty: int | None = None
    price: int | None = None
    leaves: int | None = None
    match: int | None = None
    liquidity: str | None = None        # executed: A added, R removed
    reason: Reason | None = None
    order_id: int | None = None
    new_token: str | None = None
    previous_token: str | None = None
    code: str | None = None
    request: object = None

    def to_json(self):
        """The JSON object of ``tickwire replay --reports`` (a fixed format: engine reasons
        as their link letter, the others as their origin with the text in ``extra``)."""
        reason, extra = None, {}
        if self.reason is not None:
            if self.reason.origin is Origin.ENGINE:
                reason = chr(self.reason)
            else:
                reason, extra["text"] = self.reason.origin.value, self.reason.text
        if self.previous_token is not None:
            extra["previous_token"] = self.previous_token
        values = (("type", self.type), ("firm", self.firm), ("token", self.token),
                  ("timestamp", self.timestamp), ("seq", self.seq), ("symbol", self.symbol),
                  ("side", self.side), ("qty", self.qty), ("price", self.price),
                  ("leaves", self.leaves), ("match", self.match),
                  ("liquidity", self.liquidity), ("reason", reason),
                  ("order_id", self.order_id), ("new_token", self.new_token),
                  ("code", self.code))
        out = {name: value for name, value in values if value is not None}
        if extra:
            out["extra"] = extra
        return out
