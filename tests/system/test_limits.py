"""graphnet.system.limits: byte counts, parsed and printed; declared sizes checked against the limit."""
from __future__ import annotations

import pytest

from graphnet import DataError
from graphnet.system.limits import ENV_VAR, check_declared_size, format_bytes, parse_bytes


@pytest.mark.parametrize("count, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 kB"), (3 << 20, "3.0 MB"),
                                         (5 << 30, "5.0 GB"), (2 << 40, "2.0 TB"), (100.0, "100 B")])
def test_format_bytes(count, text):
    assert format_bytes(count) == text


@pytest.mark.parametrize("text", ["512M", "16G", "3k", "1000"])
def test_a_printed_count_reads_back_within_its_rounding(text):
    count = parse_bytes(text)
    number, unit = format_bytes(count).split()
    assert parse_bytes(number + ("" if unit == "B" else unit[0])) == pytest.approx(count, rel=0.05)


def test_a_declared_size_over_the_limit_is_refused_by_value_or_by_the_environment(monkeypatch):
    check_declared_size(1 << 20, "x.npz: arrays 'X'", limit=1 << 20)  # at the limit: fine
    with pytest.raises(DataError, match=r"^x.npz: arrays 'X': 1.0 MB of data declared, over the memory limit "
                                        r"of 1023.0 kB \(set GRAPHNET_MAX_BYTES to raise it\)$"):
        check_declared_size(1 << 20, "x.npz: arrays 'X'", limit=(1 << 20) - 1024)
    monkeypatch.setenv(ENV_VAR, "1k")
    with pytest.raises(DataError, match="over the memory limit of 1.0 kB"):
        check_declared_size(1025, "f")
    check_declared_size(1024, "f")
