"""The static plan: planned execution equals unplanned execution on random
DAGs (with NaN poisoning of freed buffers on), input checks, binding per
batch size, poison mode, first_nonfinite, describe() and graph_to_dot().
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphnet as gn
from graphnet import PlanError
from graphnet.compiler.describe import graph_to_dot

from tests._support import reference, strategies
from tests._support.zoo import ZOO, zoo_network


def mlp(widths=(6, 5), *, classes=3, input_shape=(4,), **layer):
    layers = [{"op": "affine", "units": w, "activation": "relu", **layer} for w in widths]
    return gn.sequential([*layers, {"op": "affine", "units": classes}], input_shape=list(input_shape),
                         classes=classes)


# ---- planned == unplanned, with freed buffers poisoned ----------------------------------------

VARIANTS = {
    "planned+poison": dict(fuse=True, share_memory=True, debug_poison=True),
    "unshared": dict(fuse=True, share_memory=False, debug_poison=False),
    "unfused+unshared": dict(fuse=False, share_memory=False, debug_poison=False),
    "unfused+planned+poison": dict(fuse=False, share_memory=True, debug_poison=True),
}


def _everything(net, inputs, labels, n_small):
    """Outputs, losses, gradients and state after a fixed sequence of calls."""
    small_inputs = {k: np.ascontiguousarray(v[:n_small]) for k, v in inputs.items()}
    small_labels = {k: np.ascontiguousarray(v[:n_small]) for k, v in labels.items()}
    result = {f"out:{o}": net.forward(inputs, output=o) for o in net.spec.outputs}
    result["eval_loss"] = net.evaluate_loss(inputs, labels, mode="eval")
    loss, grads = net.loss(inputs, labels)
    result["train_loss"] = loss
    result.update({f"grad:{k}": v for k, v in grads.items()})
    result["train_mode_loss"] = net.evaluate_loss(inputs, labels, mode="train")
    loss, grads = net.loss(small_inputs, small_labels)  # a partial batch on the same plan
    result["small_train_loss"] = loss
    result.update({f"small_grad:{k}": v for k, v in grads.items()})
    small = net.forward(small_inputs)  # every output: a dict when there are several
    small = small if isinstance(small, dict) else {net.spec.outputs[0]: small}
    result.update({f"small_out:{k}": v for k, v in small.items()})
    result.update({f"state:{k}": net.state[k].copy() for k in net.state})
    return result


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs(), n=st.integers(3, 7), seed=st.integers(0, 2**16),
       backend=st.sampled_from(["numba", "numpy"]))
def test_planned_equals_unplanned_on_random_dags(case, n, seed, backend):
    results = {}
    for variant, options in VARIANTS.items():
        net = gn.compile(case.spec, batch_size=7, dtype="float64", backend=backend, seed=seed, **options)
        assert net.plan("train").poison == options["debug_poison"]
        inputs, labels = reference.random_batch(case.spec, n, seed)
        results[variant] = _everything(net, inputs, labels, n - 1)
    expected = results["unfused+unshared"]
    for variant, got in results.items():
        assert got.keys() == expected.keys()
        for key, value in expected.items():
            assert np.all(np.isfinite(got[key])), (variant, key, got[key])
            np.testing.assert_allclose(got[key], value, rtol=1e-10, atol=1e-12, err_msg=f"{variant}: {key}")


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_zoo_planned_with_poison_equals_unplanned(path):
    spec = zoo_network(path)
    inputs, labels = reference.random_batch(spec, 5, seed=1)
    planned = _everything(gn.compile(spec, batch_size=8, dtype="float64", seed=3, debug_poison=True),
                          inputs, labels, 3)
    unplanned = _everything(gn.compile(spec, batch_size=8, dtype="float64", seed=3, share_memory=False,
                                       fuse=False), inputs, labels, 3)
    for key, value in unplanned.items():
        np.testing.assert_allclose(planned[key], value, rtol=1e-10, atol=1e-12, err_msg=key)


# ---- poison mode -----------------------------------------------------------------------------


def test_poison_mode_from_the_environment(monkeypatch):
    spec = mlp()
    monkeypatch.setenv("GRAPHNET_DEBUG_PLAN", "1")
    assert gn.compile(spec, batch_size=4).plan("train").poison
    assert not gn.compile(spec, batch_size=4, debug_poison=False).plan("train").poison
    monkeypatch.setenv("GRAPHNET_DEBUG_PLAN", "0")
    assert not gn.compile(spec, batch_size=4).plan("train").poison
    monkeypatch.delenv("GRAPHNET_DEBUG_PLAN")
    assert not gn.compile(spec, batch_size=4).plan("train").poison
    assert gn.compile(spec, batch_size=4, debug_poison=True).plan("train").poison


def dead_buffers(plan):
    """The planned buffers whose storage no step reads after some step of the plan, and whose
    bytes no buffer first written after that step reuses: NaN at the end of a poisoned run."""
    death = {}
    for buffer in plan.memory.buffers.values():
        death[buffer.storage] = max(death.get(buffer.storage, -1), buffer.last)
    buffers = plan.memory.buffers.values()
    return [key for key, b in plan.memory.buffers.items() if death[b.storage] < len(plan.schedule.steps)
            and not any(o.first > death[b.storage] and o.offset < b.offset + b.size and b.offset < o.offset + o.size
                        for o in buffers)]


def test_poison_fills_dead_buffers_with_nan_and_keeps_outputs():
    spec = mlp((8, 8, 8))
    net = gn.compile(spec, batch_size=4, dtype="float64", debug_poison=True)
    inputs, labels = reference.random_batch(spec, 4)
    loss = net.step(inputs, labels)
    assert np.isfinite(loss)
    plan = net.plan("train")
    assert dead_buffers(plan), "this plan frees no buffer before its end"
    for kind, name in dead_buffers(plan):
        assert np.isnan(plan.buffer_view(kind, name, 4)).all(), f"{kind} {name} was not poisoned"
    assert all(np.isfinite(net.grads[k]).all() for k in net.grads)
    # every network output of the inference plan survives its run (kept alive, never poisoned)
    scores = net.forward(inputs)
    infer = net.plan("infer")
    assert dead_buffers(infer) or len(infer.steps) <= 2
    for kind, name in dead_buffers(infer):
        assert np.isnan(infer.buffer_view(kind, name, 4)).all(), f"{kind} {name} was not poisoned"
    for name in spec.outputs:
        assert np.isfinite(infer.output(name, 4)).all()
    assert np.isfinite(scores).all()


def test_poison_exposes_a_buffer_freed_too_early():
    """What poison mode is for (MXNet #16553): a liveness bug gives NaN, not silently wrong numbers."""
    spec = mlp((8, 8))
    inputs, labels = reference.random_batch(spec, 4)
    honest, wrong = (gn.compile(spec, batch_size=4, dtype="float64", debug_poison=True) for _ in range(2))
    assert np.isfinite(honest.step(inputs, labels))
    assert all(np.isfinite(honest.grads[k]).all() for k in honest.grads)
    # Pretend the planner thought the first hidden activation died right after it was written
    # (before the plan's first run binds its steps).
    buffer = wrong.plan("train").memory.buffers[("value", "affine1")]
    assert buffer.last > buffer.first + 1  # read again later (by the next layer and by backward)
    buffer.last = buffer.first
    wrong.step(inputs, labels)
    assert not all(np.isfinite(wrong.grads[k]).all() for k in wrong.grads)


# ---- binding per batch size ------------------------------------------------------------------


def test_partial_batch_reuses_the_plan_and_binds_once_per_size():
    spec = mlp()
    net = gn.compile(spec, batch_size=8, dtype="float32", seed=0)
    inputs, labels = reference.random_batch(spec, 8, dtype=np.float32)
    net.step(inputs, labels)
    plan = net.plan("train")
    compiled, bound = net.stats.plans_compiled, plan.bound_counts
    assert bound == 1
    for n in (5, 5, 3, 5, 3, 8, 1, 1):
        part_x = {k: np.ascontiguousarray(v[:n]) for k, v in inputs.items()}
        part_y = {k: np.ascontiguousarray(v[:n]) for k, v in labels.items()}
        net.step(part_x, part_y)
    assert net.stats.plans_compiled == compiled
    assert net.plan("train") is plan
    assert plan.bound_counts == bound + 3  # 5, 3 and 1 (8 was bound already)
    assert net.stats.replans == []


def test_partial_batch_results_equal_a_plan_of_that_capacity():
    spec = mlp()
    big = gn.compile(spec, batch_size=8, dtype="float64", seed=0)
    exact = gn.compile(spec, batch_size=3, dtype="float64", seed=0)
    inputs, labels = reference.random_batch(spec, 3, dtype=np.float64)
    a_loss, a_grads = big.loss(inputs, labels)
    b_loss, b_grads = exact.loss(inputs, labels)
    assert a_loss == pytest.approx(b_loss, rel=1e-12)
    for k in a_grads:
        np.testing.assert_allclose(a_grads[k], b_grads[k], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(big.forward(inputs), exact.forward(inputs), rtol=1e-12)


def test_larger_batch_compiles_a_bigger_plan_and_records_why(caplog):
    spec = mlp()
    net = gn.compile(spec, batch_size=4, dtype="float32", seed=0)
    inputs, labels = reference.random_batch(spec, 10, dtype=np.float32)
    small_x = {k: np.ascontiguousarray(v[:4]) for k, v in inputs.items()}
    small_y = {k: np.ascontiguousarray(v[:4]) for k, v in labels.items()}
    net.step(small_x, small_y)
    assert net.stats.plans_compiled == 1 and net.stats.replans == []
    with caplog.at_level("INFO", logger="graphnet"):
        net.step(inputs, labels)
    assert net.stats.plans_compiled == 2
    assert len(net.stats.replans) == 1
    reason = net.stats.replans[0]
    assert "10" in reason and "4" in reason and "train" in reason, reason
    assert any(reason in record.getMessage() for record in caplog.records)
    big = net.plan("train", 10)
    assert big.capacity == 10
    # the same large batch again, and small batches: no more plans
    net.step(inputs, labels)
    net.step(small_x, small_y)
    assert net.stats.plans_compiled == 2 and len(net.stats.replans) == 1


def test_forward_of_a_large_batch_runs_in_chunks_without_replanning():
    spec = mlp()
    net = gn.compile(spec, batch_size=4, dtype="float64", seed=0)
    inputs, _ = reference.random_batch(spec, 11)
    chunked = net.forward(inputs)
    assert chunked.shape == (11, 3)
    assert net.stats.replans == []
    rows = np.concatenate([net.forward({"x": np.ascontiguousarray(inputs["x"][i:i + 1])}) for i in range(11)])
    np.testing.assert_allclose(chunked, rows, rtol=1e-12)


def test_planned_views_are_aligned():
    spec = mlp((5, 7, 3))
    for dtype in ("float32", "float64"):
        net = gn.compile(spec, batch_size=3, dtype=dtype)
        plan = net.plan("train")
        for n in (3, 1):
            for kind, name in plan.memory.buffers:
                array = plan.buffer_view(kind, name, n)
                assert array.ctypes.data % 64 == 0
                assert array.flags.c_contiguous
                assert array.shape[0] == n


# ---- input checks ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checked_net():
    spec = gn.parse_network({
        "name": "two_inputs",
        "inputs": {"img": {"shape": [2, 3]}, "meta": {"shape": [2]}},
        "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "flat", "op": "flatten", "inputs": ["img"]},
                  {"id": "joined", "op": "concat", "inputs": ["flat", "meta"]},
                  {"id": "fc", "op": "affine", "inputs": ["joined"], "units": 3},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc", "y"]}],
        "outputs": ["fc"], "loss": "loss"})
    return gn.compile(spec, batch_size=4, dtype="float32")


def good_batch(n=3):
    rng = np.random.default_rng(0)
    return ({"img": rng.standard_normal((n, 2, 3)).astype(np.float32),
             "meta": rng.standard_normal((n, 2)).astype(np.float32)},
            {"y": rng.integers(0, 3, n)})


def test_good_batch_runs(checked_net):
    inputs, labels = good_batch()
    assert np.isfinite(checked_net.step(inputs, labels))
    assert checked_net.forward(inputs).shape == (3, 3)


@pytest.mark.parametrize("mutate, pattern", [
    (lambda x, y: x.update(img=x["img"].astype(object)), r"'img'.*numbers \(float32\).*object"),
    (lambda x, y: x.update(img=x["img"].astype(str)), r"'img'.*numbers \(float32\).*strings"),
    (lambda x, y: x.update(img=x["img"].reshape(3, 3, 2)), r"'img'.*\(N, 2, 3\).*\(3, 3, 2\)"),
    (lambda x, y: x.update(img=x["img"].reshape(3, 6)), r"'img'.*\(N, 2, 3\).*\(3, 6\)"),
    (lambda x, y: x.update(meta=np.asfortranarray(x["meta"])), r"'meta'.*C-contiguous"),
    (lambda x, y: x.update(meta=np.zeros((6, 2), np.float32)[::2]), r"'meta'.*C-contiguous"),
    (lambda x, y: x.pop("meta"), r"missing input 'meta'"),
    (lambda x, y: x.update(meta=x["meta"][:2]), r"'meta' has 2 rows.*3"),
    (lambda x, y: x.update(meta=x["meta"].tolist()), r"'meta'.*float32 array.*list"),
    (lambda x, y: (x.update(img=x["img"][:0]), x.update(meta=x["meta"][:0]), y.update(y=y["y"][:0])),
     r"empty"),
    (lambda x, y: y.update(y=np.array([0, 1, 3])), r"'y'.*\[0, 3\).*\[0, 3\]"),
    (lambda x, y: y.update(y=np.array([-1, 1, 2])), r"'y'.*\[0, 3\).*-1"),
    (lambda x, y: y.update(y=y["y"].astype(str)), r"'y'.*integers.*strings"),
    (lambda x, y: y.update(y=y["y"].astype(np.float32)), r"'y'.*integers, got float32.*astype\(np.int64\)"),
    (lambda x, y: y.update(y=y["y"][:2]), r"'y'.*\(3,\).*\(2,\)"),
    (lambda x, y: y.update(y=np.zeros(6, np.int64)[::2]), r"'y'.*C-contiguous"),
    (lambda x, y: y.pop("y"), r"missing labels 'y'"),
], ids=["object", "str", "shape", "rank", "fortran", "strided", "missing", "rows", "list", "empty",
        "label-too-big", "label-negative", "label-str", "label-float", "label-rows", "label-strided",
        "label-missing"])
def test_bad_batches_raise_plan_errors(checked_net, mutate, pattern):
    inputs, labels = good_batch()
    mutate(inputs, labels)
    params = checked_net.store.values.copy()
    for call in (lambda: checked_net.step(inputs, labels),
                 lambda: checked_net.evaluate_loss(inputs, labels),
                 lambda: checked_net.plan("train").run(inputs, labels)):
        with pytest.raises(PlanError, match=pattern):
            call()
    np.testing.assert_array_equal(checked_net.store.values, params)
    if not pattern.startswith("'y'") and "labels" not in pattern:  # forward takes no labels
        with pytest.raises(PlanError, match=pattern):
            checked_net.forward(inputs)


def test_non_arrays_and_missing_inputs_raise_plan_errors():
    """Bug found by these tests: step/evaluate_loss/forward read X.shape before the
    plan checked X, so a list gave AttributeError, {} StopIteration, a scalar IndexError."""
    net = gn.compile(mlp(), batch_size=4, dtype="float32")
    y = np.zeros(2, np.int64)
    calls = {
        "step": lambda X: net.step(X, y),
        "evaluate_loss": lambda X: net.evaluate_loss(X, y),
        "first_nonfinite": lambda X: net.first_nonfinite(X, y),
        "forward": lambda X: net.forward(X),
    }
    for name, call in calls.items():
        with pytest.raises(PlanError, match=r"'x'.*float32 array.*got list"):
            call([[0.0] * 4, [1.0] * 4])
        with pytest.raises(PlanError, match=r"missing input 'x'"):
            call({})
        with pytest.raises(PlanError, match=r"'x'.*float32 array"):
            call(np.float32(1.0))
        with pytest.raises(PlanError, match=r"'x'.*\(N, 4\).*\(4,\)"):
            call(np.zeros(4, np.float32))


def test_batch_over_capacity_is_checked_by_the_plan(checked_net):
    inputs, labels = good_batch(6)
    with pytest.raises(PlanError, match=r"6.*capacity 4"):
        checked_net.plan("train").check_batch(inputs, labels)


def test_plan_error_is_a_value_error():
    assert issubclass(PlanError, ValueError) and issubclass(PlanError, gn.GraphnetError)


def test_float_targets_are_checked():
    spec = gn.sequential([{"op": "affine", "units": 2}], input_shape=[3], loss="mse")
    net = gn.compile(spec, batch_size=4, dtype="float32")
    X = np.zeros((3, 3), np.float32)
    assert net.step(X, np.zeros((3, 2), np.float32)) == 0.0
    assert net.step(X, np.zeros((3, 2))) == 0.0  # float64 targets are converted
    with pytest.raises(PlanError, match=r"'y'.*\(3, 2\).*\(3, 5\)"):
        net.step(X, np.zeros((3, 5), np.float32))
    with pytest.raises(PlanError, match=r"'y'"):
        net.step(X, np.zeros((2, 2), np.float32))


# ---- first_nonfinite ---------------------------------------------------------------------------


def test_first_nonfinite_names_the_node():
    spec = mlp((5, 4))
    net = gn.compile(spec, batch_size=4, dtype="float64")
    inputs, labels = reference.random_batch(spec, 4)
    assert net.first_nonfinite(inputs, labels) is None
    net.params["affine2.W"][0, 0] = np.inf
    with np.errstate(invalid="ignore", over="ignore"):
        assert net.first_nonfinite(inputs, labels) == "affine2"
    bad = {"x": inputs["x"].copy()}
    bad["x"][1, 2] = np.nan
    assert net.first_nonfinite(bad, labels) == "input 'x'"


# ---- describe and DOT --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
@pytest.mark.parametrize("kind", ["train", "infer"])
def test_describe_lists_every_step_buffer_and_bytes(path, kind):
    net = gn.compile(zoo_network(path), batch_size=16, dtype="float32")
    plan = net.plan(kind)
    text = plan.describe()
    assert text == net.describe(kind)
    lines = text.splitlines()
    assert lines[0].startswith(f"plan '{net.graph.name}'") and "capacity 16" in lines[0]
    step_rows = [line for line in lines if re.match(r"^\s+\d+\s+(fwd|bwd|post)\s", line)]
    assert len(step_rows) == len(plan.steps)
    for t, (row, step) in enumerate(zip(step_rows, plan.steps)):
        assert row.split()[0] == str(t)
        assert step.node in row and step.kernel in row
    assert "buffers" in text
    for buffer in plan.memory.buffers.values():
        assert any(line.split()[:2] == [buffer.label, buffer.key[0]] for line in lines), buffer.label
    memory_line = next(line for line in lines if line.startswith("memory:"))
    assert "planned vs" in memory_line and "naive" in memory_line
    assert plan.arena_bytes() >= plan.memory.arena_size * plan.capacity * 4
    assert plan.naive_bytes() == plan.memory.naive_size() * 16 * 4
    assert plan.memory.arena_size <= plan.memory.naive_size() + 16 * len(plan.memory.buffers)
    if kind == "train":
        assert "fwd" in text and "bwd" in text


def test_describe_shows_fusion_decisions_and_inplace_marks():
    spec = gn.parse_network({
        "name": "decisions", "inputs": {"x": {"shape": [4]}}, "labels": {"y": {"classes": 3}},
        "nodes": [{"id": "fc1", "op": "affine", "inputs": ["x"], "units": 5},
                  {"id": "h1", "op": "relu", "inputs": ["fc1"]},
                  {"id": "fc2", "op": "affine", "inputs": ["h1"], "units": 5},
                  {"id": "h2", "op": "tanh", "inputs": ["fc2"]},
                  {"id": "bn", "op": "batchnorm", "inputs": ["h2"]},
                  {"id": "h3", "op": "relu", "inputs": ["bn"]},
                  {"id": "sum", "op": "add", "inputs": ["h3", "fc2"]},
                  {"id": "fc3", "op": "affine", "inputs": ["sum"], "units": 3},
                  {"id": "loss", "op": "softmax_cross_entropy", "inputs": ["fc3", "y"]}],
        "outputs": ["fc3"], "loss": "loss"})
    text = gn.compile(spec, batch_size=4).describe("train")
    assert "affine+activation: fc1 + h1 fused" in text
    assert "affine+activation: fc2 + h2 not fused ('fc2' has 2 readers)" in text
    assert "in place (" in text


def test_graph_to_dot_is_valid_looking_and_names_every_node():
    for path in ZOO:
        net = gn.compile(zoo_network(path), batch_size=2)
        dot = graph_to_dot(net.graph)
        assert dot.startswith("digraph ") and dot.rstrip().endswith("}")
        assert dot.count("{") == dot.count("}") == 1
        for node in net.graph.nodes:
            assert f'"{node.id}" [label=' in dot
            for ref in node.inputs:
                assert f'"{ref}" -> "{node.id}";' in dot
        for name in [*net.graph.inputs, *net.graph.labels]:
            assert f'"{name}" [label=' in dot
        assert all(line.rstrip().endswith((";", "{", "}")) for line in dot.strip().splitlines())


def test_graph_to_dot_quotes_awkward_names():
    spec = gn.parse_network({
        "name": 'na"me', "inputs": {"x": {"shape": [3]}},
        "nodes": [{"id": "größe-1", "op": "affine", "inputs": ["x"], "units": 2}], "outputs": ["größe-1"]})
    dot = graph_to_dot(gn.compile(spec, batch_size=2).graph)
    assert 'digraph "na\\"me" {' in dot
    assert '"größe-1" [label=' in dot


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.int64, np.int8, np.uint8, bool])
def test_numeric_inputs_of_another_dtype_are_converted(checked_net, dtype):
    inputs, labels = good_batch()
    exact = {k: v.astype(dtype).astype(np.float32) for k, v in inputs.items()}
    expected_forward, expected_loss = checked_net.forward(exact), checked_net.evaluate_loss(exact, labels)
    given = {k: v.astype(dtype) for k, v in inputs.items()}
    np.testing.assert_array_equal(checked_net.forward(given), expected_forward)
    assert checked_net.evaluate_loss(given, labels) == expected_loss
    assert given["img"].dtype == dtype  # the caller's arrays are not changed


