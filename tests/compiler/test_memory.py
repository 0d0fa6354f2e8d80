"""Pass 3, memory planning (graphnet.compiler.memory): liveness, reuse, best fit,
alignment, keep-alive and in-place merges on hand-built step lists, then the
memory of real networks and of random DAGs.
"""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings

import graphnet as gn
from graphnet.compiler import ALIGN, PLANNED_KINDS, Buffer, merge_inplace, plan_memory
from graphnet.ops.lowering import Ref, Step

from tests._support import strategies
from tests._support.compiler_specs import affine, network, node, residual_spec

LINE = ALIGN // 4  # elements per alignment unit (offsets are in elements per example)


def _noop(*arrays):
    pass


def V(name, size=16, kind="value"):
    return Ref(kind, name, (size,))


def step(name, reads=(), writes=(), inplace=(), fn_inplace=None):
    args = tuple(reads) + tuple(writes)
    return Step(name, "k", _noop, args, writes=frozenset(range(len(reads), len(args))), inplace=inplace,
                fn_inplace=fn_inplace)


def test_liveness_intervals():
    a, b, c = V("a"), V("b"), V("c", kind="grad")
    steps = [step("s0", [Ref("input", "x", (16,))], [a]), step("s1", [a], [b]), step("s2", [b], [c]),
             step("s3", [a, c], [])]
    memory = plan_memory(steps, set())
    spans = {key: (buf.first, buf.last) for key, buf in memory.buffers.items()}
    assert spans == {("value", "a"): (0, 3), ("value", "b"): (1, 2), ("grad", "c"): (2, 3)}
    assert memory.naive_size() == 48


def test_buffers_reuse_storage_after_their_last_use():
    a, b, c, d = V("a"), V("b"), V("c"), V("d")
    steps = [step("s0", [], [a]), step("s1", [a], [b]), step("s2", [b], [c]), step("s3", [c], [d])]
    memory = plan_memory(steps, set())
    off = {key[1]: buf.offset for key, buf in memory.buffers.items()}
    assert off["a"] != off["b"] and off["b"] != off["c"] and off["c"] != off["d"]
    assert off["c"] == off["a"] and off["d"] == off["b"]  # ping-pong
    assert memory.arena_size == 32


def test_best_fit_picks_the_smallest_free_block():
    big, sep, small, late = V("big", 64), V("sep", 16), V("small", 16), V("late", 16)
    steps = [
        step("s0", [], [big, sep]),
        step("s1", [big], [small]),
        step("s2", [small], []),
        step("s3", [sep], [late]),  # big [0, 64) and small [80, 96) are free; sep sits between them
        step("s4", [late, sep], []),
    ]
    memory = plan_memory(steps, set())
    off = {key[1]: buf.offset for key, buf in memory.buffers.items()}
    assert off == {"big": 0, "sep": 64, "small": 80, "late": 80}  # first fit would say 0
    assert memory.arena_size == 96


def test_freed_neighbours_merge_into_one_block():
    a, b, c = V("a", 16), V("b", 16), V("c", 32)
    steps = [step("s0", [], [a, b]), step("s1", [a, b], []), step("s2", [], [c]), step("s3", [c], [])]
    memory = plan_memory(steps, set())
    assert memory.buffers[("value", "c")].offset == 0
    assert memory.arena_size == 32


def test_offsets_are_aligned_to_cache_lines():
    a, b, c = V("a", 1), V("b", 3), V("c", LINE + 1)
    memory = plan_memory([step("s0", [], [a, b, c]), step("s1", [a, b, c], [])], set())
    offsets = sorted(buf.offset for buf in memory.buffers.values())
    assert all(o % LINE == 0 for o in offsets)
    assert offsets == [0, LINE, 2 * LINE]
    assert memory.arena_size == 4 * LINE


def test_keep_alive_buffers_are_never_reused():
    a, b, c = V("a"), V("b"), V("c")
    steps = [step("s0", [], [a]), step("s1", [a], [b]), step("s2", [b], [c])]
    shared = plan_memory(steps, set())
    assert shared.buffers[("value", "c")].offset == shared.buffers[("value", "a")].offset
    kept = plan_memory(steps, {("value", "a"), ("value", "missing")})
    assert kept.buffers[("value", "a")].last == len(steps)
    offs = [buf.offset for buf in kept.buffers.values()]
    assert len(set(offs)) == 3


def test_share_false_gives_every_buffer_its_own_storage():
    a, b, c = V("a"), V("b", 5), V("c")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),)), step("s2", [b], [c], inplace=((0, 1),))]
    memory = plan_memory(steps, set(), share=False)
    assert len({buf.offset for buf in memory.buffers.values()}) == 3
    assert memory.arena_size == 3 * LINE
    assert memory.inplace_pairs == [] and memory.merged_steps == set()


