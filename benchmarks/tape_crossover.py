"""Where forward and reverse Jacobians cross over on the numpy tape, and whether
``Tape.choose_mode`` (the cost model behind ``jacobian(mode="auto")``) picks the faster.

For three families of functions — layers y = tanh(W x + b) of shape (n_in, n_out),
reductions sum(sin(x) * cos(x)) (n inputs, one output) and fan-outs sin(k a + b) (two
inputs, m outputs) — and a few batch sizes it times the forward sweep (n_in
directions) and the reverse sweep (n_out cotangents), fits the cost
model's constants to the measurements by least squares, and prints per case the measured
medians, the faster mode, the model's choice under the constants in ``hybridad.tape.tape``
and under the freshly fitted ones.

    python benchmarks/tape_crossover.py              # about a minute on 2 cores
    python benchmarks/tape_crossover.py --quick      # smaller layers, seconds

Model (seconds, primal work excluded since both modes pay it), E = tape edges,
A = array operations per sweep (``Tape.n_sweep_ops``):
    forward  = E * FORWARD_EDGE_COST                       + A * ELEMENT_COST * n_in  * batch
    reverse  = E * (REVERSE_EDGE_COST + STORE_COST * batch) + A * ELEMENT_COST * n_out * batch
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Sequence

import numpy as np

import hybridad as hd
from hybridad.tape import tape as tape_module

FULL_CASES = [("layer", 1024, 16), ("layer", 256, 16), ("layer", 128, 32), ("layer", 64, 64),
              ("layer", 32, 128), ("layer", 16, 256), ("layer", 16, 1024), ("layer", 512, 8),
              ("layer", 8, 512), ("reduction", 64, 1), ("reduction", 512, 1),
              ("reduction", 2048, 1), ("fan-out", 2, 256), ("fan-out", 2, 2048)]
QUICK_CASES = [("layer", 64, 4), ("layer", 4, 64), ("reduction", 64, 1), ("fan-out", 2, 64)]
BATCHES = (1, 16)


@dataclass
class Case:
    family: str
    n_in: int
    n_out: int
    batch: int
    edges: int
    ops: int
    forward: float  # median seconds of the sweep, primal included
    reverse: float
    primal: float   # median seconds of one evaluation

    @property
    def faster(self) -> str:
        return "forward" if self.forward < self.reverse else "reverse"


def median_seconds(run, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def make_tape(family: str, n_in: int, n_out: int, rng: np.random.Generator) -> hd.Tape:
    """The benchmark's functions as tapes; see the module docstring."""
    x = hd.symarray("x", n_in)
    if family == "layer":
        W, b = rng.normal(size=(n_out, n_in)), rng.normal(size=n_out)
        outputs = list(np.tanh(W @ x + b))
    elif family == "reduction":
        outputs = [hd.sum(hd.sin(x) * hd.cos(x))]
    elif family == "fan-out":
        outputs = [hd.sin(k * x[0] + x[1]) for k in range(1, n_out + 1)]
    else:
        raise ValueError(f"unknown family {family!r}")
    return hd.Tape(outputs, list(x))


def measure(specs: Sequence[tuple[str, int, int]], batches: Sequence[int], repeat: int
            ) -> list[Case]:
    rng = np.random.default_rng(0)
    cases = []
    for family, n_in, n_out in specs:
        tape = make_tape(family, n_in, n_out, rng)
        for batch in batches:
            x = rng.normal(size=(batch, n_in)) if batch > 1 else rng.normal(size=n_in)
            cases.append(Case(
                family, n_in, n_out, batch, tape.n_edges, tape.n_sweep_ops,
                median_seconds(lambda: tape.jacobian(x, "forward"), repeat),
                median_seconds(lambda: tape.jacobian(x, "reverse"), repeat),
                median_seconds(lambda: tape.evaluate(x), repeat)))
    return cases


def fit_constants(cases: list[Case]) -> dict[str, float]:
    """Least-squares fit of the four model constants to the sweep times minus the primal
    time, one equation per case and mode, each scaled by its measured time so that the
    fit minimises relative error (small layers count as much as large ones)."""
    rows, target = [], []
    for c in cases:
        # unknowns: FORWARD_EDGE_COST, REVERSE_EDGE_COST, ELEMENT_COST, STORE_COST
        rows.append([c.edges, 0.0, c.ops * c.n_in * c.batch, 0.0])
        target.append(c.forward - c.primal)
        rows.append([0.0, c.edges, c.ops * c.n_out * c.batch, c.edges * c.batch])
        target.append(c.reverse - c.primal)
    weights = 1.0 / np.maximum(np.array(target), 1e-6)
    solution, *_ = np.linalg.lstsq(np.array(rows) * weights[:, None],
                                   np.array(target) * weights, rcond=None)
    names = ["FORWARD_EDGE_COST", "REVERSE_EDGE_COST", "ELEMENT_COST", "STORE_COST"]
    return {name: max(float(v), 0.0) for name, v in zip(names, solution)}


def modelled_choice(c: Case, constants: dict[str, float]) -> str:
    forward = (c.edges * constants["FORWARD_EDGE_COST"]
               + c.ops * constants["ELEMENT_COST"] * c.n_in * c.batch)
    reverse = (c.edges * (constants["REVERSE_EDGE_COST"] + constants["STORE_COST"] * c.batch)
               + c.ops * constants["ELEMENT_COST"] * c.n_out * c.batch)
    return "forward" if forward < reverse else "reverse"


def current_constants() -> dict[str, float]:
    return {name: getattr(tape_module, name) for name in
            ("FORWARD_EDGE_COST", "REVERSE_EDGE_COST", "ELEMENT_COST", "STORE_COST")}


def report(cases: list[Case], fitted: dict[str, float]) -> str:
    shipped = current_constants()
    lines = [f"{'family':<9} {'n_in':>5} {'n_out':>5} {'batch':>5} {'edges':>6} {'forward ms':>10} "
             f"{'reverse ms':>10} {'rev/fwd':>7}  {'faster':<8} {'auto':<8} {'refit':<8}"]
    agree = 0
    for c in cases:
        auto = modelled_choice(c, shipped)
        agree += auto == c.faster
        lines.append(f"{c.family:<9} {c.n_in:>5} {c.n_out:>5} {c.batch:>5} {c.edges:>6} "
                     f"{c.forward * 1e3:>10.2f} {c.reverse * 1e3:>10.2f} "
                     f"{c.reverse / c.forward:>7.2f}  {c.faster:<8} {auto:<8} "
                     f"{modelled_choice(c, fitted):<8}")
    lines.append(f"auto picked the faster mode in {agree} of {len(cases)} cases "
                 "(a miss within a few percent is a tie)")
    lines.append("constants shipped: " + ", ".join(f"{k}={v:.3g}" for k, v in shipped.items()))
    lines.append("constants fitted:  " + ", ".join(f"{k}={v:.3g}" for k, v in fitted.items()))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small layers (seconds)")
    parser.add_argument("--repeat", type=int, default=5, help="timings per median")
    args = parser.parse_args(argv)
    cases = measure(QUICK_CASES if args.quick else FULL_CASES, BATCHES, args.repeat)
    print(report(cases, fit_constants(cases)))


if __name__ == "__main__":
    main()
