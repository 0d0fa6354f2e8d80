"""Pass 2, lowering and autodiff (graphnet.compiler.autodiff): the reverse
schedule, gradient accumulation of shared values, pruning, and what is kept.
"""
from __future__ import annotations

import numpy as np
import pytest
from graphnet.kernels import get_backend

import graphnet as gn
from graphnet.compiler import fuse, lower, plan_memory
from graphnet.compiler.graph import build_graph
from graphnet.ops.lowering import Ref
from graphnet.ops.target import Target

from tests._support import reference
from tests._support.compiler_specs import affine, network, node, residual_spec


def lowered(spec, mode="train", *, with_loss=True, with_backward=True, fused=True):
    graph = build_graph(spec)
    if fused:
        graph = fuse(graph).graph
    return lower(graph, mode, Target(get_backend("numpy"), np.dtype(np.float64)), np.random.default_rng(0),
                 with_loss=with_loss, with_backward=with_backward)


def test_backward_schedule_is_the_reverse_of_forward():
    schedule = lowered(residual_spec())
    forward = [s.node for s in schedule.steps[:schedule.n_forward]]
    assert forward == ["stem", "f1", "f2", "sum", "out", "head", "loss"]
    backward = [s.node for s in schedule.steps[schedule.n_forward:] if not s.kernel.startswith("add_into")]
    order = [n for i, n in enumerate(backward) if i == 0 or backward[i - 1] != n]
    assert order == ["head", "out", "sum", "f2", "f1", "stem"]
    assert schedule.backward and schedule.loss == "loss"


def test_gradient_of_a_value_with_several_readers_is_accumulated():
    schedule = lowered(residual_spec())
    adds = [s for s in schedule.steps if s.kernel.startswith("add_into")]
    # stem is read by f1 and sum: one accumulation into dstem
    assert len(adds) == 1
    whole, part = adds[0].args
    assert whole == Ref("grad", "stem", (5,)) and part.kind == "grad" and part.name.startswith("stem#")
    # the part is written by an earlier backward step (f1's), then added into the whole
    index = schedule.steps.index(adds[0])
    writers = [s for s in schedule.steps[:index] if any(j in s.writes and ref == part for j, ref in enumerate(s.args))]
    assert [s.node for s in writers] == ["f1"]


def test_value_read_three_times_gets_two_accumulations():
    spec = network([affine("fc", "x", 5), node("s", "add", "fc", "fc", "fc"), affine("head", "s", 3)],
                   ["head"], loss_inputs=["head", "y"])
    schedule = lowered(spec)
    adds = [s for s in schedule.steps if s.kernel.startswith("add_into")]
    assert len(adds) == 2
    assert {s.args[0] for s in adds} == {Ref("grad", "fc", (5,))}


@pytest.mark.filterwarnings("ignore::graphnet.SpecWarning")  # the dead nodes are the point here
def test_nodes_no_target_needs_are_pruned_and_their_gradients_zeroed():
    with pytest.warns(gn.SpecWarning, match="'unused' .* is not connected"):
        spec = network([affine("fc", "x", 5, activation="relu"), affine("unused", "fc", 4),
                        node("dead", "tanh", "unused"), affine("head", "fc", 3)], ["head"],
                       loss_inputs=["head", "y"])
    schedule = lowered(spec)
    assert {s.node for s in schedule.steps} == {"fc", "head", "loss"}
    net = gn.compile(spec, batch_size=4, dtype="float64")
    inputs, labels = reference.random_batch(spec, 4)
    net.grads["unused.W"][...] = 7.0
    net.grads["unused.b"][...] = 7.0
    net.step(inputs, labels)
    assert not net.grads["unused.W"].any() and not net.grads["unused.b"].any()
    assert net.grads["fc.W"].any()


def test_values_upstream_of_every_parameter_get_no_gradient():
    spec = network([node("r", "relu", "x"), node("t", "tanh", "r"), affine("head", "t", 3)], ["head"],
                   loss_inputs=["head", "y"])
    schedule = lowered(spec)
    grads = {ref.name for s in schedule.steps for ref in s.args if ref is not None and ref.kind == "grad"}
    assert grads == {"head"}
    assert [s.node for s in schedule.steps[schedule.n_forward:]] == ["head"]


def test_values_not_needed_by_backward_are_not_kept():
    spec = network([affine("fc", "x", 6, bias=False), node("bn", "batchnorm", "fc"), node("h", "relu", "bn"),
                    affine("head", "h", 3)], ["head"], loss_inputs=["head", "y"])
    schedule = lowered(spec)
    memory = plan_memory(schedule.steps, {("value", "head")})
    # batchnorm's backward reads its saved xhat, not its input: fc dies in the forward pass
    assert memory.buffers[("value", "fc")].last < schedule.n_forward


def test_eval_schedules_have_no_backward_and_backward_needs_train_mode():
    spec = residual_spec()
    schedule = lowered(spec, "eval", with_backward=False)
    assert schedule.n_forward == len(schedule.steps)
    assert not any(ref.kind == "grad" for s in schedule.steps for ref in s.args if ref is not None
                   and s.node != "loss")
    infer = lowered(spec, "eval", with_loss=False, with_backward=False)
    assert "loss" not in {s.node for s in infer.steps} and infer.loss is None
    with pytest.raises(ValueError, match="backward"):
        lowered(spec, "eval", with_backward=True)
    with pytest.raises(ValueError, match="backward"):
        lowered(spec, "train", with_loss=False, with_backward=True)


def test_view_ops_cost_no_steps():
    spec = network([node("f", "flatten", "x"), node("i", "identity", "f"), node("d", "dropout", "i", rate=0.3),
                    affine("head", "d", 3)], ["head"], input_shape=(2, 2), loss_inputs=["head", "y"])
    eval_schedule = lowered(spec, "eval", with_backward=False)
    assert [s.node for s in eval_schedule.steps] == ["head", "loss"]
    assert eval_schedule.steps[0].args[0] == Ref("input", "x", (4,))
    train = lowered(spec, "train")
    assert "d" in {s.node for s in train.steps}  # dropout with rate > 0 runs in train mode only
