"""Each account's OUCH stream: the sequencer's neutral reports, encoded once, in order.

:class:`OuchStreams` is a sink of the :class:`~tickwire.sequencer.sequencer.Sequencer`: it gets
every batch of reports published to an account's stream (recovery included, so it is rebuilt
from the journal on every start), encodes each as one OUCH message and keeps them: message
``n`` of an account's SoupBinTCP session is ``streams[account][n - 1]``, what a client asking
for sequence ``n`` at login gets again.

What OUCH echoes back and the core does not keep (the side letter, time in force, display,
capacity, ISE flag, minimum quantity and cross type as entered) travels as the request's opaque
``attrs`` (:func:`entry_attrs`, :func:`replace_attrs`) through the journal; this module keeps
each order's :class:`~tickwire.gateways.ouch.messages.Entered` from its Accepted to its
Replaced.
"""

import dataclasses
import functools

from tickwire.core.requests import NewOrder
from tickwire.gateways.ouch import wire as ouch
from tickwire.gateways.ouch.messages import Entered, report_message
from tickwire.protocol.link import Side, Tif

__all__ = ["OuchStreams", "entry_attrs", "replace_attrs"]

_IOC = int(ouch.TimeInForce.IMMEDIATE_OR_CANCEL)
_MARKET_HOURS = int(ouch.TimeInForce.MARKET_HOURS)
_REPLACED_FIELDS = ("tif", "display", "ise", "min_qty")


def entry_attrs(side, tif, display, capacity, ise, min_qty, cross):
    """The ``attrs`` of a :class:`~tickwire.core.requests.NewOrder` from an OUCH Enter Order
    (sorted by name, as journals of format 1 hold them)."""
    return (("capacity", capacity), ("cross", cross), ("display", display), ("ise", ise),
            ("min_qty", min_qty), ("side", side), ("tif", tif))


def replace_attrs(tif, display, ise, min_qty):
    """The ``attrs`` of a :class:`~tickwire.core.requests.ReplaceOrder` from an OUCH Replace."""
    return (("display", display), ("ise", ise), ("min_qty", min_qty), ("tif", tif))


@functools.lru_cache(maxsize=4096)
def _entered(attrs, side, tif, min_qty, symbol, firm):
    """What an order entered as ``attrs`` echoes; fields an order entered elsewhere (not over
    OUCH) lacks take the neutral request's values and OUCH's defaults."""
    fields = dict(attrs)
    return Entered(
        side=fields.get("side", "B" if side == Side.BUY else "S"),
        tif=fields.get("tif", _IOC if tif in (Tif.IOC, Tif.FOK) else _MARKET_HOURS),
        display=fields.get("display", "Y"), capacity=fields.get("capacity", "A"),
        ise=fields.get("ise", "N"), min_qty=fields.get("min_qty", min_qty),
        cross=fields.get("cross", "N"), symbol=symbol, firm=firm)


class OuchStreams:
    """The OUCH messages of every account's stream, kept up to date from a sequencer.

    Parameters
    ----------
    sequencer : Sequencer
        Its streams so far are encoded at once; later batches as they are published.

    Members
    -------
    streams : dict
        account → list of OUCH message bytes.
    """

    def __init__(self, sequencer):
        self.streams = {account: [] for account in sequencer.streams}
        self.entered = {}                   # (firm, token) -> Entered
        self.subscribers = {}
        for account, reports in sequencer.streams.items():
            if reports:
                self._on_reports(account, 1, reports)
        sequencer.add_sink(self._on_reports)

    def subscribe(self, account, callback):
        """Call ``callback(first_number, messages)`` with each batch of the account's new
        messages (``None`` to unsubscribe)."""
        if callback is None:
            self.subscribers.pop(account, None)
        else:
            self.subscribers[account] = callback

    def _on_reports(self, account, first, reports):
        stream = self.streams[account]
        if first != len(stream) + 1:
            raise RuntimeError(f"{account}: report {first} after OUCH message {len(stream)}")
        messages = [self._encode(report) for report in reports]
        stream.extend(messages)
        callback = self.subscribers.get(account)
        if callback is not None:
            callback(first, messages)

    def _encode(self, report):
        kind = report.type
        if kind == "accepted":
            request = report.request
            if request.__class__ is not NewOrder:
                raise ValueError(f"accepted report of {report.token!r} without its entry")
            entered = _entered(request.attrs, request.side, request.tif, request.min_qty,
                               request.symbol, report.firm)
            self.entered[report.firm, report.token] = entered
            price = ouch.MARKET_PRICE if request.price is None else request.price
            return report_message(report, entered, price)
        if kind == "replaced":
            previous = self.entered.pop((report.firm, report.previous_token))
            changed = {k: v for k, v in report.request.attrs if k in _REPLACED_FIELDS}
            entered = dataclasses.replace(previous, **changed) if changed else previous
            self.entered[report.firm, report.token] = entered
            return report_message(report, entered)
        return report_message(report)
