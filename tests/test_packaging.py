"""pyproject.toml lists the package's subpackages by hand: a wheel (not an editable install)
ships only those, so every subpackage must be listed."""
from __future__ import annotations

import tomllib

from tests._support.package_source import PACKAGE, ROOT, module_name


def test_every_subpackage_is_in_the_package_list():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]["packages"])
    found = {module_name(init) for init in PACKAGE.rglob("__init__.py")}
    assert found - listed == set()
