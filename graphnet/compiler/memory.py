"""Pass 3, memory planning: a Schedule's steps -> buffer offsets in one arena.

Each planned buffer (values, gradients, saved scratch) lives from its first to
its last step. `merge_inplace` puts a buffer an op may write in place of its
input into the input's storage when the input dies at that step; `plan_memory`
then packs the storage groups best-fit, so groups whose lifetimes don't
overlap share bytes. Offsets are in elements per example: the plan multiplies
them by its capacity.
"""
from __future__ import annotations

from dataclasses import dataclass
from math import prod
from typing import NamedTuple

from ..ops.lowering import PLANNED_KINDS, Ref, Step

ALIGN = 64  # bytes: every buffer starts on a cache line

BufferKey = tuple[str, str]  # (kind, name)


@dataclass
class Buffer:
    """A planned buffer: `size` elements per example, alive over steps [first, last]."""

    key: BufferKey
    size: int
    first: int
    last: int
    storage: int = -1  # index of the storage group it lives in
    offset: int = 0  # element offset of the group in the arena (per unit of capacity)

    @property
    def label(self) -> str:
        kind, name = self.key
        return {"grad": "d", "saved": "~"}.get(kind, "") + name


@dataclass
class MemoryPlan:
    """Where every planned buffer lives in the arena, and which in-place pairs were merged."""

    buffers: dict[BufferKey, Buffer]
    arena_size: int  # elements per unit of capacity (multiply by capacity)
    merged_steps: set[int]  # steps whose in-place pairs were all realized
    inplace_pairs: list[tuple[int, str, str]]  # (step, read buffer, written buffer) merged

    def naive_size(self) -> int:
        """Elements per unit of capacity if every buffer had its own (aligned) storage."""
        return sum(_aligned(buffer.size) for buffer in self.buffers.values())


def _collect_buffers(steps: list[Step], keep_alive: set[BufferKey]) -> dict[BufferKey, Buffer]:
    """Every planned buffer the steps use, alive from its first to its last step
    (past the last step for those in `keep_alive`)."""
    buffers: dict[BufferKey, Buffer] = {}
    for t, step in enumerate(steps):
        for ref in step.args:
            if ref is None or ref.kind not in PLANNED_KINDS:
                continue
            key = (ref.kind, ref.name)
            size = prod(ref.shape)
            if key not in buffers:
                buffers[key] = Buffer(key, size, t, t)
            elif buffers[key].size != size:
                raise AssertionError(f"buffer {key} viewed with sizes {buffers[key].size} and {size}")
            buffers[key].last = t
    for key in keep_alive:
        if key in buffers:
            buffers[key].last = len(steps)
    return buffers


class InplaceMerges(NamedTuple):
    """Storage groups after the in-place merges: group id -> the buffers sharing it, the
    steps whose in-place pairs were all realized, and the (step, read, written) pairs merged."""

    members: dict[int, list[BufferKey]]
    merged_steps: set[int]
    pairs: list[tuple[int, str, str]]


class _StorageGroups:
    """Buffers grouped by the storage they share; every buffer starts alone."""

    def __init__(self, buffers: dict[BufferKey, Buffer]):
        self.buffers = buffers
        self.group_of = {key: i for i, key in enumerate(buffers)}
        self.members: dict[int, list[BufferKey]] = {i: [key] for i, key in enumerate(buffers)}

    def may_write_over(self, step: Step, t: int, r: int, w: int) -> bool:
        """Whether arg w of step t may take arg r's storage: r's group dies at t, w is born
        at t, alone and of the same size, and no other arg of the step reads r's storage."""
        rkey, wkey = _key(step.args[r]), _key(step.args[w])
        rgroup, wgroup = self.group_of[rkey], self.group_of[wkey]
        group_last = max(self.buffers[k].last for k in self.members[rgroup])
        # The pair promises only that arg r may be overwritten by arg w; if another
        # arg of the step reads the same storage (add(a, a, a)), writing w would
        # change what that arg reads.
        read_elsewhere = any(
            j not in (r, w) and ref is not None and ref.kind in PLANNED_KINDS
            and self.group_of[_key(ref)] == rgroup
            for j, ref in enumerate(step.args))
        return (group_last == t and self.buffers[wkey].first == t and not read_elsewhere
                and self.buffers[rkey].size == self.buffers[wkey].size and len(self.members[wgroup]) == 1)

    def join(self, rkey: BufferKey, wkey: BufferKey) -> None:
        """Move the (lone) buffer `wkey` into the storage group of `rkey`."""
        rgroup, wgroup = self.group_of[rkey], self.group_of[wkey]
        self.members[rgroup].append(wkey)
        del self.members[wgroup]
        self.group_of[wkey] = rgroup


