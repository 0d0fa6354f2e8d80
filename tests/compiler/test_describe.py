"""graphnet.compiler.describe: the plain-text table every printer shares."""
from __future__ import annotations

from graphnet.compiler.describe import text_table


def test_a_table_underlines_its_header_and_pads_columns_two_spaces_apart():
    lines = text_table([("name", "n"), ("fc1", "12"), ("a", "3")])
    assert lines == ["name  n", "----  --", "fc1   12", "a     3"]


def test_columns_can_be_right_aligned_and_trailing_blanks_are_dropped():
    lines = text_table([("kernel", "us", "note"), ("add", "1.50", ""), ("softmax", "12.25", "x")], align="<>")
    assert lines == ["kernel      us  note", "-------  -----  ----", "add       1.50", "softmax  12.25  x"]
