"""Best execution through ``tickwire bestex``: each order against the quote at its arrival."""

import csv

from compliance_util import run_dir  # noqa: F401  (a fixture)
from tickwire.cli.main import main
from tickwire.compliance.reports.bestex import COLUMNS, ORDER_COLUMNS, size_bucket

DAY = """action,time,firm,token,symbol,side,qty,price,tif
symbol,09:30:00,,,ACME,,100,50.00,
new,,MM,b1,ACME,B,300,49.99,day
new,,MM,a1,ACME,S,300,50.01,day
new,,MM,a2,ACME,S,300,50.03,day
new,,C1,x1,ACME,B,400,,ioc
new,,C2,y1,ACME,S,200,49.98,day
new,,C3,z1,ACME,B,100,50.00,day
cancel,,C3,z1,,,,,
"""


def _rows(path):
    with open(path, newline="") as f:
        return {(r["size_bucket"], r["category"]): r for r in csv.DictReader(f)}


def test_directed_day(tmp_path, capsys):
    (tmp_path / "day.csv").write_text(DAY)
    out, png = tmp_path / "605.csv", tmp_path / "605.png"
    assert main(["bestex", "--commands", str(tmp_path / "day.csv"), "-o", str(out),
                 "--plot", str(png)]) == 0
    assert png.read_bytes()[:4] == b"\x89PNG"
    with open(out, newline="") as f:
        assert tuple(csv.DictReader(f).fieldnames) == COLUMNS
    rows = _rows(out)
    market = rows["100-499", "market"]
    # 300 at the offer (50.01), 100 beyond it (50.03); mid at arrival 50.00
    assert (market["executed_shares"], market["at_quote_shares"],
            market["outside_quote_shares"]) == ("400", "300", "100")
    assert market["avg_effective_spread"] == "0.0300" and market["fill_rate"] == "1.0000"
    assert market["avg_time_to_fill_ms"] == "0.000"
    sell = rows["100-499", "marketable_limit"]
    # sold 200 at the bid 49.99 when the quote was 49.99 / 50.03 (mid 50.01)
    assert (sell["executed_shares"], sell["at_quote_shares"]) == ("200", "200")
    assert sell["avg_effective_spread"] == "0.0400" and sell["price_improved_shares"] == "0"
    # inside the quote: the maker's first offer (no offer yet: filled 300) and C3's bid at
    # 50.00 inside 49.99 / 50.03 (cancelled)
    inside = rows["100-499", "inside_quote_limit"]
    assert (inside["orders"], inside["executed_shares"], inside["cancelled_shares"],
            inside["fill_rate"]) == ("2", "300", "100", "0.7500")
    away = rows["100-499", "away_limit"]          # the maker's offer behind 50.01
    assert (away["orders"], away["executed_shares"]) == ("1", "100")
    capsys.readouterr()


def test_size_buckets():
    assert [size_bucket(q) for q in (50, 100, 499, 500, 1999, 2000, 9999, 10000)] == [
        "1-99", "100-499", "100-499", "500-1999", "500-1999", "2000-4999", "5000-9999",
        "10000+"]


def test_bad_input_and_the_main_job(run_dir, tmp_path, capsys):  # noqa: F811
    assert main(["bestex", "-o", str(tmp_path / "r.csv")]) == 2
    assert "one of them" in capsys.readouterr().err
    assert main(["bestex", str(tmp_path), "-o", str(tmp_path / "r.csv")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()
    rows = _rows(run_dir / "bestex.csv")
    assert rows and all(r["symbol"] for r in rows.values())
    assert (run_dir / "bestex.png").exists()
    assert main(["bestex", str(run_dir), "-o", str(tmp_path / "again.csv")]) == 0
    assert (tmp_path / "again.csv").read_text() == (run_dir / "bestex.csv").read_text()
    with open(run_dir / "bestex_orders.csv", newline="") as f:
        per_order = list(csv.DictReader(f))
    with open(run_dir / "bestex.csv", newline="") as f:
        assert sum(int(r["orders"]) for r in csv.DictReader(f)) == len(per_order) > 0


def test_one_row_per_order(tmp_path, capsys):
    (tmp_path / "day.csv").write_text(DAY)
    orders = tmp_path / "orders.csv"
    assert main(["bestex", "--commands", str(tmp_path / "day.csv"), "-o",
                 str(tmp_path / "605.csv"), "--orders", str(orders)]) == 0
    assert "(6 orders)" in capsys.readouterr().out
    with open(orders, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == ORDER_COLUMNS
        rows = {r["token"]: r for r in reader}
    x1 = rows["x1"]     # 300 at the offer 50.01 and 100 at 50.03, quote 49.99 / 50.01
    assert (x1["category"], x1["bid"], x1["ask"], x1["price"]) == \
        ("market", "49.9900", "50.0100", "")
    assert (x1["executed_shares"], x1["fill_rate"], x1["avg_price"]) == \
        ("400", "1.0000", "50.0150")
    assert (x1["price_improvement"], x1["effective_spread"], x1["time_to_fill_ms"]) == \
        ("-0.0050", "0.0300", "0.000")
    z1 = rows["z1"]     # a bid inside the quote, cancelled unfilled
    assert (z1["category"], z1["executed_shares"], z1["cancelled_shares"], z1["fill_rate"],
            z1["avg_price"], z1["price_improvement"], z1["time_to_fill_ms"]) == \
        ("inside_quote_limit", "0", "100", "0.0000", "", "", "")
