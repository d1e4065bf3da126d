"""Loop kernels call libmvec's vector math functions (backend/llvm/vecmath.py): the
vectorized loops really call them, and their results stay within a few ulp of numpy's
on ordinary and special values, in the vector body and in the scalar remainder."""

import math

import numpy as np
import pytest

import hybridad as hd
from hybridad.backend.llvm import vecmath
from hybridad.backend.llvm.engine import optimized_module
from hybridad.backend.tensor_kernel import TensorKernel

needs_libmvec = pytest.mark.skipif(not vecmath.variants("exp", 1),
                                   reason="no libmvec on this machine")

# n = 1003: a vector body and an odd remainder
N = 1003
SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-310, -1e-310, 709.7, -745.0, 1e300]

UNARY = {
    "exp": (hd.exp, np.exp, (-700, 700)),
    "log": (hd.log, np.log, (1e-300, 1e300)),
    "sin": (hd.sin, np.sin, (-1e4, 1e4)),
    "cos": (hd.cos, np.cos, (-1e4, 1e4)),
    "tanh": (hd.tanh, np.tanh, (-30, 30)),
    "log1p": (hd.log1p, np.log1p, (-0.999, 1e10)),
    "expm1": (hd.expm1, np.expm1, (-50, 700)),
    "atan": (hd.atan, np.arctan, (-1e6, 1e6)),
}


def _values(low: float, high: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if low > 0:
        values = np.exp(rng.uniform(np.log(low), np.log(high), N))
    else:
        values = rng.uniform(low, high, N)
    values[-len(SPECIAL):] = SPECIAL          # specials in the scalar remainder
    values[:len(SPECIAL)] = SPECIAL           # and in the vector body
    return values


def _ulps(got: np.ndarray, want: np.ndarray) -> float:
    same = (got == want) | (np.isnan(got) & np.isnan(want))
    assert np.array_equal(np.isnan(got), np.isnan(want))
    scale = np.spacing(np.abs(np.where(np.isfinite(want), want, 1.0)))
    with np.errstate(invalid="ignore"):
        return float(np.max(np.where(same, 0.0, np.abs(got - want) / scale)))


@pytest.mark.parametrize("name", sorted(UNARY))
def test_vector_math_matches_numpy_within_a_few_ulp(name: str) -> None:
    build, reference, (low, high) = UNARY[name]
    x = hd.tensor(f"vm_{name}", (N,))
    kernel = TensorKernel([build(x)], [x])
    values = _values(low, high)
    with np.errstate(all="ignore"):
        want = reference(values)
    assert _ulps(kernel(values)[0], want) <= 4


def test_pow_and_atan2_vectorized_against_numpy() -> None:
    x, y = hd.tensor("vm_px", (N,)), hd.tensor("vm_py", (N,))
    kernel = TensorKernel([x ** y, hd.atan2(x, y)], [x, y])
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.01, 10, N), rng.uniform(-20, 20, N)
    power, angle = kernel(a, b)
    assert _ulps(power, a ** b) <= 4
    assert _ulps(angle, np.arctan2(a, b)) <= 4


@needs_libmvec
def test_the_vectorized_loop_calls_the_vector_variant() -> None:
    x = hd.tensor("vm_called", (N,))
    kernel = TensorKernel([hd.sum(hd.exp(x) * hd.log(x))], [x])
    optimized = str(optimized_module(kernel.ir, 3, loops=True))
    calls = [line for line in optimized.splitlines() if " call " in line]
    assert any("_ZGV" in line and "_exp(" in line for line in calls), calls
    assert any("_ZGV" in line and "_log(" in line for line in calls), calls


def test_element_level_kernels_keep_libm_bit_for_bit() -> None:
    # the vector variants are for loop kernels only: an unrolled kernel's exp is libm's
    x1 = hd.symbols("vm_scalar")
    kernel = hd.lambdify([x1], hd.exp(x1), scalarize=True)
    values = _values(-700, 700)
    got = [float(kernel(np.array([v]))) for v in values[10:40]]
    assert got == [math.exp(v) for v in values[10:40]]      # math.exp is libm's


def test_max_and_min_reductions_propagate_nan_and_handle_infinities() -> None:
    x = hd.tensor("vm_max", (N,))
    kernel = TensorKernel([hd.max(x), hd.min(x)], [x])
    values = _values(-5, 5)[len(SPECIAL):-len(SPECIAL)]
    values = np.concatenate([values, values])[:N]
    assert [float(v) for v in kernel(values)] == [values.max(), values.min()]
    values[777] = np.nan
    assert all(np.isnan(v) for v in kernel(values))
    values[:] = -np.inf
    assert [float(v) for v in kernel(values)] == [-np.inf, -np.inf]


def test_a_constant_power_stays_a_multiplication() -> None:
    # pow with a constant exponent keeps LLVM's intrinsic, which becomes x * x; the
    # vector alias would call pow per element (a 100x slowdown found in the GMM row)
    x = hd.tensor("vm_square", (N,))
    square = TensorKernel([hd.sum(x ** 2)], [x])
    calls = [line for line in str(optimized_module(square.ir, 3, loops=True)).splitlines()
             if " call " in line]
    assert not any("pow" in line for line in calls), calls
    values = np.random.default_rng(2).uniform(0.5, 2.0, N)
    assert np.isclose(square(values)[0], np.sum(values ** 2), rtol=1e-14)
