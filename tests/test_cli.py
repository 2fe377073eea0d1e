"""The public command line: tickwire gen, replay, run, bench."""

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter

import pytest
from tickwire.boards.synth import bitstream_parser
from tickwire.bench.runner import benchmarks
from tickwire.cli.main import build_parser, capacity, main
from tickwire.engine.registry import ENGINE_HELP, engine_names, open_engine
from tickwire.protocol import itch, moldudp64, pcap
from tickwire.protocol.feed import FeedAddress
from tickwire.protocol.link import ModelParams

HEADER = ("action,time,firm,token,symbol,side,qty,price,tif,min_qty,stp,new_token,new_qty,"
          "new_price,tick,lot,breaker_pct,code\n")


def _csv(tmp_path, body, header=HEADER, name="c.csv"):
    path = tmp_path / name
    path.write_text(header + body)
    return str(path)


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    path = tmp_path_factory.mktemp("gen") / "cmds.csv"
    assert main(["-q", "gen", "--orders", "3000", "--seed", "5", "--symbols", "3",
                 "-o", str(path)]) == 0
    return path


def test_gen_is_deterministic_and_varied(generated, tmp_path):
    again = tmp_path / "again.csv"
    main(["-q", "gen", "--orders", "3000", "--seed", "5", "--symbols", "3", "-o", str(again)])
    assert again.read_bytes() == generated.read_bytes()
    other = tmp_path / "other.csv"
    main(["-q", "gen", "--orders", "3000", "--seed", "6", "--symbols", "3", "-o", str(other)])
    assert other.read_bytes() != generated.read_bytes()
    lines = generated.read_text().splitlines()
    cols = lines[0].split(",")
    rows = [dict(zip(cols, line.split(","))) for line in lines[1:]]
    actions = Counter(r["action"] for r in rows)
    assert actions["symbol"] == 3 and actions["new"] and actions["cancel"] and actions["replace"]
    news = [r for r in rows if r["action"] == "new"]
    tifs = Counter(r["tif"] for r in news)
    assert all(tifs[t] for t in ("day", "gtc", "ioc", "fok"))
    assert any(r["price"] == "" for r in news), "market orders"
    assert any(r["min_qty"] for r in news)
    assert any(int(r["qty"]) < 100 for r in news), "odd lots"
    assert {r["stp"] or "newest" for r in news} >= {"newest", "oldest", "both"}
    assert any(r["new_qty"] for r in rows if r["action"] == "cancel"), "partial cancels"


def test_replay_outputs_are_deterministic_and_decodable(generated, tmp_path):
    outs = []
    for i in range(2):
        pcap_path, reports = tmp_path / f"feed{i}.pcap", tmp_path / f"reports{i}.jsonl"
        assert main(["-q", "replay", str(generated), "--engine", "model", "--pcap",
                     str(pcap_path), "--reports", str(reports)]) == 0
        outs.append((pcap_path.read_bytes(), reports.read_bytes()))
    assert outs[0] == outs[1]
    payloads = pcap.udp_payloads(str(tmp_path / "feed0.pcap"), dst_port=FeedAddress.port)
    sequence, types = 1, Counter()
    for payload in payloads[:-1]:
        packet = moldudp64.decode_packet(payload)
        assert packet.sequence == sequence and packet.count == len(packet.messages) > 0
        sequence += packet.count
        for message in packet.messages:
            types[message[:1]] += 1
            itch.decode(message)
    end = moldudp64.decode_packet(payloads[-1])
    assert end.is_end_of_session and end.sequence == sequence
    assert all(types[t] for t in (b"S", b"R", b"H", b"A", b"E", b"X", b"D", b"U"))
    reports = [json.loads(line) for line in (tmp_path / "reports0.jsonl").read_text().splitlines()]
    kinds = Counter(r["type"] for r in reports)
    assert all(kinds[k] for k in ("accepted", "executed", "canceled", "replaced", "rejected"))
    executed = [r for r in reports if r["type"] == "executed"]
    assert Counter(r["liquidity"] for r in executed)["A"] == types[b"E"]


