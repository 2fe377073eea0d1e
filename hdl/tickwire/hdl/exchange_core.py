"""The matching engine and the Ethernet feed encoder wired together: commands in; events and
feed frames out. This is what the cocotb engine runs (``--engine cocotb``: the replay's pcap
comes from its frames); the boards, which have no Ethernet, use ``tickwire.boards.core.BoardCore``
with the MoldUDP64-only feed instead.
"""

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from tickwire.hdl.event_fork import EventFork
from tickwire.hdl.feed_encoder import FeedEncoder
from tickwire.hdl.matching_engine import MatchingEngine
from tickwire.hdl.mold_packetizer import MOLD_LAYOUT
from tickwire.hdl.udp_frame_builder import FRAME_LAYOUT
from tickwire.protocol.link import COMMAND_LAYOUT, EVENT_LAYOUT

__all__ = ["EthernetExchangeCore"]


class EthernetExchangeCore(wiring.Component):
    """``MatchingEngine(params)`` → ``FeedEncoder(**feed_options)``, every event also on ``o_event``.

    An event leaves the engine once both ``o_event`` and the feed encoder have taken it
    (:class:`~tickwire.hdl.event_fork.EventFork`, full throughput), so a slow ``o_event`` or a
    busy feed holds the engine back and nothing is lost.

    Parameters
    ----------
    params : tickwire.protocol.link.ModelParams
        The engine's capacity.
    **feed_options :
        ``FeedEncoder`` parameters (session, max_payload, heartbeat_cycles, addresses, locates).

    Members
    -------
    i_cmd : In(stream.Signature(COMMAND_LAYOUT))
    o_event : Out(stream.Signature(EVENT_LAYOUT))
    i_end_of_session : In(1)
        As ``FeedEncoder``: a pulse closes the packet being filled and sends the end of
        session. It does not wait for events still inside the feed encoder: pulse it once the
        feed has drained.
    o_frame : Out(stream.Signature(FRAME_LAYOUT))
        Ethernet/IPv4/UDP frames with FCS; once started, a frame never pauses, so its sink
        must stay ready.
    o_mold : Out(stream.Signature(MOLD_LAYOUT))
        The MoldUDP64 packets again; holding it back holds the feed back.
    """

    i_cmd: In(stream.Signature(COMMAND_LAYOUT))
    o_event: Out(stream.Signature(EVENT_LAYOUT))
    i_end_of_session: In(1)
    o_frame: Out(stream.Signature(FRAME_LAYOUT))
    o_mold: Out(stream.Signature(MOLD_LAYOUT))

    def __init__(self, params, **feed_options):
        self.params = params
        self.engine = MatchingEngine(params)
        self.feed = FeedEncoder(**feed_options)
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.engine = engine = self.engine
        m.submodules.feed = feed = self.feed
        wiring.connect(m, wiring.flipped(self.i_cmd), engine.i_cmd)
        wiring.connect(m, feed.o_frame, wiring.flipped(self.o_frame))
        wiring.connect(m, feed.o_mold, wiring.flipped(self.o_mold))
        m.d.comb += feed.i_end_of_session.eq(self.i_end_of_session)

        m.submodules.fork = fork = EventFork(2, registered=False)
        wiring.connect(m, engine.o_event, fork.i_event)
        wiring.connect(m, fork.o_events[0], wiring.flipped(self.o_event))
        wiring.connect(m, fork.o_events[1], feed.i_event)
        return m
