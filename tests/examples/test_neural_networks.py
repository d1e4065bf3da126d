"""examples/neural_networks.py: main --small, and each section's checks at small sizes."""

import numpy as np
import pytest
from example_loader import load_example
from numpy.testing import assert_allclose, assert_array_equal

import hybridad as hd

nn = load_example("neural_networks", "neural_networks_example")

SMALL = nn.MLPSizes.seed(small=True)


def test_main_small_runs_every_section(capsys):
    assert nn.main(["--small"]) == 0
    out = capsys.readouterr().out
    for heading in ("1. Seed 002's MLP", "2. Gradient descent", "3. Net3 forward",
                    "4. Seed 000's Jacobians", "5. Seed 003's linear MLP"):
        assert heading in out
    assert "diff1 = sum|dL/dX - dL/dY W^T| = 0.0" in out
    assert "diff2 = sum|dL/dW - X^T dL/dY| = 0.0" in out
    assert "all checks passed" in out


def test_main_can_skip_net3(capsys):
    assert nn.main(["--small", "--no-net3", "--steps", "3"]) == 0
    assert "3. Net3: skipped" in capsys.readouterr().out


def test_sizes():
    assert nn.MLPSizes.seed() == nn.MLPSizes((784, 512, 512, 10), 64)
    assert SMALL == nn.MLPSizes((49, 32, 32, 10), 8)
    assert nn.Net3Sizes.seed() == nn.Net3Sizes((4096, 8192, 8192, 8192, 1), 256)
    assert nn.Net3Sizes.seed().weight_bytes == 8 * (4096 * 8192 + 2 * 8192 ** 2 + 8192)
    assert nn.Net3Sizes.seed(small=True) == nn.Net3Sizes((64, 128, 128, 128, 1), 32)


# -- 1. the MLP against numpy backprop --------------------------------------------------------
@pytest.fixture(scope="module")
def mlp_check():
    return nn.check_mlp(SMALL, seed=3, repeat=1)


def test_gradients_match_numpy_backprop(mlp_check):
    assert set(mlp_check.max_grad_diff) == {"W1", "b1", "W2", "b2", "W3", "b3"}
    assert max(mlp_check.max_grad_diff.values()) < 1e-10
    assert mlp_check.max_hidden_diff < 1e-10
    ref = mlp_check.values["reference"]
    assert mlp_check.loss == pytest.approx(ref["loss"], rel=1e-12)
    scale = max(float(np.abs(r).max()) for r in ref["grads"])
    for got, expected in zip(mlp_check.values["grads"], ref["grads"]):
        assert got.shape == expected.shape
        assert np.abs(got - expected).max() < 1e-10 * scale


def test_hidden_adjoints_are_retain_grad(mlp_check):
    """hd.vjp(L, H, 1.0) of the hidden activations equals the hand backprop's dL/dH."""
    ref = mlp_check.values["reference"]
    for got, expected in zip(mlp_check.values["hidden_grads"], ref["hidden_grads"]):
        assert got.shape == (SMALL.batch, SMALL.widths[1])
        assert_allclose(got, expected, rtol=1e-10, atol=1e-10 * np.abs(expected).max())


def test_seed_fc2_identities_hold_exactly(mlp_check):
    assert mlp_check.diff1 == 0.0
    assert mlp_check.diff2 == 0.0


def test_gradient_dag_is_compact(mlp_check):
    ops = mlp_check.graph.ops()
    assert ops["loss"] < 20 and ops["gradients"] < 40 and ops["all"] < 50
    # the DAG does not depend on the sizes
    assert nn.build_mlp(nn.MLPSizes((30, 20, 20, 5), 4)).ops() == ops


def test_layer_vjp_forms():
    forms = nn.layer_vjp_forms(4, 3, 2)
    assert forms.dX == "G_4x2 @ W_3x2.T"
    assert forms.dW == "X_4x3.T @ G_4x2"
    assert forms.db == "sum(G_4x2, axis=0)"


def test_numpy_backprop_against_finite_differences():
    """The reference itself: central differences of the loss in a few weights."""
    sizes = nn.MLPSizes((5, 4, 3, 2), 3)
    params = nn.init_params(sizes, 1)
    x, t = nn.synthetic_data(sizes, 2)
    grads = nn.numpy_backprop(params, x, t)["grads"]
    h = 1e-6
    for k, index in ((0, (1, 2)), (2, (3, 0)), (4, (2, 1)), (1, (3,)), (5, (0,))):
        plus = [p.copy() for p in params]
        minus = [p.copy() for p in params]
        plus[k][index] += h
        minus[k][index] -= h
        fd = (nn.numpy_backprop(plus, x, t)["loss"] - nn.numpy_backprop(minus, x, t)["loss"])
        assert fd / (2 * h) == pytest.approx(grads[k][index], rel=1e-6, abs=1e-9)


