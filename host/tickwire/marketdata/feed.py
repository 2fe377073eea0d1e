"""The public feed: engine events → ITCH 5.0 messages → MoldUDP64 packets.

This is the software definition of the feed; the gateware feed encoder must produce the
same bytes for the same events. Each event gives at most one ITCH message; a MoldUDP64
packet closes at the last event of a command or when the next message would not fit.
"""

from tickwire.protocol import itch, moldudp64
from tickwire.protocol.feed import DEFAULT_SESSION, MAX_PAYLOAD, TRADING_REASONS
from tickwire.protocol.link import EventKind, ReplaceMode, Side, unpack_name

__all__ = ["ItchEventEncoder", "FeedPublisher"]

_SIDE = {Side.BUY: "B", Side.SELL: "S"}
# Module globals, not enum class attributes (~0.2 µs a read) nor itch.encode (a dispatch on the
# type code per message): this runs for every event.
_ADD, _EXECUTE, _REDUCE, _DELETE, _REPLACE, _TRADING, _DIRECTORY, _SYSTEM = (
    EventKind.ADD, EventKind.EXECUTE, EventKind.REDUCE, EventKind.DELETE, EventKind.REPLACE,
    EventKind.TRADING, EventKind.DIRECTORY, EventKind.SYSTEM)
_KEPT, _MOVED = ReplaceMode.KEPT, ReplaceMode.MOVED
_ENCODE_ADD, _ENCODE_EXECUTED, _ENCODE_CANCEL, _ENCODE_DELETE, _ENCODE_REPLACE = (
    itch.SPECS[code].encode for code in (b"A", b"E", b"X", b"D", b"U"))


class ItchEventEncoder:
    """Turns engine events into ITCH 5.0 messages.

    It keeps what the events do not repeat: each locate's stock name and tick size, learnt
    from DIRECTORY events (the gateware keeps the same table in block RAM).
    """

    def __init__(self):
        self.stocks = {}

    def encode(self, ev):
        """ITCH message bytes for one event, or ``None`` for private-only events."""
        kind = ev.kind
        ts = ev.timestamp
        locate = ev.symbol
        if kind == _ADD:
            stock, tick = self.stocks[locate]
            return _ENCODE_ADD(stock_locate=locate, timestamp=ts,
                               order_reference_number=ev.order_id,
                               buy_sell_indicator=_SIDE[ev.side], shares=ev.qty, stock=stock,
                               price=ev.price * tick)
        if kind == _EXECUTE:
            return _ENCODE_EXECUTED(stock_locate=locate, timestamp=ts,
                                    order_reference_number=ev.order_id, executed_shares=ev.qty,
                                    match_number=ev.match)
        if kind == _REDUCE:
            return _ENCODE_CANCEL(stock_locate=locate, timestamp=ts,
                                  order_reference_number=ev.order_id, canceled_shares=ev.qty)
        if kind == _DELETE:
            return _ENCODE_DELETE(stock_locate=locate, timestamp=ts,
                                  order_reference_number=ev.order_id)
        if kind == _REPLACE:
            return self._replace(ev)
        if kind == _TRADING:
            return itch.encode(b"H", stock_locate=locate, timestamp=ts,
                               stock=self.stocks[locate][0],
                               trading_state="H" if ev.halted else "T",
                               reason=TRADING_REASONS[ev.halted, ev.reason])
        if kind == _DIRECTORY:
            stock = unpack_name(ev.name)
            self.stocks[locate] = (stock, ev.tick)
            return itch.encode(
                b"R", stock_locate=locate, timestamp=ts, stock=stock, market_category="Q",
                financial_status_indicator="N", round_lot_size=ev.qty, round_lots_only="N",
                issue_classification="C", issue_sub_type="Z", authenticity="P",
                short_sale_threshold_indicator="N", ipo_flag="N", luld_reference_price_tier="1",
                etp_flag="N", etp_leverage_factor=0, inverse_indicator="N")
        if kind == _SYSTEM:
            return itch.encode(b"S", stock_locate=0, timestamp=ts, event_code=chr(ev.code))
        return None

    def _replace(self, ev):
        locate, ts = ev.symbol, ev.timestamp
        if ev.mode == _KEPT:
            if ev.remaining == ev.qty:
                return None
            return itch.encode(b"X", stock_locate=locate, timestamp=ts,
                               order_reference_number=ev.order_id,
                               canceled_shares=ev.remaining - ev.qty)
        if ev.mode == _MOVED:
            return _ENCODE_REPLACE(stock_locate=locate, timestamp=ts,
                                   original_order_reference_number=ev.order_id,
                                   new_order_reference_number=ev.other_id, shares=ev.qty,
                                   price=ev.price * self.stocks[locate][1])
        return itch.encode(b"D", stock_locate=locate, timestamp=ts,
                           order_reference_number=ev.order_id)


class FeedPublisher:
    """Events in, MoldUDP64 packets out (to ``sink(packet_bytes, timestamp_ns)``).

    Parameters
    ----------
    sink : callable
    session : str
        MoldUDP64 session name (10 characters at most).
    max_payload : int
        UDP payload limit in bytes.
    on_message : callable, optional
        Also called with every ITCH message (e.g. to build a book from the feed).
    """

    def __init__(self, sink, session=DEFAULT_SESSION, max_payload=MAX_PAYLOAD, on_message=None):
        self.encoder = ItchEventEncoder()
        self.packetizer = moldudp64.Packetizer(session, max_payload=max_payload)
        self.sink = sink
        self.on_message = on_message
        self._timestamp = 0

    def publish(self, events):
        """Encode a command's events; packets close at each ``last`` event."""
        for ev in events:
            msg = self.encoder.encode(ev)
            if msg is not None:
                if self.on_message is not None:
                    self.on_message(msg)
                self._emit(self.packetizer.add(msg), ev.timestamp)
            if ev.last:
                self._emit(self.packetizer.flush(), ev.timestamp)

    def end_of_session(self):
        self._emit(self.packetizer.flush(), self._timestamp)
        self.sink(self.packetizer.end_of_session(), self._timestamp)

    def _emit(self, packets, timestamp):
        self._timestamp = timestamp
        for packet in packets:
            self.sink(packet, timestamp)
