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
from .core.build import (
    abs, arccos, arcsin, arctan, arctan2, cos, cosh, dot, exp, expm1, log, log1p,
    maximum, minimum, power, relu, sigmoid, sign, sin, sinh, sqrt, stop_gradient, sum,
    symarray, symbols, tan, tanh, tensor, where,
)
from .core.build import constant_node as constant
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

asin, acos, atan, atan2 = arcsin, arccos, arctan, arctan2

__version__ = "0.1.0"

__all__ = [
    "Constant", "Expr", "HybridadError", "Kernel", "ParseError", "ShapeError", "Symbol",
    "Tape", "TracingError", "clear_kernel_cache", "lambdify",
    "broadcast_to", "concatenate", "constant", "custom_jvp", "custom_vjp", "einsum",
    "expand_dims", "hvp", "jvp",
    "logsumexp", "matmul", "max", "mean", "min", "primitive", "reshape", "scalarize",
    "softmax",
    "squeeze", "stack", "take", "tensor", "tensordot", "transpose", "vjp",
    "abs", "acos", "arccos", "arcsin", "arctan", "arctan2", "asin", "atan", "atan2",
    "check_grad", "cos", "cosh", "count_ops", "cse", "diff", "dot", "evaluate", "exp",
    "expm1", "from_sympy", "gradient", "hessian", "jacobian", "log", "log1p", "maximum",
    "minimum", "numeric", "parse", "power", "relu", "render_dot", "sigmoid", "sign", "sin",
    "sinh", "sqrt", "stop_gradient", "sum", "symarray", "symbols", "tan", "tanh", "to_dot",
    "to_sympy", "where",
]
