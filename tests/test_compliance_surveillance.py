"""Surveillance: each detector on a directed scenario through ``tickwire surveil``, the main
job's alerts, bad input, and the labelled scenario generator."""

import json

import pytest

from compliance_util import run_dir  # noqa: F401  (a fixture)
from tickwire.cli.main import main
from tickwire.compliance.surveillance.detectors import surveil
from tickwire.compliance.surveillance.evaluate import score
from tickwire.compliance.surveillance.scenario import make_scenario
from tickwire.ops.surveil import command_file_reports

HEAD = "action,time,firm,token,symbol,side,qty,price,tif\nsymbol,09:30:00,,,ACME,,100,50.00,\n"
QUOTES = "new,,MM,b1,ACME,B,300,49.99,day\nnew,,MM,a1,ACME,S,300,50.01,day\n"


def _surveil(tmp_path, capsys, body, owners=None):
    commands = tmp_path / "c.csv"
    commands.write_text(HEAD + QUOTES + body)
    args = ["surveil", "--commands", str(commands), "-o", str(tmp_path / "a.jsonl")]
    if owners is not None:
        (tmp_path / "owners.csv").write_text(owners)
        args += ["--owners", str(tmp_path / "owners.csv")]
    assert main(args) == 0
    capsys.readouterr()
    return [json.loads(line) for line in (tmp_path / "a.jsonl").read_text().splitlines()]


SPOOF = ("new,,SP,big1,ACME,B,5000,49.95,day\n"
         "new,,SP,s1,ACME,S,100,49.99,ioc\n"
         "cancel,,SP,big1,,,,,\n")


def test_spoofing(tmp_path, capsys):
    alerts = _surveil(tmp_path, capsys, SPOOF)
    assert [(a["type"], a["firm"], a["symbol"]) for a in alerts] == [("spoofing", "SP", "ACME")]
    orders = alerts[0]["orders"]
    assert orders[0]["fill"] and orders[0]["side"] == "S" and orders[0]["qty"] == 100
    assert orders[1]["token"] == "big1" and orders[1]["qty"] == 5000
    assert orders[1]["price"] == 499500 and orders[1]["ticks_from_touch"] == 4
    assert alerts[0]["score"] == 50.0 and alerts[0]["time"] > 0


@pytest.mark.parametrize("body", [
    SPOOF.replace("new,,SP,s1,ACME,S,100,49.99,ioc\n", ""),            # no fill
    SPOOF.replace("49.95", "49.99"),                                    # at the touch
    SPOOF.replace("5000", "300"),                                       # not large
    SPOOF.replace("cancel,,SP,big1,,,,,", "cancel,09:31:00,SP,big1,,,,,"),   # cancelled later
    SPOOF.replace("new,,SP,s1", "new,09:30:01,SP,s1"),      # placed long (1 s) before the fill
])
def test_spoofing_negatives(tmp_path, capsys, body):
    assert _surveil(tmp_path, capsys, body) == []


def test_layering_is_not_also_spoofing(tmp_path, capsys):
    body = "".join(f"new,,LY,l{k},ACME,B,{size},{price},day\n" for k, (size, price) in
                   enumerate([(300, "49.97"), (5000, "49.96"), (300, "49.95")]))
    body += "new,,LY,s1,ACME,S,100,49.99,ioc\n"
    body += "".join(f"cancel,,LY,l{k},,,,,\n" for k in range(3))
    alerts = _surveil(tmp_path, capsys, body)
    assert [(a["type"], a["firm"]) for a in alerts] == [("layering", "LY")]
    assert {o.get("price") for o in alerts[0]["orders"][1:]} == {499700, 499600, 499500}
    assert alerts[0]["score"] == 3.0


WASH = "new,,W1,w1,ACME,S,500,50.00,day\nnew,,W2,w2,ACME,B,500,50.00,ioc\n"


def test_wash_trade_across_firms_of_one_owner(tmp_path, capsys):
    owners = "firm,owner\nW1,ACME-HOLD\nW2,ACME-HOLD\nMM,MM-CO\n"
    alerts = _surveil(tmp_path, capsys, WASH, owners)
    assert [(a["type"], a["firm"]) for a in alerts] == [("wash_trade", "W1")]
    assert {(o["firm"], o["side"], o["qty"], o["price"]) for o in alerts[0]["orders"]} == {
        ("W1", "S", 500, 500000), ("W2", "B", 500, 500000)}
    # different owners, or no owners file: a trade like any other
    assert _surveil(tmp_path, capsys, WASH, "firm,owner\nW1,A\nW2,B\n") == []
    assert _surveil(tmp_path, capsys, WASH) == []


def test_order_to_trade_ratio(tmp_path, capsys):
    body = "".join(f"new,,QQ,q{i},ACME,B,100,49.50,day\ncancel,,QQ,q{i},,,,,\n"
                   for i in range(410))
    alerts = _surveil(tmp_path, capsys, body)
    assert [(a["type"], a["firm"]) for a in alerts] == [("order_to_trade", "QQ")]
    assert alerts[0]["orders"][0]["orders"] == 410 and alerts[0]["orders"][0]["trades"] == 0
    assert alerts[0]["time"] > 0


