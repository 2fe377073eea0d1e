"""Sequencer and crash recovery: the WAL rebuilds book, feed, tokens, risk and the report
streams (and so the OUCH streams the gateway encodes from them)."""

import asyncio
import json
import random
import signal
import subprocess
import sys
import time

import pytest
from tickwire.accounts.config import make_config, parse_config
from tickwire.core.reasons import Reason
from tickwire.core.requests import (
    CancelOrder,
    Halt,
    NewOrder,
    ReplaceOrder,
    Resume,
    SystemEvent,
)
from tickwire.engine.model import ModelEngine
from tickwire.gateways.ouch.client import OuchClient
from tickwire.gateways.ouch.streams import OuchStreams, entry_attrs, replace_attrs
from tickwire.marketdata.feed import FeedPublisher
from tickwire.offline.gen import generate
from tickwire.protocol.link import Side, Tif
from tickwire.risk.manager import RiskManager
from tickwire.sequencer.journal.wal import WriteAheadLog
from tickwire.sequencer.sequencer import RecoveryError, Sequencer

FIRMS = 4


def _config():
    rows = generate(10, seed=3, symbols=3, firms=FIRMS)
    symbols = {r.symbol: r.price / 10000 for r in rows if r.action == "symbol"}
    return parse_config(make_config(
        {f"u{i}": {"firm": f"F{i:02d}", "password": f"pw{i}", "max_order_qty": 900}
         for i in range(FIRMS)}, symbols=symbols, n=2**10))


def _request(row, ts):
    acct = f"u{int(row.firm[1:])}" if row.firm else None
    if row.action == "new":
        side = "B" if row.side == Side.BUY else "S"
        tif = 0 if row.tif in (Tif.IOC, Tif.FOK) else 99998
        return NewOrder(ts=ts, account=acct, token=row.token, symbol=row.symbol, side=row.side,
                        qty=row.qty, price=row.price, tif=row.tif, min_qty=row.min_qty,
                        attrs=entry_attrs(side, tif, "Y", "A", "N", row.min_qty, "N"))
    if row.action == "cancel":
        return CancelOrder(ts=ts, account=acct, token=row.token, qty=row.new_qty)
    if row.action == "replace":
        return ReplaceOrder(ts=ts, account=acct, token=row.token, new_token=row.new_token,
                            qty=row.new_qty, price=row.new_price,
                            attrs=replace_attrs(99998, "Y", "N", 0))
    if row.action in ("halt", "resume"):
        return (Halt if row.action == "halt" else Resume)(ts=ts, symbol=row.symbol)
    return None


class _Stack:
    def __init__(self, path, config, fsync="none"):
        self.packets = []
        self.feed = FeedPublisher(lambda p, t: self.packets.append(p))
        self.wal = WriteAheadLog(path, fsync)
        self.seq = Sequencer(ModelEngine(), self.wal, config, RiskManager(config),
                             listeners=[self.feed.publish], clock=self._clock)
        self.ouch = OuchStreams(self.seq)
        self.t = 34_200 * 10**9

    def _clock(self):
        self.t += 1000
        return self.t


def _state(stack):
    ex = stack.seq.exchange
    return (ex.seq, ex.next_order_id, sorted(ex.tokens),
            sorted((k, o.order_id, o.qty, o.price, o.slot) for k, o in ex.orders.items()),
            {a: stack.seq.risk.exposure(a) for a in stack.seq.streams})


def test_replay_rebuilds_everything_and_refuses_duplicates(tmp_path):
    config = _config()
    path = str(tmp_path / "s.wal")
    live = _Stack(path, config)
    live.seq.recover()
    live.seq.open_day(trade_date="2026-12-07")
    rows = generate(3000, seed=3, symbols=3, firms=FIRMS)
    for row in rows:
        request = _request(row, live.seq.now())
        if request is not None:
            live.seq.submit_nowait(request)
    asyncio.run(live.seq.kill("account", "u1"))
    live.seq.submit_nowait(_request(rows[-1], live.seq.now()) if rows[-1].action == "new" else
                           SystemEvent(ts=live.seq.now(), code="M"))
    assert live.seq.counts["executed"] > 100 and live.seq.rejects
    assert live.seq.risk.rejects["max_qty"] > 0               # max_order_qty 900
    live.wal.close_sync()

    again = _Stack(path, config)
    records = again.seq.recover()
    assert records == live.wal.records
    assert again.packets == live.packets                      # feed byte for byte
    assert again.seq.streams == live.seq.streams              # the same reports
    assert again.ouch.streams == live.ouch.streams            # OUCH streams byte for byte
    assert _state(again) == _state(live)
    assert again.seq.trade_date == "2026-12-07"
    first_new = next(r for r in rows if r.action == "new")
    index = again.seq.submit_nowait(_request(first_new, again.seq.now()))   # same token
    account = f"u{int(first_new.firm[1:])}"
    last = again.seq.streams[account][-1]
    assert last.type == "rejected" and last.reason in (Reason.DUPLICATE_TOKEN,
                                                       Reason.KILL_SWITCH)
    assert again.ouch.streams[account][-1][:1] == b"J"
    killed = next(r for r in rows if r.action == "new" and r.firm == "F01")
    again.seq.submit_nowait(_request(killed, again.seq.now()))    # u1 is still killed
    assert again.seq.streams["u1"][-1].reason == Reason.KILL_SWITCH
    again.wal.sync()
    assert index == records


