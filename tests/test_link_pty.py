"""Hardware in the loop without hardware: ``SerialEngine`` on a pseudo-terminal whose far end
is the link gateware in simulation (``tickwire.sim.board_pty``).

Behind the simulated link is the reference model standing in for the gateware engine and feed
(``--core model``), so these tests check the link (gateware and host) end to end, not the
engine.
"""

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from tickwire.engine.serial import LinkCorrupted, LinkDown, SerialEngine
from tickwire.marketdata.feed import FeedPublisher
from tickwire.protocol.link import Action, Command, EventKind, ModelParams, Tif, pack_name
from tickwire.sim.model import ExchangeModel

PARAMS = ModelParams(max_orders=256, max_symbols=4, band_ticks=128)


def command_stream(n, seed=11):
    """A mixed, valid command stream made by playing it into the reference model as it goes."""
    rng = random.Random(seed)
    model = ExchangeModel(PARAMS)
    seq = 0
    commands = []

    def issue(command):
        nonlocal seq
        seq += 1
        command.seq, command.timestamp = seq, 1_000_000 * seq
        commands.append(command)
        return model.process(command)

    issue(Command(action=Action.SYSTEM, code=ord("O")))
    issue(Command(action=Action.DECLARE, symbol=1, name=pack_name("TICK"), price=1000,
                  qty=100, tick=100, breaker=0))
    resting = {}
    order_id = 0
    while len(commands) < n:
        roll = rng.random()
        if resting and roll < 0.25:
            oid = rng.choice(list(resting))
            events = issue(Command(action=Action.CANCEL, symbol=1, order_id=oid,
                                   slot=resting[oid], qty=0))
        elif roll < 0.28:
            issue(Command(action=rng.choice([Action.HALT, Action.RESUME]), symbol=1))
            continue
        else:
            order_id += 1
            events = issue(Command(
                action=Action.NEW, symbol=1, side=rng.randrange(2),
                tif=rng.choice([Tif.DAY, Tif.GTC, Tif.IOC]), price=1000 + rng.randrange(-8, 9),
                qty=rng.randrange(1, 6) * 100, order_id=order_id, firm=rng.randrange(3)))
        for ev in events:
            if ev.kind == EventKind.ADD:
                resting[ev.order_id] = ev.slot
            elif ev.kind in (EventKind.DELETE, EventKind.EXECUTE) and ev.remaining == 0:
                resting.pop(ev.order_id, None)
    return commands


class Board:
    """``python -m tickwire.sim.board_pty`` in a child process."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickwire.sim.board_pty", "--max-orders", "256",
             "--max-symbols", "4", "--band-ticks", "128", *args],
            stdout=subprocess.PIPE, text=True)
        self.path = self.proc.stdout.readline().strip()
        assert self.path.startswith("/dev/"), self.path

    def close(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            self.proc.wait(10)


@pytest.fixture
def board_factory():
    boards = []

    def make(*args):
        boards.append(Board(*args))
        return boards[-1]
    yield make
    for board in boards:
        board.close()


def _reference(commands):
    model = ExchangeModel(PARAMS)
    packets = []
    publisher = FeedPublisher(lambda packet, ts: packets.append(packet))
    events = []
    for command in commands:
        evs = model.process(command)
        publisher.publish(evs)
        events.append(evs)
    return events, packets


def test_serial_engine_matches_model(board_factory):
    board = board_factory()
    commands = command_stream(40)
    expected, packets = _reference(commands)
    with SerialEngine.from_spec(f"{board.path},baud=3000000,timeout=5",
                                PARAMS) as engine:
        assert engine.params == PARAMS
        got = [engine.process(c) for c in commands]
        status = engine.device_status()
        engine.drain()
        mold = engine.take_mold_packets()
    assert got == expected
    assert mold == packets
    assert status["crc_errors"] == status["framing_errors"] == status["overflows"] == 0
    assert status["expected_seq"] == len(commands) % 256


def test_serial_engine_through_uart_bits(board_factory):
    board = board_factory("--uart", "4")
    commands = command_stream(4)
    expected, _ = _reference(commands)
    with SerialEngine(board.path, heartbeat_timeout=10, retransmit_timeout=2) as engine:
        assert [engine.process(c) for c in commands] == expected


def test_corrupted_command_is_counted_and_sent_again(board_factory):
    # Byte 20 from the host is inside the first command frame (the HELLO frame is 7 bytes).
    board = board_factory("--flip-rx", "20")
    commands = command_stream(6)
    expected, _ = _reference(commands)
    with SerialEngine(board.path, heartbeat_timeout=5) as engine:
        got = [engine.process(c) for c in commands]
        status = engine.device_status()
        assert engine.counters["retransmits"] == 1
    assert got == expected
    assert status["crc_errors"] + status["framing_errors"] == 1


def test_corrupted_event_fails_clearly(board_factory):
    # Byte 60 from the board is past the STATUS answer to HELLO: an event frame.
    board = board_factory("--flip-tx", "60")
    commands = command_stream(6)
    with SerialEngine(board.path, heartbeat_timeout=5) as engine, \
            pytest.raises(LinkCorrupted, match="corrupt"):
        for command in commands:
            engine.process(command)


def test_stalled_board_trips_heartbeat(board_factory):
    board = board_factory()
    commands = command_stream(3)
    with SerialEngine(board.path, heartbeat_timeout=2) as engine:
        engine.process(commands[0])
        time.sleep(0.5)
        engine.heartbeat()
        assert engine.counters["heartbeats"] >= 1       # the idle board keeps talking
        os.kill(board.proc.pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(LinkDown, match="heartbeat"):
            engine.process(commands[1])
        assert time.monotonic() - started < 5


def test_gateware_core_matches_model(board_factory):
    """The board's own core (gateware matching engine and feed encoder), simulated behind the
    link: the same events and MoldUDP64 packets as the reference model."""
    board = board_factory("--core", "gateware")
    commands = command_stream(30, seed=5)
    expected, packets = _reference(commands)
    with SerialEngine(board.path, heartbeat_timeout=20, retransmit_timeout=5) as engine:
        got = [engine.process(c) for c in commands]
        engine.drain()
        mold = engine.take_mold_packets()
        status = engine.device_status()
    assert got == expected
    assert mold == packets
    assert status["crc_errors"] == status["framing_errors"] == status["overflows"] == 0