def test_inplace_pair_merges_when_the_input_dies_there():
    a, b, c = V("a"), V("b"), V("c")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),)), step("s2", [b], [c], inplace=((0, 1),)),
             step("s3", [c], [])]
    memory = plan_memory(steps, set())
    bufs = memory.buffers
    assert bufs[("value", "a")].storage == bufs[("value", "b")].storage == bufs[("value", "c")].storage
    assert bufs[("value", "a")].offset == bufs[("value", "c")].offset
    assert memory.inplace_pairs == [(1, "a", "b"), (2, "b", "c")]
    assert memory.merged_steps == {1, 2}
    assert memory.arena_size == LINE


def test_inplace_pair_not_merged_while_the_input_is_read_later():
    a, b = V("a"), V("b")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),)), step("s2", [a, b], [])]
    memory = plan_memory(steps, set())
    assert memory.buffers[("value", "a")].storage != memory.buffers[("value", "b")].storage
    assert memory.buffers[("value", "a")].offset != memory.buffers[("value", "b")].offset
    assert memory.inplace_pairs == [] and memory.merged_steps == set()


def test_inplace_pair_not_merged_for_a_kept_output_or_different_sizes():
    a, b = V("a"), V("b")
    steps = [step("s0", [], [a]), step("s1", [a], [b], inplace=((0, 1),))]
    assert plan_memory(steps, {("value", "a")}).inplace_pairs == []
    a8 = V("a", 8)
    steps = [step("s0", [], [a8]), step("s1", [a8], [b], inplace=((0, 1),))]
    assert plan_memory(steps, set()).inplace_pairs == []


def test_inplace_pair_not_merged_when_another_argument_reads_the_same_storage():
    """Bug found by these tests: add(a, a, a) merged its output into a, then its
    second accumulation read the already-overwritten a (4a instead of 3a)."""
    a, b = V("a"), V("b")
    steps = [step("s0", [], [a]), step("s1", [a, a, a], [b], inplace=((0, 3),))]
    memory = plan_memory(steps, set())
    assert memory.inplace_pairs == [] and memory.merged_steps == set()
    assert memory.buffers[("value", "a")].offset != memory.buffers[("value", "b")].offset


def test_merge_inplace_groups_storage_before_any_offset_is_assigned():
    """The in-place merging alone: a chain a -> b -> c of in-place steps becomes one
    storage group; d, read again after its in-place step, keeps its own."""
    a, b, c, d, e = V("a"), V("b"), V("c"), V("d"), V("e")
    steps = [step("s0", [], [a, d]), step("s1", [a], [b], inplace=((0, 1),)), step("s2", [b], [c], inplace=((0, 1),)),
             step("s3", [d], [e], inplace=((0, 1),)), step("s4", [c, d, e], [])]
    lifetimes = {"a": (0, 1), "b": (1, 2), "c": (2, 4), "d": (0, 4), "e": (3, 4)}
    buffers = {("value", name): Buffer(("value", name), 16, first, last) for name, (first, last) in lifetimes.items()}
    merges = merge_inplace(steps, buffers)
    assert sorted(merges.members.values()) == [[("value", "a"), ("value", "b"), ("value", "c")],
                                               [("value", "d")], [("value", "e")]]
    assert merges.merged_steps == {1, 2} and merges.pairs == [(1, "a", "b"), (2, "b", "c")]
    assert all(buffer.storage == -1 and buffer.offset == 0 for buffer in buffers.values())


def test_fn_inplace_used_when_merged():
    """A copy whose source and target share storage becomes a no-op (add's backward)."""
    a, b = V("a", kind="grad"), V("b", kind="grad")
    steps = [step("s0", [], [a]),
             Step("s1", "copy", _noop, (b, a), writes=frozenset({0}), inplace=((1, 0),), fn_inplace=print)]
    memory = plan_memory(steps, set())
    assert 1 in memory.merged_steps and memory.inplace_pairs == [(1, "da", "db")]
    # in a real plan: the last gradient copy of an add is planned away
    net = gn.compile(residual_spec(), batch_size=4)
    plan = net.plan("train")
    merged = [t for t in plan.memory.merged_steps if plan.steps[t].fn_inplace is not None]
    assert merged
    bound = plan.bind(4).steps
    fns = [fn for fn, _, _ in bound]
    for t in merged:
        assert plan.steps[t].fn_inplace in fns
    assert ", no-op" in plan.describe()


def test_unplanned_kinds_are_ignored_and_size_mismatch_is_an_error():
    steps = [step("s0", [Ref("input", "x", (3,)), Ref("param", "fc.W", (3, 4)), Ref("label", "y", ())],
                  [V("a", 4), Ref("param_grad", "fc.W", (3, 4)), Ref("fixed", "n.s", (4,))])]
    memory = plan_memory(steps, set())
    assert list(memory.buffers) == [("value", "a")]
    with pytest.raises(AssertionError, match="sizes"):
        plan_memory([step("s0", [], [V("a", 4)]), step("s1", [V("a", 5)], [])], set())


# ---- memory of real networks ------------------------------------------------------------------


