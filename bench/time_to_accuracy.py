"""Fashion-MNIST time to accuracy: graphnet against PyTorch eager and JAX (optax Adam), same recipe.

    python bench/time_to_accuracy.py [--run specs/fashion_mlp.json] [--epochs N]
    python bench/time_to_accuracy.py --run specs/fashion_cnn.json --results DIR   # the CNN
                                     [--contenders graphnet torch_eager jax_jit]

Each contender trains in its own process (so none pays for another's
imports, JIT caches or thread pools), and the processes take turns epoch by
epoch: epoch 1 of each, then epoch 2 of each (in a rotated order), and so on,
with a pause before each turn so no thread pool still spins on the cores.
A slow phase of a shared machine then hits every contender alike instead of
whichever happened to run during it. Same model (the run file's network, an MLP or a
CNN as bench/cnn_peers.py maps it,
dropout included), same initial weights (graphnet's, passed to the others in
an .npz), same optimizer and per-iteration learning rate, same batch size,
epochs and data order (one permutation per epoch from a shared seed). Only
the training loop is timed; test accuracy is measured after every epoch,
untimed. A contender whose library is missing is skipped with the reason.
Writes time_to_accuracy.json and .png in --results DIR (default bench-results/).
"""
from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))  # `import report` also when run from elsewhere

from cnn_peers import jax_loss, jax_model, torch_model  # noqa: E402
from report import add_results_option, print_machine, write_report  # noqa: E402

import graphnet as gn  # noqa: E402
from graphnet.system.fileio import write_npz_atomic  # noqa: E402
from graphnet.training import load_data  # noqa: E402
from graphnet.training.schedules import learning_rate_at  # noqa: E402

#: Idle time before each turn: a thread pool spins for a while after its work (OpenBLAS
#: ~0.1 s here), and the contender whose turn comes must not share the cores with it.
SETTLE_SECONDS = 0.2


Epochs = Iterator[dict]  # a contender's training, one epoch record per next()


def graphnet_run(run: gn.RunSpec, data: dict, orders: list[np.ndarray]) -> Epochs:
    settings = run.train
    net = gn.compile(run.network, batch_size=settings.batch_size, dtype="float32", seed=settings.seed)
    hyper = {k: v for k, v in settings.optimizer.model_dump().items() if k != "rule"}
    opt = gn.Optimizer(net, settings.optimizer.rule, **hyper)
    X, y, B = data["X_train"], data["y_train"], settings.batch_size
    log(f"graphnet: {gn.get_threads()} thread(s) (GRAPHNET_THREADS to choose)")
    per_epoch = math.ceil(len(X) / B)
    X_batch, y_batch = np.empty((B, *X.shape[1:]), X.dtype), np.empty(B, y.dtype)
    for epoch, order in enumerate(orders):
        start = time.perf_counter()
        for i in range(per_epoch):
            index = order[i * B:(i + 1) * B]
            n = len(index)
            np.take(X, index, axis=0, out=X_batch[:n])
            np.take(y, index, axis=0, out=y_batch[:n])
            opt.learning_rate = learning_rate_at(settings.schedule, hyper["learning_rate"],
                                                 epoch + i / per_epoch, settings.epochs, per_epoch)
            opt.step(X_batch[:n], y_batch[:n])
        seconds = time.perf_counter() - start
        accuracy = float((net.predict(data["X_test"], batch_size=1000) == data["y_test"]).mean())
        log(f"graphnet epoch {epoch + 1}: {seconds:.2f} s, test {100 * accuracy:.2f}%")
        yield {"epoch": epoch + 1, "seconds": seconds, "test_accuracy": accuracy}


def torch_run(run: gn.RunSpec, data: dict, orders: list[np.ndarray], initial: dict) -> Epochs:
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(run.train.seed)
    model = torch_model(run.network, initial)  # refuses what the mapping does not cover
    settings = run.train
    hyper = {k: v for k, v in settings.optimizer.model_dump().items() if k != "rule"}
    if settings.optimizer.rule != "adam":
        raise SystemExit("this benchmark maps the adam rule to torch.optim.Adam only")
    opt = torch.optim.Adam(model.parameters(), lr=hyper["learning_rate"], betas=(hyper["beta1"], hyper["beta2"]),
                           eps=hyper["epsilon"])
    X, y, B = torch.from_numpy(data["X_train"]), torch.from_numpy(data["y_train"]), settings.batch_size
    X_test = torch.from_numpy(data["X_test"])
    per_epoch = math.ceil(len(X) / B)
    loss_fn = torch.nn.functional.cross_entropy
    for epoch, order in enumerate(orders):
        order_t = torch.from_numpy(order)
        model.train()
        start = time.perf_counter()
        for i in range(per_epoch):
            index = order_t[i * B:(i + 1) * B]
            for group in opt.param_groups:
                group["lr"] = learning_rate_at(settings.schedule, hyper["learning_rate"],
                                               epoch + i / per_epoch, settings.epochs, per_epoch)
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[index]), y[index])
            loss.backward()
            opt.step()
        seconds = time.perf_counter() - start
        model.eval()
        with torch.no_grad():
            predicted = np.concatenate([model(X_test[k:k + 1000]).argmax(1).numpy()
                                        for k in range(0, len(X_test), 1000)])
            accuracy = float((predicted == data["y_test"]).mean())
        log(f"torch    epoch {epoch + 1}: {seconds:.2f} s, test {100 * accuracy:.2f}%")
        yield {"epoch": epoch + 1, "seconds": seconds, "test_accuracy": accuracy}


