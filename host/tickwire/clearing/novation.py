"""CCP novation: each trade becomes two obligations against the central counterparty.

The buyer's obligation: receive ``qty`` shares, pay ``qty × price``; the seller's: deliver the
shares, receive the cash. The CCP is the other side of both, so for every symbol it receives
exactly what it delivers (:func:`ccp_position` is zero at all times).
"""

from collections import defaultdict

from tickwire.clearing.records import Obligation

__all__ = ["ccp_position", "novate"]


def novate(trades):
    """Two :class:`Obligation` s per trade, buyer's first, in trade order."""
    out = []
    for t in trades:
        value = t.value
        out.append(Obligation(t.buyer, t.buyer_account, t.symbol, t.qty, -value, t.match))
        out.append(Obligation(t.seller, t.seller_account, t.symbol, -t.qty, value, t.match))
    return out


def ccp_position(obligations):
    """symbol → (shares, cash) the CCP holds after the obligations: what it delivers and
    receives (the opposite of its members'). Zero in both for every symbol."""
    held = defaultdict(lambda: [0, 0])
    for o in obligations:
        held[o.symbol][0] -= o.qty
        held[o.symbol][1] -= o.cash
    return {symbol: tuple(v) for symbol, v in held.items()}
