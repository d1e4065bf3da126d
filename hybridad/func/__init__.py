"""Transforms of Python callables (traced once per input shape, evaluated on tapes)."""

from .check import check_grad
from .tracing import trace
from .transforms import (
    grad, hessian, jacfwd, jacobian, jacrev, jit, jvp, value_and_grad, vjp, vmap,
)

__all__ = ["check_grad", "grad", "hessian", "jacfwd", "jacobian", "jacrev", "jit", "jvp",
           "trace", "value_and_grad", "vjp", "vmap"]
