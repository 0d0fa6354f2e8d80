"""The JSON Schema of a spec file (`graphnet schema`, specs/schema.json), for editors."""
from __future__ import annotations

import json
from typing import Any, Union

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from .network_spec import NetworkSpec
from .run import RunSpec


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