# -- 2. training ------------------------------------------------------------------------------
def test_training_reduces_the_loss():
    run = nn.train(SMALL, steps=30, learning_rate=0.1, seed=0)
    assert len(run.losses) == 30
    assert run.last < 0.2 * run.first
    assert all(np.isfinite(run.losses))


def test_training_is_reproducible():
    a = nn.train(SMALL, steps=5, seed=4)
    b = nn.train(SMALL, steps=5, seed=4)
    assert a.losses == b.losses


def test_training_raises_when_the_loss_does_not_decrease():
    with pytest.raises(AssertionError, match="did not reduce the loss"):
        nn.train(SMALL, steps=3, learning_rate=-1.0)


# -- 3. Net3 ----------------------------------------------------------------------------------
def test_net3_forward_matches_numpy():
    run = nn.net3_forward(nn.Net3Sizes.seed(small=True))
    assert run.output_shape == (32, 1)
    assert run.max_diff <= 1e-12
    assert run.ops == 7                    # 4 matmuls and 3 relus


# -- 4. seed 000's Jacobians ------------------------------------------------------------------
@pytest.fixture(scope="module")
def layer():
    return nn.layer_jacobians(5, 3, 2, seed=1)


def test_layer_jacobian_shapes(layer):
    assert layer.shapes == {"input": (3, 5), "bias": (3, 3), "weights": (3, 3, 5),
                            "batch": (2, 3, 2, 5), "per sample": (2, 3, 5)}


def test_every_route_equals_the_closed_form(layer):
    routes = ("hd.jacobian forward", "hd.jacobian reverse", "jacfwd", "jacrev")
    for what in ("input", "bias", "weights", "batch"):
        for route in routes:
            assert layer.diffs[f"{what}: {route}"] <= 1e-14
    assert layer.diffs["per sample: vmap(jacrev)"] <= 1e-14


def test_layer_jacobians_are_the_closed_forms(layer):
    W = layer.values["input: jacrev"]
    assert_array_equal(layer.values["input: hd.jacobian forward"], W)
    assert_array_equal(layer.values["bias: jacfwd"], np.eye(3))
    Jw = layer.values["weights: hd.jacobian reverse"]
    x = Jw[0, 0]                                     # dy_0/dW_0k = x_k
    for i in range(3):
        for j in range(3):
            assert_array_equal(Jw[i, j], x if i == j else np.zeros(5))
    Jb = layer.values["batch: jacrev"]
    for a in range(2):
        for b in range(2):
            assert_array_equal(Jb[a, :, b, :], W if a == b else np.zeros((3, 5)))
    assert_array_equal(layer.values["per sample: vmap(jacrev)"], np.stack([W, W]))


# -- 5. seed 003's W3 W2 W1 -------------------------------------------------------------------
@pytest.fixture(scope="module")
def composition():
    return nn.composition_jacobian(hidden=12, seed=2)


def test_composition_jacobian_is_W3_W2_W1(composition):
    rng = np.random.default_rng(2)
    W1, W2, W3 = (rng.standard_normal(s) for s in ((12, 3), (12, 12), (2, 12)))
    product = W3 @ W2 @ W1
    assert composition.product.shape == (2, 3)
    assert_allclose(composition.product, product, rtol=1e-14)
    tol = 1e-13 * np.abs(product).max()
    for J in (composition.reverse, composition.forward, composition.jacobian):
        assert J.shape == (2, 3)
        assert_allclose(J, product, atol=tol, rtol=0)
    assert_allclose(composition.row_convention, product, atol=tol, rtol=0)


def test_seed_sums(composition):
    tol = 1e-13 * np.abs(composition.product).max()
    assert_allclose(composition.vjp_ones, composition.product.sum(axis=0), atol=tol, rtol=0)
    assert_allclose(composition.jvp_ones, composition.product.sum(axis=1), atol=tol, rtol=0)


def test_composition_modes_read_as_products(composition):
    assert composition.reverse_text == ("mlp3_W1_12x3.T @ (mlp3_W2_12x12.T @ "
                                        "(mlp3_W3_2x12.T @ constant([1, 0])))")
    assert composition.forward_text == ("mlp3_W3_2x12 @ (mlp3_W2_12x12 @ "
                                        "(mlp3_W1_12x3 @ constant([1, 0, 0])))")


def test_check_raises_on_a_large_difference():
    with pytest.raises(AssertionError, match="example: difference"):
        nn.check(1e-3, "example")
    assert nn.check(0.0, "exact") == 0.0
    with pytest.raises(AssertionError):
        nn.check(float("nan"), "nan")


def test_symbols_of_both_sizes_coexist():
    nn.build_mlp(SMALL)
    nn.build_mlp(nn.MLPSizes((30, 20, 20, 5), 4))
    assert nn.tensor("nn_W1", (49, 32)) is hd.tensor("nn_W1_49x32", (49, 32))
