"""No module of the package or its kernels grows past MAX_LINES: a longer one is split along its seams."""
from __future__ import annotations

from pathlib import Path

from tests._support.package_source import PACKAGE, ROOT

MAX_LINES = 450


def line_count(path: Path) -> int:
    """The number of lines of a text file (as `wc -l` counts them for a file ending in a newline)."""
    return len(path.read_text(encoding="utf-8").splitlines())


def modules() -> list[Path]:
    """Every Python module under graphnet/ and kernels/."""
    return sorted(PACKAGE.rglob("*.py")) + sorted((ROOT / "kernels").rglob("*.py"))


def test_the_modules_are_found():
    names = {path.relative_to(ROOT).as_posix() for path in modules()}
    assert {"graphnet/__init__.py", "kernels/__init__.py"} <= names


def test_no_module_is_longer_than_the_limit():
    too_long = {path.relative_to(ROOT).as_posix(): n for path in modules() if (n := line_count(path)) > MAX_LINES}
    assert too_long == {}, f"modules over {MAX_LINES} lines (split them): {too_long}"
