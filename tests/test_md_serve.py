"""``tickwire serve`` as a subprocess publishes its feed: loss on the receiving side, a crash,
a late ``feed dump``; and the main job's feed report."""

import asyncio
import json
import signal
import subprocess
import sys
import time

from tickwire.accounts.config import make_config
from tickwire.gateways.ouch.client import OuchClient
from tickwire.marketdata.cli import pcap_messages
from tickwire.marketdata.subscriber import PacketLoss, Subscriber
from tickwire.ops.run_job import run_session

GROUP = "239.255.75.1"
P = 10000


def free_ports(n):
    import socket
    socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


class Server:
    """``python -m tickwire.ops.serve`` on one WAL, started again after each stop."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        config = make_config({"alice": {"firm": "F01", "password": "pw-a"},
                              "bob": {"firm": "F02", "password": "pw-b"}},
                             symbols={"AAPL": 100.0, "MSFT": 50.0}, n=2**10)
        (tmp_path / "config.json").write_text(json.dumps(config))
        self.feed_port, self.rerequest_port, self.snapshot_port = free_ports(3)
        self.runs = 0
        self.proc = None

    def start(self, *extra):
        port_file = self.tmp / f"port{self.runs}"
        self.log = self.tmp / f"serve{self.runs}.log"
        self.pcap = self.tmp / f"feed{self.runs}.pcap"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tickwire.ops.serve", str(self.tmp / "config.json"),
             "--wal", str(self.tmp / "day.wal"), "--port", "0", "--port-file", str(port_file),
             "--feed-pcap", str(self.pcap), "--feed-group", GROUP,
             "--feed-port", str(self.feed_port), "--rerequest-port", str(self.rerequest_port),
             "--snapshot-port", str(self.snapshot_port), "--ws-port", "off", *extra],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        self.runs += 1
        deadline = time.monotonic() + 20
        while not port_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(self.log.read_text())
            time.sleep(0.02)
        self.port = int(port_file.read_text())
        return self

    def stop(self, sig):
        self.proc.send_signal(sig)
        self.proc.wait(20)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def trade(port, prefix, n):
    alice, bob = OuchClient(lambda *a: None), OuchClient(lambda *a: None)
    await alice.connect("127.0.0.1", port, "alice", "pw-a")
    await bob.connect("127.0.0.1", port, "bob", "pw-b")
    for i in range(n):
        alice.enter(f"{prefix}A{i}", "B", 100 * (1 + i % 3), "AAPL", (100 + i % 4) * P)
        bob.enter(f"{prefix}B{i}", "S", 100, "AAPL", (102 - i % 5) * P)
        if i % 20 == 0:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    await alice.close()
    await bob.close()


async def caught_up(sub, dump_path, timeout=20):
    """Until the subscriber and the dump have every message the stream has shown (the
    venue stops serving re-requests when it stops)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lines = dump_path.read_text().count("\n") if dump_path.exists() else 0
        if sub.expected >= sub.high and lines >= sub.expected - 1:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not caught up: at {sub.expected} of {sub.high}, dump {lines} lines")


def test_serve_subprocess_loss_on_receipt_crash_and_late_dump(tmp_path):
    """A subscriber dropping 5 % of the packets plus a burst lives through a SIGKILL and
    a restart; it ends with exactly the day's feed (the pcap the last server rebuilt from
    the WAL): every message once, in order. A ``feed dump`` started after the crash, with
    loss of its own, gets the whole day too, through the re-request server."""
    server = Server(tmp_path)
    loss = PacketLoss(0.05, seed=3, burst=(40, 60))
    seen = {}

    def on_message(sequence, message):
        assert sequence not in seen
        seen[sequence] = message

    async def main():
        sub = await Subscriber(GROUP, server.feed_port, rerequest=("127.0.0.1",
                               server.rerequest_port), rerequest_interval=0.2,
                               on_message=on_message, drop=loss).start()
        server.start("--heartbeat", "0.5")
        await trade(server.port, "X", 150)
        server.stop(signal.SIGKILL)
        server.start("--heartbeat", "0.5", "--close-day")
        assert "continues at sequence" in server.log.read_text()
        dump = subprocess.Popen(
            [sys.executable, "-m", "tickwire.cli.main", "feed", "dump", "--group", GROUP,
             "--port", str(server.feed_port), "--rerequest",
             f"127.0.0.1:{server.rerequest_port}", "--loss", "0.05", "--duration", "30",
             "-o", str(tmp_path / "dump.jsonl")], stderr=subprocess.PIPE)
        await asyncio.sleep(1.0)
        await trade(server.port, "Y", 150)
        await caught_up(sub, tmp_path / "dump.jsonl")
        server.stop(signal.SIGTERM)                     # --close-day: end of session
        await asyncio.wait_for(sub.complete.wait(), 15)
        await sub.close()
        assert dump.wait(30) == 0, dump.stderr.read()
        return sub

    try:
        sub = asyncio.run(main())
    finally:
        server.kill()                           # a failed run leaves no server behind
    day = list(pcap_messages(str(server.pcap)))
    assert loss.dropped > 60 and sub.requests > 0
    assert sorted(seen) == [s for s, _ in day]
    assert [seen[s] for s, _ in day] == [m for _, m in day]
    dumped = [json.loads(line) for line in (tmp_path / "dump.jsonl").read_text().splitlines()]
    assert [d["seq"] for d in dumped] == [s for s, _ in day]


def test_serve_refuses_a_port_in_use(tmp_path):
    server = Server(tmp_path)
    server.start()
    try:
        second = subprocess.run(
            [sys.executable, "-m", "tickwire.ops.serve", str(tmp_path / "config.json"),
             "--wal", str(tmp_path / "other.wal"), "--port", "0",
             "--feed-port", "0", "--rerequest-port", str(server.rerequest_port),
             "--snapshot-port", "0", "--ws-port", "0"],
            capture_output=True, text=True, timeout=30)
    finally:
        server.stop(signal.SIGTERM)
    assert second.returncode == 2
    assert f"cannot listen for re-request on 127.0.0.1:{server.rerequest_port}: port in use" \
        in second.stderr


def test_main_job_recovers_loss_and_late_join(tmp_path):
    report = asyncio.run(run_session(orders=1500, clients=3, seed=4, symbols=2,
                                     out_dir=str(tmp_path), progress=False, plot=False))
    feed = report["feed"]
    assert feed["messages"] > 1000 and feed["packets"] > 500
    assert feed["lost_packets"] > 200                   # 1 % + a 200-packet burst
    assert feed["recovered_messages"] == feed["lost_messages"] and feed["rerequests"] > 0
    late = feed["subscribers"]["late joiner"]
    assert 1 < late["joined_at"] < feed["messages"]
    assert feed["websocket_clients"] == 3 and feed["websocket_updates"] > 0
    assert feed["all_equal"], feed
