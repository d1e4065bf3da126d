"""Symbolic calculus on DAGs: derivatives, Jacobians, Hessians, CSE and size counts."""

from .count import count_ops
from .custom import custom_jvp, custom_vjp
from .cse import cse
from .diff import diff
from .jacobian import gradient, hessian, hvp, jacobian, jvp, vjp

__all__ = ["count_ops", "cse", "custom_jvp", "custom_vjp", "diff", "gradient", "hessian",
           "hvp", "jacobian", "jvp", "vjp"]
