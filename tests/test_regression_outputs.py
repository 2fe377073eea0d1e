"""Nothing changes behaviour: the model's feed pcap and reports for fixed command files, and a
write-ahead log written by an earlier main, give the bytes recorded before the host was layered.

``fixtures/regression/sha256.json`` holds the sha256 of ``tickwire replay``'s pcap and reports
for each command file there (three from ``tickwire gen``, one written by hand to reach every
request kind and host refusal); ``fixtures/wal_v1`` a WAL written by ``tickwire run`` on the
main of 2026-12-07 with its venue config, and what recovering it rebuilt then: the feed pcap and
each account's OUCH stream.
"""

import asyncio
import hashlib
import json
import shutil
from pathlib import Path

import pytest
from tickwire.cli.main import main

FIXTURES = Path(__file__).parent / "fixtures"
EXPECTED = json.loads((FIXTURES / "regression" / "sha256.json").read_text())


def _sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_replay_outputs_unchanged(tmp_path, name):
    pcap, reports = tmp_path / "feed.pcap", tmp_path / "reports.jsonl"
    assert main(["-q", "replay", str(FIXTURES / "regression" / f"{name}.csv"), "--pcap",
                 str(pcap), "--reports", str(reports)]) == 0
    assert {"pcap": _sha256(pcap), "jsonl": _sha256(reports)} == EXPECTED[name]


def test_wal_of_an_earlier_main_recovers_the_same_day(tmp_path):
    from tickwire.accounts.config import parse_config
    from tickwire.ops.serve import Venue

    source = FIXTURES / "wal_v1"
    expected = json.loads((source / "recovered.json").read_text())
    shutil.copy(source / "session.wal", tmp_path / "session.wal")
    config = parse_config(json.loads((source / "venue.json").read_text()))

    async def recover():
        venue = Venue(config, str(tmp_path / "session.wal"), feed_pcap=str(tmp_path / "f.pcap"))
        venue.sequencer.recover()
        # The OUCH bytes of each account's stream, as the gateway encodes the neutral reports.
        streams = {account: hashlib.sha256(b"".join(len(m).to_bytes(2, "big") + m
                                                    for m in stream)).hexdigest()
                   for account, stream in sorted(venue.gateway.streams.streams.items())}
        await venue.wal.close()
        venue._pcap_file.close()
        return streams

    streams = asyncio.run(recover())
    assert streams == expected["streams"]
    assert _sha256(tmp_path / "f.pcap") == expected["feed_pcap"]
