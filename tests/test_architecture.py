"""The layering docs/architecture.md draws, checked over every module of the package:
function-local imports included, no import upward, no cycle between modules, no private
name taken from another module nor another object's private attribute read, the kernels
on numpy and numba alone. That `import graphnet` stays light (a fresh interpreter):
tests/system/test_architecture.py."""
from __future__ import annotations

import ast
import sys
from collections import defaultdict

import pytest

from tests._support.package_source import KERNELS, PACKAGE, ROOT, Import, imports_of, module_name, package_files

# Lowest first: a module may import modules of its own layer and of the layers below.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("kernels", ("graphnet.kernels",)),
    ("foundation", ("graphnet.errors", "graphnet.version", "graphnet.specmodel", "graphnet.system")),
    ("data", ("graphnet.data",)),
    ("ops", ("graphnet.ops",)),
    ("spec", ("graphnet.spec",)),
    ("compiler", ("graphnet.compiler",)),
    ("runtime", ("graphnet.runtime",)),
    ("model", ("graphnet.model", "graphnet.runs")),
    ("routes", ("graphnet.training", "graphnet.interop", "graphnet.sweep", "graphnet.benchmarks")),
    ("top", ("graphnet.cli", "graphnet.homework", "graphnet.__main__", "graphnet.layers", "graphnet.layer_utils",
             "graphnet.optim", "graphnet.solver", "graphnet.models", "graphnet.gradient_check", "graphnet.nn",
             "graphnet")),
]
KERNEL_DEPENDENCIES = {"numpy", "numba", "llvmlite", "__future__"}  # the standard library too; llvmlite is numba's
ROOT_MODULES_AT_MOST = 12  # besides the homework's re-exported import paths


def layer_of(module: str) -> int:
    """The index in LAYERS of the most specific prefix naming `module`."""
    best = max(((len(prefix), index) for index, (_, prefixes) in enumerate(LAYERS) for prefix in prefixes
                if module == prefix or module.startswith(prefix + ".")), default=None)
    if best is None:
        raise KeyError(module)
    return best[1]


def every_file():
    return package_files() + sorted(KERNELS.rglob("*.py"))


MODULES = {module_name(path): path for path in every_file()}


def graphnet_imports() -> list[Import]:
    """Every import of a graphnet module by a graphnet module, the target resolved to a module."""
    found = []
    for path in every_file():
        for item in imports_of(path):
            target = _module_imported(item)
            if target is not None and target != item.importer:
                found.append(Import(item.importer, target, item.name, item.line))
    return found


def _module_imported(item: Import) -> str | None:
    """The graphnet module an import loads: `from a import b` is a.b when b is a module, else a."""
    if item.name is not None and f"{item.module}.{item.name}" in MODULES:
        return f"{item.module}.{item.name}"
    return item.module if item.module in MODULES else None


def upward(edges: list[Import]) -> list[str]:
    """`importer -> imported` for every import of a module in a higher layer than the importer's."""
    return [f"{e.importer} -> {e.module} (line {e.line}): {LAYERS[layer_of(e.importer)][0]} imports "
            f"{LAYERS[layer_of(e.module)][0]}" for e in edges if layer_of(e.module) > layer_of(e.importer)]


