"""Expression core: nodes, the primitive registry, constructors, traversal, printing."""

from . import primitives as _primitives  # noqa: F401  (registers every primitive)
from . import tensor_ops as _tensor_ops  # noqa: F401  (structural primitives)
from . import tensor_syntax as _tensor_syntax  # noqa: F401  (operators, numpy dispatch)
from .build import install_public_functions

install_public_functions()
from .expr import Constant, Expr, Symbol
from .registry import PRIMITIVES, Flags, Primitive

__all__ = ["Constant", "Expr", "Flags", "PRIMITIVES", "Primitive", "Symbol"]
