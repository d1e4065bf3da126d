"""Whether this thread is tracing a Python function (the core's shapes ask, to let a
function that uses an array like a list be traced on its elements instead)."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from ..errors import TracingError

_state = threading.local()


class NeedsElements(TracingError):
    """A traced function used a whole-array argument as a mutable sequence (``len``,
    assignment into it, a numpy function with no tensor form); the trace is redone on
    the arguments' elements."""


def inside_trace() -> bool:
    """Whether this thread is running a function on symbols for a trace."""
    return getattr(_state, "depth", 0) > 0


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """Mark this thread as tracing for the duration of the block (nests)."""
    _state.depth = getattr(_state, "depth", 0) + 1
    try:
        yield
    finally:
        _state.depth -= 1
