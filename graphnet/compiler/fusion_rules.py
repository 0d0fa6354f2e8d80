"""The fusion table: which producer -> consumer pairs the compiler fuses, and into what.

The compiler's fusion passes (`graphnet.compiler.fuse`) match a node against
the producer of its first input and look the pair of ops up here; they know
no op by name. Two kinds of rule:

- "epilogue": the producer runs the consumer as its epilogue. The fused node
  keeps the producer's id (parameter names don't change), names the consumer's
  op in its `epilogue_field` and takes over the consumer's own fields
  (leaky_relu's `alpha`); it produces the consumer's value. There is one
  `producer -> op` rule for every producer whose node model has an `activation`
  field (affine, conv2d) and every op whose record has an `activation_code`, so
  a new fusable activation needs only its record (and its kernel code), and a new
  producer with a fused epilogue only its `activation` field.
- "replace": the consumer becomes `fused_op`, reading the producer's first
  input in place of the producer's output; the producer goes.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..ops import OPS


@dataclass(frozen=True)
class FusionRule:
    """One fusable producer -> consumer pair (see the module docstring)."""

    name: str  # as printed in fusion decisions
    producer: str  # op of the producer
    consumer: str  # op of the consumer
    kind: Literal["epilogue", "replace"]
    epilogue_field: str = ""  # epilogue: the producer's field naming its epilogue op
    fused_op: str = ""  # replace: the op the consumer becomes


def _epilogue_rules() -> list[FusionRule]:
    producers = [name for name, record in OPS.items() if "activation" in record.model.model_fields]
    return [FusionRule(f"{producer}+activation", producer, name, "epilogue", epilogue_field="activation")
            for producer in producers for name, record in OPS.items() if record.activation_code is not None]


def _replace_rules() -> list[FusionRule]:
    return [FusionRule("softmax+cross_entropy", "softmax", "cross_entropy", "replace",
                       fused_op="softmax_cross_entropy")]


FUSION_RULES: dict[tuple[str, str], FusionRule] = {
    (rule.producer, rule.consumer): rule for rule in _epilogue_rules() + _replace_rules()
}
