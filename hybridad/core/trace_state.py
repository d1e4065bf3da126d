"""Whether this thread is tracing a Python function (the core's shapes ask, to let a
function that uses an array like a list be traced on its elements instead)."""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator

from ..errors import TracingError

class _State(threading.local):
    depth = 0          # a class default: no AttributeError on a thread's first question


_state = _State()


class NeedsElements(TracingError):
    """A traced function used a whole-array argument as a mutable sequence (``len``,
    assignment into it, a numpy function with no tensor form); the trace is redone on
    the arguments' elements."""


def inside_trace() -> bool:
    """Whether this thread is running a function on symbols for a trace."""
    return _state.depth > 0


@contextlib.contextmanager
def tracing() -> Iterator[None]:
    """Mark this thread as tracing for the duration of the block (nests)."""
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
