"""Exceptions raised by hybridad.

Every error a user can trigger derives from :class:`HybridadError`, and also from the
built-in exception a Python user would expect (``ValueError`` for bad text, ``TypeError``
for an unsupported construct while tracing), so ``except ValueError`` keeps working.
"""

from __future__ import annotations


class HybridadError(Exception):
    """Base class of every hybridad error."""


class ParseError(HybridadError, ValueError):
    """Bad syntax or an unknown function in :func:`hybridad.parse`.

    ``position`` is the 0-based column in the offending line; the message shows the line
    with a caret under that column.
    """

    def __init__(self, message: str, text: str = "", position: int = 0, line: int = 0):
        self.position = position
        self.line = line
        self.text = text
        lines = text.splitlines() or [""]
        source = lines[line] if 0 <= line < len(lines) else ""
        detail = f"{message}\n  {source}\n  {' ' * position}^" if text else message
        super().__init__(detail)


class TracingError(HybridadError, TypeError):
    """A Python construct that cannot be traced symbolically (such as ``if x > 0:``)."""


class ShapeError(HybridadError, ValueError):
    """Operands whose shapes do not fit an operation (raised when the node is built)."""
