"""Hardware in the loop without hardware: the host on a pseudo-terminal whose far end is a
board's gateware in simulation (``tickwire.sim.board_pty``, ``make board-pty``).

The documented path is tested as a user takes it: ``make board-pty``'s entry point with its
defaults (the iCEBreaker's gateware engine and feed, its book, its UARTs at bit level) driven
by ``tickwire replay --engine serial:`` gives the model's pcap and reports byte for byte, the
pcap written from the board's own MoldUDP64 packets. The link's own tests (retransmission,
corruption, a hung board, the CLI's messages) put the reference model behind the link
(``--model-stand-in``), which is faster and says so.
"""

import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest
from tickwire.engine.serial import (
    BookMismatch,
    FrameReader,
    LinkCorrupted,
    LinkDown,
    LinkError,
    SerialEngine,
    decode_frame,
    encode_frame,
)
from tickwire.marketdata.feed import FeedPublisher
from tickwire.protocol.boards import BOARD_BOOKS
from tickwire.protocol.link import Action, Command, EventKind, Tif, pack_name
from tickwire.protocol.serial_frames import STATUS_BYTES, FrameType, NakReason, encode_params
from tickwire.sim.model import ExchangeModel

PARAMS = BOARD_BOOKS["icebreaker"]
STAND_IN = ("--model-stand-in", "--uart", "bytes")

