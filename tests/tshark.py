"""Run tshark on a capture and return what it decoded, for tests."""

import shutil
import subprocess
import xml.etree.ElementTree as ET

import pytest

TSHARK = shutil.which("tshark")
requires_tshark = pytest.mark.skipif(TSHARK is None, reason="apt-get install tshark")

_AGGREGATOR = "|"
# Expert severities (epan/proto.h): chat 0x200000, note 0x400000, warn 0x600000, error 0x800000.
PI_WARN = 0x600000


def run(pcap, decode_as=(), *args):
    """Run tshark on ``pcap`` with ``-d`` rules (``"udp.port==26400,moldudp64"``); stdout."""
    cmd = [TSHARK, "-n", "-r", str(pcap), "-o", "ip.check_checksum:TRUE",
           "-o", "udp.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE"]
    for rule in decode_as:
        cmd += ["-d", rule]
    result = subprocess.run([*cmd, *args], capture_output=True, text=True, check=True)
    return result.stdout


def fields(pcap, decode_as, names, display_filter=None):
    """One dict per frame: field name to the list of all its occurrences (strings)."""
    args = ["-T", "fields", "-E", "occurrence=a", "-E", f"aggregator={_AGGREGATOR}",
            "-E", "separator=/t"]
    if display_filter:
        args += ["-Y", display_filter]
    for name in names:
        args += ["-e", name]
    rows = []
    for line in run(pcap, decode_as, *args).splitlines():
        values = line.split("\t")
        rows.append({name: value.split(_AGGREGATOR) if value else []
                     for name, value in zip(names, values)})
    return rows


def pdml(pcap, decode_as):
    """The ``<packet>`` elements of tshark's PDML output."""
    return ET.fromstring(run(pcap, decode_as, "-T", "pdml")).findall("packet")


def expert(packets):
    """``(frame number, severity, message)`` of every expert item."""
    items = []
    for number, packet in enumerate(packets, 1):
        for item in packet.iter("field"):
            if item.get("name") == "_ws.expert":
                info = {f.get("name"): f.get("show") for f in item.iter("field")}
                items.append((number, int(info["_ws.expert.severity"]),
                              info["_ws.expert.message"]))
    return items


def problems(packets):
    """Malformed markers and expert items of severity warn or above, as strings."""
    found = [f"frame {n}: {message}" for n, severity, message in expert(packets)
             if severity >= PI_WARN]
    for number, packet in enumerate(packets, 1):
        if any(e.get("name") == "_ws.malformed" for e in packet.iter()):
            found.append(f"frame {number}: Malformed Packet")
    return found


def protocol_fields(packet, proto):
    """One dict per ``proto`` layer in ``packet``: field name to the list of its ``show``s."""
    layers = []
    for layer in packet.iter("proto"):
        if layer.get("name") == proto:
            found = {}
            for field in layer.iter("field"):
                found.setdefault(field.get("name"), []).append(field.get("show"))
            layers.append(found)
    return layers
