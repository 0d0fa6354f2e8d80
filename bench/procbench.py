"""Timing contenders each in its own process, interleaved, for the benchmark scripts.

A contender is a function in a bench module, `build(config) -> {case: call}`,
that sets up its library and returns zero-argument calls (one per case, for
example one per batch size). `Workers` starts one process per contender
(`python bench/procbench.py worker MODULE NAME CONFIG`), each of which builds
its calls and then answers requests on its stdin: calibrate a case, time a
case, return a case's output, report its threads. The parent takes samples
round-robin over the processes, so every contender sees the same machine
state, and reports medians and medians of per-round ratios.

    with Workers("inference_latency", ["graphnet", "ort"], config) as workers:
        reps = workers.calibrate("b32", seconds=0.003)
        samples = workers.sample_rounds("b32", reps, rounds=15)
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

HERE = Path(__file__).parent

#: Idle time after each sample. Thread pools spin after their work (OpenBLAS for
#: 2^28 cycles by default, ~0.1 s here): without a pause, the contender timed
#: next would share the cores with the last one's spinning threads.
SETTLE_SECONDS = 0.2


class ContenderSkipped(Exception):
    """Raised by a builder whose library is not installed (the reason is reported)."""


def require(module: str) -> ModuleType:
    """The module `module`, imported; ContenderSkipped ("not installed (module)") when it is not."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ContenderSkipped(f"not installed ({module})") from error


def add_timing_options(parser: argparse.ArgumentParser, rounds: int, sample_seconds: float,
                       contenders: Iterable[str]) -> None:
    """A contest script's options: --rounds, --threads, --seconds (one timing sample) and
    --contenders (some of `contenders`, all by default)."""
    parser.add_argument("--rounds", type=int, default=rounds)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=sample_seconds, help="length of one timing sample")
    parser.add_argument("--contenders", nargs="+", default=list(contenders), choices=list(contenders))


# ---- the worker side -----------------------------------------------------------------------


def _time_calls(call: Callable[[], Any], reps: int) -> float:
    start = time.perf_counter()
    for _ in range(reps):
        call()
    return (time.perf_counter() - start) / reps


def _calibrate(call: Callable[[], Any], seconds: float) -> int:
    """The repetitions that make one sample last about `seconds`."""
    call()
    reps = 1
    while True:
        took = _time_calls(call, reps) * reps
        if took >= seconds / 4 or reps >= 1 << 20:
            return max(1, round(reps * seconds / max(took, 1e-9)))
        reps *= 4


def _as_json(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return value


def worker_main(module_name: str, contender: str, config: str) -> int:
    """Build `contender` of bench module `module_name` and serve requests (one JSON object per line)."""
    reply = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # whatever the libraries print goes to stderr, not into the replies
    sys.path.insert(0, str(HERE))
    module = importlib.import_module(module_name)
    try:
        built = module.CONTENDERS[contender](json.loads(config))
    except (ContenderSkipped, ImportError) as error:
        reply.write(json.dumps({"skipped": str(error) or type(error).__name__}) + "\n")
        reply.flush()
        return 0
    calls, outputs = built["calls"], built.get("outputs", {})
    reply.write(json.dumps({"ready": sorted(calls), "info": built.get("info", {})}) + "\n")
    reply.flush()
    for line in sys.stdin:
        request = json.loads(line)
        op, case = request["op"], request.get("case")
        if op == "calibrate":
            answer: Any = _calibrate(calls[case], request["seconds"])
        elif op == "time":
            answer = _time_calls(calls[case], request["reps"])
            time.sleep(request.get("settle", 0.0))  # until this process's spinning thread pools sleep
        elif op == "output":
            answer = _as_json(outputs[case]()) if case in outputs else None
        elif op == "quit":
            return 0
        else:
            answer = {"error": f"unknown op {op}"}
        reply.write(json.dumps({"answer": answer}) + "\n")
        reply.flush()
    return 0


# ---- the parent side -----------------------------------------------------------------------


class Worker:
    """One contender's process."""

    def __init__(self, module: str, name: str, config: dict, env: dict[str, str] | None = None):
        self.name = name
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "procbench.py"), "worker", module, name, json.dumps(config)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
        hello = self._read()
        self.skipped: str | None = hello.get("skipped")
        self.cases: list[str] = hello.get("ready", [])
        self.info: dict = hello.get("info", {})

    def _read(self) -> dict:
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise RuntimeError(f"contender '{self.name}' exited (code {self.process.wait()}): see its stderr")
        return json.loads(line)

    def ask(self, op: str, **fields: Any) -> Any:
        self.process.stdin.write(json.dumps({"op": op, **fields}) + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        return self._read()["answer"]

    def close(self) -> None:
        if self.process.poll() is None:
            try:
                self.process.stdin.write(json.dumps({"op": "quit"}) + "\n")  # type: ignore[union-attr]
                self.process.stdin.close()  # type: ignore[union-attr]
                self.process.wait(timeout=30)
            except (BrokenPipeError, subprocess.TimeoutExpired):
                self.process.kill()
                self.process.wait()


class Workers:
    """One process per contender (those whose library is missing are left out, in `skipped`)."""

    def __init__(self, module: str, names: list[str], config: dict, env: dict[str, str] | None = None):
        self.module, self.names, self.config, self.env = module, names, config, env
        self.workers: dict[str, Worker] = {}
        self.skipped: dict[str, str] = {}

    def __enter__(self) -> "Workers":
        for name in self.names:
            worker = Worker(self.module, name, self.config, self.env)
            if worker.skipped is not None:
                self.skipped[name] = worker.skipped
                worker.close()
            else:
                self.workers[name] = worker
        return self

    def __exit__(self, *exc: Any) -> None:
        for worker in self.workers.values():
            worker.close()

    def calibrate(self, case: str, seconds: float) -> dict[str, int]:
        return {name: w.ask("calibrate", case=case, seconds=seconds)
                for name, w in self.workers.items() if case in w.cases}

    def sample_rounds(self, case: str, reps: dict[str, int], rounds: int,
                      settle: float = SETTLE_SECONDS) -> list[dict[str, float]]:
        """`rounds` rounds; each times every contender once (seconds per call), in turn.
        After its sample a contender idles `settle` seconds before the next one starts."""
        samples = []
        for _ in range(rounds):
            samples.append({name: self.workers[name].ask("time", case=case, reps=count, settle=settle)
                            for name, count in reps.items()})
        return samples

    def outputs(self, case: str) -> dict[str, Any]:
        return {name: w.ask("output", case=case) for name, w in self.workers.items() if case in w.cases}


def summarize(samples: list[dict[str, float]], reference: str | None) -> dict[str, dict[str, float]]:
    """Per contender: median microseconds per call, and the median over rounds of its
    ratio to `reference` in the same round (when the reference ran)."""
    summary: dict[str, dict[str, float]] = {}
    for name in samples[0]:
        row = {"us": 1e6 * statistics.median(s[name] for s in samples)}
        if reference in samples[0]:
            row[f"ratio_to_{reference}"] = statistics.median(s[name] / s[reference] for s in samples)
        summary[name] = row
    return summary


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "worker":
        # Run the worker of the importable module, not of __main__: the bench modules raise
        # procbench.ContenderSkipped, which a __main__.ContenderSkipped clause would not catch.
        sys.path.insert(0, str(HERE))
        import procbench

        sys.exit(procbench.worker_main(*sys.argv[2:]))
    sys.exit("usage: procbench.py worker MODULE CONTENDER CONFIG_JSON (started by the benchmark scripts)")
