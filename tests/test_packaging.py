"""pyproject.toml lists its packages by hand: a subpackage missing there would
be left out of every installed (non-editable) copy of graphnet."""
from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_subpackage_of_graphnet_is_listed_in_pyproject():
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"]
    source = ROOT / "graphnet"
    on_disk = {".".join(("graphnet", *init.parent.relative_to(source).parts)) for init in source.rglob("__init__.py")}
    assert "graphnet.ops" in on_disk and sorted(on_disk - set(packages)) == []
