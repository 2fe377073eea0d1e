import pytest
from nasdaq_protocols.soup import core as nsoup
from tickwire.protocol import soupbintcp as soup
from tickwire.protocol.soupbintcp import Framer


def test_known_bytes():
    assert soup.login_request("alice", "secret", "", 1) == (
        b"\x00\x2fL" b"alice " b"secret    " b"          " + b" " * 19 + b"1")
    assert soup.login_accepted("SESS1", 123) == (
        b"\x00\x1fA" b"SESS1     " + b" " * 17 + b"123")
    assert soup.login_rejected(soup.LoginRejectReason.NOT_AUTHORIZED) == b"\x00\x02JA"
    assert soup.sequenced_data(b"xyz") == b"\x00\x04Sxyz"
    assert soup.unsequenced_data(b"") == b"\x00\x01U"
    assert soup.debug("hi") == b"\x00\x03+hi"
    assert [soup.server_heartbeat(), soup.end_of_session(), soup.client_heartbeat(),
            soup.logout_request()] == [b"\x00\x01H", b"\x00\x01Z", b"\x00\x01R", b"\x00\x01O"]
    assert soup.SPECS[b"L"].length == 47 and soup.SPECS[b"A"].length == 31
    assert soup.SPECS[b"L"].offsets == {"username": 1, "password": 7, "session": 17,
                                        "sequence": 27}


def test_decode_payload():
    (ptype, payload), = Framer().feed(soup.login_request("bob", "pw", "S1", 0))
    assert ptype == b"L"
    assert soup.decode_payload(ptype, payload) == ("bob", "pw", "S1", 0)
    assert soup.decode_payload("A", b"    RIGHTJ" + b"0" * 19 + b"7") == ("RIGHTJ", 7)
    assert soup.decode_payload(b"S", b"abc") == b"abc"
    with pytest.raises(ValueError, match="expected 31 bytes"):
        soup.decode_payload(b"A", b"short")
    with pytest.raises(ValueError, match="not a decimal number"):
        soup.decode_payload(b"A", b"S" * 10 + b" " * 20)


def test_framer_split_and_merged():
    stream = b"".join([soup.login_accepted("S", 1), soup.sequenced_data(b"a" * 300),
                       soup.server_heartbeat(), soup.sequenced_data(b"")])
    expected = [(b"A", stream[3:33]), (b"S", b"a" * 300), (b"H", b""), (b"S", b"")]
    assert Framer().feed(stream) == expected
    framer, out = Framer(), []
    for i in range(len(stream)):
        out += framer.feed(stream[i:i + 1])
        assert framer.buffered < 303
    assert out == expected and framer.buffered == 0
    framer = Framer()
    assert framer.feed(stream[:40]) == expected[:1]
    assert framer.buffered == 7
    assert framer.feed(stream[40:]) == expected[1:]


def test_framer_errors():
    with pytest.raises(ValueError, match="packet length 0"):
        Framer().feed(soup.server_heartbeat() + b"\x00\x00H")
    with pytest.raises(ValueError, match="packet length 1025 not in 1…1024"):
        Framer(max_length=1024).feed(b"\x04\x01S")
    assert Framer(max_length=1024).feed(soup.sequenced_data(b"x" * 1023))[0][1] == b"x" * 1023
    with pytest.raises(ValueError, match="exceeds"):
        soup.sequenced_data(b"x" * 65535)
    with pytest.raises(ValueError, match="20 decimal digits"):
        soup.login_accepted("S", 10**20)
    with pytest.raises(ValueError, match="longer than 6"):
        soup.login_request("toolong", "pw")


def test_nasdaq_protocols_interop():
    _, login = nsoup.LoginRequest("usr", "pwd", "SESS", "5").to_bytes()
    _, data = nsoup.SequencedData(b"\x01payload").to_bytes()
    _, accepted = nsoup.LoginAccepted("SESS", 42).to_bytes()
    packets = Framer().feed(login + data + accepted)
    assert [t for t, _ in packets] == [b"L", b"S", b"A"]
    assert soup.decode_payload(*packets[0]) == ("usr", "pwd", "SESS", 5)
    assert packets[1][1] == b"\x01payload"
    assert soup.decode_payload(*packets[2]) == ("SESS", 42)

    for ours, cls in [(soup.login_request("usr", "pwd", "SESS", 5), nsoup.LoginRequest),
                      (soup.login_accepted("SESS", 42), nsoup.LoginAccepted),
                      (soup.login_rejected("S"), nsoup.LoginRejected),
                      (soup.unsequenced_data(b"abc"), nsoup.UnSequencedData),
                      (soup.client_heartbeat(), nsoup.ClientHeartbeat)]:
        length, theirs = nsoup.SoupMessage.from_bytes(ours)
        assert length == len(ours) and type(theirs) is cls
    _, theirs = nsoup.SoupMessage.from_bytes(soup.login_request("usr", "pwd", "SESS", 5))
    assert (theirs.user, theirs.password, theirs.session, theirs.sequence) == (
        "usr", "pwd", "SESS", "5")
    assert nsoup.SoupMessage.from_bytes(soup.login_accepted("SESS", 42))[1].sequence == 42
