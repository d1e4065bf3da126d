"""Tapes: numeric forward and reverse AD by interpreting a linearized DAG."""

from .tape import Tape
from .tensor import TensorTape

__all__ = ["Tape", "TensorTape"]
