"""A small driver for the reference matching engine (``tickwire.sim.model``) in tests.

Not a test module. ``Driver`` builds engine-link commands concisely (sequence numbers and
timestamps are filled in automatically, order ids count from 1 unless given) and runs them on
an :class:`ExchangeModel`, returning the events. ``ev`` / ``expect`` compare a command's events
against the expected kinds and key fields, and check the framing every command must have
(same seq/timestamp as the command, exactly one ``last``, on the final event).
"""

from tickwire.protocol.link import (
    NO_SLOT,
    Action,
    Command,
    Event,
    EventKind,
    ModelParams,
    Reason,
    ReplaceMode,
    Side,
    Stp,
    Tif,
    pack_name,
)
from tickwire.sim.model import ExchangeModel

__all__ = [
    "Driver", "ev", "expect", "kinds", "check_framing", "BUY", "SELL", "E", "R", "Tif", "Stp",
    "Side", "ReplaceMode", "NO_SLOT", "Action", "Command", "Event",
]

BUY, SELL = Side.BUY, Side.SELL
E = EventKind
R = Reason

#: Parameters the directed tests use unless they say otherwise.
DEFAULT_PARAMS = dict(max_orders=16, max_symbols=2, band_ticks=64, max_qty=10_000)


class Driver:
    """Runs commands on a fresh model. ``d.model`` is the model itself."""

    def __init__(self, **params):
        merged = {**DEFAULT_PARAMS, **params}
        self.params = ModelParams(**merged)
        self.model = ExchangeModel(self.params)
        self.seq = 0
        self.timestamp = 1_000
        self.next_id = 1
        self.history = []       # (command, events)

    # -- running ---------------------------------------------------------------------------

    def run(self, cmd):
        self.seq += 1
        self.timestamp += 7
        cmd.seq, cmd.timestamp = self.seq, self.timestamp
        events = self.model.process(cmd)
        check_framing(cmd, events)
        self.history.append((cmd, events))
        return events

    def take_id(self, order_id=None):
        if order_id is None:
            order_id = self.next_id
        self.next_id = max(self.next_id, order_id + 1)
        return order_id

    # -- commands ---------------------------------------------------------------------------

    def declare(self, symbol=1, reference=100, lot=100, tick=100, breaker=0, name=None):
        return self.run(Command(action=Action.DECLARE, symbol=symbol, price=reference, qty=lot,
                                tick=tick, breaker=breaker,
                                name=pack_name(name or f"SYM{symbol}")))

    def new(self, side, qty, price=0, *, symbol=1, tif=Tif.DAY, market=False, firm=0,
            stp=Stp.CANCEL_NEWEST, min_qty=0, order_id=None):
        order_id = self.take_id(order_id)
        return self.run(Command(action=Action.NEW, symbol=symbol, side=side, tif=tif,
                                market=int(market), stp=stp, firm=firm, price=price, qty=qty,
                                min_qty=min_qty, order_id=order_id))

    def buy(self, qty, price=0, **kw):
        return self.new(BUY, qty, price, **kw)

    def sell(self, qty, price=0, **kw):
        return self.new(SELL, qty, price, **kw)

    def cancel(self, order_id, slot, qty=0, symbol=1):
        return self.run(Command(action=Action.CANCEL, symbol=symbol, order_id=order_id,
                                slot=slot, qty=qty))

    def replace(self, order_id, slot, qty, price, new_order_id=None, symbol=1):
        new_order_id = self.take_id(new_order_id)
        return self.run(Command(action=Action.REPLACE, symbol=symbol, order_id=order_id,
                                new_order_id=new_order_id, slot=slot, qty=qty, price=price))

    def halt(self, symbol=1):
        return self.run(Command(action=Action.HALT, symbol=symbol))

    def resume(self, symbol=1):
        return self.run(Command(action=Action.RESUME, symbol=symbol))

    def system(self, code):
        return self.run(Command(action=Action.SYSTEM, code=ord(code)))

    # -- state -----------------------------------------------------------------------------

    def book(self, symbol=1):
        return self.model.symbols[symbol]

    def level_ids(self, side, price, symbol=1):
        """Order ids resting at ``price`` on ``side``, oldest first."""
        level = self.book(symbol).sides[side].levels.get(price, {})
        return [o.order_id for o in level.values()]

    def slot_of(self, order_id):
        for slot, order in enumerate(self.model.slots):
            if order is not None and order.order_id == order_id:
                return slot
        return None

    def resting(self):
        """{order_id: (slot, side, price, qty)} of every resting order."""
        return {o.order_id: (o.slot, o.side, o.price, o.qty)
                for o in self.model.slots if o is not None}


# -- comparing events -------------------------------------------------------------------------

def ev(kind, **fields):
    """An expected event: its kind and the fields that must match."""
    return (kind, fields)


def kinds(events):
    return [EventKind(e.kind).name for e in events]


def check_framing(cmd, events):
    """Every command: at least one event, all carrying its seq/timestamp, one ``last`` at the end."""
    assert events, f"no events for {cmd}"
    for e in events:
        assert (e.seq, e.timestamp) == (cmd.seq, cmd.timestamp), e
    assert [e.last for e in events] == [0] * (len(events) - 1) + [1], kinds(events)


def expect(events, *specs):
    """Assert ``events`` are exactly ``specs`` (``ev(kind, **fields)`` or a bare kind), in order."""
    specs = [s if isinstance(s, tuple) else (s, {}) for s in specs]
    want = [EventKind(k).name for k, _ in specs]
    assert kinds(events) == want, f"kinds {kinds(events)} != {want}\n{_dump(events)}"
    for i, (e, (_, fields)) in enumerate(zip(events, specs)):
        got = {name: getattr(e, name) for name in fields}
        assert got == fields, f"event {i} ({want[i]}): {got} != {fields}\n{_dump(events)}"
    assert events[-1].last == 1
    return events


def _dump(events):
    return "\n".join(f"  {EventKind(e.kind).name}: {e}" for e in events)
