"""The peers graphnet's training step is compared against in the README, beside
graphnet's own contenders (`graphnet.benchmarks.step.CONTENDERS`: the BLAS floor and
the compiled plan on each backend).

- `tuned_numpy`: the same math in NumPy with every array preallocated (`out=`).
- `student_numpy`: the homework's NumPy code, allocating freely; the reference
  every other contender's update is checked against (bench/test_peers.py).
- `torch_eager`, `jax_jit`: optional peers, skipped with a reason when absent.

Each builder takes a `graphnet.benchmarks.step.Problem` and returns a zero-argument
step with `step.weights()`. `python bench/step.py` times them all.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from graphnet.benchmarks.step import CONTENDERS as GRAPHNET_CONTENDERS
from graphnet.benchmarks.step import LEARNING_RATE, Contender, Problem


def student_numpy_step(problem: Problem) -> Callable[[], Any]:
    params = [w.copy() for w in problem.weights]
    X, y = problem.X, problem.y

    def step() -> float:
        activations = [X]
        h = X
        count = len(params) // 2
        for i in range(count):
            W, b = params[2 * i], params[2 * i + 1]
            z = h.dot(W) + b
            h = np.maximum(0, z) if i < count - 1 else z
            activations.append(h)
        scores = activations[-1]
        shifted = scores - np.max(scores, axis=1, keepdims=True)
        probs = np.exp(shifted)
        probs /= np.sum(probs, axis=1, keepdims=True)
        N = X.shape[0]
        loss = -np.sum(np.log(probs[np.arange(N), y])) / N
        dout = probs.copy()
        dout[np.arange(N), y] -= 1
        dout /= N
        grads = [None] * len(params)
        for i in reversed(range(count)):
            W = params[2 * i]
            h_in = activations[i]
            grads[2 * i] = h_in.T.dot(dout)
            grads[2 * i + 1] = np.sum(dout, axis=0)
            if i > 0:
                dh = dout.dot(W.T)
                dh[activations[i] <= 0] = 0
                dout = dh
        for p, g in zip(params, grads):
            p -= LEARNING_RATE * g
        return float(loss)

    step.weights = lambda: [p.copy() for p in params]  # type: ignore[attr-defined]
    return step


def tuned_numpy_step(problem: Problem) -> Callable[[], Any]:
    """What a performance-minded NumPy user writes: every array preallocated, every
    ufunc and GEMM into `out=`, in-place where possible."""
    params = [w.copy() for w in problem.weights]
    X, y, N = problem.X, problem.y, problem.batch
    Ws, bs = params[0::2], params[1::2]
    count = len(Ws)
    hs = [X] + [np.empty((N, W.shape[1]), np.float32) for W in Ws]
    douts = [np.empty((N, W.shape[1]), np.float32) for W in Ws]
    dWs = [np.empty_like(W) for W in Ws]
    dbs = [np.empty_like(b) for b in bs]
    masks = [np.empty((N, W.shape[1]), bool) for W in Ws[:-1]]
    updates = list(zip(params, [g for pair in zip(dWs, dbs) for g in pair]))
    row_max = np.empty((N, 1), np.float32)
    row_sum = np.empty((N, 1), np.float32)
    picked = np.empty(N, np.float32)
    rows = np.arange(N)
    rate = np.float32(LEARNING_RATE)
    scale = np.float32(1.0 / N)

    def step() -> float:
        for i in range(count):
            np.matmul(hs[i], Ws[i], out=hs[i + 1])
            np.add(hs[i + 1], bs[i], out=hs[i + 1])
            if i < count - 1:
                np.maximum(hs[i + 1], 0, out=hs[i + 1])
        probs = douts[-1]  # softmax into the last gradient buffer, then (p - onehot) / N in place
        np.max(hs[-1], axis=1, keepdims=True, out=row_max)
        np.subtract(hs[-1], row_max, out=probs)
        np.exp(probs, out=probs)
        np.sum(probs, axis=1, keepdims=True, out=row_sum)
        np.divide(probs, row_sum, out=probs)
        picked[:] = probs[rows, y]
        np.log(picked, out=picked)
        loss = -float(picked.mean(dtype=np.float64))
        probs[rows, y] -= 1
        np.multiply(probs, scale, out=probs)
        for i in reversed(range(count)):
            np.matmul(hs[i].T, douts[i], out=dWs[i])
            np.sum(douts[i], axis=0, out=dbs[i])
            if i > 0:
                np.matmul(douts[i], Ws[i].T, out=douts[i - 1])
                np.greater(hs[i], 0, out=masks[i - 1])
                np.multiply(douts[i - 1], masks[i - 1], out=douts[i - 1])
        for p, g in updates:
            np.multiply(g, rate, out=g)
            np.subtract(p, g, out=p)
        return loss

    step.weights = lambda: [p.copy() for p in params]  # type: ignore[attr-defined]
    return step


def torch_step(problem: Problem, rule: str = "sgd") -> Callable[[], Any]:
    """The problem's MLP step in PyTorch eager on 2 threads; `rule` "sgd" or "adam" (torch.optim)."""
    import torch

    torch.set_num_threads(2)
    layers: list[Any] = []
    for i, (fan_in, fan_out) in enumerate(zip(problem.dims[:-1], problem.dims[1:])):
        linear = torch.nn.Linear(fan_in, fan_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(problem.weights[2 * i].T.copy()))
            linear.bias.copy_(torch.from_numpy(problem.weights[2 * i + 1]))
        layers.append(linear)
        if i < len(problem.dims) - 2:
            layers.append(torch.nn.ReLU())
    model = torch.nn.Sequential(*layers)
    optimizer = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam}[rule](model.parameters(), lr=LEARNING_RATE)
    X, y = torch.from_numpy(problem.X), torch.from_numpy(problem.y)
    cross_entropy = torch.nn.functional.cross_entropy

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        loss = cross_entropy(model(X), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    def weights() -> list[np.ndarray]:
        linears = [layer for layer in layers if isinstance(layer, torch.nn.Linear)]
        return [array for linear in linears
                for array in (linear.weight.detach().numpy().T.copy(), linear.bias.detach().numpy().copy())]

    step.weights = weights  # type: ignore[attr-defined]
    return step


def jax_step(problem: Problem) -> Callable[[], Any]:
    import jax
    import jax.numpy as jnp

    def loss_fn(params, X, y):
        h = X
        count = len(params) // 2
        for i in range(count):
            h = h @ params[2 * i] + params[2 * i + 1]
            if i < count - 1:
                h = jax.nn.relu(h)
        logp = jax.nn.log_softmax(h)
        return -jnp.mean(jnp.take_along_axis(logp, y[:, None], axis=1))

    @jax.jit
    def update(params, X, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, X, y)
        return [p - LEARNING_RATE * g for p, g in zip(params, grads)], loss

    state = {"params": [jnp.asarray(w) for w in problem.weights]}
    X, y = jnp.asarray(problem.X), jnp.asarray(problem.y)

    def step() -> Any:
        state["params"], loss = update(state["params"], X, y)
        loss.block_until_ready()
        return loss

    step.weights = lambda: [np.asarray(p).copy() for p in state["params"]]  # type: ignore[attr-defined]
    return step


PEERS: dict[str, Contender] = {
    "tuned_numpy": tuned_numpy_step,
    "student_numpy": student_numpy_step,
    "torch_eager": torch_step,
    "jax_jit": jax_step,
}

#: Every contender of the README's step table, in its column order.
CONTENDERS: dict[str, Contender] = {**GRAPHNET_CONTENDERS, **PEERS}
