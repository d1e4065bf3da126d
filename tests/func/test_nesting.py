"""Transforms inside transforms, and functions that write into their arguments.

Each trace runs on fresh symbols recorded before the call, and a transform called inside
a trace differentiates its own function with respect to its own arguments: closures
over the enclosing trace's values stay constants of the inner derivative (no
perturbation confusion). Checked against closed forms, finite differences and, for
random programs, against finite differences of the same Python code run on numbers.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hybridad as hd
from hybridad.core import build
from hybridad.func import (
    check_grad, grad, hessian, jacfwd, jacobian, jacrev, jit, jvp, value_and_grad, vjp, vmap,
)


# -- bug 1: nested transforms that close over an outer traced value --------------------
def test_issue_reproduction_inner_grad_closing_over_outer_value():
    f = lambda x: x * grad(lambda t: x * t)(2.0)  # noqa: E731  f(x) = x * x
    value, slope = value_and_grad(f)(1.5)
    assert (value, slope) == (2.25, 3.0)          # used to give (6.0, 4.0)


def test_perturbation_confusion_siskind_pearlmutter():
    """D(λx. x · D(λy. x + y)(x))(1) = 1: the inner derivative is 1, so f(x) = x. Taking
    the inner derivative with respect to the outer x as well would give 2."""
    assert grad(lambda x: x * grad(lambda y: x + y)(x))(1.0) == 1.0
    assert grad(lambda x: x * grad(lambda y: x * y)(x))(3.0) == 6.0     # f = x * x
    assert jacfwd(lambda x: x * jacrev(lambda y: x + y)(x))(1.0) == 1.0


@pytest.mark.parametrize("backend", ["llvm", "tape"])
@pytest.mark.parametrize("case", [
    # (function of a scalar x, its derivative in closed form)
    (lambda x: grad(lambda t: t ** 3)(x), lambda x: 6 * x),                 # symbolic arg
    (lambda x: grad(lambda t: x * t ** 2)(3.0), lambda x: 6.0),              # closure
    (lambda x: jit(lambda t: x * t)(2.0), lambda x: 2.0),
    (lambda x: np.sum(vmap(lambda t: x * t)(np.arange(3.0))), lambda x: 3.0),
    (lambda x: jvp(lambda t: x * np.sin(t), (1.0,), (x,))[1], lambda x: 2 * x * np.cos(1)),
    (lambda x: vjp(lambda t: t * t * x, x)[1](1.0)[0], lambda x: 4 * x),
    (lambda x: sum(value_and_grad(lambda t: x * t ** 2)(3.0)), lambda x: 15.0),
    (lambda x: grad(lambda y: grad(lambda z: x * y * z)(1.0))(1.0), lambda x: 1.0),
], ids=["symbolic-arg", "closure", "jit", "vmap", "jvp", "vjp", "value_and_grad",
        "three-deep"])
def test_grad_of_function_calling_a_transform(case, backend):
    f, derivative = case
    for x in (0.5, -1.25):
        assert grad(f, backend=backend)(x) == pytest.approx(derivative(x), rel=1e-14)


def test_inner_jacfwd_jacrev_and_hessian_with_and_without_closures():
    x = np.array([0.3, -0.7, 1.1])
    # sum_i x_i cos x_i (inner Jacobian diag(x cos t) at t = x; the closure is constant)
    for inner in (jacfwd, jacrev):
        f = lambda v, inner=inner: np.sum(inner(lambda t: v * np.sin(t))(v))  # noqa: E731
        np.testing.assert_allclose(grad(f)(x), np.cos(x) - x * np.sin(x), rtol=1e-14)
    # 6 x0 sum(x): inner Hessian diag(6 x0 t) at t = x
    f = lambda v: np.sum(hessian(lambda t: v[0] * np.sum(t ** 3))(v))  # noqa: E731
    expected = np.full(3, 6 * x[0]) + np.eye(3)[0] * 6 * np.sum(x)
    np.testing.assert_allclose(grad(f)(x), expected, rtol=1e-14)
    # no closure: the inner Jacobian is a function of its argument only
    g = lambda v: np.sum(jacfwd(lambda t: t ** 2)(v))  # noqa: E731
    np.testing.assert_allclose(grad(g)(x), 2 * np.ones(3), rtol=1e-15)


def test_outer_jacobians_and_hessian_over_an_inner_grad():
    """Both orders: Jacobian/Hessian transforms outside, grad inside (closing over x)."""
    f = lambda x: x[0] * grad(lambda t: x[1] * t ** 2)(x[0])  # noqa: E731  2 x0^2 x1
    p = np.array([0.7, -1.3])
    expected = np.array([[4 * p[1], 4 * p[0]], [4 * p[0], 0.0]])
    np.testing.assert_allclose(hessian(f)(p), expected, rtol=1e-14)
    np.testing.assert_allclose(jacrev(grad(f))(p), expected, rtol=1e-14)
    np.testing.assert_allclose(jacfwd(f)(p), [4 * p[0] * p[1], 2 * p[0] ** 2], rtol=1e-14)
    inner_grad_of_jac = grad(lambda x: np.sum(jacobian(lambda t: x * t)(x)))
    np.testing.assert_allclose(inner_grad_of_jac(p), [1.0, 1.0], rtol=1e-15)


def test_inner_transform_with_numbers_only_returns_numbers():
    seen = []

    def f(x):
        slope = grad(lambda t: t ** 2)(3.0)     # no closure: a plain number
        seen.append(type(slope))
        return slope * x

    assert grad(f)(1.0) == 6.0 and seen == [np.float64]


def test_traces_never_share_symbols_with_each_other_or_the_user():
    taken = next(build._fresh_serials)
    user = [hd.symbols(f"_t{taken + k}_a0") for k in range(1, 4)]
    fresh = build.fresh_symarray("a0", ())
    assert fresh not in user
    old_name = hd.symbols("a0_0")                 # what traces used to call their input
    with pytest.raises(hd.TracingError, match="a0_0"):
        grad(lambda t: old_name * t)(2.0)
    assert grad(lambda t: t * old_name)(old_name) is old_name      # d(t a)/dt at t = a


# -- bug 2: functions that write into their argument array ------------------------------
def overwrite(A, b):
    A[1] = b
    return A


def test_issue_reproduction_writing_into_the_argument():
    jac_a, jac_b = jacrev(overwrite, argnums=(0, 1))(np.zeros(3), 5.0)
    np.testing.assert_array_equal(jac_a, np.diag([1.0, 0.0, 1.0]))       # was the identity
    np.testing.assert_array_equal(jac_b, [0.0, 1.0, 0.0])
    cot_a, cot_b = vjp(overwrite, np.zeros(3), 5.0)[1](np.ones(3))
    np.testing.assert_array_equal(cot_a, [1.0, 0.0, 1.0])                # was [1, 1, 1]
    assert cot_b == 1.0
    jf = jacfwd(overwrite, argnums=(0, 1))(np.zeros(3), 5.0)
    np.testing.assert_array_equal(jf[0], jac_a)
    np.testing.assert_array_equal(jf[1], jac_b)


@pytest.mark.parametrize("backend", ["llvm", "tape"])
def test_writes_into_arguments_in_every_transform(backend):
    def f(x):
        x[0] = x[1] * x[2]            # the old x[0] is gone
        x[2] = np.sin(x[2])
        return np.sum(x * x)

    p = np.array([0.4, -0.9, 1.3])
    before = p.copy()
    expected = hd.numeric.gradient(lambda q: f(q.copy()), p, method="richardson")
    np.testing.assert_allclose(grad(f, backend=backend)(p), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(p, before)                             # caller's array kept
    np.testing.assert_allclose(jacfwd(f, backend=backend)(p), expected, rtol=1e-9)
    assert check_grad(f, p) < 1e-8


def test_inner_transform_writing_into_its_argument_does_not_touch_the_outer_array():
    def row_update(r):
        r[0] = 0.0
        return np.sum(r)

    def f(x):
        mapped = vmap(row_update)(x.reshape(2, 2))
        return np.sum(mapped) + np.sum(x * x)    # x itself must be unchanged here

    p = np.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(grad(f)(p), np.array([0, 1, 0, 1]) + 2 * p, rtol=1e-15)


# -- a property test that would have caught bugs 1 and 2 -------------------------------
UNARY = [np.sin, np.tanh, lambda u: np.exp(0.3 * u), lambda u: u * u]
INNER = ["grad", "jacfwd", "jacrev", "hessian", "vjp", "jvp", "value_and_grad"]


def _inner_scalar(kind, u, scale, point):
    """A scalar from one inner transform of g(t) = scale · Σ u(t) · reversed(t)."""
    def g(t):
        return scale * np.sum(UNARY[u](t) * t[::-1])

    def h(t):
        return scale * UNARY[u](t) * t[::-1]

    ones = np.ones(2)
    if kind == "grad":
        return np.sum(grad(g, backend="tape")(point))
    if kind in ("jacfwd", "jacrev"):
        transform = jacfwd if kind == "jacfwd" else jacrev
        return np.sum(transform(h, backend="tape")(point))
    if kind == "hessian":
        return np.sum(hessian(g, backend="tape")(point))
    if kind == "vjp":
        return np.sum(vjp(h, point, backend="tape")[1](ones)[0])
    if kind == "jvp":
        return np.sum(jvp(h, (point,), (ones,), backend="tape")[1])
    value, slope = value_and_grad(g, backend="tape")(point)
    return value + np.sum(slope)


@st.composite
def programs(draw):
    n = draw(st.integers(2, 3))
    index = st.integers(0, n - 1)
    write = st.tuples(st.just("write"), index, index, index, st.integers(0, len(UNARY) - 1))
    nested = st.tuples(st.just("nested"), st.sampled_from(INNER), index, index, index,
                       st.booleans(), st.booleans(), st.integers(0, len(UNARY) - 1))
    steps = draw(st.lists(st.one_of(write, nested), min_size=1, max_size=4))
    return n, steps


def run_program(steps, A):
    """The Python function under test: writes into its argument ``A`` and calls nested
    transforms, some closing over ``A`` and some at points made of ``A``'s entries."""
    for step in steps:
        if step[0] == "write":
            _, i, j, k, u = step
            A[i] = UNARY[u](A[j]) * A[k]
        else:
            _, kind, i, j, k, closure, numeric_point, u = step
            scale = A[k] if closure else 0.5
            point = np.array([0.3, -0.2]) if numeric_point else np.array([A[j], A[i]])
            A[i] = 0.5 * A[i] + _inner_scalar(kind, u, scale, point)
    return np.sum(np.sin(A)) + A[0] * A[-1]


