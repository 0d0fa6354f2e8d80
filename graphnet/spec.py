"""The spec language: pydantic models of a network (`NetworkSpec`) and of a run
(`RunSpec`: a network plus training settings), and the functions that read them.

A network spec is checked completely when it is constructed, from JSON or
from Python: field types and ranges, references, arity, labels, cycles and
per-example shapes (`graphnet.validation`). Every problem becomes a
`SpecError` whose lines name the JSON location, e.g. `nodes[3].inputs[0]`.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping, Union

from pydantic import (
    BaseModel,
    BeforeValidator,
    Field,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    model_serializer,
    model_validator,
)
from pydantic.json_schema import GenerateJsonSchema

from .errors import SpecError, did_you_mean
from .ops import OPS, NodeModel, Value
from .ops.base import MAX_DIM, NODE_ID_PATTERN, NodeId, SpecModel

SCHEMA_VERSION = 1
SCHEMA_FILE = "schema.json"

Node = Annotated[Union[tuple(record.model for record in OPS.values())], Field(discriminator="op")]


def _exact_int(value: Any) -> Any:
    # pydantic's Literal[1] accepts true and 1.0 even in strict mode.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"input should be the integer {SCHEMA_VERSION}")
    return value


SchemaVersion = Annotated[Literal[1], BeforeValidator(_exact_int)]


_Strict = SpecModel


class InputSpec(_Strict):
    """A network input: `shape` per example (the batch dimension is implicit)."""

    shape: list[Annotated[int, Field(ge=1, le=MAX_DIM)]] = Field(min_length=1, max_length=4)


class LabelSpec(_Strict):
    """A label input: integer `classes` (labels in [0, classes)) or float targets of `shape`."""

    classes: Annotated[int, Field(ge=2, le=MAX_DIM)] | None = None
    shape: list[Annotated[int, Field(ge=1, le=MAX_DIM)]] | None = Field(None, min_length=1, max_length=4)

    @model_validator(mode="after")
    def _one_kind(self) -> "LabelSpec":
        if (self.classes is None) == (self.shape is None):
            raise ValueError('give exactly one of "classes" (integer labels) or "shape" (float targets)')
        return self

    def value(self) -> Value:
        if self.classes is not None:
            return Value((), "classes", self.classes)
        return Value(tuple(self.shape or ()))


class NetworkSpec(_Strict):
    """A network: inputs, labels, a DAG of nodes, its outputs, its loss and l2 strength."""

    schema_ref: str | None = Field(None, alias="$schema", description="path of the JSON Schema, for editors")
    schema_version: SchemaVersion = SCHEMA_VERSION
    name: str = Field("network", min_length=1, max_length=100)
    description: str = ""
    inputs: dict[NodeId, InputSpec] = Field(min_length=1)
    labels: dict[NodeId, LabelSpec] = {}
    nodes: list[Node] = Field(min_length=1, max_length=100_000)
    outputs: list[str] = Field(min_length=1)
    loss: str | None = None
    l2: float = Field(0.0, ge=0, description="0.5 * l2 * sum(W**2) over affine weights")

    _order: list[int] = PrivateAttr(default_factory=list)
    _values: dict[str, Value] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_graph(self) -> "NetworkSpec":
        from .validation import check_network  # the graph checks live beside the spec, in their own module

        order, values = check_network(self)
        self._order, self._values = order, values
        return self

    def topological_nodes(self) -> list[NodeModel]:
        """The nodes, each after all the nodes it reads."""
        return [self.nodes[i] for i in self._order]

    def value(self, name: str) -> Value:
        """The per-example value of an input, label or node id."""
        return self._values[name]

    def node(self, node_id: str) -> NodeModel:
        for node in self.nodes:
            if node.id == node_id:
                return node
        raise KeyError(node_id)

    def to_json(self, indent: int | None = 2) -> str:
        """Canonical JSON: defaults omitted, so it reads like a hand-written spec."""
        return self.model_dump_json(indent=indent, exclude_defaults=True, exclude_none=True)


# ---- training settings -------------------------------------------------------------------


class DataSpec(_Strict):
    """Where the data comes from: a data set name or path, and how to split and scale it."""

    name: str = Field(min_length=1)
    val_size: Annotated[int, Field(ge=0)] | Annotated[float, Field(ge=0, lt=1)] | None = None
    normalize: Literal["auto", "scale", "standardize", "none"] = "auto"
    options: dict[str, int | float | str | bool] = {}


class _Tagged(_Strict):
    """A member of a tagged union (optimizer `rule`, schedule `kind`). The tag has a default,
    so Python code need not repeat it, but it stays in every dump, even with
    exclude_defaults: without it the dump would not parse back."""

    @model_serializer(mode="wrap")
    def _tag_always(self, handler: Any) -> Any:
        data = handler(self)
        if isinstance(data, dict):
            tag = "rule" if "rule" in type(self).model_fields else "kind"
            return {tag: getattr(self, tag), **data}
        return data


class Sgd(_Tagged):
    rule: Literal["sgd"] = "sgd"
    learning_rate: float = Field(1e-2, gt=0)


class Momentum(_Tagged):
    rule: Literal["momentum"] = "momentum"
    learning_rate: float = Field(1e-2, gt=0)
    momentum: float = Field(0.9, ge=0, lt=1)


class Nesterov(Momentum):
    rule: Literal["nesterov"] = "nesterov"  # type: ignore[assignment]


class RmsProp(_Tagged):
    rule: Literal["rmsprop"] = "rmsprop"
    learning_rate: float = Field(1e-2, gt=0)
    decay_rate: float = Field(0.99, ge=0, lt=1)
    epsilon: float = Field(1e-8, gt=0)


class Adam(_Tagged):
    rule: Literal["adam"] = "adam"
    learning_rate: float = Field(1e-3, gt=0)
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.999, ge=0, lt=1)
    epsilon: float = Field(1e-8, gt=0)


class AdamW(Adam):
    rule: Literal["adamw"] = "adamw"  # type: ignore[assignment]
    weight_decay: float = Field(1e-2, ge=0)


OptimizerSpec = Annotated[Union[Sgd, Momentum, Nesterov, RmsProp, Adam, AdamW], Field(discriminator="rule")]
OPTIMIZERS: dict[str, type[_Strict]] = {
    model.model_fields["rule"].default: model for model in (Sgd, Momentum, Nesterov, RmsProp, Adam, AdamW)
}


_WARMUP = "linear warmup from base/warmup_iterations to the base rate over these epochs"


class Constant(_Tagged):
    kind: Literal["constant"] = "constant"
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP)


class Exponential(_Tagged):
    """The homework's `lr_decay`: the rate is multiplied by `decay` after every epoch."""

    kind: Literal["exponential"] = "exponential"
    decay: float = Field(gt=0, le=1)
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP + "; decay still counts epochs from the start")


