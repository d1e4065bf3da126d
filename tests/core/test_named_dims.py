"""Named dimensions (seed 001): propagated by operations, checked when broadcasting."""

import numpy as np
import pytest

import hybridad as hd

state = hd.tensor("nd_state", (9, 5), names=("batch", "D"))
trans = hd.tensor("nd_trans", (5, 5), names=("in", "out"))


def test_seed_matmul_keeps_rows_of_the_first_and_columns_of_the_second():
    assert (state @ trans).names == ("batch", "out")          # as PyTorch's named tensors
    assert hd.einsum("bd,do->bo", state, trans).names == ("batch", "out")


def test_seed_name_mismatch_is_an_error_at_construction_naming_both_dims():
    x = hd.tensor("nd_x", (3,), names=("X",))
    y = hd.tensor("nd_y", (3,), names=("Y",))
    with pytest.raises(hd.HybridadError, match=r"dim 'X' and dim 'Y' are at the same "
                                               r"position from the right"):
        x + y


def test_operations_propagate_names():
    assert hd.sum(state, axis=0).names == ("D",)
    assert hd.max(state, axis=1, keepdims=False).names == ("batch",)
    assert state.T.names == ("D", "batch")
    assert state[1:, 0].names == ("batch",) and state[None, :, 2].names == (None, "batch")
    assert hd.relu(state * 2.0 + np.ones(5)).names == ("batch", "D")
    unnamed = hd.tensor("nd_plain", (9, 5))
    assert unnamed.names is None and (unnamed + state).names == ("batch", "D")
    assert hd.broadcast_to(hd.tensor("nd_row", (5,), names=("D",)), (9, 5)).names == (None, "D")
    assert hd.concatenate([state, state]).names == ("batch", "D")
    assert state[:, [0, 2]].names == ("batch", None)


def test_names_are_part_of_a_symbols_identity_and_checked():
    assert hd.tensor("nd_state", (9, 5), names=("batch", "D")) is state
    with pytest.raises(hd.HybridadError, match="dimension names"):
        hd.tensor("nd_state", (9, 5), names=("rows", "D"))
    with pytest.raises(ValueError, match="a str or None for each of the 2 dimensions"):
        hd.tensor("nd_bad", (9, 5), names=("batch",))
