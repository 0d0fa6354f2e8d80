"""The docs name files and modules that exist: a renamed module fails here, not in a reader's hands."""
from __future__ import annotations

import re

import pytest

from tests._support.paths import ROOT

DOCS = ["docs/architecture.md", "README.md", "docs/homework.md", "docs/scaling.md", "kernels/README.md"]
PATH_PATTERN = re.compile(r"`((?:graphnet|kernels|tests|specs|bench|docs)/[\w/.<>-]*)`")
BARE_FILE = re.compile(r"`([\w]+\.py)`")  # `plan.py`: a module named without its folder
MODULE = re.compile(r"`(graphnet(?:\.[A-Za-z_]\w*)+)")  # `graphnet.compiler.plans` (maybe `...build_plan(...)`)
SEARCHED = [ROOT / "graphnet", ROOT / "kernels", ROOT / "tests", ROOT / "bench"]


def named(doc: str, pattern: re.Pattern) -> set[str]:
    return {m.group(1) for m in pattern.finditer((ROOT / doc).read_text(encoding="utf-8"))}


@pytest.mark.parametrize("doc", DOCS)
def test_every_file_a_doc_names_exists(doc):
    concrete = {p.rstrip("/") for p in named(doc, PATH_PATTERN) if "<" not in p and "*" not in p}
    missing = sorted(p for p in concrete if not (ROOT / p).exists())
    assert missing == [], f"{doc} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_module_a_doc_names_by_file_name_alone_exists(doc):
    """`plan.py` in a table of a folder: some module of the repository has that name."""
    missing = sorted(name for name in named(doc, BARE_FILE)
                     if not any(next(folder.rglob(name), None) for folder in SEARCHED))
    assert missing == [], f"{doc} names modules that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_dotted_module_a_doc_names_exists(doc):
    """`graphnet.compiler.plans` or `graphnet.compiler.plans.build_plan`: the module (all but a
    last component that may be a name in it) is a file or a package of the repository."""
    missing = sorted(dotted for dotted in named(doc, MODULE) if not _module_exists(dotted))
    assert missing == [], f"{doc} names modules that do not exist: {missing}"


def _module_exists(dotted: str) -> bool:
    parts = dotted.split(".")[1:]
    if parts and parts[0] == "kernels":
        base, parts = ROOT / "kernels", parts[1:]
    else:
        base = ROOT / "graphnet"
    for keep in (len(parts), len(parts) - 1):  # the last part may be a function or class
        path = base.joinpath(*parts[:keep]) if keep else base
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return True
    return False


def test_the_checks_catch_a_name_that_is_gone(tmp_path):
    assert not _module_exists("graphnet.network.CompiledNetwork")  # moved to graphnet.model.compiled
    assert _module_exists("graphnet.model.compiled.CompiledNetwork") and _module_exists("graphnet.kernels.codes")
    assert not any(next(folder.rglob("checkpoint_bound.py"), None) for folder in SEARCHED)