class StepDecay(_Tagged):
    kind: Literal["step"] = "step"
    step_epochs: int = Field(ge=1)
    gamma: float = Field(0.1, gt=0, le=1)
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP + "; the steps stay at absolute epochs")


class Cosine(_Tagged):
    """Cosine annealing from the base rate to `min_lr` over the run after warmup (per iteration)."""

    kind: Literal["cosine"] = "cosine"
    min_lr: float = Field(0.0, ge=0)
    warmup_epochs: float = Field(0.0, ge=0, description=_WARMUP + "; the cosine spans the epochs after it")


ScheduleSpec = Annotated[Union[Constant, Exponential, StepDecay, Cosine], Field(discriminator="kind")]


class TrainSpec(_Strict):
    """How to train: data, optimizer, schedule, epochs, batch size, seed and numerics."""

    data: str | DataSpec
    optimizer: OptimizerSpec = Adam()
    schedule: ScheduleSpec = Constant()
    epochs: int = Field(10, ge=1, le=100_000)
    batch_size: int = Field(128, ge=1, le=1 << 20)
    seed: int = Field(0, ge=0, le=2**63 - 1)
    clip_norm: float | None = Field(None, gt=0, description="clip gradients to this global L2 norm")
    dtype: Literal["float32", "float64"] = "float32"
    backend: Literal["numba", "numpy"] | None = None
    eval_batch_size: int = Field(1000, ge=1, le=1 << 20)

    def data_spec(self) -> DataSpec:
        return self.data if isinstance(self.data, DataSpec) else DataSpec(name=self.data)