LADDER = "".join(f"new,,LM,{side}{k},ACME,{side},200,{price},day\n" for k, (side, price) in
                 enumerate([("B", "49.99"), ("B", "49.98"), ("B", "49.97"),
                            ("S", "50.01"), ("S", "50.02"), ("S", "50.03")]))


def test_a_two_sided_ladder_requoted_after_a_fill_is_not_layering(tmp_path, capsys):
    hit = "new,,NT,x1,ACME,S,100,49.99,ioc\n"          # hits the maker's (or MM's) best bid
    pull_all = "".join(f"cancel,,LM,{side}{k},,,,,\n" for k, side in enumerate("BBBSSS"))
    quotes = QUOTES.replace("49.99", "49.98")           # the ladder is the best bid
    commands = tmp_path / "c.csv"
    for body, expected in ((LADDER + hit + pull_all, []),
                           (LADDER.replace(",200,49.9", ",20,49.9") + hit + pull_all,
                            [("layering", "LM")])):
        commands.write_text(HEAD + quotes + body)
        assert main(["surveil", "--commands", str(commands), "-o",
                     str(tmp_path / "a.jsonl")]) == 0
        capsys.readouterr()
        alerts = [json.loads(line) for line in
                  (tmp_path / "a.jsonl").read_text().splitlines()]
        assert [(a["type"], a["firm"]) for a in alerts] == expected
        if alerts:
            assert alerts[0]["orders"][0]["resting_on_fill_side"] == 40


def test_bad_input(tmp_path, capsys):
    out = str(tmp_path / "a.jsonl")
    assert main(["surveil", "-o", out]) == 2
    assert "one of them" in capsys.readouterr().err
    (tmp_path / "c.csv").write_text(HEAD + "new,,F,t,ACME,X,100,50.00,day\n")
    assert main(["surveil", "--commands", str(tmp_path / "c.csv"), "-o", out]) == 2
    assert "c.csv:3: side" in capsys.readouterr().err
    (tmp_path / "c.csv").write_text(HEAD + QUOTES)
    (tmp_path / "o.csv").write_text("company,holder\nW1,X\n")
    assert main(["surveil", "--commands", str(tmp_path / "c.csv"), "--owners",
                 str(tmp_path / "o.csv"), "-o", out]) == 2
    assert "firm and owner" in capsys.readouterr().err
    assert main(["surveil", str(tmp_path), "-o", out]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert not (tmp_path / "a.jsonl").exists()


def test_main_job_runs_surveillance(run_dir, capsys):  # noqa: F811
    report = json.loads((run_dir / "run.json").read_text())
    counts = report["compliance"]["surveillance"]["alerts"]
    assert set(counts) == {"spoofing", "layering", "wash_trade", "order_to_trade"}
    lines = (run_dir / "alerts.jsonl").read_text().splitlines()
    assert len(lines) == sum(counts.values())
    assert main(["surveil", str(run_dir), "-o", str(run_dir / "again.jsonl")]) == 0
    assert (run_dir / "again.jsonl").read_text().splitlines() == lines


def test_scenario_is_labelled_and_detected(tmp_path):
    scenario = make_scenario(seed=11, episodes=2)
    kinds = {label.type for label in scenario.labels}
    assert kinds == {"spoofing", "layering", "wash_trade", "order_to_trade"}
    path = tmp_path / "s.csv"
    path.write_text(scenario.commands)
    owners = dict(line.split(",") for line in scenario.owners.splitlines()[1:])
    alerts = surveil(command_file_reports(str(path)), owners)
    for kind, result in score(alerts, scenario.labels).items():
        assert result["labels"] > 0, kind
        assert result["recall"] > 0.5 and result["precision"] > 0.5, (kind, result)


def test_pulling_both_sides_after_a_fill_is_not_layering(tmp_path, capsys):
    """Fresh bids at three prices pulled right after a sell fill are layering, unless the firm
    pulls its (older) offers at the same moment: a quote pulled on both sides."""
    offers = "".join(f"new,09:30:00.5,LM,a{k},ACME,S,300,50.0{k + 2},day\n" for k in range(3))
    bids = "".join(f"new,{'09:30:01' if k == 0 else ''},LM,b{k},ACME,B,300,49.9{8 - k},day\n"
                   for k in range(3))
    hit = "new,,LM,x1,ACME,S,100,49.99,ioc\n"
    pull_bids = "".join(f"cancel,,LM,b{k},,,,,\n" for k in range(3))
    pull_offers = "".join(f"cancel,,LM,a{k},,,,,\n" for k in range(3))
    alerts = _surveil(tmp_path, capsys, offers + bids + hit + pull_bids)
    assert [(a["type"], a["firm"]) for a in alerts] == [("layering", "LM")]
    assert alerts[0]["orders"][0]["resting_on_fill_side"] == 0       # the offers are old
    assert _surveil(tmp_path, capsys, offers + bids + hit + pull_bids + pull_offers) == []
