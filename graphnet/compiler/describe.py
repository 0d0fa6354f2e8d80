"""Printable views of a plan: one line per step, the buffer table, bytes
planned vs naive, fusion decisions; and a Graphviz DOT picture of a graph."""
from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

from ..system.limits import format_bytes

if TYPE_CHECKING:
    from .graph import Graph
    from .plan import Plan


def text_table(rows: Sequence[Sequence[str]], align: str = "") -> list[str]:
    """Lines of a plain-text table: `rows[0]` is the header, underlined with dashes;
    columns are two spaces apart. `align` has one `<` (left, the default) or `>`
    (right) per column."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    aligns = align.ljust(len(widths), "<")
    lines = ["  ".join(f"{cell:{a}{w}}" for cell, a, w in zip(row, aligns, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def describe_plan(plan: "Plan") -> str:
    schedule, memory = plan.schedule, plan.memory
    itemsize = plan.dtype.itemsize
    mode = "inference" if plan.schedule.loss is None else f"{plan.mode} mode"  # an infer plan runs no loss
    lines = [f"plan '{plan.graph.name}': {mode}, capacity {plan.capacity}, "
             f"{plan.dtype.name}, {plan.backend} kernels"]
    if plan.fusions:
        lines.append("fusions:")
        lines.extend(f"  {decision}" for decision in plan.fusions)
    inplace_at = {t: (read, write) for t, read, write in memory.inplace_pairs}
    rows = [("#", "phase", "node", "kernel", "reads -> writes", "note")]
    for t, step in enumerate(plan.steps):
        reads = [str(ref) for j, ref in enumerate(step.args) if ref is not None and j not in step.writes]
        writes = [str(ref) for j, ref in enumerate(step.args) if ref is not None and j in step.writes]
        phase = "fwd" if t < schedule.n_forward else "bwd" if t < len(schedule.steps) else "post"
        note = ""
        if t in inplace_at:
            note = f"in place ({inplace_at[t][1]} over {inplace_at[t][0]})"
            if t in memory.merged_steps and step.fn_inplace is not None:
                note += ", no-op"
        if step.returns_loss:
            note = (note + ", " if note else "") + "adds to loss"
        rows.append((str(t), phase, step.node, step.kernel, f"{', '.join(reads)} -> {', '.join(writes)}", note))
    lines.append("steps:")
    lines.extend("  " + line for line in text_table(rows))

    rows = [("buffer", "kind", "per example", "live steps", "offset", "bytes")]
    for buffer in sorted(memory.buffers.values(), key=lambda b: (b.offset, b.first)):
        kind, _ = buffer.key
        last = "end" if buffer.last >= len(schedule.steps) else str(buffer.last)
        rows.append((buffer.label, kind, str(buffer.size), f"{buffer.first}..{last}",
                     format_bytes(buffer.offset * plan.capacity * itemsize),
                     format_bytes(buffer.size * plan.capacity * itemsize)))
    lines.append("buffers (offsets into the arena):")
    lines.extend("  " + line for line in text_table(rows))

    planned, naive = memory.arena_size * plan.capacity * itemsize, plan.naive_bytes()
    saved = f" ({100 * (1 - planned / naive):.0f}% less)" if naive else ""
    store = plan.store
    lines.append(
        f"memory: activations {format_bytes(planned)} planned vs {format_bytes(naive)} naive{saved}, "
        f"in {len({b.storage for b in memory.buffers.values()})} storage regions for "
        f"{len(memory.buffers)} buffers; parameters {format_bytes(store.values.nbytes)}, "
        f"gradients {format_bytes(store.grads.nbytes)}, state {format_bytes(store.state.nbytes)}")
    return "\n".join(lines)


def graph_to_dot(graph: Graph) -> str:
    """The graph in Graphviz DOT: one box per node labelled with its op and shape."""
    def quote(text: str) -> str:
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

    lines = [f"digraph {quote(graph.name)} {{", "  rankdir=TB;", "  node [shape=box, fontname=Helvetica];"]
    for name, value in graph.inputs.items():
        label = quote(f"{name}\ninput {value.shape}")
        lines.append(f"  {quote(name)} [label={label}, shape=ellipse];")
    for name, value in graph.labels.items():
        label = quote(f"{name}\n{value.describe()}")
        lines.append(f"  {quote(name)} [label={label}, shape=ellipse, style=dashed];")
    for node in graph.nodes:
        shape = "loss" if node.record.is_loss else str(node.value.shape)
        activation = getattr(node.spec, "activation", None)
        extra = f" + {activation}" if activation else ""
        style = ", style=filled, fillcolor=lightpink" if node.record.is_loss else ""
        label = quote(f"{node.id}\n{node.op}{extra} {shape}")
        lines.append(f"  {quote(node.id)} [label={label}{style}];")
        for ref in node.inputs:
            lines.append(f"  {quote(ref)} -> {quote(node.id)};")
    for name in graph.outputs:
        lines.append(f"  {quote(name)} [peripheries=2];")
    lines.append("}")
    return "\n".join(lines) + "\n"
