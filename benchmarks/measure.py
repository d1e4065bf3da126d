"""Set up, verify and time every tool on one problem, interleaved.

An adapter is a function ``rows(problem) -> list[Row]``; each Row sets itself up lazily
(``Row.setup() -> Prepared``) and may raise :class:`Skip` with the reason. Per problem the
runner sets every row up (timing setup plus the first call: JIT compilers compile there),
checks its result against the hybridad tape's, then times the rows round-robin: each
repetition times every row once (starting at a rotating row), so slow drifts of the
machine hit every tool alike. Medians of the repetitions are reported.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .problems import Problem

RTOL = 1e-9        # every tool against the hybridad tape; atol = RTOL * max |reference|


class Skip(Exception):
    """A tool does not run a problem (not installed, size cap, ...); the message says why."""


@dataclass
class Prepared:
    """A set-up tool: ``call()`` does one timed unit of work and returns the tool's native
    output; ``normalize`` turns that into the problem's canonical tuple of arrays."""

    call: Callable[[], Any]
    normalize: Callable[[Any], tuple[np.ndarray, ...]]
    setup_s: float | None = None   # overrides the measured setup (e.g. a shared gcc build)
    compare: int | None = None     # check only the first `compare` arrays (value-only rows)
    note: str = ""
    keep: Any = field(default=None, repr=False)   # objects ``call`` needs alive (buffers)


@dataclass
class Row:
    """One line of a problem's table: a tool (the adapter's key) in one variant."""

    tool: str
    label: str
    setup: Callable[[], Prepared]
    hybridad: bool = False        # a hybridad mode: candidate for the ratio reference
    reference: bool = False       # the preferred ratio reference (hybridad llvm)
    partial: bool = False         # computes less than asked (a primal row): no setup cell


@dataclass
class Measurement:
    """What happened to one row: status, setup time, per-repetition times (seconds)."""

    tool: str
    label: str
    status: str                   # "ok", "MISMATCH", "skipped" or "error"
    note: str = ""
    hybridad: bool = False
    reference: bool = False
    partial: bool = False
    setup_s: float | None = None
    partial: bool = False         # checked on a prefix of the results only (value only)
    times: list[float] = field(default_factory=list)
    prepared: Prepared | None = field(default=None, repr=False)   # dropped after timing

    @property
    def timed(self) -> bool:
        return self.status in ("ok", "MISMATCH") and self.prepared is not None

    @property
    def median(self) -> float | None:
        return statistics.median(self.times) if self.times else None


@dataclass
class ProblemResult:
    problem: Problem
    rows: list[Measurement]

    def reference(self) -> Measurement | None:
        """hybridad llvm when it ran correctly, else the fastest correct hybridad mode."""
        good = [r for r in self.rows
                if r.status == "ok" and r.median is not None and not r.partial]
        preferred = [r for r in good if r.reference]
        candidates = preferred or [r for r in good if r.hybridad]
        return min(candidates, key=lambda r: r.median, default=None)

    def ratio(self, row: Measurement) -> float | None:
        ref = self.reference()
        if ref is None or row.median is None:
            return None
        return row.median / ref.median


# -- verification -------------------------------------------------------------------------
def mismatch(got: Sequence[np.ndarray], expected: Sequence[np.ndarray],
             compare: int | None = None) -> str:
    """'' if ``got`` matches ``expected`` (shapes, then rtol 1e-9 with atol scaled by the
    reference's largest entry), else a short description of the first difference."""
    if compare is None and len(got) != len(expected):
        return f"{len(got)} results, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected[:compare] if compare else expected)):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return f"result {i}: shape {a.shape}, expected {b.shape}"
        scale = float(np.max(np.abs(b))) if b.size else 0.0
        if not np.allclose(a, b, rtol=RTOL, atol=RTOL * scale, equal_nan=True):
            worst = float(np.max(np.abs(a - b)))
            return f"result {i}: max abs difference {worst:.3g} (scale {scale:.3g})"
    return ""


