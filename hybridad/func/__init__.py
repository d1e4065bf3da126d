"""Transforms of Python callables: tracing a function into the expression DAG."""

from .check import check_grad
from .tracing import trace

__all__ = ["check_grad", "trace"]
