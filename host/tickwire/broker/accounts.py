"""Retail cash accounts: cash, positions, what open orders reserve, and buying power.

A cash account has no margin: buying power is cash minus what open buy orders reserve. A
limit buy reserves ``qty × limit``; a market buy is estimated at the NBBO ask plus a collar
(:data:`MARKET_COLLAR_BPS`). A sell needs the shares, less those open sells already hold.
Executions move cash and positions at once; what an order reserved is released as it fills or
ends. All amounts are integers in 1/10000 $.
"""

from dataclasses import dataclass, field

from tickwire.accounts.config import hash_password, verify_password
from tickwire.core.retail import ErrorCode, RetailError
from tickwire.core.money import format_dollars

__all__ = ["MARKET_COLLAR_BPS", "Account", "AccountBook", "Position", "market_estimate"]

MARKET_COLLAR_BPS = 500
"""A market buy reserves the NBBO ask plus 5 % (the venues' price band is wider than that
only in a halt, when nothing trades)."""


def market_estimate(ask):
    """The price a market buy reserves at: ``ask`` plus the collar, rounded up to the cent."""
    raw = ask * (10000 + MARKET_COLLAR_BPS)
    cents = -(-raw // (10000 * 100))
    return cents * 100


@dataclass
class Position:
    """Shares held in one symbol and what they cost (1/10000 $)."""
    symbol: str
    qty: int = 0
    cost: int = 0

    @property
    def avg_entry_price(self):
        return self.cost // self.qty if self.qty else 0


@dataclass
class Account:
    """One retail user's account."""
    user: str
    password_hash: str
    cash: int
    number: str
    positions: dict = field(default_factory=dict)       # symbol -> Position
    reserved_cash: int = 0                              # open buys
    reserved_shares: dict = field(default_factory=dict)  # symbol -> shares held by open sells
    restricted: frozenset = frozenset()
    blocked: bool = False

    @property
    def buying_power(self):
        return self.cash - self.reserved_cash

    def position(self, symbol):
        return self.positions.get(symbol) or Position(symbol)

    def sellable(self, symbol):
        return self.position(symbol).qty - self.reserved_shares.get(symbol, 0)


class AccountBook:
    """Every retail account, by user name."""

    def __init__(self):
        self.accounts = {}

    def add(self, user, password, cash, restricted=(), blocked=False, hash_cost=2**14):
        """Open a cash account (the password is kept only as a salted scrypt hash)."""
        if user in self.accounts:
            raise ValueError(f"user {user!r} exists already")
        if cash < 0:
            raise ValueError(f"user {user!r}: opening cash must not be negative")
        number = f"TW{len(self.accounts) + 1:08d}"
        self.accounts[user] = Account(user, hash_password(password, n=hash_cost), cash, number,
                                      restricted=frozenset(restricted), blocked=blocked)
        return self.accounts[user]

    def authenticate(self, user, password):
        """The account if the password matches, else ``None``."""
        account = self.accounts.get(user)
        if account is not None and verify_password(password, account.password_hash):
            return account
        return None

    def get(self, user):
        return self.accounts[user]

    # -- the order's money -----------------------------------------------------------------

    @staticmethod
    def check(account, symbol, side, qty, reserve_price, held=0):
        """Refuse an order the account cannot take (nothing is changed).

        ``held`` is what the order already holds (cash for a buy, shares for a sell): an
        order that replaces another needs only what its predecessor does not hold.
        """
        if account.blocked:
            raise RetailError(ErrorCode.ACCOUNT_BLOCKED, f"account {account.number} is blocked")
        if symbol in account.restricted:
            raise RetailError(ErrorCode.RESTRICTED, f"{symbol} is restricted for this account")
        if side == "buy":
            need = qty * reserve_price - held
            if need > account.buying_power:
                raise RetailError(
                    ErrorCode.INSUFFICIENT_BUYING_POWER,
                    f"insufficient buying power: the order needs ${format_dollars(need)}, "
                    f"buying power is ${format_dollars(account.buying_power)}")
        elif qty - held > account.sellable(symbol):
            raise RetailError(ErrorCode.INSUFFICIENT_QTY,
                              f"insufficient qty available: {account.sellable(symbol)} "
                              f"{symbol} shares can be sold")

    @staticmethod
    def reserve(account, symbol, side, qty, reserve_price):
        """Hold cash (buy) or shares (sell) for an order; returns what was held."""
        if side == "buy":
            account.reserved_cash += qty * reserve_price
            return qty * reserve_price
        account.reserved_shares[symbol] = account.reserved_shares.get(symbol, 0) + qty
        return qty

    @staticmethod
    def hold(account, symbol, side, amount):
        """Hold ``amount`` more cash (buy) or shares (sell) for an order."""
        if side == "buy":
            account.reserved_cash += amount
        else:
            account.reserved_shares[symbol] = account.reserved_shares.get(symbol, 0) + amount

    @staticmethod
    def release(account, symbol, side, amount):
        """Give back what an order held (its unused reservation)."""
        if side == "buy":
            account.reserved_cash -= amount
        else:
            account.reserved_shares[symbol] -= amount

    @staticmethod
    def execute(account, symbol, side, qty, price):
        """An execution: move cash and the position."""
        position = account.positions.setdefault(symbol, Position(symbol))
        if side == "buy":
            account.cash -= qty * price
            position.qty += qty
            position.cost += qty * price
        else:
            account.cash += qty * price
            position.cost -= position.cost * qty // position.qty if position.qty else 0
            position.qty -= qty
        if not position.qty:
            del account.positions[symbol]
