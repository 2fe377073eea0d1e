"""The host's link codec: COBS vectors, CRC check value, frames, and a silent port."""

import pytest
from tickwire.engine.serial import (
    FrameReader,
    LinkDown,
    LinkError,
    SerialEngine,
    cobs_decode,
    cobs_encode,
    crc16,
    decode_frame,
    encode_frame,
)
from tickwire.protocol.link import ModelParams
from tickwire.protocol.serial_frames import (
    STATUS_BYTES,
    FrameType,
    decode_params,
    decode_status,
    encode_params,
)


@pytest.mark.parametrize("data,encoded", [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
])
def test_cobs_vectors(data, encoded):
    # Cheshire and Baker's examples (as listed on Wikipedia's COBS page).
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


def test_cobs_rejects_bad_frames():
    with pytest.raises(ValueError):
        cobs_decode(b"\x05\x11\x22")
    with pytest.raises(ValueError):
        cobs_decode(b"\x03\x11\x00")


def test_crc_and_frames():
    assert crc16(b"123456789") == 0x29B1
    wire = encode_frame(FrameType.QUERY) + encode_frame(FrameType.MOLD, b"\x00" * 300)
    reader = FrameReader()
    frames = reader.feed(wire[:5]) + reader.feed(wire[5:])
    assert [decode_frame(f) for f in frames] == [(FrameType.QUERY, b""),
                                                 (FrameType.MOLD, b"\x00" * 300)]
    bad = bytearray(encode_frame(FrameType.MOLD, b"\x55" * 20)[:-1])
    bad[10] ^= 1
    with pytest.raises(ValueError, match="CRC"):
        decode_frame(bytes(bad))


def test_params_and_status_codec():
    params = ModelParams(max_orders=300, max_symbols=3, band_ticks=96, max_qty=5000,
                         max_levels=17)
    assert decode_params(encode_params(params)) == params
    status, decoded = decode_status(bytes(range(STATUS_BYTES)) + encode_params(params))
    assert decoded == params
    assert status["crc_errors"] == 0x0100 and status["expected_seq"] == 10


def test_no_device_is_link_down():
    # loop:// sends the host's own frames back: not a board.
    with pytest.raises(LinkError, match="not one a tickwire board sends"):
        SerialEngine("loop://", heartbeat_timeout=0.3, retransmit_timeout=0.1)
    # A port where nothing answers at all.
    with pytest.raises(LinkDown, match="no heartbeat"):
        SerialEngine(f"socket://127.0.0.1:{_silent_server()}", heartbeat_timeout=0.3,
                     retransmit_timeout=0.1)


def _silent_server():
    import socket
    import threading
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def accept():
        conn, _ = server.accept()
        conn.recv(1 << 16)
        threading.Event().wait(2)
        conn.close()
        server.close()
    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]
