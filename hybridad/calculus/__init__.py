"""Symbolic calculus on DAGs: derivatives, Jacobians, Hessians, CSE and size counts."""

from .count import count_ops
from .cse import cse
from .diff import diff
from .jacobian import gradient, hessian, jacobian, jvp, vjp

__all__ = ["count_ops", "cse", "diff", "gradient", "hessian", "jacobian", "jvp", "vjp"]
