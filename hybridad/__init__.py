"""hybridad: symbolic-plus-numeric hybrid differentiation on one expression DAG.

Build expressions with operators, ``hd.parse``, ``hd.from_sympy`` or by tracing a
Python function; differentiate them symbolically (DAGs that never swell), numerically,
or by forward and reverse automatic differentiation. See README.md.
"""

from . import core as _core  # noqa: F401  (registers the primitives)
from . import numeric
from .calculus import (
    count_ops, cse, custom_jvp, custom_vjp, diff, gradient, hessian, hvp, jacobian, jvp,
    vjp,
)
from .core.build import PUBLIC_FUNCTIONS as _PUBLIC_FUNCTIONS
from .core.build import dot, sum, symarray, symbols, tensor  # noqa: A004
from .core.build import constant_node as constant
from .core.registry import ALIASES as _ALIASES
from .core.registry import PRIMITIVES as _PRIMITIVES
from .core.tensor_ops import (
    broadcast_to, concatenate, einsum, expand_dims, logsumexp, matmul, mean, reshape,
    softmax, squeeze, stack, take, tensordot, transpose,
)
from .core.tensor_ops import reduce_max as max  # noqa: A001
from .core.tensor_ops import reduce_min as min  # noqa: A001
from .core.scalarize import scalarize
from .core.define import primitive
from .core.dot import render_dot, to_dot
from .core.evaluate import evaluate
from .core.expr import Constant, Expr, Symbol
from .errors import HybridadError, ParseError, ShapeError, TracingError
from .interop.parse import parse
from .interop.sympy_bridge import from_sympy, to_sympy
from .func.check import check_grad
from .tape import Tape
from .backend import Kernel, clear_kernel_cache, lambdify
from . import codegen  # noqa: F401  (hd.codegen.to_c)

# the elementwise functions (hd.sin, hd.where, hd.maximum, ...) and their aliases
# (hd.asin, ...) come from the registry entries
_ALIASED = {alias: _PUBLIC_FUNCTIONS[_PRIMITIVES[name].public]
            for alias, name in _ALIASES.items() if _PRIMITIVES[name].public}
globals().update(_PUBLIC_FUNCTIONS)
globals().update(_ALIASED)

__version__ = "0.1.0"

__all__ = [
    "Constant", "Expr", "HybridadError", "Kernel", "ParseError", "ShapeError", "Symbol",
    "Tape", "TracingError", "broadcast_to", "check_grad", "clear_kernel_cache",
    "concatenate", "constant", "count_ops", "cse", "custom_jvp", "custom_vjp", "diff", "dot",
    "einsum", "evaluate", "expand_dims", "from_sympy", "gradient", "hessian", "hvp",
    "jacobian", "jvp", "lambdify", "logsumexp", "matmul", "max", "mean", "min", "numeric",
    "parse", "primitive", "render_dot", "reshape", "scalarize", "softmax", "squeeze",
    "stack", "sum", "symarray", "symbols", "take", "tensor", "tensordot", "to_dot",
    "to_sympy", "transpose", "vjp",
]
__all__ += sorted([*_PUBLIC_FUNCTIONS, *_ALIASED])
