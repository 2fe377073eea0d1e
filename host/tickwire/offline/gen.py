"""``tickwire gen``: a realistic random command file.

Agents (member firms) quote and trade around a mid price that wanders per symbol. The
generator plays every row it writes into a model exchange, so that cancels and replaces name
orders that are really open, and halts (operator or circuit breaker) get resumed. The flow
has a market-open burst, limit DAY/GTC orders at and away from the touch, marketable limits,
market, IOC and FOK orders, minimum quantities, odd lots, partial cancels, replaces that keep
or lose priority, self-trades under all three STP modes, and a sprinkle of bad requests
(prices outside the band, unknown tokens) that the exchange must reject cleanly.
"""

import random

from tickwire.engine.model import ModelEngine
from tickwire.exchange.front import Exchange, SymbolDefaults
from tickwire.offline.commands import OPEN_TIME, Row, apply_row
from tickwire.protocol.link import Side, Stp, Tif
from tickwire.util.progress import progress

__all__ = ["generate", "SYMBOL_NAMES"]

SYMBOL_NAMES = ("AAPL", "MSFT", "NVDA", "AMZN", "GOOG", "META", "TSLA", "INTC", "AMD", "NFLX",
                "ORCL", "CSCO", "ADBE", "QCOM", "PEP", "COST")
MARKET_HOURS_NS = 6 * 3600 * 10**9 + 29 * 60 * 10**9
CLOSE_TIME = 16 * 3600 * 10**9
_STP_MODES = (Stp.CANCEL_NEWEST, Stp.CANCEL_OLDEST, Stp.CANCEL_BOTH)


class _Symbol:
    def __init__(self, name, reference, tick):
        self.name, self.tick = name, tick
        self.reference = reference // tick
        self.mid = float(self.reference)
        self.resume_at = None


def generate(orders, seed=1, symbols=4, firms=8, params=None, show_progress=False):
    """Rows of a command file with ``orders`` order-entry requests (new/cancel/replace)."""
    rng = random.Random(seed)
    defaults = SymbolDefaults()
    engine = ModelEngine() if params is None else ModelEngine(params)
    band = engine.params.band_ticks
    exchange = Exchange(engine, defaults)
    names = [SYMBOL_NAMES[i] if i < len(SYMBOL_NAMES) else f"SYM{i}" for i in range(symbols)]
    firm_names = [f"F{i:02d}" for i in range(firms)]
    syms = []
    rows = []
    time = OPEN_TIME

    def emit(row):
        rows.append(row)
        apply_row(exchange, row)

    for name in names:
        reference = rng.randrange(20, 300) * 10000
        syms.append(_Symbol(name, reference, defaults.tick))
        emit(Row("symbol", time, symbol=name, price=reference))
    # A tenth of the flow arrives in the opening second; the rest spreads over market hours.
    burst = max(1, orders // 10)
    mean_gap = MARKET_HOURS_NS / max(1, orders - burst)
    next_token = [0] * firms
    open_tokens = [[] for _ in range(firms)]
    syms_by_name = {sym.name: sym for sym in syms}
    for n in progress(range(orders), "gen", "order", enabled=show_progress):
        time += rng.randrange(100, 1000) if n < burst else int(rng.expovariate(1 / mean_gap)) + 1
        time = min(time, CLOSE_TIME)
        sym = rng.choice(syms)
        info = exchange.symbols[sym.name]
        if info.halted:
            if sym.resume_at is None:
                sym.resume_at = n + rng.randrange(20, 200)
            elif n >= sym.resume_at:
                sym.resume_at = None
                emit(Row("resume", time, symbol=sym.name))
                continue
        elif rng.random() < 0.0003:
            emit(Row("halt", time, symbol=sym.name))
            continue
        _walk(rng, sym, band)
        f = rng.randrange(firms)
        firm = firm_names[f]
        # Cancel more as the book fills, so that it stays well below capacity.
        crowd = min(1.0, len(exchange.orders) / (0.2 * engine.params.max_orders))
        order = _open_order(rng, exchange, open_tokens[f], firm) \
            if rng.random() < 0.25 + 0.6 * crowd else None
        r = rng.random()
        if order is not None and r < 0.6:
            emit(Row("cancel", time, firm=firm, token=order.token,
                     new_qty=rng.randrange(1, order.qty) if order.qty > 1 and r < 0.1 else 0))
            continue
        next_token[f] += 1
        token = f"{firm}-{next_token[f]}"
        open_tokens[f].append(token)
        if order is not None:
            if r < 0.8:
                price, qty = order.price * sym.tick, max(1, order.qty - rng.randrange(0, 100))
            else:
                price, qty = _price(rng, syms_by_name[order.symbol], order.side), _qty(rng)
            emit(Row("replace", time, firm=firm, token=order.token, new_token=token,
                     new_qty=qty, new_price=price))
            continue
        if rng.random() < 0.002:
            emit(Row("cancel", time, firm=firm, token=f"{firm}-gone{n}"))
            continue
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        row = Row("new", time, firm=firm, token=token, symbol=sym.name, side=side, qty=_qty(rng),
                  stp=_STP_MODES[f % 3])
        kind = rng.random()
        if kind < 0.04:
            row.price = None
            row.tif = Tif.IOC
        else:
            row.price = _price(rng, sym, side, aggressive=kind < 0.2)
            if kind < 0.09:
                row.tif = Tif.IOC
            elif kind < 0.12:
                row.tif = Tif.FOK
            else:
                row.tif = Tif.GTC if rng.random() < 0.3 else Tif.DAY
            if rng.random() < 0.04:
                row.min_qty = rng.randrange(1, row.qty + 1)
            if rng.random() < 0.002:
                row.price = (sym.reference + band) * sym.tick
        emit(row)
    return rows


def _open_order(rng, exchange, tokens, firm):
    """A random open, resting order of the firm, or None (tokens of closed orders are dropped)."""
    while tokens:
        i = rng.randrange(len(tokens))
        order = exchange.orders.get((firm, tokens[i]))
        if order is not None and order.slot is not None:
            return order
        if order is None:
            tokens[i] = tokens[-1]
            tokens.pop()
        else:
            return None
    return None


def _walk(rng, sym, band):
    sym.mid += rng.gauss(0, 0.4)
    if rng.random() < 0.0005:
        sym.mid += rng.choice((-1, 1)) * rng.uniform(0.02, 0.08) * sym.reference
    pull = (sym.reference - sym.mid) * 0.001
    sym.mid = min(max(sym.mid + pull, sym.reference - band * 0.4), sym.reference + band * 0.4)


def _price(rng, sym, side, aggressive=False):
    away = -rng.randrange(0, 4) if aggressive else int(rng.expovariate(0.25)) + 1
    ticks = round(sym.mid) - away if side == Side.BUY else round(sym.mid) + away
    return max(1, ticks) * sym.tick


def _qty(rng):
    r = rng.random()
    if r < 0.1:
        return rng.randrange(1, 100)
    if r < 0.15:
        return rng.randrange(101, 1000)
    return rng.randrange(1, 11) * 100
