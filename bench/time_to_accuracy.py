"""Fashion-MNIST time to accuracy: graphnet against PyTorch eager, same recipe.

    python bench/time_to_accuracy.py [--run specs/fashion_mlp.json] [--epochs N] [--skip-torch]

Same model (the run file's network, dropout included), same initial weights
(copied from graphnet into torch), same optimizer and per-iteration learning
rate, same batch size, epochs and data order (one permutation per epoch from a
shared seed). Only the training loop is timed; test accuracy is measured after
every epoch, untimed. Writes bench/results/time_to_accuracy.json and .png.
"""
from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np

import graphnet as gn
from graphnet.schedules import learning_rate_at
from graphnet.training import load_data


def graphnet_run(run: gn.RunSpec, data: dict, orders: list[np.ndarray]) -> tuple[list[dict], dict]:
    settings = run.train
    net = gn.compile(run.network, batch_size=settings.batch_size, dtype="float32", seed=settings.seed)
    initial = {name: net.params[name].copy() for name in net.params}
    hyper = {k: v for k, v in settings.optimizer.model_dump().items() if k != "rule"}
    opt = gn.Optimizer(net, settings.optimizer.rule, **hyper)
    X, y, B = data["X_train"], data["y_train"], settings.batch_size
    per_epoch = math.ceil(len(X) / B)
    X_batch, y_batch = np.empty((B, X.shape[1]), X.dtype), np.empty(B, y.dtype)
    records = []
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
        records.append({"epoch": epoch + 1, "seconds": seconds, "test_accuracy": accuracy})
        print(f"graphnet epoch {epoch + 1}: {seconds:.2f} s, test {100 * accuracy:.2f}%", flush=True)
    return records, initial


def torch_run(run: gn.RunSpec, data: dict, orders: list[np.ndarray], initial: dict) -> list[dict]:
    import torch

    torch.set_num_threads(2)
    torch.manual_seed(run.train.seed)
    modules: list = []
    for node in run.network.topological_nodes():
        if node.op == "affine":
            fan_in = run.network.value(node.inputs[0]).size
            linear = torch.nn.Linear(fan_in, node.units)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(initial[f"{node.id}.W"].T.copy()))
                linear.bias.copy_(torch.from_numpy(initial[f"{node.id}.b"]))
            modules.append(linear)
            if node.activation == "relu":
                modules.append(torch.nn.ReLU())
        elif node.op == "relu":
            modules.append(torch.nn.ReLU())
        elif node.op == "dropout":
            modules.append(torch.nn.Dropout(node.rate))
        elif node.op != "softmax_cross_entropy":
            raise SystemExit(f"this benchmark maps a plain MLP to torch; op '{node.op}' is not mapped")
    model = torch.nn.Sequential(*modules)
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
    records = []
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
            accuracy = float((model(X_test).argmax(1).numpy() == data["y_test"]).mean())
        records.append({"epoch": epoch + 1, "seconds": seconds, "test_accuracy": accuracy})
        print(f"torch    epoch {epoch + 1}: {seconds:.2f} s, test {100 * accuracy:.2f}%", flush=True)
    return records


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="specs/fashion_mlp.json")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args()
    run = gn.load(args.run)
    if args.epochs:
        run = gn.parse_run({**json.loads(run.model_dump_json()),
                            "train": {**json.loads(run.train.model_dump_json()), "epochs": args.epochs}})
    settings = run.train
    shape = run.network.value(next(iter(run.network.inputs))).shape
    data = load_data(settings.data_spec(), settings.seed, "float32", shape)
    rng = np.random.default_rng([settings.seed, 1])
    orders = [rng.permutation(len(data["X_train"])) for _ in range(settings.epochs)]
    results: dict = {"run": args.run, "epochs": settings.epochs, "batch_size": settings.batch_size, "runs": {}}
    records, initial = graphnet_run(run, data, orders)
    results["runs"]["graphnet"] = records
    if not args.skip_torch:
        try:
            results["runs"]["torch_eager"] = torch_run(run, data, orders, initial)
        except ImportError:
            print("torch not installed: graphnet only")
    for name, records in results["runs"].items():
        total = sum(r["seconds"] for r in records)
        print(f"{name:12s} total training time {total:6.1f} s, final test accuracy "
              f"{100 * records[-1]['test_accuracy']:.2f}%, best {100 * max(r['test_accuracy'] for r in records):.2f}%")
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "time_to_accuracy.json").write_text(json.dumps(results, indent=2) + "\n")
    plot(results, out / "time_to_accuracy.png")


if __name__ == "__main__":
    main()
