"""Property tests of the reference matching engine over random command streams.

Random NEW / CANCEL / REPLACE streams (all TIFs, market orders, min qty, several firms and STP
modes, two symbols with a 64-tick band, a 32-slot book so the full-book paths are hit, and a
sprinkling of HALT / RESUME / SYSTEM / bad commands) run through the model. After every command
a checker verifies, from the events and the model's public state:

- framing: events carry the command's seq/timestamp, exactly one ``last``, at the end;
- the book at rest is never crossed (model state and a FeedBook fed the ITCH bytes);
- quantity conservation per order: accepted = executed + cancelled/killed + resting, and every
  event's ``remaining``/``qty`` agrees with that ledger;
- every EXECUTE is at the resting order's price, crosses the aggressor's limit, respects the
  breaker, has the next match number, and the resting orders touched by one command are a prefix
  of the contra side in price-time order;
- the feed book equals the model's book order for order, and FIFO order within each level is the
  same in both;
- slots: live orders' slots are unique and in range, and every ADD takes exactly the slot the
  free-slot stack (LIFO, lowest first initially) predicts from the events alone;
- rejects are the first failing check and change nothing; FOK / min-qty kills happen exactly
  when an IOC copy of the order on a copy of the model would fill less than needed;
- determinism: a second model fed the same stream produces identical event bytes.
"""

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from model_driver import (
    BUY,
    NO_SLOT,
    SELL,
    Action,
    Command,
    Driver,
    E,
    R,
    ReplaceMode,
    Stp,
    Tif,
    check_framing,
    kinds,
)
from tickwire.marketdata.feed import ItchEventEncoder
from tickwire.marketdata.feed_book import FeedBook
from tickwire.protocol.link import Event, pack_name

BAND = 64
REFS = {1: 100, 2: 40}          # symbol 1: band 68..131, breaker 7; symbol 2: band 8..71, off
BREAKERS = {1: 7, 2: 0}
LOT = 100
TICKS = {1: 100, 2: 25}
PARAMS = [
    dict(max_orders=32, max_symbols=2, band_ticks=64, max_qty=1000),
    dict(max_orders=32, max_symbols=2, band_ticks=64, max_qty=1000, max_levels=3),
    dict(max_orders=6, max_symbols=2, band_ticks=64, max_qty=1000),
]


# -- the stream ---------------------------------------------------------------------------------

op_strategy = st.tuples(
    st.integers(0, 99),                                         # kind
    st.integers(0, 39),                                         # symbol: 1, 2 (39: undeclared 3)
    st.sampled_from([BUY, SELL]),                               # side
    st.sampled_from([Tif.DAY, Tif.DAY, Tif.GTC, Tif.GTC, Tif.IOC, Tif.FOK]),
    st.integers(0, 7),                                          # 0: market
    st.integers(0, 3),                                          # firm
    st.sampled_from(list(Stp)),
    st.integers(-3, 8),                                         # distance from the reference
    st.integers(1, 300),                                        # qty
    st.integers(0, 300),                                        # min qty (used 1 time in 4)
    st.integers(0, 1 << 16),                                    # pick
    st.integers(0, 320),                                        # cancel: shares to leave
    st.integers(0, 31),                                         # noise, see build()
)

streams = st.tuples(st.sampled_from(range(len(PARAMS))),
                    st.lists(op_strategy, min_size=20, max_size=80))


