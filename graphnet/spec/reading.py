"""Reading specs: JSON text, files, zoo names and dicts to a validated `NetworkSpec`
or `RunSpec`, or a `SpecError` whose lines name the file and the JSON location."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Mapping

from pydantic import BaseModel, ValidationError

from ..errors import SpecError, did_you_mean
from ..specmodel import json_location, one_line, spec_error_from
from .network_spec import SCHEMA_VERSION, NetworkSpec
from .run import RunSpec

SCHEMA_FILE = "schema.json"


def format_location(loc: tuple[Any, ...], root: type[BaseModel] | None = None) -> str:
    """`('nodes', 3, 'affine', 'units')` -> `nodes[3].units` (the union tag dropped).

    `root` is the model validated; by default a RunSpec for a location that starts
    in one (`network`, `train`), else a NetworkSpec."""
    return json_location(loc, root or _document_model(loc))


def _document_model(loc: tuple[Any, ...]) -> type[BaseModel]:
    """RunSpec for a location under one of its own fields (`network`, `train`), else NetworkSpec."""
    first = loc[0] if loc else None
    return RunSpec if first in RunSpec.model_fields and first not in NetworkSpec.model_fields else NetworkSpec


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
        raise SpecError(one_line(f"duplicate key '{error.key}' in a JSON object"), source) from None
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
        raise spec_error_from(error, doc, source, root=model) from None
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
    here = Path(__file__).parents[1]  # the graphnet package
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
