"""Shared helpers for the gateway and recovery tests: a small venue on 127.0.0.1."""

import asyncio

from tickwire.accounts.config import make_config, parse_config
from tickwire.gateways.ouch.client import OuchClient
from tickwire.ops.serve import Venue

PASSWORDS = {"alice": "pw-alice", "bob": "pw-bob", "carol": "pw-carol"}


def config_dict(**limits):
    return make_config({
        "alice": {"firm": "F01", "password": PASSWORDS["alice"]},
        "bob": {"firm": "F02", "password": PASSWORDS["bob"], "max_order_qty": 5000},
        "carol": {"firm": "F01", "password": PASSWORDS["carol"], **limits},
    }, symbols={"AAPL": 100.0, "MSFT": 50.0}, restricted=["XYZ"], n=2**10)


def make_venue(tmp_path, name="v", engine="model", **kw):
    cfg = parse_config(config_dict())
    return Venue(cfg, str(tmp_path / f"{name}.wal"), engine,
                 feed_pcap=str(tmp_path / f"{name}.pcap"),
                 decision_log=str(tmp_path / f"{name}.jsonl"), **kw)


class Inbox:
    """Collects a client's sequenced messages; ``wait`` for a count or a predicate."""

    def __init__(self):
        self.messages = []      # (number, record, raw)
        self._event = asyncio.Event()

    def __call__(self, number, record, raw):
        self.messages.append((number, record, raw))
        self._event.set()

    async def wait(self, predicate, timeout=5.0):
        async def loop():
            while not predicate(self):
                self._event.clear()
                await self._event.wait()
        await asyncio.wait_for(loop(), timeout)

    async def count(self, n, timeout=5.0):
        await self.wait(lambda s: len(s.messages) >= n, timeout)
        return self.messages

    def of(self, code):
        return [r for _, r, raw in self.messages if raw[:1] == code]


async def login(venue, user, sequence=1, **kw):
    inbox = Inbox()
    client = OuchClient(inbox, **kw)
    await client.connect("127.0.0.1", venue.gateway.port, user, PASSWORDS[user],
                         sequence=sequence)
    return client, inbox