def build(driver, op, known):
    """Turn an abstract op into a Command (seq/timestamp filled by the driver).

    ``noise`` makes a few commands unusual: 31 qty 0, 30 qty above max_qty, 28-29 a price far
    from the reference (often outside the band), 27 a wrong slot, 26 a stale order id, 24-25 a
    price on or just outside a band edge, 23 a cancel/replace naming a random symbol, 22 STP code
    3.
    """
    (kind, sym, side, tif, market, firm, stp, dist, qty, min_qty, pick, cqty, noise) = op
    sym = 3 if sym == 39 else 1 + sym % 2
    live = sorted(driver.resting())
    ref = REFS.get(sym, 100)
    qty = {31: 0, 30: 1001}.get(noise, qty)
    if kind < 50 or (kind < 88 and not live):
        # Buys below the reference, sells above; a negative distance crosses.
        poff = _noisy(-dist if side == BUY else dist, noise, pick)
        return Command(action=Action.NEW, symbol=sym, side=side, tif=tif, market=int(market == 0),
                       stp=3 if noise == 22 else stp, firm=firm, price=max(0, ref + poff), qty=qty,
                       min_qty=min_qty % (qty + 20) if pick % 4 == 0 else 0,
                       order_id=driver.take_id())
    if kind < 88:
        order_id = live[pick % len(live)]
        slot = driver.resting()[order_id][0]
        if noise != 23:
            sym = driver.model.order(slot).symbol
        if noise == 27:
            slot = (slot + 1 + pick % 3) % (driver.params.max_orders + 2)
        elif noise == 26 and known:
            order_id, slot = sorted(known.items())[pick % len(known)]
        if kind < 65:
            if pick % 5 == 1 and order_id in driver.resting():
                cqty = driver.resting()[order_id][3]        # exactly the open shares
            return Command(action=Action.CANCEL, symbol=sym, order_id=order_id, slot=slot,
                           qty=cqty if pick % 3 else 0)
        order = driver.model.order(slot) if slot < driver.params.max_orders else None
        if order is not None:
            ref, side = REFS[order.symbol], order.side
            if pick % 2:
                dist -= 4                                   # lean towards crossing
            if pick % 4 == 0 and noise < 26:
                # Same price, often smaller: a KEPT replace.
                return Command(action=Action.REPLACE, symbol=sym, order_id=order_id, slot=slot,
                               new_order_id=driver.take_id(),
                               qty=max(1, order.qty - cqty % (order.qty + 1)),
                               price=order.price)
        poff = _noisy(-dist if side == BUY else dist, noise, pick)
        return Command(action=Action.REPLACE, symbol=sym, order_id=order_id, slot=slot,
                       new_order_id=driver.take_id(), qty=qty, price=max(0, ref + poff))
    if kind < 89:
        return Command(action=Action.HALT, symbol=sym)
    if kind < 97:
        halted = [n for n in REFS if driver.model.symbols[n].halted]
        if halted and noise < 24:
            sym = halted[pick % len(halted)]                # mostly resume a halted symbol
        return Command(action=Action.RESUME, symbol=sym)
    if kind < 98:
        return Command(action=Action.SYSTEM, code=ord("M"))
    if kind < 99:
        return Command(action=Action.SYSTEM, code=ord("O"))
    return Command(action=Action.DECLARE, symbol=sym, price=ref, qty=LOT, tick=100,
                   name=pack_name("DUP"))