class RunSpec(_Strict):
    """A network and how to train it: everything `graphnet train FILE` needs."""

    schema_ref: str | None = Field(None, alias="$schema")
    schema_version: SchemaVersion = SCHEMA_VERSION
    network: NetworkSpec
    train: TrainSpec

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent, exclude_defaults=True, exclude_none=True)


# ---- reading specs --------------------------------------------------------------------------

# Tags pydantic inserts into an error location after a discriminated union member.
_TAGS = set(OPS) | set(OPTIMIZERS) | {"constant", "exponential", "step", "cosine"}


def format_location(loc: tuple[Any, ...]) -> str:
    """`('nodes', 3, 'affine', 'units')` -> `nodes[3].units` (the union tag dropped)."""
    text = ""
    previous: Any = None
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in _TAGS and (isinstance(previous, int) or previous in ("optimizer", "schedule")):
            pass
        elif part in ("str", "DataSpec") and previous == "data":
            pass
        elif part.startswith("function-") or part.startswith("union[") or part == "[key]":
            pass
        else:
            text += f".{part}" if text else str(part)
        previous = part
    return text


def _model_at(loc: tuple[Any, ...], doc: Any, root: type[BaseModel] | None = None) -> type[BaseModel] | None:
    """The model whose field list applies at an error location (for 'did you mean')."""
    model: type[BaseModel] | None = root or (RunSpec if isinstance(doc, dict) and "network" in doc else NetworkSpec)
    for i, part in enumerate(loc[:-1]):
        if model is None:
            return None
        if part == "network":
            model = NetworkSpec
        elif part == "train":
            model = TrainSpec
        elif part in OPS and isinstance(loc[i - 1], int):
            model = OPS[part].model
        elif part in OPTIMIZERS:
            model = OPTIMIZERS[part]
        elif part == "DataSpec":
            model = DataSpec
        elif part in ("constant", "exponential", "step", "cosine"):
            model = {"constant": Constant, "exponential": Exponential, "step": StepDecay, "cosine": Cosine}[part]
        elif part in ("inputs",):
            model = InputSpec if i + 2 <= len(loc) - 1 else None
        elif part in ("labels",):
            model = LabelSpec if i + 2 <= len(loc) - 1 else None
    return model


def _node_context(loc: tuple[Any, ...], doc: Any) -> str:
    """`node 'fc2' (affine): ` for a location inside a node, else ``."""
    try:
        nodes = doc["network"]["nodes"] if loc[0] == "network" else doc["nodes"]
        index = loc[loc.index("nodes") + 1]
        node = nodes[index]
        return f"node '{node['id']}' ({node['op']}): " if isinstance(node, dict) and "id" in node else ""
    except (KeyError, IndexError, TypeError, ValueError):
        return ""


def _message(error: dict[str, Any], doc: Any, root: type[BaseModel] | None = None) -> str:
    kind, loc = error["type"], error["loc"]
    context = _node_context(loc, doc) if "nodes" in loc else ""
    if kind == "extra_forbidden":
        field = str(loc[-1])
        model = _model_at(loc, doc, root)
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


