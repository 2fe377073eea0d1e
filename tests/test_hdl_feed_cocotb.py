"""The gateware feed encoder under cocotb (Verilator and Icarus), checked against the software
feed, tshark and itchfeed. The bench is ``tickwire.sim.tb_feed_encoder``."""

import fcntl
import os

import pytest
import tshark
from tickwire.hdl.feed_encoder import FeedEncoder
from tickwire.protocol import itch, moldudp64, pcap
from tickwire.protocol.feed import FeedAddress
from tickwire.protocol.fields import Kind
from tickwire.sim.feed_cycles import (
    EDGE_MAX_PAYLOAD,
    edge_events,
    expected_packets,
    session_events,
    write_events,
)
from tickwire.sim.runner import BUILD_ROOT, SimulatorMissing, prepare_simulator, run_cocotb

os.environ.setdefault("ITCH_NO_CPP", "1")
from itch import messages as itchfeed_messages  # noqa: E402

#: DUT builds: one Verilog per (max_payload, heartbeat_cycles).
BUILDS = {
    "p96": dict(max_payload=EDGE_MAX_PAYLOAD, heartbeat_cycles=300),
    "p1400": dict(max_payload=1400, heartbeat_cycles=0),
}

#: (simulator, build, events, probability a sink is ready, pause cycles, seed)
CASES = [
    pytest.param("verilator", "p96", "edge", 1.0, 1000, 1, id="verilator-edge-heartbeat"),
    pytest.param("verilator", "p96", "edge", 0.5, 1000, 2, id="verilator-edge-backpressure"),
    pytest.param("verilator", "p96", "gen:300", 0.7, 0, 4, id="verilator-small-packets-seed4"),
    pytest.param("verilator", "p1400", "gen:400", 1.0, 0, 1, id="verilator-seed1"),
    pytest.param("verilator", "p1400", "gen:400", 0.5, 0, 2, id="verilator-seed2-backpressure"),
    pytest.param("verilator", "p1400", "gen:400", 0.8, 0, 3, id="verilator-seed3-backpressure"),
    pytest.param("icarus", "p96", "edge", 0.6, 1000, 5, id="icarus-edge-heartbeat-backpressure"),
    pytest.param("icarus", "p1400", "gen:100", 0.7, 0, 6, id="icarus-seed6-backpressure"),
]


def _events(spec, seed):
    if spec == "edge":
        return edge_events()
    return session_events(int(spec.split(":")[1]), seed)


@pytest.mark.parametrize("sim, build, spec, ready, pause, seed", CASES)
def test_feed_encoder(sim, build, spec, ready, pause, seed, tmp_path, monkeypatch):
    try:
        prepare_simulator(sim)
    except SimulatorMissing as exc:
        pytest.skip(str(exc))
    params = BUILDS[build]
    events = _events(spec, seed)
    write_events(tmp_path / "events.bin", events)
    capture = tmp_path / "feed.pcap"
    build_dir = (BUILD_ROOT / sim / f"feed_encoder_{build}").resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    with open(build_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        run_cocotb(FeedEncoder(**params), "feed_encoder", "tickwire.sim.tb_feed_encoder",
                   build_dir=build_dir, sim=sim, extra_env={
                       "FEED_EVENTS": str(tmp_path / "events.bin"), "FEED_PCAP": str(capture),
                       "FEED_MAX_PAYLOAD": str(params["max_payload"]),
                       "FEED_HEARTBEAT": str(params["heartbeat_cycles"]),
                       "FEED_READY": str(ready), "FEED_PAUSE": str(pause),
                       "FEED_SEED": str(seed)})
    payloads = [p for p in pcap.udp_payloads(capture, FeedAddress.port)
                if moldudp64.decode_packet(p).count != moldudp64.HEARTBEAT]
    assert payloads == expected_packets(events, max_payload=params["max_payload"])
    _check_itchfeed(payloads)
    if tshark.TSHARK is not None:
        _check_tshark(capture)


def _check_tshark(capture):
    packets = tshark.pdml(capture, ["udp.port==26400,moldudp64"])
    assert tshark.problems(packets) == []
    for number, packet in enumerate(packets, 1):
        protocols = [p.get("name") for p in packet.iter("proto")]
        for name in ("eth", "ip", "udp", "moldudp64"):
            assert name in protocols, f"frame {number}: no {name} in {protocols}"
        for proto, field in (("ip", "ip.checksum.status"), ("udp", "udp.checksum.status")):
            status = tshark.protocol_fields(packet, proto)[0].get(field)
            assert status == ["1"], f"frame {number}: {field} {status}"


def _itchfeed_names(spec):
    """itchfeed's attribute names of ``spec``'s fields (protocols.md §5.4)."""
    renamed = {"luld_reference_price_tier": "luld_ref", "canceled_shares": "cancelled_shares",
               "original_order_reference_number": "order_reference_number"}
    return [renamed.get(f.name, f.name) for f in spec.fields]


def _check_itchfeed(payloads):
    for payload in payloads:
        for raw in moldudp64.decode_packet(payload).messages:
            ours = itch.decode(raw)
            theirs = itchfeed_messages.messages[raw[:1]](raw)
            assert theirs.to_bytes() == raw
            for field, name in zip(ours.spec.fields, _itchfeed_names(ours.spec)):
                value = getattr(ours, field.name)
                if field.kind is Kind.ALPHA:
                    value = value.encode().ljust(field.length)
                elif field.kind is Kind.CHAR:
                    value = value.encode()
                assert getattr(theirs, name) == value, (raw[:1], field.name)
