"""cocotb bench of the matching engine and the feed encoder together (``hdl/exchange_core.py``).

The gateware side of ``tickwire replay --engine cocotb``: commands in, and out both the event
records (the host turns them into the private reports) and the Ethernet frames of the public
feed (the replay's pcap). No model runs here: the replay and the tests compare the results
with the model's.

One coroutine does everything, cycle by cycle (inputs change on the falling edge, outputs are
sampled on settled values in ``ReadOnly``): it drives the commands back to back, takes
``o_event``, ``o_frame`` and ``o_mold`` (always ready), and once every command's ``last``
event is out and the feed has been quiet for :data:`QUIET_CYCLES` cycles, pulses
``i_end_of_session`` and waits for the end-of-session frame.

Checks: every frame's FCS (``pcap.ethernet_fcs``), which is then stripped; no pause inside a
frame; ``o_mold`` carries each frame's UDP payload again, in the same order; the MoldUDP64
sequence numbers run on without gaps; no heartbeat (the core is built without them) and
nothing after the end of session; all the messages of a data packet carry one timestamp.

Each frame is given a capture time as the host's ``TradingSession`` does: the timestamp of the
event that closed its packet. A packet closes at the ``last`` event of a command or when the
command's next message does not fit, so a data packet holds the messages of one command, and
the time is its messages' (equal) ITCH timestamp; the end of session takes the timestamp of the
last event.

Environment (``run_core`` sets it):

=================  ==========================================================================
``TW_COMMANDS``    file of ``Command.to_bytes()`` records
``TW_EVENTS``      output: the ``Event`` records, in order
``TW_FRAMES``      output: the frames, FCS stripped, as a nanosecond pcap
``TW_IDLE``        probability of an idle cycle before a command (default 0)
``TW_SEED``        seed of the idle cycles
=================  ==========================================================================
"""

import fcntl
import os
import random
from pathlib import Path

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly
from tickwire.protocol import moldudp64, pcap
from tickwire.protocol.link import COMMAND_BYTES, EVENT_BYTES, Command, Event
from tickwire.sim.tb_matching_engine import group_events

__all__ = ["QUIET_CYCLES", "run_core"]

#: Cycles without feed output, after the last event, before the end of session is pulsed:
#: well above the feed's longest silent stretch (an event's message is ≤ 50 bytes and starts
#: within ~20 cycles; a closed packet starts its frame within a few cycles).
QUIET_CYCLES = 512
#: Ethernet + IPv4 + UDP headers before the MoldUDP64 payload.
_UDP_PAYLOAD = 42


def _bit(handle):
    """A 1-bit output, X read as 0 (Icarus leaves some combinational outputs X until an input
    of their ``always @*`` block changes)."""
    value = handle.value
    return int(value) if value.is_resolvable else 0


def _udp_payload(frame):
    """The UDP payload of an Ethernet/IPv4/UDP frame without FCS (padding dropped)."""
    length = int.from_bytes(frame[38:40], "big") - 8
    return frame[_UDP_PAYLOAD:_UDP_PAYLOAD + length]


class FrameCollector:
    """Bytes of a ``{data, last}`` stream into packets; counts pauses inside a packet."""

    def __init__(self, dut, prefix):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.packets = []
        self.current = bytearray()
        self.bubbles = 0

    def sample(self):
        """Called once per cycle in ``ReadOnly`` (the sink is always ready); True if busy."""
        if not _bit(self.valid):
            if self.current:
                self.bubbles += 1
            return bool(self.current)
        word = self.payload.value.to_unsigned()
        self.current.append(word & 0xFF)
        if word >> 8 & 1:
            self.packets.append(bytes(self.current))
            self.current = bytearray()
        return True


def _read_commands(path):
    raw = Path(path).read_bytes()
    return [Command.from_bytes(raw[i:i + COMMAND_BYTES]) for i in range(0, len(raw), COMMAND_BYTES)]


def _event_field(value, name):
    shift, mask = Event.BITS[name]
    return (value >> shift) & mask


def timed_frames(frames, mold_packets, last_timestamp):
    """Check the feed and give each frame (FCS stripped) its capture time; see the module."""
    assert len(mold_packets) == len(frames), \
        f"{len(frames)} frames but {len(mold_packets)} o_mold packets"
    out, next_seq, ended = [], 1, False
    for number, (frame, mold) in enumerate(zip(frames, mold_packets)):
        body, fcs = frame[:-4], frame[-4:]
        assert fcs == pcap.ethernet_fcs(body), f"frame {number}: bad FCS {fcs.hex()}"
        payload = _udp_payload(body)
        assert payload == mold, f"frame {number}: o_mold packet differs from the UDP payload"
        packet = moldudp64.decode_packet(payload)
        assert not ended, f"frame {number} after the end of session"
        assert packet.sequence == next_seq, \
            f"frame {number}: sequence {packet.sequence}, expected {next_seq}"
        if packet.count == moldudp64.END_OF_SESSION:
            ended = True
            out.append((last_timestamp, body))
            continue
        assert packet.count != moldudp64.HEARTBEAT, f"frame {number}: a heartbeat"
        times = {int.from_bytes(msg[5:11], "big") for msg in packet.messages}
        assert len(times) == 1, f"frame {number}: messages of several times {sorted(times)}"
        next_seq += packet.count
        out.append((times.pop(), body))
    assert ended, "no end of session"
    return out