def chain(widths, *, activation="relu"):
    layers = [{"op": "affine", "units": w, "activation": activation} for w in widths]
    return gn.sequential([*layers, {"op": "affine", "units": 10}], input_shape=[32], classes=10)


def _aligned(size):
    return -(-size // LINE) * LINE


def test_inference_plan_of_a_ten_layer_mlp_ping_pongs_two_regions():
    net = gn.compile(chain([64] * 10), batch_size=16)
    memory = net.plan("infer").memory
    assert len(memory.buffers) == 11
    assert len({buf.offset for buf in memory.buffers.values()}) == 2
    assert memory.arena_size == 2 * _aligned(64)
    assert memory.arena_size * 5 < memory.naive_size()


def test_inference_plan_of_a_ten_layer_mlp_of_mixed_widths_needs_two_layers_of_memory():
    widths = [32, 64, 48, 100, 16, 80, 64, 8, 128, 40]
    memory = gn.compile(chain(widths), batch_size=16).plan("infer").memory
    assert memory.arena_size <= 2 * _aligned(max(widths))
    # at most 3 regions alive at any step, and never more than what two adjacent layers need
    for t in range(len(widths) + 1):
        alive = [b for b in memory.buffers.values() if b.first <= t <= b.last]
        assert len(alive) <= 3


def test_deep_chain_plans_well_below_the_naive_sum():
    net = gn.compile(chain([64] * 16), batch_size=32)
    train = net.plan("train").memory
    assert train.arena_size <= 0.62 * train.naive_size()
    for kind in ("infer", "eval_loss", "train_loss"):
        memory = net.plan(kind).memory
        assert memory.arena_size <= 3 * _aligned(64), kind
    plan = net.plan("train")
    assert plan.arena_bytes() < plan.naive_bytes()


def test_declared_inplace_pairs_are_used_where_safe():
    spec = network([affine("fc", "x", 6, bias=False), node("bn", "batchnorm", "fc"), node("h", "relu", "bn"),
                    node("d", "dropout", "h", rate=0.5), affine("head", "d", 3)], ["head"],
                   loss_inputs=["head", "y"])
    memory = gn.compile(spec, batch_size=4).plan("train").memory
    pairs = {(read, write) for _, read, write in memory.inplace_pairs}
    assert ("fc", "bn") in pairs  # batchnorm over its input (fc is not read by backward)
    assert ("bn", "h") in pairs  # relu over batchnorm's output
    assert ("dd", "dh") in pairs and ("dh", "dbn") in pairs  # backward chain in place
    # dropout must not overwrite h: relu's backward reads h
    assert ("h", "d") not in pairs


def test_inplace_never_where_the_input_is_still_read_later():
    spec = network([affine("fc", "x", 5), node("r", "relu", "fc"), node("s", "add", "r", "fc"),
                    affine("head", "s", 3)], ["head"], loss_inputs=["head", "y"])
    for kind in ("train", "infer"):
        memory = gn.compile(spec, batch_size=4).plan(kind).memory
        pairs = {(read, write) for _, read, write in memory.inplace_pairs}
        assert ("fc", "r") not in pairs
        assert memory.buffers[("value", "fc")].offset != memory.buffers[("value", "r")].offset


def assert_memory_plan_is_sound(steps, memory):
    """No two buffers alive at one step overlap in the arena, unless they are one
    in-place chain handing over at a step that declared the pair."""
    buffers = list(memory.buffers.values())
    for buf in buffers:
        assert buf.offset % LINE == 0
        assert buf.offset + buf.size <= memory.arena_size
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            if a.storage == b.storage:
                continue
            overlap_time = a.first <= b.last and b.first <= a.last
            overlap_space = a.offset < b.offset + b.size and b.offset < a.offset + a.size
            assert not (overlap_time and overlap_space), (a, b)
    groups = {}
    for buf in buffers:
        groups.setdefault(buf.storage, []).append(buf)
    for members in groups.values():
        members.sort(key=lambda b: b.first)
        for before, after in zip(members, members[1:]):
            assert after.first == before.last, (before, after)
            t = after.first
            declared = {(steps[t].args[r], steps[t].args[w]) for r, w in steps[t].inplace}
            names = {((x.kind, x.name), (y.kind, y.name)) for x, y in declared if x is not None and y is not None}
            assert (before.key, after.key) in names, (before, after, steps[t])
            # and nothing else in that step reads the storage being overwritten
            others = [ref for j, ref in enumerate(steps[t].args) if ref is not None and ref.kind in PLANNED_KINDS
                      and (ref.kind, ref.name) == before.key]
            assert len(others) == 1, steps[t]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=strategies.network_specs())
def test_memory_plans_of_random_dags_are_sound(case):
    net = gn.compile(case.spec, batch_size=4)
    for kind in ("train", "train_sgd", "train_update", "train_loss", "eval_loss", "infer"):
        plan = net.plan(kind)
        assert_memory_plan_is_sound(plan.schedule.steps, plan.memory)
        assert plan.memory.arena_size <= plan.memory.naive_size() + LINE * len(plan.memory.buffers)