@settings(max_examples=30)
@given(programs(), st.sampled_from(["grad", "grad-tape", "jacfwd", "jacrev"]),
       st.randoms(use_true_random=False))
def test_random_programs_nesting_transforms_and_writing_arrays(program, outer, rng):
    n, steps = program
    x = np.array([rng.uniform(-1, 1) for _ in range(n)])
    fun = lambda A: run_program(steps, A)  # noqa: E731
    reference = hd.numeric.gradient(lambda q: run_program(steps, q.copy()), x,
                                    method="richardson")
    if outer == "grad-tape":
        derivative = grad(fun, backend="tape")(x)
    else:
        derivative = {"grad": grad, "jacfwd": jacfwd, "jacrev": jacrev}[outer](fun)(x)
    np.testing.assert_allclose(derivative, reference, rtol=1e-6, atol=1e-8)


def test_nested_transforms_of_large_arrays_stay_at_tensor_level():
    """jvp(grad(f)) and hessian(f) of a large array: the inner grad, called inside the
    outer tensor-level trace, differentiates at tensor level (a few nodes), not element
    by element (which took minutes at n = 1600)."""
    from hybridad.func import grad, hessian, jvp
    from hybridad.func.transforms import _function_cache

    g = grad(lambda x: np.sum(np.exp(x) * x))
    x = np.linspace(0.0, 1.0, 5000)
    _, product = jvp(g, (x,), (np.ones(5000),))
    np.testing.assert_allclose(product, np.exp(x) * (x + 2.0), rtol=1e-13)
    traced = _function_cache(g, "llvm").get((x,), "jvp")
    assert not traced.element_level and hd.count_ops(traced.parts) < 20

    # the inner transform also takes a numeric array beside the traced one (a closure
    # over data, as a k-means cost over its points)
    data = np.linspace(-1.0, 1.0, 5000)
    inner = grad(lambda c, pts: np.sum((c - pts) ** 2 * c))
    _, product = jvp(lambda c: inner(c, data), (x,), (np.ones(5000),))
    np.testing.assert_allclose(product, 6.0 * x - 4.0 * data, rtol=1e-12, atol=1e-12)

    def rosenbrock(z):
        return np.sum(100.0 * (z[1:] - z[:-1] ** 2) ** 2 + (1.0 - z[:-1]) ** 2)

    from scipy.optimize import rosen_hess

    point = np.linspace(-1.0, 1.0, 2500)
    np.testing.assert_allclose(hessian(rosenbrock)(point), rosen_hess(point), rtol=1e-12,
                               atol=1e-9)