@pytest.mark.parametrize("dtype", [np.int8, np.int16, np.int32, np.uint8, np.uint16, np.uint32, np.uint64])
def test_class_labels_of_any_integer_dtype_are_accepted(checked_net, dtype):
    inputs, labels = good_batch()
    expected = checked_net.evaluate_loss(inputs, labels)
    assert checked_net.evaluate_loss(inputs, {"y": labels["y"].astype(dtype)}) == expected
    assert np.isfinite(checked_net.step(inputs, {"y": labels["y"].astype(dtype)}))


def test_float64_values_beyond_float32_are_refused_not_made_infinite(checked_net):
    inputs, _ = good_batch()
    inputs = {k: v.astype(np.float64) for k, v in inputs.items()}
    inputs["meta"][1, 0] = 1e300
    with pytest.raises(PlanError, match=r"input 'meta': 1e\+300 does not fit in float32"):
        checked_net.forward(inputs)


def test_the_dtype_hint_is_one_that_works():
    """The hint used to suggest compile(dtype='int64'), which compile refuses."""
    net = gn.compile(mlp(), batch_size=4, dtype="float32")
    with pytest.raises(PlanError) as info:
        net.plan("infer").check_batch({"x": np.zeros((2, 4), np.int64)}, None)
    assert "dtype='int64'" not in str(info.value) and "X.astype(np.float32)" in str(info.value)


def test_describe_shows_the_conv_steps_and_their_workspaces():
    """The im2col patches are planned buffers: kept for the weight gradient in training, alive for
    their one step in inference (sharing the arena); backward's dcols lives in its step only."""
    net = gn.compile(zoo_network("specs/fashion_cnn.json"), batch_size=8)
    train = net.plan("train").describe()
    assert re.search(r"conv2\s+conv 3x3 pad 1,1,1,1: im2col\+matmul\+channel_bias_act", train)
    assert re.search(r"~conv2\.cols\s+saved\s+56448\s+4\.\.\d+\s", train)  # 14*14 positions x 32*3*3, kept
    assert re.search(r"~conv2\.dcols\s+saved\s+56448\s+(\d+)\.\.\1\s", train)
    assert "conv backward: act_channel_bias_backward[identity]+matmul+matmul+col2im" in train
    infer = net.plan("infer")
    assert re.search(r"~conv2\.cols\s+saved\s+56448\s+(\d+)\.\.\1\s", infer.describe())
    assert infer.memory.arena_size < infer.memory.naive_size()
