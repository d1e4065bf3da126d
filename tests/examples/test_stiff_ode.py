"""examples/stiff_ode.py: the kernel's Jacobian is exact and both solves agree."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example
from numpy.testing import assert_allclose

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "stiff_ode.py"




example = load_example("stiff_ode", "stiff_ode_example")


@pytest.fixture(scope="module")
def run():
    return example.main(["--repeat", "1", "--t-end", "40"])


def test_kernel_jacobian_equals_the_analytic_one():
    kernel = example.jacobian_kernel()
    for y in ([0.7, 2.5e-5, 0.3], [1.0, 0.0, 0.0], [0.2, 1e-6, 0.8]):
        y = np.array(y)
        values, jac = kernel(y, example.RATES)
        assert_allclose(jac, example.analytic_jacobian(y, example.RATES), rtol=1e-14, atol=0)
        assert_allclose(values, example.rhs_expressions(y, example.RATES), rtol=1e-14)
        assert_allclose(jac.sum(axis=0), 0.0, atol=1e-9)     # columns sum to zero


def test_reported_jacobian_check(run):
    assert run["jacobian_error"] <= 1e-14


def test_both_solves_succeed_and_agree(run):
    ours, fd = run["runs"]
    assert ours.success and fd.success
    assert_allclose(ours.t, fd.t)
    assert run["disagreement"] < 1e-6
    assert_allclose(ours.y[:, -1], fd.y[:, -1], rtol=1e-5, atol=1e-12)


def test_mass_is_conserved(run):
    ours, fd = run["runs"]
    assert ours.conservation_error < 1e-12       # exact Jacobian: to rounding
    assert fd.conservation_error < 1e-6


def test_known_solution_at_t_40(run):
    # SUNDIALS' cvRoberts_dns example output: at t = 40, y = (7.158271e-01,
    # 9.185535e-06, 2.841637e-01)
    for solve in run["runs"]:
        assert solve.t[-1] == 40.0
        assert_allclose(solve.y[:, -1], [7.158271e-01, 9.185535e-06, 2.841637e-01],
                        rtol=2e-6)


def test_the_exact_jacobian_saves_rhs_calls(run):
    ours, fd = run["runs"]
    assert ours.rhs_calls == ours.nfev           # no finite-difference columns
    assert fd.rhs_calls > fd.nfev                # SciPy's nfev leaves them out
    assert ours.rhs_calls < fd.rhs_calls
    assert ours.njev > 0 and ours.nlu > 0


def test_printed_table(capsys):
    example.main(["--repeat", "1", "--t-end", "100", "--method", "BDF"])
    out = capsys.readouterr().out
    assert "max relative difference 0.0e+00" in out
    rows = {line[:28].strip(): line[28:].split() for line in out.splitlines()
            if line.startswith("  jac = ")}
    assert set(rows) == {"jac = hybridad kernel", "jac = finite differences"}
    assert float(rows["jac = hybridad kernel"][-1]) < 1e-12
    assert float(rows["jac = finite differences"][-1]) < 1e-6


def test_runs_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--repeat", "1", "--t-end", "40",
                          "--outputs", "3"], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    assert "max relative difference 0.0e+00" in out
    assert "7.158271e-01  9.185535e-06  2.841637e-01" in out
