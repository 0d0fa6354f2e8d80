"""The spec language: pydantic models of a network (`NetworkSpec`) and of a run
(`RunSpec`: a network plus training settings), and the functions that read them.

- `network`: the network models (InputSpec, LabelSpec, NetworkSpec);
- `run`: the run settings (DataSpec, optimizers, schedules, TrainSpec, RunSpec);
- `reading`: JSON text, files, zoo names and dicts -> validated specs;
- `schema`: the JSON Schema for editors.

A network spec is checked completely when it is constructed, from JSON or
from Python: field types and ranges, references, arity, labels, cycles and
per-example shapes (`graphnet.spec.validation`). Every problem becomes a
`SpecError` whose lines name the JSON location, e.g. `nodes[3].inputs[0]`
(`graphnet.specmodel` locates pydantic's errors).
"""
from __future__ import annotations

from ..specmodel import SpecModel, spec_error_from
from .network_spec import SCHEMA_VERSION, InputSpec, LabelSpec, NetworkSpec, Node, SchemaVersion
from .reading import (
                      SCHEMA_FILE,
                      format_location,
                      load,
                      parse,
                      parse_json,
                      parse_network,
                      parse_run,
                      read_spec_text,
                      upgrade,
                      zoo_specs,
)
from .run import (
                      OPTIMIZERS,
                      Adam,
                      AdamW,
                      AugmentSpec,
                      Constant,
                      Cosine,
                      DataSpec,
                      EarlyStopping,
                      Exponential,
                      MlflowSpec,
                      Momentum,
                      Nesterov,
                      OptimizerSpec,
                      RmsProp,
                      RunSpec,
                      ScheduleSpec,
                      Sgd,
                      StepDecay,
                      TensorBoardSpec,
                      TrainSpec,
)
from .schema import json_schema, schema_text

__all__ = [
    "OPTIMIZERS",
    "SCHEMA_FILE",
    "SCHEMA_VERSION",
    "Adam",
    "AdamW",
    "AugmentSpec",
    "Constant",
    "Cosine",
    "DataSpec",
    "EarlyStopping",
    "Exponential",
    "InputSpec",
    "LabelSpec",
    "MlflowSpec",
    "Momentum",
    "Nesterov",
    "NetworkSpec",
    "Node",
    "OptimizerSpec",
    "RmsProp",
    "RunSpec",
    "ScheduleSpec",
    "SchemaVersion",
    "Sgd",
    "SpecModel",
    "StepDecay",
    "TensorBoardSpec",
    "TrainSpec",
    "format_location",
    "json_schema",
    "load",
    "parse",
    "parse_json",
    "parse_network",
    "parse_run",
    "read_spec_text",
    "schema_text",
    "spec_error_from",
    "upgrade",
    "zoo_specs",
]