@pytest.mark.skipif(shutil.which("tshark") is None, reason="apt-get install tshark")
def test_replay_pcap_decodes_in_tshark(generated, tmp_path):
    out = tmp_path / "feed.pcap"
    main(["-q", "replay", str(generated), "--pcap", str(out)])
    result = subprocess.run(
        ["tshark", "-r", str(out), "-o", "ip.check_checksum:TRUE", "-o",
         "udp.check_checksum:TRUE", "-d", f"udp.port=={FeedAddress.port},moldudp64", "-T",
         "fields", "-e", "moldudp64.count", "-e", "_ws.expert", "-e", "udp.checksum.status",
         "-e", "ip.checksum.status"], capture_output=True, text=True, check=True)
    lines = result.stdout.splitlines()
    assert len(lines) == len(pcap.read_pcap(str(out)))
    for line in lines:
        count, expert, udp_ok, ip_ok = line.split("\t")
        # tshark 4.0 attaches a comment to every End Of Session (protocols.md §2).
        assert expert == "" or (count == "65535" and "(Comment/Comment)" in expert), line
        assert udp_ok == "1" and ip_ok == "1", line  # 1: good


def test_market_order_for_undeclared_symbol_and_auto_declare(tmp_path):
    path = _csv(tmp_path, "new,,F1,t1,ZZZ,B,100,,ioc,,,,,,,,,\n"
                          "new,,F1,t2,ZZZ,B,100,12.34,day,,,,,,,,,\n"
                          "new,,F2,t1,ZZZ,S,100,12.34,day,,,,,,,,,\n")
    reports = tmp_path / "r.jsonl"
    assert main(["-q", "replay", path, "--reports", str(reports)]) == 0
    lines = [json.loads(x) for x in reports.read_text().splitlines()]
    assert lines[0]["type"] == "rejected" and lines[0]["extra"]["text"] == "unknown symbol"
    assert [x["type"] for x in lines[1:]] == ["accepted", "accepted", "executed", "executed"]
    assert lines[-1]["price"] == 123400


@pytest.mark.parametrize("body, message", [
    ("new,,F1,t1,AAA,B,100,1.23456,day,,,,,,,,,\n", ":2: price '1.23456'"),
    ("fly,,F1,t1,AAA,B,100,1,day,,,,,,,,,\n", ":2: action 'fly'"),
    ("new,,F1,t1,AAA,X,100,1,day,,,,,,,,,\n", ":2: side 'X'"),
    ("new,,F1,,AAA,B,100,1,day,,,,,,,,,\n", ":2: new needs token"),
    ("new,,F1,t1,AAA,B,many,1,day,,,,,,,,,\n", ":2: qty 'many'"),
    ("new,10:00:00,F1,t1,AAA,B,1,1,day,,,,,,,,,\nnew,09:00:00,F1,t2,AAA,B,1,1,day,,,,,,,,,\n",
     ":3: time goes backwards"),
    ("new,,F1,t1,AAA,B,100,1,week,,,,,,,,,\n", ":2: tif 'week'"),
    ("new,,F1,t1,AAA,B,100,1,day,,,,,,,,,,extra\n", ":2: more fields"),
])
def test_malformed_rows_are_reported_and_nothing_is_written(tmp_path, capsys, body, message):
    good = "symbol,,,,AAA,,100,1.00,,,,,,,,,,\n"
    path = _csv(tmp_path, good + good.replace("AAA", "BBB") + body.replace(":2:", ":4:"))
    out_pcap, out_reports = tmp_path / "o.pcap", tmp_path / "o.jsonl"
    assert main(["-q", "replay", path, "--pcap", str(out_pcap), "--reports",
                 str(out_reports)]) == 2
    err = capsys.readouterr().err
    line = int(message.split(":")[1]) + 2
    assert f"c.csv:{line}:" in err and message.split(": ", 1)[1] in err, err
    assert not out_pcap.exists() and not out_reports.exists()
    assert os.listdir(tmp_path) == ["c.csv"]


