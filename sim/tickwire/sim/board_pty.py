"""Hardware in the loop without hardware: the board's link gateware behind a pseudo-terminal.

``python -m tickwire.sim.board_pty`` simulates (Amaranth's simulator) the board design's link
layer, optionally with its UART pair at bit level (``--uart``), and prints the path of a
pseudo-terminal (``/dev/pts/N``) on its first line of output. ``SerialEngine("/dev/pts/N")``
then drives it exactly as a board on USB: same bytes, same frames, same flow control.

Behind the link sits either

* ``--core model`` (default): a STAND-IN for the gateware engine and feed: the reference model
  ``ExchangeModel`` and the host's ``FeedPublisher`` run in the testbench on the link's
  command/event/MoldUDP64 streams (``tickwire.sim.tb_link.model_core_testbench``); or
* ``--core gateware``: the board's own ``BoardCore`` (``make_core``: the real matching
  engine and feed encoder when they elaborate, else the loopback stand-in), simulated.

The simulation ends when the process that started it exits. Simulated time is not wall time: heartbeats are counted in cycles (``--heartbeat-cycles``), and
an idle simulation slows down to a few thousand cycles a second so that it does not spin.
``--flip-rx`` / ``--flip-tx`` corrupt chosen bytes (by index in each direction) to exercise the
CRC. Stop the process (SIGSTOP) to simulate a hung board.
"""

import argparse
import os
import select
import sys
import tty

from amaranth.hdl import Module
from amaranth.lib import wiring
from amaranth.sim import Simulator
from tickwire.boards.core import make_core
from tickwire.boards.top import connect_core
from tickwire.hdl.link_layer import LinkLayer
from tickwire.hdl.uart import UartRx, UartTx
from tickwire.protocol.link import ModelParams
from tickwire.protocol.serial_frames import encode_params
from tickwire.sim.tb_link import model_core_testbench

__all__ = ["PtyHarness", "main", "open_pty", "run"]


class PtyHarness(wiring.Component):
    """The simulated board: [host-side UART → board UART →] link [→ board UART → host UART].

    With ``core`` the link is connected to it; without, the link's engine-side streams are left
    for a testbench (``o_cmd``, ``i_event``, ``i_mold`` of ``self.link``).
    """

    def __init__(self, params, heartbeat_cycles, divisor=None, core=None):
        self.link = LinkLayer(heartbeat_cycles, info=encode_params(params))
        self.core = core
        self.divisor = divisor
        super().__init__({})

    def elaborate(self, platform):
        m = Module()
        m.submodules.link = link = self.link
        if self.divisor:
            m.submodules.host_tx = self.host_tx = host_tx = UartTx(self.divisor)
            m.submodules.board_rx = board_rx = UartRx(self.divisor)
            m.submodules.board_tx = board_tx = UartTx(self.divisor)
            m.submodules.host_rx = self.host_rx = host_rx = UartRx(self.divisor)
            m.d.comb += [board_rx.i_rx.eq(host_tx.o_tx), host_rx.i_rx.eq(board_tx.o_tx)]
            wiring.connect(m, board_rx.o_data, link.i_rx)
            m.d.comb += [link.i_rx_error.eq(board_rx.o_frame_error),
                         link.i_rx_overflow.eq(board_rx.o_overflow)]
            wiring.connect(m, link.o_tx, board_tx.i_data)
        if self.core is not None:
            m.submodules.core = core = self.core
            connect_core(m, link, core)
        return m


