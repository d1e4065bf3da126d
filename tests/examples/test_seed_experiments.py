"""examples/seed_jacobians.py: each seed experiment at quick sizes, and main --quick."""

import sys
from pathlib import Path

import numpy as np
import pytest
from example_loader import load_example
from numpy.testing import assert_allclose, assert_array_equal

import hybridad as hd
from hybridad.func import vmap

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "seed_jacobians.py"




seeds = load_example("seed_jacobians", "seed_jacobians")


@pytest.mark.parametrize("n_in, n_out", [(64, 4), (4, 64)])
def test_input_jacobian_of_linear_layer_is_W(n_in, n_out):
    W, _, _ = seeds.make_layer(n_in, n_out)
    run = seeds.input_jacobian(n_in, n_out, "linear", repeat=1, use_jax=False)
    assert run.shape == (n_out, n_in)
    assert_allclose(run.jacobian, W, rtol=1e-12)
    assert [t.method for t in run.timings] == ["forward", "reverse", "auto"]
    assert run.auto_mode in ("forward", "reverse")
    assert run.timing("auto").note == f"picked {run.auto_mode}"
    assert all(t.trace_ms > 0 and t.median_ms > 0 for t in run.timings)


def test_input_jacobian_of_tanh_layer():
    W, b, x = seeds.make_layer(4, 64)
    run = seeds.input_jacobian(4, 64, "tanh", repeat=1, use_jax=False)
    assert_allclose(run.jacobian, (1 - np.tanh(W @ x + b) ** 2)[:, None] * W, rtol=1e-12)


@pytest.mark.parametrize("activation", ["linear", "tanh"])
def test_weight_jacobian_is_delta_ij_x_k(activation):
    n_in, n_out = 8, 4
    W, b, x = seeds.make_layer(n_in, n_out)
    J = seeds.weight_jacobian(n_in, n_out, activation, repeat=1).jacobian
    assert J.shape == (n_out, n_out, n_in)
    scale = np.ones(n_out) if activation == "linear" else 1 - np.tanh(W @ x + b) ** 2
    for i in range(n_out):
        for j in range(n_out):
            expected = scale[i] * x if i == j else np.zeros(n_in)
            assert_allclose(J[i, j], expected, rtol=1e-12, atol=1e-15)


def test_batched_jacobian_equals_per_point():
    run = seeds.batch_jacobian(8, 4, batch=5, repeat=1)
    assert run.batched.shape == (5, 4, 8)
    assert_allclose(run.batched, run.per_point, rtol=1e-12)


def test_mlp_jacobian_is_W3_W2_W1_and_vjp_jvp_are_sums():
    run = seeds.mlp_jacobian(hidden=16)
    rng = np.random.default_rng(0)              # the example's draw order
    W1, W2, W3 = rng.standard_normal((16, 3)), rng.standard_normal((16, 16)), \
        rng.standard_normal((2, 16))
    product = W3 @ W2 @ W1
    assert run.sizes == (3, 16, 16, 2)
    assert_allclose(run.product, product)
    assert_allclose(run.forward, product, rtol=1e-10)
    assert_allclose(run.reverse, run.forward, rtol=1e-10)
    assert_allclose(run.vjp_ones, product.sum(axis=0), rtol=1e-10)
    assert_allclose(run.jvp_ones, product.sum(axis=1), rtol=1e-10)


def test_two_argument_gradient_matches_closed_form():
    run = seeds.two_argument_gradient()
    x, t, y = run.x, run.t, run.y
    f = np.sqrt(np.sum((x * t - y) ** 2))
    assert_array_equal(t, [2.0, 3.0])
    assert_allclose(run.grad_x, t * (x * t - y) / f, rtol=1e-12)
    assert_allclose(run.grad_t, x * (x * t - y) / f, rtol=1e-12)
    numeric = hd.numeric.gradient(lambda v: np.sqrt(np.sum((v[:2] * v[2:] - y) ** 2)),
                                  np.concatenate([x, t]), method="central")
    assert_allclose(np.concatenate([run.grad_x, run.grad_t]), numeric, rtol=1e-6)


def test_vmap_of_dot_gives_fives():
    run = seeds.vmap_of_dot()
    assert_array_equal(run.single, np.full(3, 5.0))
    assert run.nested.shape == (3, 2)
    assert_array_equal(run.nested, np.full((3, 2), 5.0))


def test_nested_vmap_of_dot():
    vvd = vmap(vmap(hd.dot))
    assert_array_equal(vvd(np.ones((3, 2, 5)), np.ones((3, 2, 5))), np.full((3, 2), 5.0))


def test_cube_jacobian_and_hessian():
    J, H = seeds.cube_derivatives()
    assert_array_equal(J, 3 * np.eye(3))
    assert_array_equal(H, 6 * np.eye(3))


def test_checks_fail_loudly():
    with pytest.raises(AssertionError, match="J != W"):
        seeds.check_close(np.eye(2), 2 * np.eye(2), "J != W")
    with pytest.raises(AssertionError, match="shape"):
        seeds.check_close(np.eye(2), np.eye(3), "J != W")


def test_size_parsing():
    assert seeds.parse_sizes("1024x16,16x1024") == [(1024, 16), (16, 1024)]
    with pytest.raises(SystemExit):
        seeds.build_parser().parse_args(["--sizes", "1024by16"])


def test_main_quick_prints_both_modes(capsys):
    assert seeds.main(["--quick", "--repeat", "1"]) == 0
    out = capsys.readouterr().out
    for text in ("forward", "reverse", "picked", "W3 W2 W1", "all checks passed"):
        assert text in out
    jax_rows = [line for line in out.splitlines() if line.split()[:1] == ["jax.jacrev"]]
    assert bool(jax_rows) == seeds.jax_available()
    assert ("JAX is not installed" in out) != seeds.jax_available()


def test_main_without_jax_says_so(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "jax", None)      # find_spec("jax") -> None
    assert not seeds.jax_available()
    with pytest.raises(SystemExit):
        seeds.main(["--quick", "--jax", "on"])
    assert seeds.main(["--quick", "--repeat", "1", "--sizes", "4x4"]) == 0
    out = capsys.readouterr().out
    assert "JAX is not installed" in out and "jit, float64" not in out