def spec_error_from(error: ValidationError, doc: Any = None, source: str | None = None,
                    root: type[BaseModel] | None = None) -> SpecError:
    """A pydantic ValidationError as a SpecError with JSON locations.

    `root` is the model that was validated, when it is not a NetworkSpec or RunSpec
    (a node model built in Python): it gives the field names for 'did you mean'."""
    problems, seen = [], set()
    for item in error.errors(include_url=False):
        problem = (_one_line(format_location(item["loc"])), _one_line(_message(item, doc, root)))
        if problem not in seen:  # a str|model union reports some errors once per member
            seen.add(problem)
            problems.append(problem)
    return SpecError(problems, source)


def _one_line(text: str) -> str:
    """Control characters (and lone surrogates) escaped: a problem quoting the user's
    strings stays one printable line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _DuplicateKey(ValueError):
    def __init__(self, key: str):
        super().__init__(key)
        self.key = key


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON (numbers must be finite)")


_NOT_YAML = ("specs are JSON, not YAML (convert it: python -c \"import json, sys, yaml; "
             "print(json.dumps(yaml.safe_load(sys.stdin), indent=2))\" < spec.yaml > spec.json)")
_YAML_LINE = re.compile(r"""(---|%YAML.*|- .*|[\w$"'-][^{}\[\],]*:(\s.*)?)""")


def _looks_like_yaml(text: str, source: str | None) -> bool:
    """True for a .yaml/.yml file, or text whose first meaningful line reads as YAML
    (`key: value`, `- item`, `---`); called only on text that is not JSON."""
    if source is not None and Path(source).suffix.lower() in (".yaml", ".yml"):
        return True
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            return _YAML_LINE.fullmatch(stripped) is not None
    return False


def parse_json(text: str, source: str | None = None) -> Any:
    """JSON text -> Python objects; duplicate keys, NaN/Infinity and bad syntax are SpecErrors."""
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicate_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        if _looks_like_yaml(text, source):
            raise SpecError(_NOT_YAML, source) from None
        raise SpecError([(f"line {error.lineno}, column {error.colno}", error.msg)], source) from None
    except _DuplicateKey as error:
        raise SpecError(_one_line(f"duplicate key '{error.key}' in a JSON object"), source) from None
    except RecursionError:
        raise SpecError("the JSON document is nested too deeply", source) from None
    except ValueError as error:
        message = str(error)
        if "integer string conversion" in message:  # Python's limit on int literals (4300 digits)
            message = "a number has too many digits"
        raise SpecError(message, source) from None


def upgrade(doc: Any) -> Any:
    """Bring a spec document written by an older graphnet to the current schema version.

    Version 1 is the first; when the format changes, one function per version
    step goes here (Caffe's upgrade chain), each tested against a golden file.
    """
    if not isinstance(doc, dict):
        return doc
    version = doc.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        raise SpecError([("schema_version", f"version {version} was written by a newer graphnet; "
                                            f"this one reads up to {SCHEMA_VERSION}")])
    return doc


def _validate(model: type[BaseModel], doc: Any, source: str | None) -> Any:
    try:
        doc = upgrade(doc)
    except SpecError as error:  # upgrade() does not know the file name
        raise (error.with_source(source) if source and not error.source else error) from None
    if not isinstance(doc, dict):
        raise SpecError(f"a spec is a JSON object, got {type(doc).__name__}", source)
    try:
        return model.model_validate(doc)
    except ValidationError as error:
        raise spec_error_from(error, doc, source) from None
    except RecursionError:
        raise SpecError("the spec is nested too deeply", source) from None


def _text(doc: str | bytes, source: str | None) -> str:
    if isinstance(doc, bytes):
        try:
            return doc.decode("utf-8-sig")  # a UTF-8 byte order mark, as some editors write, is skipped
        except UnicodeDecodeError as error:
            raise SpecError(f"not UTF-8 text (byte {error.start})", source) from None
    return doc


def parse_network(doc: Any, source: str | None = None) -> NetworkSpec:
    """A dict (parsed JSON) or JSON text -> NetworkSpec, or SpecError."""
    if isinstance(doc, (str, bytes)):
        doc = parse_json(_text(doc, source), source)
    return _validate(NetworkSpec, doc, source)


def parse_run(doc: Any, source: str | None = None) -> RunSpec:
    """A dict (parsed JSON) or JSON text -> RunSpec, or SpecError."""
    if isinstance(doc, (str, bytes)):
        doc = parse_json(_text(doc, source), source)
    return _validate(RunSpec, doc, source)


def parse(doc: Any, source: str | None = None) -> RunSpec | NetworkSpec:
    """A run spec if the document has a "network" key, else a network spec."""
    if isinstance(doc, (str, bytes)):
        doc = parse_json(_text(doc, source), source)
    # Validate the decoded document directly: parse_network would take a JSON
    # string value (the document '"{...}"') for JSON text and decode it again.
    if isinstance(doc, dict) and "network" in doc:
        return _validate(RunSpec, doc, source)
    return _validate(NetworkSpec, doc, source)


def read_spec_text(path: str | Path) -> str:
    """The text of a spec file, or a SpecError naming the file."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")  # a UTF-8 byte order mark is skipped
    except FileNotFoundError:
        raise SpecError("no such file", str(path)) from None
    except IsADirectoryError:
        raise SpecError("is a folder, not a spec file", str(path)) from None
    except UnicodeDecodeError as error:
        raise SpecError(f"not UTF-8 text (byte {error.start})", str(path)) from None
    except OSError as error:
        raise SpecError(error.strerror or str(error), str(path)) from None


def zoo_specs() -> dict[str, Path]:
    """The zoo specs installed with graphnet, by name (`fashion_mlp` -> its file)."""
    here = Path(__file__).parent
    # installed: graphnet/specs/ (package data); a source checkout: specs/ beside graphnet/
    for folder in (here / "specs", here.parent / "specs"):
        if (folder / SCHEMA_FILE).is_file():
            return {path.stem: path for path in sorted(folder.glob("*.json")) if path.name != SCHEMA_FILE}
    return {}


def load(path: str | Path | Mapping[str, Any]) -> RunSpec | NetworkSpec:
    """Read a spec file: a RunSpec (network + train settings) or a NetworkSpec.

    A bare name that is not a file (`fashion_mlp`) names a zoo spec shipped with graphnet.
    A dict (a parsed JSON document) is validated as it is.
    """
    if isinstance(path, Mapping):
        return parse(dict(path))
    if not isinstance(path, (str, Path)):
        raise TypeError(f"load() takes a spec file path or a dict, got {type(path).__name__}")
    path = Path(path)
    if not path.exists() and path.parent == Path(".") and path.suffix in ("", ".json"):
        zoo = zoo_specs()
        if path.stem in zoo:
            path = zoo[path.stem]
        elif path.suffix == "":
            names = ", ".join(zoo)
            raise SpecError(f"no such file, and no zoo spec of that name{did_you_mean(path.stem, set(zoo))} "
                            f"(zoo: {names})", str(path))
    return parse(read_spec_text(path), str(path))


# ---- JSON Schema ----------------------------------------------------------------------------


class _WithDialect(GenerateJsonSchema):
    def generate(self, schema, mode="validation"):  # type: ignore[override]
        result = super().generate(schema, mode=mode)
        result["$schema"] = self.schema_dialect
        return result


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (a run spec or a network spec), for editors."""
    adapter = TypeAdapter(Union[RunSpec, NetworkSpec])
    schema = adapter.json_schema(schema_generator=_WithDialect, by_alias=True)
    schema["title"] = "graphnet spec"
    schema["description"] = "A graphnet network spec, or a run spec (network + train settings)."
    return schema


def schema_text() -> str:
    """`json_schema()` as the text written to specs/schema.json."""
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"