def cycles(edges: list[Import]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for e in edges:
        graph[e.importer].add(e.module)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                connect(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return found


def private_imports(edges: list[Import]) -> list[str]:
    """Imports of a private name (or a private module) from outside the package that owns it."""
    found = []
    for e in edges:
        owner = e.module if e.module in MODULES and MODULES[e.module].name == "__init__.py" \
            else e.module.rpartition(".")[0]
        private_module = any(part.startswith("_") and not part.startswith("__")
                             for part in e.module.split(".")[2:])
        private_name = e.name is not None and e.name.startswith("_") and not e.name.startswith("__")
        inside = e.importer == owner or e.importer.startswith(owner + ".")
        same_module = e.importer == e.module
        if (private_name and not same_module) or (private_module and not inside):
            found.append(f"{e.importer} (line {e.line}) imports {e.module}{'.' + e.name if e.name else ''}")
    return found


EDGES = graphnet_imports()


def test_every_module_is_in_a_layer():
    assert [name for name in MODULES if _unplaced(name)] == []


def _unplaced(name: str) -> bool:
    try:
        layer_of(name)
    except KeyError:
        return True
    return False


def test_no_module_imports_a_layer_above_its_own():
    assert upward(EDGES) == []


def test_no_import_cycle_between_modules():
    assert cycles(EDGES) == []


def test_no_private_name_is_imported_across_modules():
    assert private_imports(EDGES) == []


# Private attributes of other libraries' objects that graphnet reads on purpose, each said where it is read.
FOREIGN_PRIVATE_ATTRIBUTES = {"_Environ",  # os._Environ: the type of os.environ
                              "_cache"}  # numba's dispatcher cache (kernels/_jit.py says why)


def private_attribute_reads(source: str, where: str) -> list[str]:
    """`obj._name` reads in `source` where obj is not self, cls or super(): another object's private state."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")):
            continue
        owner = node.value
        if isinstance(owner, ast.Name) and owner.id in ("self", "cls"):
            continue
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "super":
            continue
        if node.attr not in FOREIGN_PRIVATE_ATTRIBUTES:
            found.append(f"{where}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_module_reads_another_objects_private_attributes():
    found = [hit for path in every_file() for hit in private_attribute_reads(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == []


def test_the_private_attribute_scan_finds_a_read():
    assert private_attribute_reads("graph._by_id.get(x)\nself._y\nsuper()._z()", "m.py") == ["m.py:1: graph._by_id"]


def test_the_kernels_import_only_numpy_and_numba():
    stdlib = set(sys.stdlib_module_names)
    outside = sorted({f"{item.importer}: {item.module}" for path in sorted(KERNELS.rglob("*.py"))
                      for item in imports_of(path)
                      if not item.module.startswith("graphnet.kernels")
                      and item.module.split(".")[0] not in KERNEL_DEPENDENCIES | stdlib})
    assert outside == []


def test_the_package_root_holds_a_few_modules():
    root = sorted(path.stem for path in PACKAGE.glob("*.py"))
    reexports = {"layers", "layer_utils", "optim", "solver", "models", "gradient_check"}
    assert len([name for name in root if name not in reexports]) <= ROOT_MODULES_AT_MOST, root


@pytest.mark.parametrize("importer, imported", [
    # The edges issue 22 found, under today's module names: each must be refused.
    ("graphnet.ops.affine", "graphnet.runtime.threads"),
    ("graphnet.ops.affine", "graphnet.runtime.helper_thread"),
    ("graphnet.compiler.autodiff", "graphnet.runtime.blas"),
    ("graphnet.compiler.plan", "graphnet.runtime.contention"),
    ("graphnet.runtime.network", "graphnet.interop.onnx_export"),
    ("graphnet.model.checkpoint", "graphnet.training.loop"),
    ("graphnet.runtime.fast_forward", "graphnet.model.record"),
])
def test_the_contract_refuses_an_import_upward(importer, imported):
    assert upward([Import(importer, imported, None, 1)]) != []


def test_the_contract_finds_a_cycle_and_a_private_import():
    pair = [Import("graphnet.training.run", "graphnet.training.parallel", None, 1),
            Import("graphnet.training.parallel", "graphnet.training.run", "finish", 2)]
    assert cycles(pair) == [["graphnet.training.parallel", "graphnet.training.run"]]
    private = [Import("graphnet.runtime.fast_forward", "graphnet.compiler.plan", "_run_steps", 3),
               Import("graphnet.homework.cs231n.solver", "graphnet.data._checks", "check_targets", 4),
               Import("graphnet.data.tabular", "graphnet.data._checks", "check_count", 5)]
    assert len(private_imports(private)) == 2  # the third is inside the package that owns _checks


def test_the_layers_named_here_are_the_folders_of_the_package():
    folders = {f"graphnet.{path.name}" for path in PACKAGE.iterdir() if (path / "__init__.py").is_file()}
    named = {prefix for _, prefixes in LAYERS for prefix in prefixes}
    assert folders - named == set()
    assert ROOT.joinpath("kernels", "__init__.py").is_file()