def jax_run(run: gn.RunSpec, data: dict, orders: list[np.ndarray], initial: dict) -> Epochs:
    """The same recipe in JAX: a jitted step (forward, dropout, loss, grad, optax Adam with
    the learning rate injected per iteration)."""
    import jax
    import jax.numpy as jnp
    import optax

    settings = run.train
    hyper = {k: v for k, v in settings.optimizer.model_dump().items() if k != "rule"}
    if settings.optimizer.rule != "adam":
        raise SystemExit("this benchmark maps the adam rule to optax.adam only")
    params, bn_state, forward = jax_model(run.network, initial)  # refuses what the mapping does not cover
    loss_fn = jax_loss(forward)

    optimizer = optax.inject_hyperparams(optax.adam)(
        learning_rate=hyper["learning_rate"], b1=hyper["beta1"], b2=hyper["beta2"], eps=hyper["epsilon"])

    @jax.jit
    def step(params, bn_state, state, X, y, key, rate):
        state.hyperparams["learning_rate"] = rate
        (loss, bn_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, bn_state, X, y, key)
        updates, state = optimizer.update(grads, state, params)
        return optax.apply_updates(params, updates), bn_state, state, loss

    predict = jax.jit(lambda params, bn_state, X: jnp.argmax(forward(params, bn_state, X, None, False)[0], axis=1))
    state = optimizer.init(params)
    key = jax.random.PRNGKey(settings.seed)
    X, y, B = data["X_train"], data["y_train"], settings.batch_size
    X_test = jnp.asarray(data["X_test"])
    per_epoch = math.ceil(len(X) / B)
    # compiled before the clock starts (graphnet's kernels come from numba's cache): one
    # executable per batch shape, the full batches and the last, smaller one
    compiled = {n: step.lower(params, bn_state, state, X[:n], y[:n], key, jnp.float32(0)).compile()
                for n in {B, len(X) - (per_epoch - 1) * B}}
    for epoch, order in enumerate(orders):
        start = time.perf_counter()
        for i in range(per_epoch):
            index = order[i * B:(i + 1) * B]
            key, sub = jax.random.split(key)
            rate = learning_rate_at(settings.schedule, hyper["learning_rate"], epoch + i / per_epoch,
                                    settings.epochs, per_epoch)
            params, bn_state, state, loss = compiled[len(index)](params, bn_state, state, X[index], y[index], sub,
                                                                 jnp.float32(rate))
        loss.block_until_ready()
        seconds = time.perf_counter() - start
        predicted = np.concatenate([np.asarray(predict(params, bn_state, X_test[k:k + 1000]))
                                    for k in range(0, len(X_test), 1000)])
        accuracy = float((predicted == data["y_test"]).mean())
        log(f"jax      epoch {epoch + 1}: {seconds:.2f} s, test {100 * accuracy:.2f}%")
        yield {"epoch": epoch + 1, "seconds": seconds, "test_accuracy": accuracy}


def plot(results: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return
    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, records in results["runs"].items():
        elapsed = np.cumsum([r["seconds"] for r in records])
        axis.plot(elapsed, [100 * r["test_accuracy"] for r in records], "o-", label=name)
    axis.set_xlabel("training time (s)")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"Fashion-MNIST, {results['run']}")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


CONTENDERS = ("graphnet", "torch_eager", "jax_jit")
_MODULES = {"torch_eager": "torch", "jax_jit": "jax"}


def load_run(path: str, epochs: int | None) -> gn.RunSpec:
    run = gn.load(path)
    if epochs:
        run = gn.parse_run({**json.loads(run.model_dump_json()),
                            "train": {**json.loads(run.train.model_dump_json()), "epochs": epochs}})
    return run


def prepare(run: gn.RunSpec) -> tuple[dict, list[np.ndarray]]:
    """The data set and the per-epoch orders every contender uses."""
    settings = run.train
    shape = run.network.value(next(iter(run.network.inputs))).shape
    data = load_data(settings.data_spec(), settings.seed, "float32", shape)
    rng = np.random.default_rng([settings.seed, 1])
    orders = [rng.permutation(len(data["X_train"])) for _ in range(settings.epochs)]
    return data, orders


