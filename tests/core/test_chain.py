"""A 100,000-deep chain goes through every core entry point without RecursionError."""

import pickle

import numpy as np
import pytest

import hybridad as hd

DEPTH = 100_000
x = hd.symbols("x")


@pytest.fixture(scope="module")
def chain():
    e = x
    for i in range(DEPTH):
        e = hd.sin(e) if i % 2 else e * 0.999 + x
    return e


def reference(value):
    e = value
    for i in range(DEPTH):
        e = np.sin(e) if i % 2 else e * 0.999 + value
    return e


def test_chain_builds_and_counts(chain):
    assert hd.count_ops(chain) == DEPTH + DEPTH // 2
    assert hd.count_ops(chain, tree=True) == DEPTH + DEPTH // 2


def test_chain_evaluates(chain):
    assert float(chain.evaluate({x: 0.3})) == reference(0.3)


def test_chain_differentiates_both_ways(chain):
    forward = hd.diff(chain, x)
    reverse = hd.gradient(chain, [x])[0]
    at = {x: 0.3}
    assert float(forward.evaluate(at)) == pytest.approx(float(reverse.evaluate(at)), rel=1e-12)
    h = 1e-6
    fd = (reference(0.3 + h) - reference(0.3 - h)) / (2 * h)
    assert float(forward.evaluate(at)) == pytest.approx(fd, rel=1e-6)


def test_chain_cse_and_printing(chain):
    replacements, reduced = hd.cse([chain, hd.sin(chain)])
    assert replacements[-1][1] is chain  # the only shared node is the chain itself
    text = str(chain)
    assert text.count("\n") > 1000  # let-bindings, never a 100,000-deep nesting
    assert max(len(line) for line in text.splitlines()) < 2000


def test_chain_pickles(chain):
    assert pickle.loads(pickle.dumps(chain)) is chain