def test_replay_refuses_a_log_that_does_not_match(tmp_path):
    from tickwire.protocol.link import Action, Command
    from tickwire.sequencer.journal.wal import JournalRecord
    wal = WriteAheadLog(str(tmp_path / "t.wal"), "none")
    wal.append(JournalRecord(SystemEvent(ts=5, code="O"),
                             Command(seq=1, timestamp=5, action=Action.SYSTEM, code=ord("Q"))))
    wal.close_sync()
    with pytest.raises(RecoveryError):
        _Stack(str(tmp_path / "t.wal"), _config()).seq.recover()


# -- crash recovery: SIGKILL a loaded server several times --------------------------------------

def _start_server(tmp_path, config_path, n):
    port_file = tmp_path / f"port{n}"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tickwire.ops.serve", str(config_path), "--wal",
         str(tmp_path / "day.wal"), "--port", "0", "--port-file", str(port_file),
         "--feed-pcap", str(tmp_path / f"feed{n}.pcap"), "--heartbeat", "0.5",
         "--feed-port", "0", "--rerequest-port", "0", "--snapshot-port", "0", "--ws-port", "0"],
        stdout=subprocess.DEVNULL, stderr=open(tmp_path / f"server{n}.log", "w"))
    deadline = time.monotonic() + 15
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError((tmp_path / f"server{n}.log").read_text())
        time.sleep(0.02)
    return proc, int(port_file.read_text())


def test_sigkill_recovery_loses_and_duplicates_nothing(tmp_path):
    config_data = make_config({f"u{i}": {"firm": f"F{i:02d}", "password": f"pw{i}"}
                               for i in range(3)}, symbols={"AAPL": 100.0, "MSFT": 50.0},
                              n=2**10)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config_data))
    rng = random.Random(5)
    received = {f"u{i}": {} for i in range(3)}          # account -> {number: raw}
    next_token = [0]
    kills = 5
    t_start = time.monotonic()

    def on_message(acct):
        def callback(number, record, raw):
            seen = received[acct]
            assert seen.get(number, raw) == raw, f"{acct} message {number} changed"
            seen[number] = raw
        return callback

    async def load(clients, seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if any(c.closed.is_set() for c in clients.values()):
                return
            for acct, client in clients.items():
                for _ in range(5):
                    next_token[0] += 1
                    token = f"T{next_token[0]}"
                    side = rng.choice("BS")
                    price = (100 + rng.randint(-5, 5)) * 10000
                    r = rng.random()
                    try:
                        if r < 0.7:
                            client.enter(token, side, rng.randint(1, 5) * 100, "AAPL", price)
                        elif r < 0.85:
                            client.cancel(f"T{rng.randint(1, next_token[0])}")
                        else:
                            client.replace(f"T{rng.randint(1, next_token[0])}", token, 100,
                                           price)
                    except (ConnectionError, RuntimeError, AttributeError):
                        return
            await asyncio.sleep(0.002)

    async def session(port, seconds):
        clients = {}
        for acct in received:
            client = OuchClient(on_message(acct), heartbeat=0.5)
            start = max(received[acct], default=0) + 1
            await client.connect("127.0.0.1", port, acct, f"pw{acct[1:]}", sequence=start)
            clients[acct] = client
        await load(clients, seconds)
        return clients

    async def close_all(clients):
        for client in clients.values():
            await client.close()

    for n in range(kills + 1):
        proc, port = _start_server(tmp_path, config_path, n)
        if n < kills:
            asyncio.run(_run_and_kill(session, port, proc, rng.uniform(0.3, 1.2),
                                      close_all))
        else:
            async def last():
                clients = await session(port, 0.5)
                await asyncio.sleep(0.5)                 # let the last answers arrive
                proc.send_signal(signal.SIGTERM)
                await asyncio.gather(*(asyncio.wait_for(c.closed.wait(), 10)
                                       for c in clients.values()))
                await close_all(clients)
            asyncio.run(last())
            assert proc.wait(10) == 0
    assert time.monotonic() - t_start < 60

    # A clean replay of the final WAL, in this process.
    config = parse_config(config_data)
    stack = _Stack(str(tmp_path / "day.wal"), config)
    stack.seq.recover()
    from tickwire.protocol import pcap
    from tickwire.protocol.feed import FeedAddress
    clean = tmp_path / "clean.pcap"
    with open(clean, "wb") as f:
        writer = pcap.PcapWriter(f)
        for payload in stack.packets:
            writer.write(pcap.ethernet_udp_frame(payload, FeedAddress.source, FeedAddress.group,
                                                 FeedAddress.source_port, FeedAddress.port), 0)
    clean_payloads = [p for p in stack.packets]
    final_payloads = [p for p in pcap.udp_payloads(str(tmp_path / f"feed{kills}.pcap"))]
    assert final_payloads == clean_payloads                 # the server's feed = clean replay
    final_bytes = (tmp_path / f"feed{kills}.pcap").read_bytes()
    for n in range(kills):                                  # killed servers' feeds: a prefix
        killed = (tmp_path / f"feed{n}.pcap").read_bytes()
        assert final_bytes.startswith(killed)
    accepted_total = 0
    for acct, seen in received.items():
        stream = stack.ouch.streams[acct]
        numbers = sorted(seen)
        assert numbers == list(range(1, len(stream) + 1)), acct    # no gap, got everything
        assert [seen[k] for k in numbers] == stream                # every ack is in the WAL
        tokens = [raw[9:23] for raw in stream if raw[:1] == b"A"]
        assert len(tokens) == len(set(tokens))                     # none accepted twice
        accepted_total += len(tokens)
    assert accepted_total > 100


async def _run_and_kill(session, port, proc, after, close_all):
    task = asyncio.create_task(session(port, 30))
    await asyncio.sleep(after)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    try:
        clients = await asyncio.wait_for(task, 10)
    except Exception:
        clients = {}
    await close_all(clients)
    return clients
