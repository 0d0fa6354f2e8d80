"""graphnet's own source read with ast, for the tests of the package's structure: its
modules, what each imports when it runs (function-local imports included, imports under
`if TYPE_CHECKING:` left out) and the functions it calls."""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from tests._support.paths import ROOT

PACKAGE = ROOT / "graphnet"
KERNELS = ROOT / "kernels"  # installed as graphnet.kernels (pyproject's package-dir)


def package_files() -> list[Path]:
    """Every module of the graphnet package (graphnet/, not the kernels)."""
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    """graphnet/training/loop.py -> graphnet.training.loop; a package's __init__ -> the
    package; kernels/affine.py -> graphnet.kernels.affine."""
    if path.is_relative_to(KERNELS):
        parts = ["graphnet", "kernels", *path.relative_to(KERNELS).with_suffix("").parts]
    else:
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@dataclass(frozen=True)
class Import:
    """One name a module imports: `module` (absolute) and, for `from module import name`, the name."""

    importer: str
    module: str
    name: str | None
    line: int


def imports_of(path: Path) -> list[Import]:
    """Every import `path` runs (at top level or inside functions), relative ones resolved."""
    importer = module_name(path)
    package = importer if path.name == "__init__.py" else importer.rpartition(".")[0]
    found: list[Import] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.extend(Import(importer, alias.name, None, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(package, node.level, node.module)
            found.extend(Import(importer, base, alias.name, node.lineno) for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found


def imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports; `from a import b` counts as a and a.b."""
    found: set[str] = set()
    for item in imports_of(path):
        found.add(item.module)
        if item.name is not None:
            found.add(f"{item.module}.{item.name}")
    return found


def _resolve(package: str, level: int, module: str | None) -> str:
    if level == 0:
        return module or ""
    parts = package.split(".")
    base = ".".join(parts[:len(parts) - level + 1])
    return f"{base}.{module}" if module else base


def called_names(path: Path) -> set[str]:
    """The dotted names called in `path`: `np.savez(...)` -> "np.savez"."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name:
                found.add(name)
    return found


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None
