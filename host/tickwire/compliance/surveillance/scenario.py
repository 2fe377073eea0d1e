"""Labelled manipulation scenarios: a command file, its owners file and the ground truth.

As ABIDES does, a day is played by agents: market makers quoting both sides around a
random-walk mid, noise traders (resting orders near the touch, marketable IOC orders, cancels,
and now and then a large order they later cancel), and labelled manipulators.

Hard negatives, so that the day is not separable by who does what: a **ladder market maker**
quotes three levels a side and pulls and requotes its whole ladder whenever the mid moves
(often just after one of its quotes was hit: cancels at three prices right after a fill);
**nervous noise traders** pull a resting order of theirs a few milliseconds after one of their
IOC orders traded (sometimes a large one away from the touch: the spoofing pattern, honestly
meant); the manipulators also trade as noise traders between their episodes; and the
wash-trading firms trade with everyone else too.

* a **spoofer** rests one or two large orders (2,000 to 5,000 shares, as a noise trader's
  large orders) two to five ticks from the touch, takes a small fill on the other side, then
  cancels the large orders within milliseconds;
* a **layerer** rests orders at three to five price levels on one side, takes a fill on the
  other, then cancels them all;
* their taking order cancels any order of theirs it would meet (self-trade prevention
  ``oldest``): an honest order of theirs left at the touch does not stop the episode's trade.
* a **wash-trading pair**: two firms with one beneficial owner, one resting at or inside the
  spread and the other taking it a moment later;
* an **excessive messenger** enters and cancels many orders away from the touch, trading
  little (order-to-trade ratio).

The command file is the CSV of ``tickwire replay`` (README, "Command file columns").
"""

import csv
import io
import random
from dataclasses import dataclass

__all__ = ["Scenario", "make_scenario", "Label"]

_TICK = 100
_OPEN = 9 * 3600 * 10**9 + 30 * 60 * 10**9


@dataclass(frozen=True)
class Label:
    type: str
    firm: str
    symbol: str
    time: int           # ns: the manipulator's fill (spoofing, layering, wash) or 0 (the day)


@dataclass
class Scenario:
    commands: str       # the command file (CSV text)
    owners: str         # the owners file (CSV text: firm, owner)
    labels: list


class _Day:
    def __init__(self, rng, symbols):
        self.rng = rng
        self.t = _OPEN
        self.rows = []
        self.mid = {s: 50_0000 + 10_0000 * i for i, s in enumerate(symbols)}
        self.open = {}              # firm -> [(token, symbol, side, price)]
        self.count = 0
        for s in symbols:
            self._row("symbol", symbol=s, qty=100, price=self.mid[s])

    def _row(self, action, step=1000, **fields):
        self.t += step
        fields = dict(fields)
        if "price" in fields and fields["price"] is not None:
            fields["price"] = f"{fields['price'] // 10000}.{fields['price'] % 10000:04d}"
        self.rows.append(dict(fields, action=action, time=self.t))

    def new(self, firm, symbol, side, qty, price, tif="day", step=1000, stp=None):
        self.count += 1
        token = f"{firm.lower()}{self.count}"
        self._row("new", step, firm=firm, token=token, symbol=symbol, side=side, qty=qty,
                  price=price, tif=tif, **({"stp": stp} if stp else {}))
        if tif == "day":
            self.open.setdefault(firm, []).append((token, symbol, side, price))
        return token

    def cancel(self, firm, token, step=1000):
        self._row("cancel", step, firm=firm, token=token)
        self.open[firm] = [o for o in self.open.get(firm, []) if o[0] != token]

    def bid(self, s):
        return self.mid[s] - 2 * _TICK

    def ask(self, s):
        return self.mid[s] + 2 * _TICK


def _market_maker(day, firm, s, quotes):
    for token in quotes.pop((firm, s), []):
        day.cancel(firm, token)
    size = day.rng.choice((200, 300, 400))
    quotes[firm, s] = [day.new(firm, s, "B", size, day.bid(s)),
                       day.new(firm, s, "S", size, day.ask(s))]


def _noise(day, firm, s, nervous=0.0):
    rng = day.rng
    u = rng.random()
    side = rng.choice("BS")
    if u < 0.45:
        away = rng.choice((0, 0, 1, 2))
        price = day.bid(s) - away * _TICK if side == "B" else day.ask(s) + away * _TICK
        qty = rng.choice((100, 200, 300))
        if rng.random() < 0.06:
            qty = rng.choice((2000, 3000, 4000))        # a large order, honestly meant
        day.new(firm, s, side, qty, price)
    elif u < 0.7:
        price = day.ask(s) if side == "B" else day.bid(s)
        day.new(firm, s, side, rng.choice((100, 200)), price, tif="ioc")
        resting = [o for o in day.open.get(firm, []) if o[1] == s]
        if resting and rng.random() < nervous:          # pull an order after trading
            day.cancel(firm, rng.choice(resting)[0], step=rng.randint(200_000, 20_000_000))
    elif day.open.get(firm):
        token = rng.choice(day.open[firm])[0]
        day.cancel(firm, token, step=rng.randint(1000, 400_000_000))


def _ladder(day, firm, s, quotes):
    """Pull the whole ladder, then quote three levels a side from the touch out."""
    for token in quotes.pop((firm, s), []):
        day.cancel(firm, token, step=day.rng.randint(1000, 50_000))
    quotes[firm, s] = [day.new(firm, s, side, day.rng.choice((100, 200, 300)),
                               day.bid(s) - k * _TICK if side == "B" else day.ask(s) + k * _TICK)
                       for k in range(3) for side in "BS"]