# -- setting up ---------------------------------------------------------------------------
def prepare_row(row: Row, reference: Sequence[np.ndarray] | None) -> Measurement:
    """Set ``row`` up, make its first call (both timed as setup) and check the result."""
    meas = Measurement(row.tool, row.label, "ok", partial=row.partial, hybridad=row.hybridad,
                       reference=row.reference)
    try:
        start = time.perf_counter()
        prepared = row.setup()
        out = prepared.call()
        meas.setup_s = time.perf_counter() - start
        got = prepared.normalize(out)
    except Skip as skip:
        meas.status, meas.note = "skipped", str(skip)
        return meas
    except Exception as error:  # noqa: BLE001  (a peer failing must not stop the run)
        meas.status, meas.note = "error", f"{type(error).__name__}: {error}".splitlines()[0]
        return meas
    meas.prepared = prepared
    meas.note = prepared.note
    meas.partial = prepared.compare is not None
    if prepared.setup_s is not None:
        meas.setup_s = prepared.setup_s
    if reference is not None:
        problem = mismatch(got, reference, prepared.compare)
        if problem:
            meas.status = "MISMATCH"
            meas.note = "; ".join(filter(None, [problem, meas.note]))
    return meas


def skipped_rows(tool: str, reason: str) -> list[Row]:
    """A single row for a tool that cannot run at all (its setup raises Skip)."""
    def setup() -> Prepared:
        raise Skip(reason)
    return [Row(tool, tool, setup)]


def rows_for(problem: Problem, adapters: dict[str, Callable[[Problem], list[Row]]]
             ) -> list[Row]:
    """Every adapter's rows for ``problem``; an adapter raising Skip gives one skipped row."""
    rows: list[Row] = []
    for tool, adapter in adapters.items():
        try:
            rows += adapter(problem)
        except Skip as skip:
            rows += skipped_rows(tool, str(skip))
    return rows


# -- timing -------------------------------------------------------------------------------
def loops_for(call: Callable[[], Any], target_s: float) -> int:
    """Calls per sample so that one sample lasts about ``target_s`` (at least one)."""
    number = 1
    while True:
        elapsed = time_loop(call, number)
        if elapsed >= target_s or number >= 1_000_000:
            return number
        number = max(number * 2, int(number * target_s / max(elapsed, 1e-9) * 1.1))


def time_loop(call: Callable[[], Any], number: int) -> float:
    """Seconds for ``number`` calls, with the garbage collector off (as timeit)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        start = time.perf_counter()
        for _ in range(number):
            call()
        return time.perf_counter() - start
    finally:
        if enabled:
            gc.enable()


def time_interleaved(rows: list[Measurement], repeat: int, target_s: float) -> None:
    """Fill ``times`` (seconds per call) of every timed row, round-robin over the rows."""
    timed = [r for r in rows if r.timed]
    loops = {id(r): loops_for(r.prepared.call, target_s) for r in timed}
    for rep in range(repeat):
        shift = rep % len(timed) if timed else 0
        for row in timed[shift:] + timed[:shift]:
            number = loops[id(row)]
            row.times.append(time_loop(row.prepared.call, number) / number)


def run_problem(problem: Problem, adapters: dict[str, Callable[[Problem], list[Row]]],
                reference: Callable[[Problem], tuple[np.ndarray, ...]],
                repeat: int = 5, target_s: float = 0.02) -> ProblemResult:
    """Set up, verify against ``reference(problem)`` and time every adapter's rows."""
    expected = reference(problem)
    measurements = [prepare_row(row, expected) for row in rows_for(problem, adapters)]
    time_interleaved(measurements, repeat, target_s)
    for m in measurements:
        m.prepared = None    # frees compiled code, tapes and buffers before the next problem
    return ProblemResult(problem, measurements)