def open_pty():
    """A raw pseudo-terminal: ``(master_fd, slave_path)``; the slave stays open (kept alive)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    tty.setraw(master)
    os.set_blocking(master, False)
    return master, os.ttyname(slave), slave


def run(params, core="model", uart_divisor=None, heartbeat_cycles=500, flip_rx=(),
        flip_tx=(), announce=print, stop=None):
    """Simulate until ``stop()`` is true (forever if ``None``); returns when it is."""
    master, path, _keep = open_pty()
    core_component = None
    if core == "gateware":
        core_component, notes = make_core(params)
        announce(f"# core: {notes}", file=sys.stderr)
    harness = PtyHarness(params, heartbeat_cycles, uart_divisor, core_component)
    link = harness.link
    sim = Simulator(harness)
    sim.add_clock(1e-6)
    if core_component is None:
        sim.add_testbench(model_core_testbench(link.o_cmd, link.i_event, link.i_mold, params),
                          background=True)
    flip_rx, flip_tx = set(flip_rx), set(flip_tx)
    state = {"rx": 0, "tx": 0}

    async def pump(ctx):
        rx_in = bytearray()
        tx_out = bytearray()
        quiet = 0
        if uart_divisor:
            host_tx, host_rx = harness.host_tx, harness.host_rx
            sink, source = host_tx.i_data, host_rx.o_data
        else:
            sink, source = link.i_rx, link.o_tx
        ctx.set(source.ready, 1)
        cycle = 0
        parent = os.getppid()
        while stop is None or not stop():
            cycle += 1
            if cycle % 4096 == 0 and os.getppid() != parent:
                return          # whoever started the simulation is gone: do not run on
            if cycle % 16 == 0:
                if quiet > 64 and not rx_in and not tx_out:
                    # Idle: wait a little for the host rather than spin (about 2000 cycles/s).
                    select.select([master], [], [], 0.008)
                try:
                    data = os.read(master, 4096)
                except BlockingIOError:
                    data = b""
                for byte in data:
                    if state["rx"] in flip_rx:
                        byte ^= 0x20
                    state["rx"] += 1
                    rx_in.append(byte)
            if tx_out and (cycle % 16 == 0 or len(tx_out) > 256):
                try:
                    written = os.write(master, bytes(tx_out))
                    del tx_out[:written]
                except BlockingIOError:
                    pass
            busy = False
            # Without UARTs a byte goes in every other cycle, as from a (very fast) UART.
            offer = bool(rx_in) and (bool(uart_divisor) or cycle % 2 == 0)
            if offer:
                ctx.set(sink.payload, rx_in[0])
            ctx.set(sink.valid, offer)
            sent = offer and ctx.get(sink.ready)
            out_valid, out_byte = ctx.get(source.valid), ctx.get(source.payload)
            await ctx.tick()
            if sent:
                del rx_in[0]
                busy = True
            if out_valid:
                if state["tx"] in flip_tx:
                    out_byte ^= 0x20
                state["tx"] += 1
                tx_out.append(out_byte)
                busy = True
            quiet = 0 if busy or (uart_divisor and ctx.get(harness.host_tx.o_busy)) else quiet + 1

    sim.add_testbench(pump)
    announce(path)
    sys.stdout.flush()
    sim.run()


def _ints(text):
    return [int(x) for x in text.split(",") if x] if text else []


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m tickwire.sim.board_pty",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", choices=["model", "gateware"], default="model")
    parser.add_argument("--uart", type=int, metavar="DIVISOR", default=0,
                        help="simulate the UARTs at bit level, DIVISOR clocks per bit")
    parser.add_argument("--heartbeat-cycles", type=int, default=500)
    parser.add_argument("--max-orders", type=int, default=256)
    parser.add_argument("--max-symbols", type=int, default=4)
    parser.add_argument("--band-ticks", type=int, default=128)
    parser.add_argument("--max-qty", type=int, default=1_000_000)
    parser.add_argument("--flip-rx", default="", help="host→board byte indices to corrupt")
    parser.add_argument("--flip-tx", default="", help="board→host byte indices to corrupt")
    args = parser.parse_args(argv)
    params = ModelParams(max_orders=args.max_orders, max_symbols=args.max_symbols,
                         band_ticks=args.band_ticks, max_qty=args.max_qty)
    try:
        run(params, core=args.core, uart_divisor=args.uart or None,
            heartbeat_cycles=args.heartbeat_cycles, flip_rx=_ints(args.flip_rx),
            flip_tx=_ints(args.flip_tx))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