def _reprice(day, firm, s):
    mid = day.mid[s]
    for token, sym, side, price in list(day.open.get(firm, [])):
        if sym == s and (price >= mid - _TICK if side == "B" else price <= mid + _TICK):
            day.cancel(firm, token)


def _spoof(day, firm, s, labels):
    rng = day.rng
    side = rng.choice("BS")
    big = []
    for _ in range(rng.choice((1, 1, 2))):
        away = rng.randint(2, 5) * _TICK
        big.append(day.new(firm, s, side, rng.choice((2000, 3000, 4000, 5000)),
                           day.bid(s) - away if side == "B" else day.ask(s) + away))
    take = "S" if side == "B" else "B"
    day.new(firm, s, take, rng.choice((100, 200, 300)),
            day.bid(s) if take == "S" else day.ask(s),
            tif="ioc", step=rng.randint(500_000, 3_000_000), stp="oldest")
    labels.append(Label("spoofing", firm, s, day.t))
    for token in big:
        day.cancel(firm, token, step=rng.randint(200_000, 15_000_000))


def _layer(day, firm, s, labels):
    rng = day.rng
    side = rng.choice("BS")
    first = rng.randint(1, 2)
    layers = [day.new(firm, s, side, rng.choice((200, 300, 500, 800)),
                      day.bid(s) - k * _TICK if side == "B" else day.ask(s) + k * _TICK)
              for k in range(first, first + rng.randint(3, 5))]
    take = "S" if side == "B" else "B"
    day.new(firm, s, take, rng.choice((100, 200)), day.bid(s) if take == "S" else day.ask(s),
            tif="ioc", step=rng.randint(500_000, 3_000_000), stp="oldest")
    labels.append(Label("layering", firm, s, day.t))
    for token in layers:
        day.cancel(firm, token, step=rng.randint(100_000, 4_000_000))


def _wash(day, pair, s, labels):
    rng = day.rng
    seller, buyer = pair if rng.random() < 0.5 else pair[::-1]
    qty = rng.choice((300, 500, 1000))
    price = day.mid[s] + rng.choice((-1, 0, 0, 1)) * _TICK
    day.new(seller, s, "S", qty, price)
    day.new(buyer, s, "B", qty, price, tif="ioc", step=rng.randint(1000, 2_000_000))
    labels.append(Label("wash_trade", min(pair), s, day.t))


def _messenger(day, firm, s):
    rng = day.rng
    side = rng.choice("BS")
    away = rng.randint(5, 10) * _TICK
    token = day.new(firm, s, side, 100, day.bid(s) - away if side == "B" else day.ask(s) + away)
    day.cancel(firm, token, step=rng.randint(1000, 2_000_000))


def make_scenario(seed, steps=4000, symbols=("ACME", "BOLT"), noise=8, episodes=6):
    """A labelled day: ``steps`` agent actions, ``episodes`` of each manipulation per
    manipulator and symbol."""
    rng = random.Random(seed)
    day = _Day(rng, symbols)
    labels, quotes = [], {}
    makers = ["MM1", "MM2"]
    ladder = "MM3"
    noisy = [f"N{i}" for i in range(1, noise + 1)]
    # manipulators and the wash pair trade honestly too, between episodes
    # (one of the wash pair only: two firms of one owner trading with each other is a wash)
    honest = noisy + ["S1", "L1", "W1"]
    plan = []
    for s in symbols:
        for kind in ("spoof", "layer", "wash"):
            plan += [(rng.randrange(200, steps), kind, s) for _ in range(episodes)]
    plan.sort()
    messenger_symbol = symbols[0]
    for step in range(steps):
        s = rng.choice(symbols)
        if rng.random() < 0.15:
            day.mid[s] = max(10 * _TICK, day.mid[s] + rng.choice((-_TICK, _TICK)))
            for firm in makers:             # the makers follow the mid at once
                _market_maker(day, firm, s, quotes)
            _ladder(day, ladder, s, quotes)
            for firm in honest:             # and the others pull orders left inside the spread
                _reprice(day, firm, s)
        if step % 10 == 0:
            for firm in makers:
                for sym in symbols:
                    _market_maker(day, firm, sym, quotes)
        _noise(day, rng.choice(honest), s, nervous=0.3)
        if rng.random() < 0.12:
            _messenger(day, "Q1", messenger_symbol)
        while plan and plan[0][0] <= step:
            _, kind, sym = plan.pop(0)
            if kind == "spoof":
                _spoof(day, "S1", sym, labels)
            elif kind == "layer":
                _layer(day, "L1", sym, labels)
            else:
                _wash(day, ("W1", "W2"), sym, labels)
    labels.append(Label("order_to_trade", "Q1", messenger_symbol, 0))
    out = io.StringIO()
    writer = csv.DictWriter(out, ("action", "time", "firm", "token", "symbol", "side", "qty",
                                  "price", "tif", "stp"), lineterminator="\n")
    writer.writeheader()
    writer.writerows(day.rows)
    firms = makers + [ladder] + noisy + ["S1", "L1", "Q1", "W1", "W2"]
    owners = "firm,owner\n" + "".join(
        f"{f},{'OWN-W' if f in ('W1', 'W2') else 'OWN-' + f}\n" for f in firms)
    return Scenario(out.getvalue(), owners, labels)
