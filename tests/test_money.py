"""Money and rates as integers: exact parsing of dollars and percentages, command files too."""

import pytest
from tickwire.core.money import format_bp_as_pct, parse_dollars, parse_pct_as_bp
from tickwire.offline.commands import CommandFileError, read_command_file, write_command_file


def test_exact_parsing_and_formatting():
    assert parse_dollars(150.25) == 1_502_500 and parse_dollars("0.0001") == 1
    assert parse_pct_as_bp(5) == 500 and parse_pct_as_bp("2.5") == 250
    assert [format_bp_as_pct(bp) for bp in (500, 250, 1, 0)] == ["5", "2.5", "0.01", "0"]
    for bad in ("1.00001", "nan", "x", True, float("inf")):
        with pytest.raises(ValueError):
            parse_dollars(bad)


def test_command_file_breaker_is_basis_points(tmp_path):
    path = tmp_path / "day.csv"
    path.write_text("action,symbol,price,breaker_pct\nsymbol,AAPL,100,2.5\n")
    [row] = read_command_file(str(path))
    assert row.breaker_bp == 250
    write_command_file(str(tmp_path / "again.csv"), [row])
    assert read_command_file(str(tmp_path / "again.csv"))[0].breaker_bp == 250
    path.write_text("action,symbol,price,breaker_pct\nsymbol,AAPL,100,2.555\n")
    with pytest.raises(CommandFileError, match="breaker_pct"):
        read_command_file(str(path))
