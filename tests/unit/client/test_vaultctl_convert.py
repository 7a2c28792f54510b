"""vaultctl's friendly values: enum names, durations, times and resource names."""

from __future__ import annotations

import argparse
import datetime

import pytest
from vaultctl import _convert
from vaultctl._output import clean


@pytest.mark.parametrize(
    ("parser", "text", "want"),
    [
        (_convert.BROKER, "binance-spot", "BROKER_BINANCE_SPOT"),
        (_convert.BROKER, "binance_spot", "BROKER_BINANCE_SPOT"),
        (_convert.BROKER, "BROKER_OKX", "BROKER_OKX"),
        (_convert.BROKER, "kraken", "BROKER_KRAKEN_SPOT"),
        (_convert.BROKER, "Coinbase-Advanced", "BROKER_COINBASE_ADVANCED"),
        (_convert.ENVIRONMENT, "paper", "ENVIRONMENT_PAPER"),
        (_convert.KEY_ALGORITHM, "hmac-sha512", "KEY_ALGORITHM_HMAC_SHA512"),
        (_convert.ORDER_SIDE, "sell", "ORDER_SIDE_SELL"),
        (_convert.ORDER_TYPE, "stop-limit", "ORDER_TYPE_STOP_LIMIT"),
        (_convert.OUTCOME, "denied", "OUTCOME_DENIED"),
    ],
)
def test_enum_names(parser, text: str, want: str) -> None:
    assert parser(text) == want


@pytest.mark.parametrize("text", ["nasdaq", "unspecified", "BROKER_UNSPECIFIED", ""])
def test_bad_enum_names(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _convert.BROKER(text)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        ("500ms", 0.5),
        ("45", 45),
    ],
)
def test_durations(text: str, seconds: float) -> None:
    assert _convert.duration(text).total_seconds() == seconds


@pytest.mark.parametrize("text", ["", "0s", "-5m", "soon", "5 m", "3w", "1h-2m"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        _convert.duration(text)


def test_time_points() -> None:
    now = datetime.datetime(2025, 5, 1, 12, 0, tzinfo=datetime.UTC)
    assert _convert.time_point("2h", now=now) == now - datetime.timedelta(hours=2)
    assert _convert.time_point("2025-05-01") == datetime.datetime(2025, 5, 1, tzinfo=datetime.UTC)
    assert _convert.time_point("2025-05-01T10:00:00+02:00") == datetime.datetime(
        2025, 5, 1, 8, 0, tzinfo=datetime.UTC
    )


def test_names() -> None:
    assert _convert.credential("ws/c") == "workspaces/ws/credentials/c"
    assert _convert.credential("workspaces/ws/credentials/c") == "workspaces/ws/credentials/c"
    assert _convert.credential_version("ws/c/3") == "workspaces/ws/credentials/c/versions/3"
    for bad in ("ws", "ws/c/x/y", "workspaces/ws/other/c"):
        with pytest.raises(argparse.ArgumentTypeError):
            _convert.credential(bad)
    with pytest.raises(argparse.ArgumentTypeError):
        _convert.credential_version("ws/c/0")


def test_clean_removes_escapes_and_line_breaks() -> None:
    assert clean("a\x1b[31mb\nc\u202ed") == "a[31mb cd"
    assert clean("l1\nl2\r\n", keep_newlines=True) == "l1\nl2\n"
