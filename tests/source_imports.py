"""What a source file imports when it runs, read from its syntax tree (for the
tests that hold the layers apart)."""
from __future__ import annotations

import ast
from pathlib import Path

import graphnet

PACKAGE = Path(graphnet.__file__).parent


def runtime_imports(path: Path) -> set[str]:
    """Every module a source file imports at run time, and every `module.name` it takes
    from one, relative ones with their leading dots (`.compiler`, `.compiler.lower`).
    Imports under `if TYPE_CHECKING:` are left out: only type checkers read them."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return found
