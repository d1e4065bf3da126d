"""examples/scipy_optimisation.py: the kernels' runs converge, with fewer evaluations."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example
from numpy.testing import assert_allclose

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "scipy_optimisation.py"




example = load_example("scipy_optimisation", "scipy_optimisation_example")


@pytest.fixture(scope="module")
def run():
    return example.main(["--n", "6", "--points", "40"])


def _by_name(runs):
    return {r.name.split(" (")[0] + (" fd" if "finite" in r.name or "2-point" in r.name
                                     else ""): r for r in runs}


def test_kernel_matches_scipys_rosenbrock(run):
    assert run["kernel_error"] < 1e-14


def test_rosenbrock_hybridad_runs_converge_to_ones(run):
    runs = _by_name(run["rosenbrock"])
    assert set(runs) == {"trust-exact", "Newton-CG", "BFGS", "BFGS fd"}
    for name in ("trust-exact", "Newton-CG", "BFGS"):
        assert runs[name].success, name
        assert runs[name].error < 1e-6, name
        assert_allclose(runs[name].x, np.ones(6), atol=1e-6)


def test_fun_jac_hess_share_one_kernel_call_per_point(run):
    runs = _by_name(run["rosenbrock"])
    exact = runs["trust-exact"]
    assert exact.calls <= exact.nfev          # jac and hess never needed another call
    assert exact.njev <= exact.nfev and exact.nhev <= exact.nfev


def test_hybridad_uses_fewer_evaluations_than_finite_differences(run):
    runs = _by_name(run["rosenbrock"])
    fd = runs["BFGS fd"]
    for name in ("trust-exact", "Newton-CG", "BFGS"):
        assert runs[name].calls < fd.calls / 5, name
    assert runs["BFGS"].error < fd.error      # exact gradients also end closer


def test_curve_fit_recovers_the_parameters(run):
    runs = _by_name(run["fit"])
    ours, fd = runs["least_squares"], runs["least_squares fd"]
    assert ours.success and fd.success
    assert_allclose(ours.x, example.TRUE_PARAMS, atol=0.05)    # data carry noise 0.01
    assert_allclose(ours.x, fd.x, rtol=1e-6)                   # the same least-squares fit
    assert ours.calls < fd.calls


def test_noise_free_fit_is_exact():
    runs = _by_name(example.main(["--n", "3", "--points", "20", "--noise", "0"])["fit"])
    assert_allclose(runs["least_squares"].x, example.TRUE_PARAMS, rtol=1e-10)


def test_printed_tables(capsys):
    example.main(["--n", "4", "--points", "10"])
    out = capsys.readouterr().out
    assert "1. Rosenbrock, n = 4" in out
    assert "2. least_squares" in out
    rows = {line[:31].strip(): line[31:].split() for line in out.splitlines()
            if line.startswith("   ") and "(" in line[:31] and "=" not in line}
    assert float(rows["trust-exact (hybridad H)"][-2]) < 1e-6
    assert int(rows["trust-exact (hybridad H)"][0]) < int(rows["BFGS (finite diff)"][0])
    assert int(rows["least_squares (hybridad J)"][0]) < int(rows["least_squares (2-point)"][0])


def test_runs_as_a_script():
    out = subprocess.run([sys.executable, str(EXAMPLE), "--n", "3", "--points", "10"],
                         capture_output=True, text=True, check=True, timeout=120).stdout
    assert "1. Rosenbrock, n = 3, from x0 = 0" in out
    assert "least_squares (hybridad J)" in out
