"""The docs name files that exist: a renamed module fails here, not in a reader's hands."""
from __future__ import annotations

import re

import pytest

from tests._support.paths import ROOT

PATH_PATTERN = re.compile(r"`((?:graphnet|kernels|tests|specs|bench|docs)/[\w/.<>-]*)`")


@pytest.mark.parametrize("doc", ["docs/architecture.md", "README.md"])
def test_every_file_a_doc_names_exists(doc):
    named = {m.group(1) for m in PATH_PATTERN.finditer((ROOT / doc).read_text(encoding="utf-8"))}
    concrete = {p.rstrip("/") for p in named if "<" not in p and "*" not in p}
    assert concrete, f"{doc} names no files"
    missing = sorted(p for p in concrete if not (ROOT / p).exists())
    assert missing == [], f"{doc} names files that do not exist: {missing}"
