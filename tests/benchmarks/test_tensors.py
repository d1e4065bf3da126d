"""benchmarks/tensors.py (python -m benchmarks.tensors): a --quick run prints its tables
with every row checked against the numpy references; a wrong tool fails loudly. Timings
are never asserted."""

import re
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import rosen_der

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import tensors
from benchmarks.measure import Prepared, Row


def table_rows(out: str, heading: str) -> list[list[str]]:
    """The body rows (split on runs of 2+ spaces) of the table under ``heading``."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(heading))
    rows = []
    for line in lines[start + 3:]:
        if not line.startswith("   ") or line.startswith("   * "):      # the notes
            break
        rows.append([cell.strip() for cell in line.strip().split("  ") if cell.strip()])
    return rows


@pytest.fixture(scope="module")
def quick_run():
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = tensors.main(["--quick", "--repeat", "1"])
    return code, buffer.getvalue()


def test_quick_run_prints_checked_tables(quick_run):
    code, out = quick_run
    assert code == 0
    assert "every row was checked against the numpy reference before timing" in out
    headings = ["a. MLP 196 -> 256 -> 256 -> 10, batch 16", "b1. Rosenbrock gradient, n = 10",
                "b2. Rosenbrock gradient, n = 100", "b3. Rosenbrock gradient, n = 10,000"]
    for heading in headings:
        rows = table_rows(out, heading)
        assert len(rows) == 6           # the MLP: 6 rows; Rosenbrock: 6 with C
        labels = [row[0] for row in rows]
        for row in rows:
            status = "ok" if "ok" in row else "skipped" if "skipped" in row else None
            assert status is not None, row
        ok = [row[0] for row in rows if "ok" in row]
        assert "hybridad value_and_grad" in ok or "hybridad grad" in ok
        assert any(label.startswith("numpy") for label in ok), labels
        if heading.startswith("b"):
            assert "scipy.optimize.rosen_der" in ok
        for row in rows:
            if "ok" in row:
                assert row[1].endswith(("us", "ms"))       # median
                float(row[2].replace(",", ""))            # ratio to hybridad


def test_reference_rows_have_ratio_one(quick_run):
    _, out = quick_run
    for heading, label in (("a.", "hybridad value_and_grad"), ("b1.", "hybridad grad")):
        row = next(r for r in table_rows(out, heading) if r[0] == label)
        assert row[2] == "1.00"


def test_dag_size_is_independent_of_n(quick_run):
    _, out = quick_run
    sizes = re.search(r"n = 10: f (\d+) ops, gradient (\d+) ops; n = 10,000: f (\d+) ops, "
                      r"gradient (\d+) ops", out)
    assert sizes is not None and sizes.group(1, 2) == sizes.group(3, 4)
    assert "runs at element level" in out and "runs at tensor level" in out


def test_mlp_runs_at_tensor_level(quick_run):
    _, out = quick_run
    row = next(r for r in table_rows(out, "a.") if r[0] == "hybridad value_and_grad")
    assert row[-1].endswith("tensor level")


def test_peers_are_skipped_or_checked(quick_run):
    _, out = quick_run
    for heading in ("a.", "b1.", "b3."):
        for row in table_rows(out, heading):
            if row[0].startswith(("torch", "jax")):
                assert "ok" in row or any("is not installed" in c for c in row), row


# -- the references themselves ---------------------------------------------------------------
def test_rosenbrock_reference_matches_scipy():
    x = np.random.default_rng(0).uniform(-1.5, 1.5, 57)
    np.testing.assert_allclose(tensors.rosenbrock_gradient(x), rosen_der(x), rtol=1e-13,
                               atol=1e-12)


def test_numpy_backprop_against_finite_differences():
    problem = tensors.mlp_problem((6, 5, 4, 3), 2, seed=1)
    _, *grads = tensors.numpy_backprop(problem.params, problem.x, problem.t)
    h = 1e-6
    for k, index in ((0, (2, 1)), (1, (4,)), (2, (0, 3)), (4, (1, 2)), (5, (0,))):
        shifted = []
        for sign in (1, -1):
            params = [p.copy() for p in problem.params]
            params[k][index] += sign * h
            shifted.append(float(tensors.numpy_backprop(params, problem.x, problem.t)[0]))
        assert (shifted[0] - shifted[1]) / (2 * h) == pytest.approx(grads[k][index],
                                                                     rel=1e-6, abs=1e-9)


# -- failing loudly -------------------------------------------------------------------------
def test_a_wrong_tool_raises_mismatch():
    problem = tensors.rosenbrock_problem(10)
    reference = (tensors.rosenbrock_gradient(problem.x),)
    wrong = Row("wrong", "deliberately wrong",
                lambda: Prepared(lambda: reference[0] * (1 + 1e-6), lambda g: (g,)))
    with pytest.raises(tensors.MismatchError, match="deliberately wrong differs"):
        tensors.run_section("x", "test", [wrong], reference, repeat=1, target_s=1e-4)


def test_a_failing_required_tool_raises():
    def broken():
        raise RuntimeError("boom")

    reference = (np.zeros(3),)
    with pytest.raises(tensors.MismatchError, match="did not run"):
        tensors.run_section("x", "test", [Row("numpy", "numpy broken", broken)], reference,
                            repeat=1, target_s=1e-4)


def test_a_correct_tool_is_timed():
    problem = tensors.rosenbrock_problem(10)
    reference = (tensors.rosenbrock_gradient(problem.x),)
    right = Row("numpy", "numpy again",
                lambda: Prepared(lambda: tensors.rosenbrock_gradient(problem.x),
                                 lambda g: (g,)))
    section = tensors.run_section("x", "test", [right], reference, repeat=2, target_s=1e-4)
    row = section.row("numpy again")
    assert row.status == "ok" and len(row.times) == 2 and row.median > 0
    assert "numpy again" in tensors.table(section, 2)