def test_unknown_column_is_an_error(tmp_path, capsys):
    path = _csv(tmp_path, "new,F1\n", header="action,frim\n")
    assert main(["-q", "replay", path]) == 2
    assert "unknown column(s): frim" in capsys.readouterr().err


def test_run_main_job_writes_report_and_plot(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["run", "--orders", "1500", "--clients", "3", "--symbols", "2", "--out",
                 str(out), "--no-progress"]) == 0
    report = json.loads((out / "run.json").read_text())
    assert report["requests"] == 1500 and report["unanswered"] == 0 and report["fills"] > 0
    assert set(report["top_of_book"]) == {"AAPL", "MSFT"}
    assert (out / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    printed = capsys.readouterr().out
    assert "latency send → ack: p50" in printed and "top of book at the close" in printed
    # the summary states both: the latency at the offered rate, the saturation apart
    assert "1,000 requests/s offered (open loop)" in printed
    assert "from each request's intended send time" in printed
    # the firms and the feed's subscribers each ran in a process of their own
    load = report["load"]
    assert len({load["firms_pid"], load["audience_pid"], load["venue_pid"]}) == 3
    assert f"the firms in a process of their own (pid {load['firms_pid']})" in printed
    assert f"in the venue's process (pid {load['venue_pid']}); the feed's subscribers in a " \
           f"process of their own (pid {load['audience_pid']})" in printed
    assert "orders/s sustained (measured apart" in printed
    assert report["saturation"]["orders_per_s"] > 0
    # and where the time went: the stage table, printed, in run.json, and its plot
    assert "where the time went in the venue, by stage:" in printed
    assert all(f"  {row['stage']} " in printed for row in report["stages"])
    assert [row["stage"] for row in report["stages"]][0] == "socket read"
    assert (out / "stages.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_help_lists_every_command():
    result = subprocess.run([sys.executable, "-m", "tickwire.cli.main", "--help"],
                            capture_output=True, text=True, check=True)
    for command in ("replay", "gen", "run", "serve", "feed", "bench"):
        assert command in result.stdout


def _actions_without_help(parser, path):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _actions_without_help(sub, path + [name])
        elif not action.help and not isinstance(action, argparse._HelpAction):
            yield " ".join(path + [action.option_strings[0] if action.option_strings
                                   else action.dest])


def test_every_command_and_option_has_help():
    assert list(_actions_without_help(build_parser(), ["tickwire"])) == []
    assert list(_actions_without_help(bitstream_parser(), ["bitstream"])) == []
    for action in build_parser()._actions:
        if isinstance(action, argparse._SubParsersAction):
            assert all(choice.help for choice in action._choices_actions)


def test_engine_help_names_every_registered_engine():
    assert engine_names() == ["amaranth", "cocotb", "model", "serial"]
    for name in engine_names():
        assert name in ENGINE_HELP


def test_bench_help_names_every_registered_benchmark():
    result = subprocess.run([sys.executable, "-m", "tickwire.cli.main", "bench", "--help"],
                            capture_output=True, text=True, check=True)
    listed = " ".join(result.stdout.split())
    for name in ("clearing", "broker", "compliance_audit", "compliance_query", "engine"):
        assert name in benchmarks()
    assert ", ".join(benchmarks()) in listed


def test_explicit_capacity_equal_to_the_defaults_is_kept():
    """Defaults given explicitly are a choice (a board must have them); none given: None."""
    parse = build_parser().parse_args
    assert capacity(parse(["replay", "x.csv"])) is None
    explicit = capacity(parse(["replay", "x.csv", "--max-orders", str(ModelParams().max_orders)]))
    assert explicit == ModelParams()
    engine = open_engine("model", explicit)
    assert engine.params is explicit
    assert open_engine("model").params == ModelParams()
    with pytest.raises(ValueError, match="unknown engine 'nope'"):
        open_engine("nope")
    with pytest.raises(ValueError, match="takes no option"):
        open_engine("model:fast")
