"""benchmarks/gradbench.py (python -m benchmarks.gradbench): a --quick run checks every row
against the hand-derived numpy references; every hybridad row runs and matches. The
references themselves are checked against finite differences. Timings are never
asserted."""

import contextlib
import io
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks import gradbench
from benchmarks.measure import Prepared, Row

TABLES = ["a1", "a2", "a3", "b1", "b2", "b3", "c1", "c2", "d1", "d1H", "d2", "d2H", "e"]


@pytest.fixture(scope="module")
def quick_run():
    buffer = io.StringIO()
    sections = gradbench.run(quick=True, repeat=1, out=buffer)
    return sections, buffer.getvalue()


def test_every_table_ran(quick_run):
    sections, out = quick_run
    assert [s.name for s in sections] == TABLES
    for name in TABLES:
        assert f"\n{name}. " in "\n" + out
    assert "hybridad failures: none" in out


def test_every_hybridad_row_matches_the_reference(quick_run):
    sections, _ = quick_run
    for section in sections:
        rows = [r for r in section.rows if r.hybridad]
        assert rows, section.name
        for row in rows:
            assert row.status == "ok", (section.name, row.label, row.status, row.note)
            if row.status == "ok":
                assert row.median is not None and row.median > 0 and row.setup_s > 0
        assert section.reference() is not None and section.reference().hybridad


def test_nested_hessian_rows_run_at_every_size(quick_run):
    sections, _ = quick_run
    for name in ("d1H", "d2H"):
        row = next(s for s in sections if s.name == name).row(
            "hybridad func jvp(value_and_grad)")
        assert row.status == "ok" and "tensor level" in row.note


def test_both_hybridad_routes_are_exercised(quick_run):
    _, out = quick_run
    assert "element level (LLVM)" in out and "tensor level" in out


def test_numpy_rows_ok_and_peers_checked_or_skipped(quick_run):
    sections, _ = quick_run
    for section in sections:
        assert any(r.tool == "numpy" and r.status == "ok" for r in section.rows)
        for row in section.rows:
            if row.tool in ("torch", "jax"):
                assert row.status == "ok" or (row.status == "skipped"
                                              and "is not installed" in row.note), row


def test_summary_lists_every_table(quick_run):
    _, out = quick_run
    lines = out[out.index("summary:"):].splitlines()
    names = [line.split()[0] for line in lines[2:2 + len(TABLES)]]
    assert names == TABLES


# -- the references themselves ---------------------------------------------------------------
def central_differences(f, args, k, h=1e-6):
    """d f / d args[k] by central differences, entry by entry."""
    base = [np.array(a, dtype=np.float64) for a in args]
    grad = np.zeros_like(base[k])
    for index in np.ndindex(base[k].shape):
        values = []
        for sign in (1.0, -1.0):
            shifted = [a.copy() for a in base]
            shifted[k][index] += sign * h
            values.append(float(f(*shifted)))
        grad[index] = (values[0] - values[1]) / (2.0 * h)
    return grad


def test_least_squares_reference():
    p = gradbench.least_squares_problem(5, 4, seed=1)
    value, g = gradbench.least_squares_reference(p.x, p.A, p.b)
    assert float(value) == pytest.approx(float(np.sum((p.A @ p.x - p.b) ** 2)), rel=1e-14)
    np.testing.assert_allclose(g, central_differences(gradbench.least_squares,
                                                      (p.x, p.A, p.b), 0), rtol=1e-6)


def test_logsumexp_reference():
    x = np.array([1000.0, 999.0, -3.0, 0.5])          # stable where exp(x) overflows
    value, g = gradbench.logsumexp_reference(x)
    assert float(value) == pytest.approx(1000.0 + np.log1p(np.exp(-1.0) + np.exp(-1003.0)
                                                            + np.exp(-999.5)), rel=1e-15)
    assert np.all(np.isfinite(g)) and float(np.sum(g)) == pytest.approx(1.0, rel=1e-15)
    y = np.random.default_rng(2).standard_normal(6)
    np.testing.assert_allclose(gradbench.logsumexp_reference(y)[1], central_differences(
        lambda v: gradbench.logsumexp_reference(v)[0], (y,), 0), rtol=1e-6)


def test_gmm_reference_against_finite_differences_and_a_direct_sum():
    p = gradbench.gmm_problem(3, 4, 7, seed=3)
    value, *grads = gradbench.gmm_reference(*p.args)
    # the density written out point by point
    alphas, means, logstd, x = p.args
    weights = np.exp(alphas) / np.exp(alphas).sum()
    std = np.exp(logstd)
    density = [np.sum(weights * np.prod(np.exp(-0.5 * ((xi - means) / std) ** 2)
                                        / (np.sqrt(2.0 * np.pi) * std), axis=1))
               for xi in x]
    assert float(value) == pytest.approx(float(np.sum(np.log(density))), rel=1e-12)
    for k in range(3):
        np.testing.assert_allclose(grads[k], central_differences(
            lambda *a: gradbench.gmm_reference(*a)[0], p.args, k), rtol=1e-6, atol=1e-8)


def test_kmeans_reference_against_finite_differences():
    p = gradbench.kmeans_problem(30, 4, 3, seed=4)
    cost, J, H = gradbench.kmeans_reference(p.c, p.x)
    direct = np.sum(np.min(np.sum((p.x[:, None, :] - p.c[None]) ** 2, axis=2), axis=1))
    assert float(cost) == pytest.approx(float(direct), rel=1e-12)
    f = lambda c: gradbench.kmeans_reference(c, p.x)[0]
    np.testing.assert_allclose(J, central_differences(f, (p.c,), 0), rtol=1e-6, atol=1e-7)
    # diag(H) = d J_jd / d c_jd, and J is linear in C while no point changes centre
    g = lambda c: gradbench.kmeans_reference(c, p.x)[1]
    for index in np.ndindex(p.c.shape):
        shifted = p.c.copy()
        shifted[index] += 1e-5
        assert (g(shifted)[index] - J[index]) / 1e-5 == pytest.approx(H[index], rel=1e-6)
    assert np.sum(H[:, 0]) == 2 * len(p.x)


# -- failures are kept and reported -----------------------------------------------------------
def test_a_failing_hybridad_row_is_marked_and_listed():
    reference = (np.zeros(3),)

    def broken():
        raise RuntimeError("boom")

    rows = [Row("hybridad", "hybridad broken", broken, hybridad=True, reference=True),
            Row("hybridad", "hybridad wrong", lambda: Prepared(lambda: np.ones(3),
                                                              lambda g: (g,)), hybridad=True),
            Row("numpy", "numpy", lambda: Prepared(lambda: np.zeros(3), lambda g: (g,)))]
    section = gradbench.run_section("x", "test", rows, reference, repeat=1, target_s=1e-4)
    text = gradbench.table(section, 1)
    assert "FAILED" in text and "RuntimeError: boom" in text
    listed = gradbench.failures([section])
    assert "x: hybridad broken: error: RuntimeError: boom" in listed
    assert "x: hybridad wrong: MISMATCH" in listed


def test_a_failing_numpy_reference_raises():
    rows = [Row("numpy", "numpy wrong", lambda: Prepared(lambda: np.ones(3), lambda g: (g,)))]
    with pytest.raises(gradbench.MismatchError, match="numpy wrong"):
        gradbench.run_section("x", "test", rows, (np.zeros(3),), repeat=1, target_s=1e-4)


def test_main_rejects_a_bad_repeat():
    with contextlib.redirect_stderr(io.StringIO()), pytest.raises(SystemExit):
        gradbench.main(["--repeat", "0"])
