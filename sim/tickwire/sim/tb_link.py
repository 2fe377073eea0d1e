"""Simulation helpers for the serial link: the host's byte pump and a model-backed engine.

:func:`model_core_testbench` stands in for the exchange core in simulation (labelled as such
wherever it is used): it takes commands from the link's ``o_cmd``, runs them through the
reference model :class:`~tickwire.sim.model.ExchangeModel`, sends the events into ``i_event``
and the MoldUDP64 packets of the host's feed publisher (:class:`~tickwire.feed.FeedPublisher`)
into ``i_mold``, as the gateware engine and feed encoder will.
"""

from tickwire.marketdata.feed import FeedPublisher
from tickwire.protocol.link import Command, ModelParams
from tickwire.sim.model import ExchangeModel

__all__ = ["model_core_testbench", "send_stream"]


async def send_stream(ctx, stream, payloads):
    """Send each payload on ``stream``, one transfer each."""
    for payload in payloads:
        if isinstance(payload, int):
            ctx.set(stream.payload.as_value(), payload)
        else:
            ctx.set(stream.payload, payload)
        ctx.set(stream.valid, 1)
        await ctx.tick().until(stream.ready)
    ctx.set(stream.valid, 0)


def model_core_testbench(o_cmd, i_event, i_mold, params=None, log=None, end_of_session=None):
    """An async testbench: the reference model and the host's feed behind the link's streams.

    ``log``, if given, gets ``(command, events)`` for every command served. ``end_of_session``,
    if given, is the link's end-of-session pulse: the feed's end-of-session packet follows, once.
    """
    async def testbench(ctx):
        model = ExchangeModel(params or ModelParams())
        packets = []
        publisher = FeedPublisher(lambda packet, ts: packets.append(packet))
        ended = False
        while True:
            # A plain loop rather than ``tick().until()``: this testbench never ends, and an
            # ``until`` left pending at the end of a simulation warns when collected.
            ctx.set(o_cmd.ready, 1)
            valid, payload = ctx.get(o_cmd.valid), ctx.get(o_cmd.payload)
            end = end_of_session is not None and ctx.get(end_of_session)
            await ctx.tick()
            if end and not ended:
                ended = True
                packets.clear()
                publisher.end_of_session()
                await _send_packets(ctx, i_mold, packets)
            if not valid:
                continue
            command = Command.from_int(payload.as_value().value)
            ctx.set(o_cmd.ready, 0)
            events = model.process(command)
            if log is not None:
                log.append((command, events))
            await send_stream(ctx, i_event, [e.to_int() for e in events])
            packets.clear()
            publisher.publish(events)
            await _send_packets(ctx, i_mold, packets)
    return testbench


async def _send_packets(ctx, i_mold, packets):
    for packet in packets:
        await send_stream(ctx, i_mold, [{"data": b, "last": i == len(packet) - 1}
                                        for i, b in enumerate(packet)])
