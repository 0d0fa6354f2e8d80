"""The base of every spec model, and pydantic's errors as `SpecError`s located in JSON.

`SpecModel` is strict, frozen and rejects unknown fields; built from Python it
raises a `SpecError` rather than pydantic's `ValidationError`. `spec_error_from`
turns a `ValidationError` into that `SpecError`: `json_location` renders each
error's `loc` as a JSON path (`nodes[3].inputs[0]`) by walking the validated
model's fields, so the union tags and member labels pydantic inserts into `loc`
are dropped without a list of them. This module knows no op, optimizer or
schedule: it imports neither `graphnet.ops` nor `graphnet.spec`.
"""
from __future__ import annotations

import re
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from .errors import SpecError, did_you_mean

# A node id: starts with a letter or underscore (any script), then letters,
# digits, underscores or hyphens. No dots: parameter names are "<id>.<name>".
NODE_ID_PATTERN = r"^[^\W\d][\w\-]*$"
NodeId = Annotated[str, Field(pattern=NODE_ID_PATTERN, min_length=1, max_length=64)]


class SpecModel(BaseModel):
    """Base of every spec model: strict, frozen, unknown fields rejected, and a
    SpecError (with JSON locations) instead of pydantic's error when built in Python."""

    model_config = ConfigDict(
        extra="forbid", strict=True, frozen=True, allow_inf_nan=False,
        validate_by_name=True, serialize_by_alias=True,
    )

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise spec_error_from(error, data, root=type(self)) from None

    # Tell pydantic this __init__ is a base init: otherwise it calls it for every
    # nested model during validation, and the SpecError raised there gets wrapped
    # as a value error of the parent (locations lost, problems glued into one line).
    __init__.__pydantic_base_init__ = True  # type: ignore[attr-defined]


# ---- locating an error -------------------------------------------------------------------------

# One step of a walk along an error's `loc`: the annotation reached (None once it is
# unknown) and the discriminator that applies to it, if it is a tagged union.
_Position = tuple[Any, Any]


def _unwrap(annotation: Any, discriminator: Any) -> _Position:
    """`Annotated[T, Field(discriminator=...)]` -> (T, its discriminator)."""
    while get_origin(annotation) is Annotated:
        annotation, *metadata = get_args(annotation)
        for item in metadata:
            if isinstance(item, FieldInfo) and item.discriminator is not None:
                discriminator = item.discriminator
    return annotation, discriminator


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def _field_named(model: type[BaseModel], part: Any) -> FieldInfo | None:
    """The field a `loc` entry names (by name or alias), or None."""
    for name, field in model.model_fields.items():
        if part in (name, field.alias, field.validation_alias):
            return field
    return None


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _tags(member: Any, discriminator: str) -> tuple[Any, ...]:
    """The values of a tagged-union member's `Literal` tag field."""
    field = _field_named(member, discriminator) if _is_model(member) else None
    return get_args(field.annotation) if field is not None and get_origin(field.annotation) is Literal else ()


def _tagged_member(members: list[Any], discriminator: str, tag: Any) -> Any:
    """The member of a tagged union whose tag field has the value `tag`, or None."""
    return next((member for member in members if tag in _tags(member, discriminator)), None)


def _union_step(members: list[Any], discriminator: Any, part: Any) -> tuple[bool, Any]:
    """Through a union: (whether `part` is shown, the annotation it leads to).

    pydantic puts a tag (tagged union) or a member label (`str`, `DataSpec`,
    `constrained-int`) into `loc` for an error inside a member; neither is shown.
    An error the model raised after validation (the graph checks) has no tag."""
    if isinstance(discriminator, str):
        member = _tagged_member(members, discriminator, part)
        return (False, member) if member is not None else (True, None)
    named = [member for member in members if _is_model(member) and member.__name__ == part]
    return False, named[0] if named else None


def _step(position: _Position, part: Any) -> tuple[bool, _Position]:
    """One `loc` entry from `position`: (whether it is shown, the position after it)."""
    if part == "[key]":  # pydantic's mark after a dict key that failed validation
        return False, (None, None)
    annotation, discriminator = _unwrap(*position)
    if annotation is None:
        return True, (None, None)
    if _is_union(annotation):
        members = [member for member in get_args(annotation) if member is not type(None)]
        if len(members) == 1:  # `X | None`: pydantic adds no label
            return _step((members[0], discriminator), part)
        shown, member = _union_step(members, discriminator, part)
        return shown, (member, None)
    if _is_model(annotation):
        field = _field_named(annotation, part)
        return True, (field.annotation, field.discriminator) if field is not None else (None, None)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (list, tuple, set, frozenset) and args:
        return True, (args[0], None)
    if origin is dict and len(args) == 2:
        return True, (args[1], None)
    return True, (None, None)