#: A short day (simulation is slow): one symbol, a resting order, a partial fill, a cancel.
#: With the session's system events it is 10 commands.
DAY = """action,time,firm,token,symbol,side,qty,price,tif,min_qty,stp,new_token,new_qty,new_price,tick,lot,breaker_pct,code
symbol,34200000000000,,,TICK,,,10.0000,,,,,,,,,,
new,34200000001000,F00,A1,TICK,S,300,10.0100,day,,,,,,,,,
new,34200000002000,F01,B1,TICK,B,100,10.0100,ioc,,,,,,,,,
cancel,34200000003000,F00,A1,,,,,,,,,,,,,,
"""


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
    """``python -m tickwire.sim.board_pty ARGS`` (what ``make board-pty`` runs) in a child
    process; ``path`` is its pty, ``banner`` what it said it runs."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, "-m", "tickwire.sim.board_pty", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.path = self.proc.stdout.readline().strip()
        assert self.path.startswith("/dev/"), self.proc.communicate(timeout=5)
        self.banner = []
        while not (line := self.proc.stderr.readline()).startswith("# pty:"):
            self.banner.append(line.rstrip())

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
    publisher.end_of_session()      # what feed_packets() asks the board for
    return events, packets


def _tickwire(*args):
    return subprocess.run([sys.executable, "-m", "tickwire.cli.main", "-q", *args],
                          check=False, capture_output=True, text=True, timeout=900)


def _replay(tmp_path, engine, name, *extra):
    day = tmp_path / "day.csv"
    day.write_text(DAY)
    outputs = {k: tmp_path / f"{name}.{k}" for k in ("pcap", "reports", "summary")}
    result = _tickwire("replay", str(day), "--engine", engine, *extra,
                       *(x for k, path in outputs.items() for x in (f"--{k}", str(path))))
    return result, outputs


def test_board_pty_defaults_replay_gives_the_models_outputs_from_the_boards_feed(
        board_factory, tmp_path):
    """``make board-pty`` as documented, driven by ``tickwire replay --engine serial:``."""
    board = board_factory()
    assert ("# core: MatchingEngine (best-price registers off, order-RAM output register "
            "off, the walker's look ahead off) + FeedEncoder (the board's gateware)") \
        in board.banner
    assert "# book: 128 orders, 2 symbols, 128 ticks, max qty 65535 (the icebreaker build's)" \
        in board.banner
    assert any("UART: bit level" in line and "4 clocks per bit" in line for line in board.banner)
    capacity = ("--max-orders", "128", "--max-symbols", "2", "--band-ticks", "128",
                "--max-qty", "65535")
    model, expected = _replay(tmp_path, "model", "model", *capacity)
    assert model.returncode == 0, model.stderr
    served, got = _replay(tmp_path, f"serial:{board.path},board=icebreaker", "board")
    assert served.returncode == 0, served.stderr
    assert got["pcap"].read_bytes() == expected["pcap"].read_bytes()
    assert got["reports"].read_bytes() == expected["reports"].read_bytes()
    summary = json.loads(got["summary"].read_text())
    assert summary["trades"] == 1
    # The board's feed ran: its packets are what the pcap holds, its end of session included.
    assert summary["feed"]["end_of_session"] == "board"
    assert summary["link"]["retransmits"] == 0 and summary["link"]["naks"] == 0


def _fails_cleanly(result, outputs, *words):
    """Exit status 1, one line on stderr with ``words``, no output file (nor a part of one)."""
    assert result.returncode == 1, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tickwire replay: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    leftovers = [p for path in outputs.values() for p in path.parent.glob(path.name + "*")]
    assert leftovers == [], leftovers
    return lines[0]


def test_cli_corrupt_frame_from_board(board_factory, tmp_path):
    # Byte 80 from the board is in the events of the first command (past the HELLO's STATUS).
    board = board_factory(*STAND_IN, "--flip-tx", "80")
    _fails_cleanly(*_replay(tmp_path, f"serial:{board.path}", "x"),
                   "corrupt", "check the cable and the baud rate")


def test_cli_hung_board_is_link_down(board_factory, tmp_path):
    board = board_factory(*STAND_IN)
    os.kill(board.proc.pid, signal.SIGSTOP)
    _fails_cleanly(*_replay(tmp_path, f"serial:{board.path},timeout=1.5", "x"),
                   "nothing from the device for 1.5 s", "make board-pty running")


def test_cli_book_mismatch(board_factory, tmp_path):
    board = board_factory(*STAND_IN)
    line = _fails_cleanly(*_replay(tmp_path, f"serial:{board.path}", "x", "--max-orders", "64"),
                          "the board's book is 128 orders, 2 symbols", "64 orders")
    assert "leave out the capacity options" in line
    _fails_cleanly(*_replay(tmp_path, f"serial:{board.path},board=ulx3s", "x"),
                   "not the ulx3s build's (16384 orders")


def test_cli_not_a_board_and_no_port(tmp_path):
    # loop:// sends the host's own frames back.
    _fails_cleanly(*_replay(tmp_path, "serial:loop://,retransmit=0.1,timeout=1", "x"),
                   "is not one a tickwire board sends")
    _fails_cleanly(*_replay(tmp_path, "serial:/dev/pts/no-such-pty", "x"),
                   "cannot open the port", "make board-pty running")


def _fake_device(answer, heartbeat=None):
    """A TCP port where a device answers HELLO with the iCEBreaker's STATUS and each other
    frame type with ``answer[type]`` (bytes; none if absent), sending a heartbeat every
    ``heartbeat`` seconds if given."""
    server = socket.create_server(("127.0.0.1", 0))
    answer = {FrameType.HELLO: encode_frame(FrameType.STATUS,
                                            bytes(STATUS_BYTES) + encode_params(PARAMS)),
              **answer}

    def serve():
        conn, _ = server.accept()
        reader = FrameReader()
        conn.settimeout(heartbeat)
        with conn, server:
            while True:
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    conn.sendall(encode_frame(FrameType.HEARTBEAT))
                    continue
                except OSError:
                    return
                if not data:
                    return
                for raw in reader.feed(data):
                    conn.sendall(answer.get(decode_frame(raw)[0], b""))
    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def _refusing_device():
    """A device that answers every command with a NAK (CRC error), as over a link that
    damages every command frame."""
    return _fake_device({FrameType.COMMAND: encode_frame(FrameType.NAK,
                                                         bytes([0, NakReason.CRC]))})


def test_cli_commands_refused_again_and_again(tmp_path):
    port = _refusing_device()
    _fails_cleanly(*_replay(tmp_path, f"serial:socket://127.0.0.1:{port}", "x"),
                   "command 1 refused 9 times (last: NAK: CRC error)", "check the cable")


def test_a_board_without_end_of_session_is_named():
    """A bitstream older than the END_SESSION frame refuses it as an unknown frame type."""
    port = _fake_device({FrameType.END_SESSION: encode_frame(FrameType.NAK,
                                                             bytes([0, NakReason.FRAMING]))},
                        heartbeat=0.02)
    with SerialEngine.from_spec(f"socket://127.0.0.1:{port},retransmit=0.2,timeout=2",
                                PARAMS) as engine:
        with pytest.raises(LinkError, match=r"no end of session from the board's feed after "
                                            r"\d+ requests \(last: NAK: framing error\): a "
                                            r"bitstream older than this host"):
            engine.feed_packets()


def test_cli_bad_serial_spec(tmp_path):
    for spec, words in [("serial:/dev/null,speed=9", "unknown serial option 'speed'"),
                        ("serial:/dev/null,retransmit=-1", "not a positive number"),
                        ("serial:/dev/null,board=de0", "unknown board 'de0'")]:
        result, _ = _replay(tmp_path, spec, "x")
        assert result.returncode == 2 and words in result.stderr, result.stderr


def test_serial_engine_matches_model(board_factory):
    board = board_factory(*STAND_IN)
    commands = command_stream(40)
    expected, packets = _reference(commands)
    with SerialEngine.from_spec(f"{board.path},baud=3000000,timeout=5",
                                PARAMS) as engine:
        assert engine.params == PARAMS
        got = [engine.process(c) for c in commands]
        status = engine.device_status()
        mold = engine.feed_packets()
        assert engine.counters["retransmits"] == 0
    assert got == expected
    assert mold == packets
    assert status["crc_errors"] == status["framing_errors"] == status["overflows"] == 0
    assert status["expected_seq"] == len(commands) % 256


def test_serial_engine_through_uart_bits(board_factory):
    board = board_factory("--model-stand-in")
    assert any("STAND-IN" in line for line in board.banner)
    commands = command_stream(4)
    expected, _ = _reference(commands)
    with SerialEngine(board.path) as engine:
        assert [engine.process(c) for c in commands] == expected
        assert engine.counters["retransmits"] == 0


def test_corrupted_command_is_counted_and_sent_again(board_factory):
    # Byte 20 from the host is inside the first command frame (the HELLO frame is 7 bytes).
    board = board_factory(*STAND_IN, "--flip-rx", "20")
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
    board = board_factory(*STAND_IN, "--flip-tx", "60")
    commands = command_stream(6)
    with SerialEngine(board.path, heartbeat_timeout=5) as engine, \
            pytest.raises(LinkCorrupted, match="corrupt"):
        for command in commands:
            engine.process(command)


@pytest.mark.timeout(300)         # a hang guard: the heartbeat timeout must trip, not wait forever
def test_stalled_board_trips_heartbeat(board_factory):
    board = board_factory(*STAND_IN)
    commands = command_stream(3)
    with SerialEngine(board.path, heartbeat_timeout=2) as engine:
        engine.process(commands[0])
        waited = time.monotonic()
        while engine.counters["heartbeats"] == 0 and time.monotonic() - waited < 10:
            engine.heartbeat()                          # the idle board keeps talking
        assert engine.counters["heartbeats"] >= 1
        os.kill(board.proc.pid, signal.SIGSTOP)
        with pytest.raises(LinkDown, match="heartbeat"):     # not a hang: it trips
            engine.process(commands[1])


def test_book_mismatch_is_refused(board_factory):
    board = board_factory(*STAND_IN)
    with pytest.raises(BookMismatch, match="not the one asked for"):
        SerialEngine(board.path, params=BOARD_BOOKS["ulx3s"])


def test_gateware_core_matches_model(board_factory):
    """The board's own core (gateware matching engine and feed encoder), simulated behind the
    link without the UARTs: the same events and MoldUDP64 packets as the reference model."""
    board = board_factory("--uart", "bytes")
    commands = command_stream(30, seed=5)
    expected, packets = _reference(commands)
    with SerialEngine(board.path) as engine:
        got = [engine.process(c) for c in commands]
        mold = engine.feed_packets()
        status = engine.device_status()
        assert engine.counters["retransmits"] == 0
    assert got == expected
    assert mold == packets
    assert status["crc_errors"] == status["framing_errors"] == status["overflows"] == 0
