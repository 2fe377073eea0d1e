"""The exchange core a board top puts behind its link: engine, feed encoder, halt status.

``BoardCore(engine, feed)`` wires any engine component (``i_cmd`` / ``o_event`` streams of
``COMMAND_LAYOUT`` / ``EVENT_LAYOUT``) and any feed component (``i_event`` → ``o_mold``, MoldUDP64
packet bytes) together: each event goes both to the link and to the feed. :func:`make_core`
builds it from the real gateware (``tickwire.hdl.matching_engine.MatchingEngine``,
``tickwire.hdl.feed_encoder.FeedEncoder`` without its Ethernet stage, taking each event's bytes
from the link's transmitter on ``i_event_byte`` rather than selecting them from the event a
second time); the clearly named stand-in below only when asked for.
"""

from amaranth.hdl import Module, Signal
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.event_fork import EventFork
from tickwire.hdl.feed_encoder import FeedEncoder
from tickwire.hdl.link_cobs import FRAME_LAYOUT
from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.protocol.link import COMMAND_LAYOUT, EVENT_LAYOUT, EventKind, Reason

__all__ = ["BoardCore", "LoopbackEngine", "make_core", "STAND_IN"]

#: What the build report's ``core.engine`` says of the stand-in.
STAND_IN = "LoopbackEngine (stand-in)"


class LoopbackEngine(wiring.Component):
    """STAND-IN for the matching engine, to prove the board flow: not an exchange.

    Answers every command with one REJECT event (reason NONE, ``last`` set) carrying the
    command's ``seq``, ``timestamp``, ``symbol`` and ``order_id``.
    """

    i_cmd: In(stream.Signature(COMMAND_LAYOUT))
    o_event: Out(stream.Signature(EVENT_LAYOUT))

    def __init__(self, params=None):
        self.params = params
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        cmd, ev = self.i_cmd.payload, self.o_event.payload
        with m.If(self.o_event.ready):
            m.d.sync += self.o_event.valid.eq(0)
        m.d.comb += self.i_cmd.ready.eq(~self.o_event.valid | self.o_event.ready)
        with m.If(self.i_cmd.valid & self.i_cmd.ready):
            m.d.sync += [self.o_event.valid.eq(1), ev.seq.eq(cmd.seq),
                         ev.timestamp.eq(cmd.timestamp), ev.kind.eq(EventKind.REJECT),
                         ev.reason.eq(Reason.NONE), ev.last.eq(1), ev.symbol.eq(cmd.symbol),
                         ev.order_id.eq(cmd.order_id)]
        return m


class BoardCore(wiring.Component):
    """Engine and feed behind one command input, with the events forked to link and feed.

    Parameters
    ----------
    engine : wiring.Component
        With ``i_cmd`` and ``o_event``.
    feed : wiring.Component or None
        With ``i_event`` and ``o_mold``; ``None``: no MoldUDP64 output.

    Members
    -------
    i_cmd : In(stream.Signature(COMMAND_LAYOUT))
    o_event : Out(stream.Signature(EVENT_LAYOUT))
    o_mold : Out(stream.Signature(FRAME_LAYOUT))
    o_halted : Out(1)
        Some symbol (locate modulo 8) is halted, from the TRADING events.
    i_event_byte : In(stream.Signature(8, always_ready=True))
        The event bytes the link sends (``LinkLayer.o_event_byte``), for a feed that takes
        them (``i_event_byte``) instead of selecting the bytes from the event again.
    i_end_of_session : In(1)
        A pulse: the feed closes the packet it is filling, sends the MoldUDP64 end of session
        and nothing after it (``LinkLayer.o_end_of_session``: the host's END_SESSION frame).
    """

    i_cmd: In(stream.Signature(COMMAND_LAYOUT))
    o_event: Out(stream.Signature(EVENT_LAYOUT))
    o_mold: Out(stream.Signature(FRAME_LAYOUT))
    o_halted: Out(1)
    i_event_byte: In(stream.Signature(8, always_ready=True))
    i_end_of_session: In(1)

    def __init__(self, engine, feed=None):
        self.engine = engine
        self.feed = feed
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        wiring.connect(m, wiring.flipped(self.i_cmd), engine.i_cmd)
        src = engine.o_event

        # The registered fork: the consumers' combinational ``ready`` (the ITCH encoder decodes
        # the payload for it) stays out of the engine's paths, for a cycle per event (the link
        # is far slower). A feed with ``i_event_byte`` starts its message once the link has
        # sent the event's bytes.
        outputs = [wiring.flipped(self.o_event)]
        if self.feed is not None:
            m.submodules.feed = feed = self.feed
            outputs.append(feed.i_event)
            wiring.connect(m, feed.o_mold, wiring.flipped(self.o_mold))
            m.d.comb += feed.i_end_of_session.eq(self.i_end_of_session)
            if hasattr(feed, "i_event_byte"):
                wiring.connect(m, wiring.flipped(self.i_event_byte), feed.i_event_byte)
            if hasattr(feed, "o_frame"):
                # No Ethernet on these boards: the feed's UDP frames are dropped.
                m.d.comb += feed.o_frame.ready.eq(1)
        m.submodules.fork = fork = EventFork(len(outputs), registered=True)
        src = engine.o_event
        wiring.connect(m, src, fork.i_event)
        for port, out in zip(fork.o_events, outputs):
            wiring.connect(m, port, out)

        halted = Signal(8)
        ev = src.payload
        with m.If(src.valid & src.ready & (ev.kind == EventKind.TRADING)):
            m.d.sync += halted.bit_select(ev.symbol[:3], 1).eq(ev.halted)
        m.d.comb += self.o_halted.eq(halted.any())
        return m


def make_core(params, feed=True, stand_in=False, spram=False, *, best_price=True,
              order_register=False, lookahead=True):
    """A :class:`BoardCore` with the matching engine and the MoldUDP64-only feed encoder.

    ``stand_in=True`` puts :class:`LoopbackEngine` (not an exchange) in the engine's place and
    leaves the feed out: only on that explicit request, never because the real engine failed.
    An engine or feed that fails to build raises here, so a broken engine fails the build.
    ``spram``: the engine's level table in iCE40UP5K SPRAM (synthesis only: not simulable).
    ``best_price``, ``order_register``, ``lookahead``: the engine's best-price registers, the
    order RAM's output register and the walker's look ahead (see ``MatchingEngine``).
    Returns ``(core, notes)``: ``notes`` says what was used, e.g. for the build report.
    """
    if stand_in:
        engine, notes = LoopbackEngine(params), {"engine": STAND_IN}
    else:
        engine = MatchingEngine(params, spram=spram, best_price=best_price,
                                order_register=order_register, lookahead=lookahead)
        notes = {"engine": "MatchingEngine", "best_price": best_price,
                 "order_register": order_register, "lookahead": lookahead}
    feed_component = None
    if feed and not stand_in:
        # The boards have no Ethernet: the MoldUDP64-only feed (no UDP frame builder, one
        # packet buffer reader); a locate table of 32 fills one block RAM and covers the
        # engine's locates 1 … max_symbols up to 31.
        feed_component = FeedEncoder(ethernet=False, locates=max(32, params.max_symbols + 1),
                                     event_bytes=True)
    notes["feed"] = "FeedEncoder" if feed_component is not None else "none"
    return BoardCore(engine, feed_component), notes
