"""C export of compiled kernels (DESIGN §7): a self-contained C99 source and header for
the same kernel, needing only libm. The kernel's IR text, written once from the
registry's ``llvm=`` lowerings, is translated to C (translate.py); export.py writes the
batch loop, the reduction and the header of element-level kernels, tensor.py those of
loop-nest kernels."""

from .export import check_name, kernel_to_c
from .tensor import tensor_to_c

__all__ = ["check_name", "kernel_to_c", "tensor_to_c"]