def initial_weights(run: gn.RunSpec) -> dict[str, np.ndarray]:
    """graphnet's initial parameters for this run (the ones graphnet_run starts from)."""
    net = gn.compile(run.network, batch_size=run.train.batch_size, dtype="float32", seed=run.train.seed)
    return {name: net.params[name].copy() for name in net.params}


def contender_epochs(name: str, run_path: str, epochs: int | None, initial_path: Path) -> Epochs:
    """Train `name` in this process, one epoch per next() (the child side of `Contenders`)."""
    run = load_run(run_path, epochs)
    data, orders = prepare(run)
    if name == "graphnet":
        return graphnet_run(run, data, orders)
    with np.load(initial_path) as stored:
        initial = {key: stored[key] for key in stored.files}
    return (torch_run if name == "torch_eager" else jax_run)(run, data, orders, initial)


def log(line: str) -> None:
    """Progress of a child: on stderr (its stdout answers the parent)."""
    print(line, file=sys.stderr, flush=True)


def child_main(args: argparse.Namespace) -> int:
    """Say {"ready": true} (or {"skipped": reason}), then train one epoch per line read on
    stdin and answer each with its record, one JSON line each."""
    module = _MODULES.get(args.child)
    if module is not None:
        try:
            __import__(module)
        except ImportError:
            print(json.dumps({"skipped": f"not installed ({module})"}), flush=True)
            return 0
    training = iter(contender_epochs(args.child, args.run, args.epochs, args.initial))
    print(json.dumps({"ready": True}), flush=True)
    for _ in sys.stdin:
        print(json.dumps(next(training)), flush=True)
    return 0


class Contenders:
    """One child process per contender, started (and made ready) one after the other."""

    def __init__(self, names: list[str], run_path: str, epochs: int | None, initial_path: Path):
        self.children: dict[str, subprocess.Popen] = {}
        self.skipped: dict[str, str] = {}
        for name in names:
            command = [sys.executable, __file__, "--child", name, "--run", run_path,
                       "--initial", str(initial_path)] + (["--epochs", str(epochs)] if epochs else [])
            child = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            answer = self._answer(name, child)
            if "skipped" in answer:
                child.wait()
                self.skipped[name] = answer["skipped"]
            else:
                self.children[name] = child

    @staticmethod
    def _answer(name: str, child: subprocess.Popen) -> dict:
        line = child.stdout.readline()
        if not line:
            raise SystemExit(f"{name} failed (exit {child.wait()})")
        return json.loads(line)

    def epoch(self, name: str) -> dict:
        """Let `name` train its next epoch; its record."""
        child = self.children[name]
        child.stdin.write("go\n")
        child.stdin.flush()
        return self._answer(name, child)

    def close(self) -> None:
        for child in self.children.values():
            child.stdin.close()
            child.wait()


def train_taking_turns(names: list[str], run_path: str, epochs: int, initial_path: Path,
                       settle: float = SETTLE_SECONDS) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Every contender's epoch records, trained epoch by epoch in turn (the order rotated
    every epoch, a pause of `settle` s before each turn), and the skipped ones with the reason."""
    contenders = Contenders(names, run_path, epochs, initial_path)
    runs: dict[str, list[dict]] = {name: [] for name in contenders.children}
    try:
        order = list(contenders.children)
        for epoch in range(epochs):
            first = epoch % len(order) if order else 0
            for name in order[first:] + order[:first]:
                time.sleep(settle)
                runs[name].append(contenders.epoch(name))
    finally:
        contenders.close()
    return runs, contenders.skipped


def summary_line(name: str, records: list[dict]) -> str:
    total = sum(r["seconds"] for r in records)
    return (f"{name:12s} total training time {total:6.1f} s, final test accuracy "
            f"{100 * records[-1]['test_accuracy']:.2f}%, best {100 * max(r['test_accuracy'] for r in records):.2f}%")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="specs/fashion_mlp.json")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--skip-torch", action="store_true", help="the same as leaving torch_eager out")
    add_results_option(parser)
    parser.add_argument("--child", choices=CONTENDERS, help=argparse.SUPPRESS)
    parser.add_argument("--initial", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args)
    contenders = [c for c in args.contenders if not (args.skip_torch and c == "torch_eager")]
    run = load_run(args.run, args.epochs)
    results: dict = {"run": args.run, "epochs": run.train.epochs, "batch_size": run.train.batch_size,
                     "runs": {}, "skipped": {}, "machine": print_machine()}
    with tempfile.TemporaryDirectory(prefix="graphnet-tta-") as folder:
        initial_path = Path(folder) / "initial.npz"
        write_npz_atomic(initial_path, initial_weights(run))
        results["runs"], results["skipped"] = train_taking_turns(contenders, args.run, run.train.epochs,
                                                                 initial_path)
    for name, reason in results["skipped"].items():
        print(f"{name}: skipped, {reason}")
    for name, records in results["runs"].items():
        print(summary_line(name, records))
    write_report(args.results / "time_to_accuracy.json", results)
    plot(results, args.results / "time_to_accuracy.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
