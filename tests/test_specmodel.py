"""The base spec model and the pydantic-error locator: a model of its own, with its
own tags, gets JSON locations and suggestions; the module sits below ops and spec."""
from __future__ import annotations

import ast
from pathlib import Path
from typing import Annotated, Literal, Union

import pytest
from pydantic import Field

from graphnet import SpecError
from graphnet.ops.base import NodeModel
from graphnet.specmodel import SpecModel, json_location, model_at

from tests._support.package_source import PACKAGE


class Cat(SpecModel):
    kind: Literal["cat"] = "cat"
    lives: int = 9


class Dog(SpecModel):
    kind: Literal["dog"] = "dog"
    barks: bool = True


class Keeper(SpecModel):
    name: str


Pet = Annotated[Union[Cat, Dog], Field(discriminator="kind")]


class Zoo(SpecModel):
    pets: list[Pet] = []
    keeper: str | Keeper = "nobody"
    favourite: Pet | None = None
    sizes: dict[str, Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, lt=1)]] = {}


def problems(**fields) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as caught:
        Zoo(**fields)
    return caught.value.problems


def test_a_tagged_union_member_is_located_without_its_tag():
    assert problems(pets=[{"kind": "dog"}, {"kind": "cat", "lives": "nine"}]) == [
        ("pets[1].lives", "input should be a valid integer")
    ]
    assert problems(favourite={"kind": "cat", "lives": "nine"}) == [
        ("favourite.lives", "input should be a valid integer")
    ]


def test_an_unknown_field_in_a_tagged_member_gets_that_members_fields_as_suggestions():
    assert problems(pets=[{"kind": "dog", "barkz": True}]) == [
        ("pets[0].barkz", "unknown field 'barkz'; did you mean 'barks'?")
    ]


def test_a_plain_union_member_label_is_dropped():
    assert problems(keeper={"nme": "Ann"}) == [
        ("keeper", "input should be a valid string"),
        ("keeper.name", "missing required field 'name'"),
        ("keeper.nme", "unknown field 'nme'; did you mean 'name'?"),
    ]
    assert problems(sizes={"a": -1}) == [("sizes.a", "input should be greater than or equal to 0")]


def test_json_location_walks_fields_lists_dicts_and_unions():
    assert json_location(("pets", 3, "cat", "lives"), Zoo) == "pets[3].lives"
    assert json_location(("pets", 3, "lives"), Zoo) == "pets[3].lives"  # raised after the union chose
    assert json_location(("keeper", "Keeper", "name"), Zoo) == "keeper.name"
    assert json_location(("sizes", "a b", "[key]"), Zoo) == "sizes.a b"
    assert json_location(("sizes", "a", "constrained-int"), Zoo) == "sizes.a"
    assert json_location((), Zoo) == ""


def test_model_at_names_the_model_holding_the_last_entry():
    assert model_at(("pets", 0, "dog", "barkz"), Zoo) is Dog
    assert model_at(("favourite", "cat", "x"), Zoo) is Cat
    assert model_at(("keeper", "Keeper", "nme"), Zoo) is Keeper
    assert model_at(("zoo",), Zoo) is Zoo
    assert model_at(("sizes", "a", "x"), Zoo) is None


def _imported_modules(path: Path) -> set[str]:
    """The absolute names of the graphnet modules `path` imports, anywhere in its body."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            names.add(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_specmodel_imports_neither_ops_nor_spec():
    imported = _imported_modules(PACKAGE / "specmodel.py")
    assert imported and not {name for name in imported if name.startswith(("graphnet.ops", "graphnet.spec"))}


def test_ops_import_nothing_from_spec():
    for path in sorted((PACKAGE / "ops").glob("*.py")):
        imported = _imported_modules(path)
        spec_imports = {name for name in imported if name.split(".")[:2] == ["graphnet", "spec"]}
        assert not spec_imports, f"{path.name} imports {spec_imports}"


def test_node_models_derive_from_the_spec_model_defined_outside_ops():
    assert SpecModel.__module__ == "graphnet.specmodel"
    assert issubclass(NodeModel, SpecModel)
