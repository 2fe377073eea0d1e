"""Hardware in the loop without hardware: a board's gateware behind a pseudo-terminal.

``python -m tickwire.sim.board_pty --board icebreaker`` (``make board-pty BOARD=icebreaker``)
simulates, in Amaranth's simulator, what that board's top puts between its UART pins and its
exchange core (:class:`~tickwire.boards.top.LinkBridge`: UART receiver and transmitter at the
board's clocks per bit, link layer, and the board's own core from
:func:`~tickwire.boards.core.make_core`: the gateware matching engine and MoldUDP64 feed encoder,
built with the board's book from :data:`~tickwire.boards.synth.BOARDS`). The host's side of the
wire is a second UART pair at the same rate. It prints what it runs on stderr and the path of
the pseudo-terminal (``/dev/pts/N``) as the only line on stdout; ``tickwire replay FILE
--engine serial:/dev/pts/N`` then drives it exactly as it would the board on USB: same bytes,
same frames, same flow control.

Only on request:

* ``--model-stand-in``: a STAND-IN for the engine and feed, announced as such: the reference
  model ``ExchangeModel`` and the host's ``FeedPublisher`` run in the testbench behind the same
  link (``tickwire.sim.tb_link.model_core_testbench``). It tests the link, not the gateware.
* ``--uart bytes``: no UARTs; bytes go straight into and out of the link layer (faster).
* ``--flip-rx`` / ``--flip-tx``: corrupt chosen bytes (by index in each direction) to exercise
  the CRC. Stop the process (SIGSTOP) to simulate a hung board.

Simulated time is not wall time: the heartbeat comes every ``--heartbeat-cycles`` idle cycles
(not the board's 100 ms), and an idle simulation slows down to a few thousand cycles a second so
that it does not spin. The simulation ends when the process that started it exits.
"""

import argparse
import os
import select
import sys
import tty

from amaranth.hdl import Module
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out
from amaranth.sim import Simulator
from tickwire.boards.core import make_core
from tickwire.boards.synth import BOARDS
from tickwire.boards.top import LinkBridge, connect_core
from tickwire.hdl.link_cobs import FRAME_LAYOUT
from tickwire.hdl.link_layer import LinkLayer
from tickwire.hdl.uart import UartRx, UartTx
from tickwire.protocol.boards import board_book, describe_book
from tickwire.protocol.link import COMMAND_LAYOUT, EVENT_LAYOUT
from tickwire.protocol.serial_frames import encode_params
from tickwire.sim.tb_link import model_core_testbench

__all__ = ["ModelStandIn", "PtyHarness", "main", "open_pty", "run"]

BAUD = 3_000_000


class ModelStandIn(wiring.Component):
    """STAND-IN for the exchange core: its ports, driven by a testbench (the reference model).

    Has :class:`~tickwire.boards.core.BoardCore`'s ports so that the board's own wiring
    (:func:`~tickwire.boards.top.connect_core`) takes it; the testbench sets ``i_cmd.ready``,
    ``o_event`` and ``o_mold``; ``o_halted`` stays 0.
    """

    i_cmd: In(stream.Signature(COMMAND_LAYOUT))
    o_event: Out(stream.Signature(EVENT_LAYOUT))
    o_mold: Out(stream.Signature(FRAME_LAYOUT))
    o_halted: Out(1)
    i_event_byte: In(stream.Signature(8, always_ready=True))
    i_end_of_session: In(1)

    def elaborate(self, platform):
        return Module()


class PtyHarness(wiring.Component):
    """The simulated board and the host's end of its wire.

    With ``uart`` the board is its :class:`~tickwire.boards.top.LinkBridge` (UARTs, link, core)
    and the host's side a UART pair at the same divisor; without, the link layer and core
    alone, bytes going straight in and out. ``sink`` and ``source`` are the host's byte streams.
    """

    def __init__(self, core, params, clk_freq, heartbeat_cycles, uart=True, baud=BAUD):
        self.core = core
        if uart:
            # The bridge counts its heartbeat in milliseconds of the board's clock.
            heartbeat_ms = (heartbeat_cycles + 0.5) * 1000 / clk_freq
            self.board = LinkBridge(core, params, clk_freq, baud, heartbeat_ms=heartbeat_ms)
            self.divisor = self.board.divisor
            self.host_tx, self.host_rx = UartTx(self.divisor), UartRx(self.divisor)
            self.sink, self.source = self.host_tx.i_data, self.host_rx.o_data
        else:
            self.board = LinkLayer(heartbeat_cycles, info=encode_params(params))
            self.divisor = self.host_tx = None
            self.sink, self.source = self.board.i_rx, self.board.o_tx
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.board = board = self.board
        if self.divisor:
            m.submodules.host_tx = self.host_tx
            m.submodules.host_rx = self.host_rx
            m.d.comb += [board.rx.eq(self.host_tx.o_tx), self.host_rx.i_rx.eq(board.tx)]
        else:
            m.submodules.core = self.core
            connect_core(m, board, self.core)
        return m


def open_pty():
    """A raw pseudo-terminal: ``(master_fd, slave_path, slave_fd)``; keep the slave open."""
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    os.set_blocking(master, False)
    return master, os.ttyname(slave), slave


def describe(board, params, core_notes, harness):
    """The lines ``run`` prints before the pty path: what is simulated."""
    spec = BOARDS[board]
    uart = (f"bit level, the board's UartRx/UartTx at {harness.divisor} clocks per bit "
            f"({BAUD} baud at {spec['clk_mhz']} MHz) and the host's at the same rate"
            if harness.divisor else "none: bytes straight into and out of the link layer")
    return [f"board: {board} ({spec['device']}), its link and core as in {spec['top']}",
            f"core: {core_notes}",
            f"book: {describe_book(params)} (the {board} build's)",
            f"UART: {uart}"]


