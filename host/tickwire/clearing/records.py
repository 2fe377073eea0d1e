"""The typed records of post-trade: trades, obligations against the CCP, net positions."""

import datetime as dt
from dataclasses import dataclass
from typing import NamedTuple

__all__ = ["CASH", "CCP", "Obligation", "Trade"]

CCP = "CCP"             # the central counterparty's member name in every ledger and file
CASH = "$CASH"          # the obligations file's symbol for a member's total net cash


@dataclass(frozen=True, slots=True)
class Trade:
    """One match of the engine, as both sides executed it.

    Parameters
    ----------
    match : int
        The engine's match number (unique in the session, from 1).
    symbol : str
    qty : int
        Shares.
    price : int
        1/10000 $ per share.
    buyer, seller : str
        Member firms.
    buyer_account, seller_account : str
        The accounts (logins) that entered the two orders.
    trade_date : datetime.date
    time_ns : int
        Execution time, ns since midnight (the engine's timestamp).
    """
    match: int
    symbol: str
    qty: int
    price: int
    buyer: str
    seller: str
    buyer_account: str
    seller_account: str
    trade_date: dt.date
    time_ns: int

    @property
    def value(self):
        """Cash of the trade in 1/10000 $."""
        return self.qty * self.price


class Obligation(NamedTuple):
    """One side of a trade novated to the CCP: what ``member`` receives from the CCP.

    ``qty`` > 0: the member receives shares (it bought); ``cash`` > 0: it receives cash (it
    sold). The CCP holds the opposite of every obligation. (A named tuple: there are two per
    trade, millions a day.)
    """
    member: str
    account: str
    symbol: str
    qty: int
    cash: int
    match: int
