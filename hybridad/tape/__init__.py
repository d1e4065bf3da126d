"""Tapes: numeric forward and reverse AD by interpreting a linearized DAG."""

from .tape import Tape

__all__ = ["Tape"]