def _key(ref: Ref) -> BufferKey:
    return (ref.kind, ref.name)


def merge_inplace(steps: list[Step], buffers: dict[BufferKey, Buffer]) -> InplaceMerges:
    """Group `buffers` by storage: a buffer a step writes in place of an input that dies at
    that step joins the input's group (when safe: see `_StorageGroups.may_write_over`).
    Offsets are not assigned here (`plan_memory` packs the groups)."""
    groups = _StorageGroups(buffers)
    merged_steps: set[int] = set()
    pairs: list[tuple[int, str, str]] = []
    for t, step in enumerate(steps):
        realized = 0
        for r, w in step.inplace:
            read, write = step.args[r], step.args[w]
            if read is None or write is None or read.kind not in PLANNED_KINDS or write.kind not in PLANNED_KINDS:
                continue
            if groups.group_of[_key(read)] == groups.group_of[_key(write)]:
                realized += 1
            elif groups.may_write_over(step, t, r, w):
                groups.join(_key(read), _key(write))
                pairs.append((t, buffers[_key(read)].label, buffers[_key(write)].label))
                realized += 1
        if step.inplace and realized == len(step.inplace):
            merged_steps.add(t)
    return InplaceMerges(groups.members, merged_steps, pairs)


def plan_memory(steps: list[Step], keep_alive: set[BufferKey], share: bool = True) -> MemoryPlan:
    """Assign every planned buffer an arena offset (in elements per unit of capacity).

    With `share=False` every buffer gets its own storage (the unplanned
    reference the tests compare against).
    """
    buffers = _collect_buffers(steps, keep_alive)
    merges = merge_inplace(steps, buffers) if share else InplaceMerges(_StorageGroups(buffers).members, set(), [])
    groups = [
        (min(buffers[k].first for k in keys), max(buffers[k].last for k in keys), buffers[keys[0]].size, gid)
        for gid, keys in merges.members.items()
    ]
    offsets, arena_size = _pack(groups, share)
    for gid, keys in merges.members.items():
        for key in keys:
            buffers[key].storage, buffers[key].offset = gid, offsets[gid]
    return MemoryPlan(buffers, arena_size, merges.merged_steps, merges.pairs)


def _pack(groups: list[tuple[int, int, int, int]], share: bool) -> tuple[dict[int, int], int]:
    """Offsets for (first, last, size, id) intervals: best fit in a free list, freed after last use."""
    offsets: dict[int, int] = {}
    free: list[tuple[int, int]] = []  # (offset, size), sorted by offset
    live: list[tuple[int, int, int]] = []  # (last, offset, size)
    end = 0
    for first, last, size, gid in sorted(groups):
        size = _aligned(size)
        if share:
            for item in [item for item in live if item[0] < first]:
                live.remove(item)
                free = _release(free, item[1], item[2])
        fits = [(block_size, offset) for offset, block_size in free if block_size >= size]
        if fits:
            block_size, offset = min(fits)
            free.remove((offset, block_size))
            if block_size > size:
                free = _release(free, offset + size, block_size - size)
        else:
            if free and free[-1][0] + free[-1][1] == end:  # grow the last free block at the end
                offset = free.pop()[0]
            else:
                offset = end
            end = offset + size
        offsets[gid] = offset
        live.append((last, offset, size))
    return offsets, end


def _release(free: list[tuple[int, int]], offset: int, size: int) -> list[tuple[int, int]]:
    """Return a block to the free list, merging neighbours."""
    blocks = sorted(free + [(offset, size)])
    merged: list[tuple[int, int]] = []
    for start, length in blocks:
        if merged and merged[-1][0] + merged[-1][1] == start:
            merged[-1] = (merged[-1][0], merged[-1][1] + length)
        else:
            merged.append((start, length))
    return merged


def _aligned(size: int, itemsize_hint: int = 4) -> int:
    per_line = ALIGN // itemsize_hint
    return -(-size // per_line) * per_line