def _band(ref):
    low = max(1, ref - BAND // 2)
    return low, low + BAND - 1


def _noisy(poff, noise, pick):
    """The price offset from the reference, with the odd far or band-edge price."""
    if noise in (28, 29):
        return (pick % 81) - 40
    if noise in (24, 25):
        # An edge of symbol 1's band (68..131 around 100), or one tick outside it.
        edge = -BAND // 2 if pick % 2 else BAND // 2 - 1
        return edge + (0 if pick % 3 else (-1 if edge < 0 else 1))
    return poff


# -- the checker -----------------------------------------------------------------------------------

class Checker:
    def __init__(self, params):
        self.d = Driver(**params)
        self.twin = Driver(**params)                      # determinism
        self.max_orders = self.d.params.max_orders
        self.max_levels = self.d.params.max_levels or self.d.params.band_ticks
        self.free = list(range(self.max_orders - 1, -1, -1))   # predicted free-slot stack
        self.acc, self.exe, self.can = {}, {}, {}
        self.match = 0
        self.halted = {}
        self.known = {}                                   # order_id -> last slot (for stale ids)
        self.encoder = ItchEventEncoder()
        self.feed = FeedBook()
        for sym, ref in REFS.items():
            cmd = Command(action=Action.DECLARE, symbol=sym, price=ref, qty=LOT,
                          tick=TICKS[sym], breaker=BREAKERS[sym], name=pack_name(f"S{sym}"))
            self.step(cmd)

    # state views

    def open(self, oid):
        return self.acc[oid] - self.exe[oid] - self.can[oid]

    def snapshot(self):
        """{order_id: (slot, symbol, side, price, qty, tif, firm, stp)} of the model's resting orders."""
        return {o.order_id: (o.slot, o.symbol, o.side, o.price, o.qty, o.tif, o.firm, o.stp)
                for o in self.d.model.slots if o is not None}

    def queue(self, sym, side):
        """Resting order ids of one side, best price first, FIFO within a price."""
        levels = self.d.model.symbols[sym].sides[side].levels
        prices = sorted(levels, reverse=side == BUY)
        return [(p, oid) for p in prices for oid in levels[p]]

    def level_count(self, sym, side):
        return len(self.d.model.symbols[sym].sides[side].levels)

    # one command

    def step(self, cmd):
        before = self.snapshot()
        model = self.d.model
        clone = copy.deepcopy(model) if cmd.action == Action.NEW else None
        queues = {(s, side): self.queue(s, side) for s in REFS for side in (BUY, SELL)
                  if model.symbols[s] is not None}
        events = self.d.run(cmd)                          # checks framing
        twin_events = self.twin.run(copy.copy(cmd))
        assert [e.to_bytes() for e in events] == [e.to_bytes() for e in twin_events]
        handler = {Action.NEW: self.on_new, Action.CANCEL: self.on_cancel,
                   Action.REPLACE: self.on_replace}.get(cmd.action, self.on_other)
        handler(cmd, events, before, queues, clone)
        self.feed_events(events)
        self.check_state()
        for oid, (slot, *_rest) in self.snapshot().items():
            self.known[oid] = slot
        return events

    def feed_events(self, events):
        for e in events:
            msg = self.encoder.encode(e)
            if msg is not None:
                self.feed.apply_bytes(msg)

    def reject_unchanged(self, events, before, reason, kind=E.REJECT):
        assert kinds(events) == [kind.name], kinds(events)
        assert events[0].reason == reason, (R(events[0].reason), reason)
        assert self.snapshot() == before

    def book_full(self, sym, side, price):
        levels = self.d.model.symbols[sym].sides[side].levels
        return not len(self.free) or (price not in levels and len(levels) >= self.max_levels)

    def new_reject_reason(self, cmd):
        model = self.d.model
        book = model.symbols[cmd.symbol] if 1 <= cmd.symbol <= 2 else None
        if book is None:
            return R.UNKNOWN_SYMBOL
        if self.halted[cmd.symbol]:
            return R.HALTED
        if not 0 < cmd.qty <= 1000:
            return R.BAD_QTY
        if cmd.min_qty > cmd.qty:
            return R.BAD_MIN_QTY
        if cmd.stp == 3:
            return R.BAD_STP
        low, high = _band(REFS[cmd.symbol])
        if not cmd.market:
            if not low <= cmd.price <= high:
                return R.OUT_OF_BAND
            if cmd.tif in (Tif.DAY, Tif.GTC) and self.book_full(cmd.symbol, cmd.side, cmd.price):
                return R.BOOK_FULL
        return None

    def on_new(self, cmd, events, before, queues, clone):
        # The rejects are predicted from the state before (the model is unchanged by a reject).
        self.d.model, saved = clone, self.d.model
        try:
            reason = self.new_reject_reason(cmd)
        finally:
            self.d.model = saved
        if reason is not None:
            return self.reject_unchanged(events, before, reason)
        accept = events[0]
        assert accept.kind == E.ACCEPT
        assert (accept.order_id, accept.symbol, accept.side, accept.qty, accept.remaining) == \
            (cmd.order_id, cmd.symbol, cmd.side, cmd.qty, cmd.qty)
        assert accept.price == (0 if cmd.market else cmd.price)
        oid = cmd.order_id
        self.acc[oid], self.exe[oid], self.can[oid] = cmd.qty, 0, 0
        low, high = _band(REFS[cmd.symbol])
        limit = (high if cmd.side == BUY else low) if cmd.market else cmd.price
        need = cmd.qty if cmd.tif == Tif.FOK else cmd.min_qty
        if need:
            # What would an IOC copy of the order fill on a copy of the model?
            ioc = copy.copy(cmd)
            ioc.tif, ioc.min_qty = Tif.IOC, 0
            fills = sum(e.qty for e in clone.process(ioc) if e.kind == E.EXECUTE)
            if fills < need:
                assert kinds(events) == ["ACCEPT", "KILL"], kinds(events)
                kill = events[1]
                assert (kill.order_id, kill.qty, kill.slot) == (oid, cmd.qty, NO_SLOT)
                assert kill.reason == (R.FOK if cmd.tif == Tif.FOK else R.MIN_QTY)
                self.can[oid] += kill.qty
                assert self.snapshot() == before
                return
        self.matching(events[1:], cmd.symbol, cmd.side, limit, oid, cmd.firm, cmd.stp, before,
                      queues, rests=not cmd.market and cmd.tif in (Tif.DAY, Tif.GTC), held=None)
        if need:
            assert sum(e.qty for e in events if e.kind == E.EXECUTE) >= need

    def matching(self, events, sym, side, limit, oid, firm, stp, before, queues, rests,
                 held):
        """Check the events of a match loop and its end (ADD / KILL / nothing)."""
        assert events, "an accepted or crossing order produces more events"
        touched = []
        contra = queues[sym, side ^ 1]
        ref, breaker = REFS[sym], BREAKERS[sym]
        crosses = (lambda p: p <= limit) if side == BUY else (lambda p: p >= limit)
        tripped = False
        for i, e in enumerate(events):
            final = i == len(events) - 1
            if e.kind == E.EXECUTE:
                assert not tripped
                slot, _sym, _side, price, _qty, _tif, rfirm, _stp = before[e.order_id]
                assert (e.slot, e.symbol, e.side, e.price) == (slot, sym, side ^ 1, price)
                assert crosses(price)
                assert not breaker or abs(price - ref) <= breaker
                assert firm == 0 or rfirm != firm
                assert e.other_id == oid and e.qty > 0
                self.match += 1
                assert e.match == self.match
                self.exe[e.order_id] += e.qty
                self.exe[oid] += e.qty
                assert e.remaining == self.open(e.order_id) >= 0
                assert self.open(oid) >= 0
                if not e.remaining:
                    self.free.append(slot)
                if e.order_id not in touched:
                    touched.append(e.order_id)
            elif e.kind == E.DELETE:
                assert e.reason == R.SELF_TRADE and not tripped
                assert stp in (Stp.CANCEL_OLDEST, Stp.CANCEL_BOTH)
                slot, _sym, _side, price, _qty, _tif, rfirm, _stp = before[e.order_id]
                assert firm != 0 and rfirm == firm and crosses(price)
                assert (e.slot, e.symbol, e.side, e.price, e.qty) == \
                    (slot, sym, side ^ 1, price, self.open(e.order_id))
                self.can[e.order_id] += e.qty
                self.free.append(slot)
                touched.append(e.order_id)
            elif e.kind == E.TRADING:
                assert (e.halted, e.reason, e.symbol) == (1, R.BREAKER, sym) and not tripped
                self.halted[sym] = True
                tripped = True
                # The breaker trips on the next crossing price, before any trade there.
                nxt = contra[len(touched)][0]
                assert crosses(nxt) and breaker and abs(nxt - ref) > breaker
            elif e.kind == E.KILL:
                assert final
                assert (e.order_id, e.qty, e.slot) == (oid, self.open(oid), NO_SLOT)
                assert e.qty > 0
                self.can[oid] += e.qty
                if held is not None:
                    self.free.append(held)
            elif e.kind == E.ADD:
                assert final and rests and not tripped
                assert (e.order_id, e.symbol, e.side, e.price) == (oid, sym, side, limit)
                assert e.qty == e.remaining == self.open(oid) > 0
                assert e.odd_lot == int(e.qty < LOT)
                if held is None:
                    assert e.slot == self.free.pop()
                else:
                    assert e.slot == held
            else:
                raise AssertionError(f"unexpected {kinds([e])} while matching")
        # Price-time priority: the resting orders touched are a prefix of the contra side.
        assert [o for _, o in contra[:len(touched)]] == touched, (touched, contra)
        last = events[-1]
        nxt = contra[len(touched)] if len(touched) < len(contra) else None
        nxt_crosses = nxt is not None and crosses(nxt[0])
        nxt_firm = before[nxt[1]][6] if nxt is not None else None
        if last.kind not in (E.ADD, E.KILL):
            assert self.open(oid) == 0                    # filled completely
            if held is not None:
                self.free.append(held)
        elif last.kind == E.KILL and last.reason == R.BREAKER:
            assert tripped
        elif last.kind == E.KILL and last.reason == R.SELF_TRADE:
            if stp == Stp.CANCEL_BOTH:
                assert events[-2].kind == E.DELETE
            else:
                assert stp == Stp.CANCEL_NEWEST and nxt_crosses and nxt_firm == firm != 0
        else:
            # The loop ended normally: nothing crossable is left, then rest or IOC kill.
            assert not nxt_crosses, (nxt, limit)
            if last.kind == E.KILL:
                assert last.reason == R.IOC and not rests
            else:
                assert rests

    def find_reject(self, cmd, before):
        found = before.get(cmd.order_id)
        return found is None or found[0] != cmd.slot or found[1] != cmd.symbol

    def on_cancel(self, cmd, events, before, queues, clone):
        if self.find_reject(cmd, before):
            return self.reject_unchanged(events, before, R.NOT_FOUND, E.CANCEL_REJECT)
        slot, sym, side, price, qty, _tif, _firm, _stp = before[cmd.order_id]
        [e] = events
        assert (e.order_id, e.slot, e.symbol, e.side) == (cmd.order_id, slot, sym, side)
        if cmd.qty == 0:
            assert (e.kind, e.reason, e.qty, e.remaining, e.price) == \
                (E.DELETE, R.USER, qty, 0, price)
            self.can[cmd.order_id] += qty
            self.free.append(slot)
        elif cmd.qty < qty:
            assert (e.kind, e.reason, e.qty, e.remaining) == \
                (E.REDUCE, R.USER, qty - cmd.qty, cmd.qty)
            self.can[cmd.order_id] += e.qty
        else:
            self.reject_unchanged(events, before, R.NOTHING_TO_CANCEL, E.CANCEL_REJECT)

    def on_replace(self, cmd, events, before, queues, clone):
        if self.find_reject(cmd, before):
            return self.reject_unchanged(events, before, R.NOT_FOUND, E.CANCEL_REJECT)
        old = cmd.order_id
        slot, sym, side, price, qty, _tif, firm, stp = before[old]
        own_levels = _group(queues[sym, side])
        reason = None
        if self.halted[sym]:
            reason = R.HALTED
        elif not 0 < cmd.qty <= 1000:
            reason = R.BAD_QTY
        elif not _band(REFS[sym])[0] <= cmd.price <= _band(REFS[sym])[1]:
            reason = R.OUT_OF_BAND
        elif (cmd.price != price and cmd.price not in own_levels
              and len(own_levels) >= self.max_levels and len(own_levels[price]) > 1):
            reason = R.BOOK_FULL
        if reason is not None:
            self.reject_unchanged(events, before, reason)
            assert (events[0].order_id, events[0].other_id, events[0].symbol) == \
                (cmd.new_order_id, old, sym)
            return
        e = events[0]
        assert e.kind == E.REPLACE
        assert (e.order_id, e.other_id, e.slot, e.qty, e.remaining, e.price, e.symbol, e.side) \
            == (old, cmd.new_order_id, slot, cmd.qty, qty, cmd.price, sym, side)
        contra = queues[sym, side ^ 1]
        best = contra[0][0] if contra else None
        crosses = best is not None and (cmd.price >= best if side == BUY else cmd.price <= best)
        if cmd.price == price and cmd.qty <= qty:
            assert e.mode == ReplaceMode.KEPT and len(events) == 1
            self.can[old] += qty - cmd.qty
            return
        self.can[old] += qty
        new = cmd.new_order_id
        self.acc[new], self.exe[new], self.can[new] = cmd.qty, 0, 0
        if not crosses:
            assert e.mode == ReplaceMode.MOVED and len(events) == 1
            return
        assert e.mode == ReplaceMode.CROSSED
        self.matching(events[1:], sym, side, cmd.price, new, firm, stp, before, queues,
                      rests=True, held=slot)

    def on_other(self, cmd, events, before, queues, clone):
        if cmd.action == Action.DECLARE:
            if cmd.symbol in REFS and cmd.symbol not in self.halted:
                assert kinds(events) == ["DIRECTORY", "TRADING"]
                self.halted[cmd.symbol] = False
            else:
                self.reject_unchanged(events, before, R.BAD_DECLARATION)
        elif cmd.action in (Action.HALT, Action.RESUME):
            if cmd.symbol not in self.halted:
                return self.reject_unchanged(events, before, R.UNKNOWN_SYMBOL)
            halted = int(cmd.action == Action.HALT)
            [e] = events
            assert (e.kind, e.symbol, e.halted, e.reason) == \
                (E.TRADING, cmd.symbol, halted, R.OPERATOR)
            self.halted[cmd.symbol] = bool(halted)
            assert self.snapshot() == before
        elif cmd.action == Action.SYSTEM:
            assert (events[0].kind, events[0].code) == (E.SYSTEM, cmd.code)
            day = sorted((v[0], oid) for oid, v in before.items() if v[5] == Tif.DAY)
            if cmd.code != ord("M"):
                day = []
            assert [(e.kind, e.reason, e.slot, e.order_id, e.qty) for e in events[1:]] == \
                [(E.DELETE, R.EXPIRED, s, oid, before[oid][4]) for s, oid in day]
            for s, oid in day:
                self.can[oid] += before[oid][4]
                self.free.append(s)
        else:
            raise AssertionError(cmd)

    def check_state(self):
        model = self.d.model
        snap = self.snapshot()
        # Slots unique, in range, consistent with the predicted free stack.
        slots = [v[0] for v in snap.values()]
        assert len(set(slots)) == len(slots)
        assert all(0 <= s < self.max_orders for s in slots)
        assert all(model.order(s).slot == s for s in slots)
        assert sorted(slots + self.free) == list(range(self.max_orders))
        assert model.live_orders() == len(snap)
        # Conservation: every order's ledger balances against what rests.
        for oid in self.acc:
            resting = snap[oid][4] if oid in snap else 0
            assert self.open(oid) == resting, (oid, self.acc[oid], self.exe[oid],
                                               self.can[oid], resting)
        assert set(snap) <= set(self.acc)
        for sym in REFS:
            book = model.symbols[sym]
            if book is None:
                continue
            assert book.halted == self.halted[sym]
            bid, ask = book.best_bid(), book.best_ask()
            assert bid is None or ask is None or bid < ask, (sym, bid, ask)
            assert not self.feed.crossed(sym)
            for side in (BUY, SELL):
                levels = book.sides[side].levels
                assert len(levels) <= self.max_levels
                low, high = _band(REFS[sym])
                assert (book.band_low, book.band_high) == (low, high)
                assert all(low <= p <= high and lvl for p, lvl in levels.items())
                # FIFO: the feed book's arrival order at each price is the model's.
                letter = "B" if side == BUY else "S"
                for price, level in levels.items():
                    feed_ids = [ref for ref, o in self.feed.orders.items()
                                if o.locate == sym and o.side == letter
                                and o.price == price * TICKS[sym]]
                    assert feed_ids == list(level), (sym, side, price)
        # The feed book holds exactly the model's resting orders.
        assert {ref: (o.locate, o.side, o.shares, o.price) for ref, o in self.feed.orders.items()} \
            == {oid: (v[1], "B" if v[2] == BUY else "S", v[4], v[3] * TICKS[v[1]])
                for oid, v in snap.items()}


def _group(queue):
    out = {}
    for price, oid in queue:
        out.setdefault(price, []).append(oid)
    return out


# -- the properties --------------------------------------------------------------------------------

@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(streams)
def test_random_streams(stream):
    which, ops = stream
    checker = Checker(PARAMS[which])
    for op in ops:
        checker.step(build(checker.d, op, checker.known))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([1, 2]), st.lists(op_strategy, min_size=100, max_size=300))
def test_long_streams_full_book(which, ops):
    """Longer streams on a small book: full-book paths, slot reuse and expiry get exercised."""
    checker = Checker(PARAMS[which])
    for op in ops:
        checker.step(build(checker.d, op, checker.known))


@settings(max_examples=60, deadline=None)
@given(streams)
def test_event_bytes_round_trip(stream):
    """Every event fits its fields and decodes back to itself."""
    which, ops = stream
    d = Driver(**PARAMS[which])
    for sym, ref in REFS.items():
        d.declare(symbol=sym, reference=ref, breaker=BREAKERS[sym], tick=TICKS[sym])
    for op in ops:
        cmd = build(d, op, {})
        events = d.run(cmd)
        check_framing(cmd, events)
        for e in events:
            assert Event.from_bytes(e.to_bytes()) == e
