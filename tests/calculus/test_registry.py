"""Registry-driven checks: every primitive's entry is complete and its partials are right.

Parametrized from the registry itself, so a new primitive is tested the moment it is
registered (and fails here if its entry is incomplete).
"""

import numpy as np
import pytest

import hybridad as hd
from hybridad.core.build import apply
from hybridad.core.registry import PRIMITIVES, Flags, elementwise_names
from hybridad.numeric import derivative

NAMES = elementwise_names()
ARGS = hd.symbols("a0 a1 a2")
KINKS = {"abs": lambda p: abs(p[0]) < 1e-2, "relu": lambda p: abs(p[0]) < 1e-2,
         "maximum": lambda p: abs(p[0] - p[1]) < 1e-2,
         "minimum": lambda p: abs(p[0] - p[1]) < 1e-2,
         "sign": lambda p: abs(p[0]) < 1e-2,
         "where": lambda p: abs(p[0]) < 1e-2}


def domain_points(prim, count=6, seed=0):
    rng = np.random.default_rng(seed)
    points = []
    while len(points) < count:
        p = [rng.uniform(lo, hi) for lo, hi in prim.domain]
        if prim.flags & Flags.COMPARISON and abs(p[0] - p[1]) < 1e-2:
            continue
        if prim.name in KINKS and KINKS[prim.name](p):
            continue
        points.append(p)
    return points


def node_of(prim):
    return apply(prim.name, *ARGS[:prim.arity])


@pytest.mark.parametrize("name", NAMES)
def test_entry_is_complete(name):
    prim = PRIMITIVES[name]
    assert prim.name == name and prim.arity >= 1
    assert callable(prim.numpy) and callable(prim.sympy)
    assert len(prim.partials) == prim.arity
    assert len(prim.domain) == prim.arity, "domain: one interval per argument"
    assert all(lo < hi for lo, hi in prim.domain)
    if prim.flags & Flags.NONDIFF:
        assert all(rule is None for rule in prim.partials)
    else:
        assert any(rule is not None for rule in prim.partials)
    assert prim.infix is not None or prim.sympy_names or name in ("neg", "sqrt")


@pytest.mark.parametrize("name", NAMES)
def test_numpy_evaluation_is_what_nodes_evaluate_to(name):
    prim = PRIMITIVES[name]
    node = node_of(prim)
    for p in domain_points(prim):
        env = dict(zip(ARGS, p))
        with np.errstate(all="ignore"):
            assert float(node.evaluate(env)) == float(prim.numpy(*map(np.float64, p)))


@pytest.mark.parametrize("name", [n for n in NAMES if n != "stop_gradient"])
def test_partials_match_finite_differences(name):
    prim = PRIMITIVES[name]
    # Richardson's first step is 0.1: only safe where the op is smooth; piecewise ops
    # use central differences, whose default step (~1e-5) stays clear of the kinks.
    method = "richardson" if prim.flags & Flags.SMOOTH else "central"
    tolerance = 1e-8 if method == "richardson" else 1e-6
    node = node_of(prim)
    for p in domain_points(prim):
        env = dict(zip(ARGS, p))
        for i, rule in enumerate(prim.partials):
            analytic = 0.0 if rule is None else float(rule(*node.args, node).evaluate(env))

            def along_i(t, i=i, p=p):
                q = list(p)
                q[i] = t
                return float(prim.numpy(*map(np.float64, q)))

            numeric = derivative(along_i, p[i], method=method)
            assert analytic == pytest.approx(numeric, rel=tolerance, abs=tolerance), (
                f"{name}: d/d arg{i} at {p}: analytic {analytic}, numeric {numeric}")


@pytest.mark.parametrize("name", [n for n in NAMES
                                  if PRIMITIVES[n].flags & Flags.SMOOTH])
def test_second_derivatives_by_differentiating_twice(name):
    prim = PRIMITIVES[name]
    node = node_of(prim)
    for p in domain_points(prim, count=3, seed=1):
        env = dict(zip(ARGS, p))
        for i in range(prim.arity):
            first = hd.diff(node, ARGS[i])
            second = float(hd.diff(node, ARGS[i], 2).evaluate(env))

            def first_along_i(t, i=i, env=env, first=first):
                return float(first.evaluate({**env, ARGS[i]: t}))

            numeric = derivative(first_along_i, p[i], method="richardson")
            assert second == pytest.approx(numeric, rel=1e-7, abs=1e-7), (
                f"{name}: d2/d arg{i}^2 at {p}: analytic {second}, numeric {numeric}")


def test_stop_gradient_is_identity_with_zero_derivative():
    a = ARGS[0]
    assert float(hd.stop_gradient(a).evaluate({a: 1.25})) == 1.25
    assert hd.diff(hd.stop_gradient(a) * a, a) is hd.stop_gradient(a)