def run(board="icebreaker", stand_in=False, uart=True, heartbeat_cycles=500, flip_rx=(),
        flip_tx=(), announce=None, stop=None):
    """Simulate ``board`` behind a new pty until ``stop()`` is true (forever if ``None``).

    ``announce(lines, path)`` is called once the simulation is built (default: the lines on
    stderr, the path on stdout).
    """
    params = board_book(board)
    clk_freq = BOARDS[board]["clk_mhz"] * 1e6
    if stand_in:
        core = ModelStandIn()
        notes = ("STAND-IN: the reference model (ExchangeModel) and the host's FeedPublisher, "
                 "NOT the board's gateware")
    else:
        core, built = make_core(params, best_price=BOARDS[board]["best_price"],
                                order_register=BOARDS[board]["order_register"],
                                lookahead=BOARDS[board]["lookahead"])
        notes = (f"{built['engine']} (best-price registers "
                 f"{'on' if built['best_price'] else 'off'}, order-RAM output register "
                 f"{'on' if built['order_register'] else 'off'}, the walker's look ahead "
                 f"{'on' if built['lookahead'] else 'off'}) + {built['feed']} "
                 "(the board's gateware)")
    harness = PtyHarness(core, params, clk_freq, heartbeat_cycles, uart)
    master, path, _keep = open_pty()
    sim = Simulator(harness)
    sim.add_clock(1 / clk_freq)
    if stand_in:
        sim.add_testbench(model_core_testbench(core.i_cmd, core.o_event, core.o_mold, params,
                                               end_of_session=core.i_end_of_session),
                          background=True)
    sim.add_testbench(_pump(harness, master, set(flip_rx), set(flip_tx), stop))
    (announce or _announce)(describe(board, params, notes, harness), path)
    sim.run()


def _announce(lines, path):
    stand_in = any("STAND-IN" in line for line in lines)
    if stand_in:
        print("*" * 78 + "\n*** STAND-IN: the reference model runs behind the link, not the "
              "gateware ***\n" + "*" * 78, file=sys.stderr)
    for line in lines:
        print(f"# {line}", file=sys.stderr)
    print(f"# pty: {path}  (tickwire replay FILE --engine serial:{path})", file=sys.stderr)
    print(path, flush=True)


def _pump(harness, master, flip_rx, flip_tx, stop):
    """The testbench moving bytes between the pty and the host's end of the wire."""
    sink, source = harness.sink, harness.source
    counts = {"rx": 0, "tx": 0}

    async def pump(ctx):
        rx_in, tx_out = bytearray(), bytearray()
        quiet = cycle = 0
        parent = os.getppid()
        ctx.set(source.ready, 1)
        while stop is None or not stop():
            cycle += 1
            if cycle % 4096 == 0 and os.getppid() != parent:
                return          # whoever started the simulation is gone: do not run on
            if cycle % 16 == 0:
                if quiet > 64 and not rx_in and not tx_out:
                    # Idle: wait a little for the host rather than spin (about 2000 cycles/s).
                    select.select([master], [], [], 0.008)
                for byte in _read(master):
                    rx_in.append(byte ^ 0x20 if counts["rx"] in flip_rx else byte)
                    counts["rx"] += 1
            if tx_out and (cycle % 16 == 0 or len(tx_out) > 256):
                _write(master, tx_out)
            # Without UARTs a byte goes in every other cycle, as from a (very fast) UART.
            offer = bool(rx_in) and (bool(harness.divisor) or cycle % 2 == 0)
            if offer:
                ctx.set(sink.payload, rx_in[0])
            ctx.set(sink.valid, offer)
            sent = offer and ctx.get(sink.ready)
            out_valid, out_byte = ctx.get(source.valid), ctx.get(source.payload)
            await ctx.tick()
            if sent:
                del rx_in[0]
            if out_valid:
                tx_out.append(out_byte ^ 0x20 if counts["tx"] in flip_tx else out_byte)
                counts["tx"] += 1
            sending = harness.divisor and ctx.get(harness.host_tx.o_busy)
            quiet = 0 if sent or out_valid or sending else quiet + 1
    return pump


def _read(master):
    try:
        return os.read(master, 4096)
    except BlockingIOError:
        return b""


def _write(master, pending):
    try:
        del pending[:os.write(master, bytes(pending))]
    except BlockingIOError:
        pass


def _ints(text):
    return [int(x) for x in text.split(",") if x] if text else []


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tickwire.sim.board_pty",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--board", choices=sorted(BOARDS), default="icebreaker",
                        help="whose top, book and UART to simulate (default icebreaker)")
    parser.add_argument("--model-stand-in", action="store_true",
                        help="put the reference model behind the link instead of the board's "
                        "gateware engine and feed (a stand-in: tests the link only)")
    parser.add_argument("--uart", choices=["bits", "bytes"], default="bits",
                        help="bits: the board's UARTs at bit level (default); bytes: none, "
                        "bytes straight into the link layer (faster)")
    parser.add_argument("--heartbeat-cycles", type=int, default=500,
                        help="idle cycles between the board's heartbeats (default 500)")
    parser.add_argument("--flip-rx", default="", metavar="I,J,…",
                        help="host→board byte indices to corrupt")
    parser.add_argument("--flip-tx", default="", metavar="I,J,…",
                        help="board→host byte indices to corrupt")
    args = parser.parse_args(argv)
    try:
        run(args.board, stand_in=args.model_stand_in, uart=args.uart == "bits",
            heartbeat_cycles=args.heartbeat_cycles, flip_rx=_ints(args.flip_rx),
            flip_tx=_ints(args.flip_tx))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