def _walk(loc: tuple[Any, ...], root: type[BaseModel] | None) -> list[tuple[bool, Any]]:
    """For each `loc` entry: whether the JSON location shows it, and the annotation it leads to."""
    position: _Position = (root, None)
    trail = []
    for part in loc:
        shown, position = _step(position, part)
        trail.append((shown, position[0]))
    return trail


def json_location(loc: tuple[Any, ...], root: type[BaseModel] | None) -> str:
    """A pydantic error `loc` as a JSON path, for errors from validating `root`:
    `('nodes', 3, 'affine', 'units')` -> `nodes[3].units`.
    Without a root, every entry but `[key]` shows."""
    text = ""
    for part, (shown, _) in zip(loc, _walk(loc, root)):
        if not shown:
            continue
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def model_at(loc: tuple[Any, ...], root: type[BaseModel] | None) -> type[BaseModel] | None:
    """The model whose fields hold `loc`'s last entry (for 'did you mean'), or None."""
    annotation = _walk(loc[:-1], root)[-1][1] if len(loc) > 1 else root
    annotation, _ = _unwrap(annotation, None)
    if _is_union(annotation):  # `Model | None`
        members = [member for member in get_args(annotation) if member is not type(None)]
        annotation = members[0] if len(members) == 1 else None
    return annotation if _is_model(annotation) else None


# ---- the error messages ------------------------------------------------------------------------


def _node_context(loc: tuple[Any, ...], doc: Any) -> str:
    """`node 'fc2' (affine): ` for a location inside a node, else ``."""
    try:
        nodes = doc["network"]["nodes"] if loc[0] == "network" else doc["nodes"]
        index = loc[loc.index("nodes") + 1]
        node = nodes[index]
        return f"node '{node['id']}' ({node['op']}): " if isinstance(node, dict) and "id" in node else ""
    except (KeyError, IndexError, TypeError, ValueError):
        return ""


def _message(error: dict[str, Any], doc: Any, root: type[BaseModel] | None) -> str:
    kind, loc = error["type"], error["loc"]
    context = _node_context(loc, doc) if "nodes" in loc else ""
    if kind == "extra_forbidden":
        field = str(loc[-1])
        model = model_at(loc, root)
        choices = [f.alias or name for name, f in model.model_fields.items()] if model else []
        return f"{context}unknown field '{field}'{did_you_mean(field, choices)}"
    if kind == "union_tag_invalid":
        tag = error["ctx"]["tag"]
        expected = error["ctx"]["expected_tags"].replace("'", "").split(", ")
        what = error["ctx"]["discriminator"].strip("'")
        return f"unknown {what} '{tag}'{did_you_mean(tag, expected)} (known: {', '.join(expected)})"
    if kind == "union_tag_not_found":
        return f"missing '{error['ctx']['discriminator'].strip(chr(39))}' field"
    if kind == "literal_error" and isinstance(error.get("input"), str):
        expected = re.findall(r"'([^']*)'", error["ctx"]["expected"])
        return f"{context}{error['msg'][:1].lower()}{error['msg'][1:]}{did_you_mean(error['input'], expected)}"
    if kind == "missing":
        return f"{context}missing required field '{loc[-1]}'"
    if kind == "custom_graph_error":
        return error["msg"]
    if kind == "string_pattern_mismatch" and error.get("ctx", {}).get("pattern") == NODE_ID_PATTERN:
        return (f"{context}'{error['input']}' is not a valid name: a letter or '_' first, then letters, "
                "digits, '_' or '-' (no dots or spaces)")
    message = error["msg"]
    if kind.startswith("value_error"):
        message = message.removeprefix("Value error, ")
    return f"{context}{message[:1].lower()}{message[1:]}"


def one_line(text: str) -> str:
    """Control characters (and lone surrogates) escaped: a problem quoting the user's
    strings stays one printable line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def spec_error_from(error: ValidationError, doc: Any = None, source: str | None = None,
                    root: type[BaseModel] | None = None) -> SpecError:
    """A pydantic ValidationError from validating `root` (with input `doc`, read from
    file `source`) as a SpecError with JSON locations."""
    problems, seen = [], set()
    for item in error.errors(include_url=False):
        problem = (one_line(json_location(item["loc"], root)), one_line(_message(item, doc, root)))
        if problem not in seen:  # a str|model union reports some errors once per member
            seen.add(problem)
            problems.append(problem)
    return SpecError(problems, source)