@cocotb.test()
async def play_commands(dut):
    """Play ``TW_COMMANDS`` through engine and feed; write events and timed frames."""
    commands = _read_commands(os.environ["TW_COMMANDS"])
    rng = random.Random(int(os.environ.get("TW_SEED", "1")))
    idle = float(os.environ.get("TW_IDLE", "0"))
    clk = dut.clk
    cocotb.start_soon(Clock(clk, 10, unit="ns").start())
    await FallingEdge(clk)
    dut.rst.value = 1
    dut.i_cmd__valid.value = 0
    dut.i_cmd__payload.value = 0
    dut.i_end_of_session.value = 0
    dut.o_event__ready.value = 1
    dut.o_frame__ready.value = 1
    dut.o_mold__ready.value = 1
    await ClockCycles(clk, 3)
    await FallingEdge(clk)
    dut.rst.value = 0

    frames, mold = FrameCollector(dut, "o_frame"), FrameCollector(dut, "o_mold")
    events, done = [], 0
    pending, current = iter(commands), None
    quiet, eos_sent, cycles = 0, False, 0
    budget = 10_000 + 400 * len(commands)
    while True:
        await FallingEdge(clk)
        cycles += 1
        assert cycles < budget, (f"timeout after {cycles} cycles: {done} of {len(commands)} "
                                 f"commands done, {len(frames.packets)} frames")
        if eos_sent:
            dut.i_end_of_session.value = 0
        if current is None:
            current = None if idle and rng.random() < idle else next(pending, None)
            if current is None:
                dut.i_cmd__valid.value = 0
            else:
                dut.i_cmd__payload.value = current.to_int()
                dut.i_cmd__valid.value = 1
        if done == len(commands) and quiet >= QUIET_CYCLES and not eos_sent:
            dut.i_end_of_session.value = 1
            eos_sent, quiet = True, 0
        await ReadOnly()
        if current is not None and _bit(dut.i_cmd__ready):
            current = None              # taken at the next rising edge
        if _bit(dut.o_event__valid):
            value = dut.o_event__payload.value.to_unsigned()
            events.append(value)
            done += _event_field(value, "last")
        busy = frames.sample() | mold.sample()
        quiet = 0 if busy or done < len(commands) else quiet + 1
        if eos_sent and quiet >= QUIET_CYCLES:
            break

    assert frames.bubbles == 0, f"{frames.bubbles} idle cycles inside frames"
    last_timestamp = _event_field(events[-1], "timestamp") if events else 0
    timed = timed_frames(frames.packets, mold.packets, last_timestamp)
    dut._log.info("%d commands, %d events, %d frames in %d cycles", len(commands), len(events),
                  len(timed), cycles)
    Path(os.environ["TW_EVENTS"]).write_bytes(
        b"".join(v.to_bytes(EVENT_BYTES, "little") for v in events))
    with open(os.environ["TW_FRAMES"], "wb") as f:
        writer = pcap.PcapWriter(f, nanoseconds=True)
        for ts, frame in timed:
            writer.write(frame, ts)


# -- running it --------------------------------------------------------------------------------

def run_core(params, commands, build_dir, feed_options=None, sim=None, work_dir=None,
             waves=None, idle=0.0, seed=1):
    """Build ``EthernetExchangeCore(params, **feed_options)`` for ``sim`` in ``build_dir`` and play
    ``commands`` through it.

    Returns ``(events, frames)``: the events per command (``list[list[Event]]``) and the feed's
    frames, FCS stripped, as ``[(time_ns, frame)]``. ``waves`` (default: ``WAVES`` in the
    environment) writes a waveform in ``build_dir``. The build directory is locked while in
    use, so that parallel runs (pytest-xdist, two replays) take turns.
    """
    from tickwire.hdl.exchange_core import EthernetExchangeCore
    from tickwire.sim.runner import run_cocotb

    work = Path(work_dir or build_dir).resolve()
    work.mkdir(parents=True, exist_ok=True)
    cmd_path, ev_path, fr_path = work / "commands.bin", work / "events.bin", work / "frames.pcap"
    cmd_path.write_bytes(b"".join(cmd.to_bytes() for cmd in commands))
    for path in (ev_path, fr_path):
        path.unlink(missing_ok=True)
    env = {"TW_COMMANDS": str(cmd_path), "TW_EVENTS": str(ev_path), "TW_FRAMES": str(fr_path),
           "TW_IDLE": str(idle), "TW_SEED": str(seed)}
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run_cocotb(EthernetExchangeCore(params, **(feed_options or {})), "exchange_core",
                   "tickwire.sim.tb_exchange_core", build_dir=build_dir, extra_env=env, sim=sim,
                   waves=waves)
    out = group_events(ev_path.read_bytes(), len(commands), "cocotb core")
    return out, pcap.read_pcap(fr_path)
