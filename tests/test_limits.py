"""graphnet.limits: byte counts, parsed and printed."""
from __future__ import annotations

import pytest

from graphnet.limits import format_bytes, parse_bytes


@pytest.mark.parametrize("count, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 kB"), (3 << 20, "3.0 MB"),
                                         (5 << 30, "5.0 GB"), (2 << 40, "2.0 TB"), (100.0, "100 B")])
def test_format_bytes(count, text):
    assert format_bytes(count) == text


@pytest.mark.parametrize("text", ["512M", "16G", "3k", "1000"])
def test_a_printed_count_reads_back_within_its_rounding(text):
    count = parse_bytes(text)
    number, unit = format_bytes(count).split()
    assert parse_bytes(number + ("" if unit == "B" else unit[0])) == pytest.approx(count, rel=0.05)
