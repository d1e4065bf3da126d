"""The seeds' f(x1, x2) = log(x1) + x1*x2 - sin(x2) and its gradient as plain C.

``kernel.to_c("f")`` (or ``hd.codegen.to_c``) gives a C99 source and header: the same
kernel as the LLVM one (primal and gradient, batch loop), needing only libm at run
time. This example writes ``f.c``, ``f.h`` and a small ``main.c`` that evaluates f at
(2, 5) and prints the value and gradient, into ``--out`` (default ``export_c/``); with
a C compiler (``--cc``, default ``cc``) it compiles and runs the program and checks
its output against the LLVM kernel.

    python examples/export_c.py
    python examples/export_c.py --out /tmp/f_export --at 1.5 -0.5
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

import hybridad as hd

MAIN = """#include <stdio.h>
#include "f.h"

/* f and its gradient at one point, through the exported function */
int main(void)
{
    const double x[2] = {%(x1)s, %(x2)s};
    double value, gradient[2];
    f(1, x, 2, &value, gradient);      /* one row; stride 2: the row size */
    printf("f      = %%.17g\\n", value);
    printf("df/dx1 = %%.17g\\n", gradient[0]);
    printf("df/dx2 = %%.17g\\n", gradient[1]);
    return 0;
}
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("export_c"),
                        help="directory for f.c, f.h and main.c (default: export_c)")
    parser.add_argument("--at", nargs=2, type=float, default=(2.0, 5.0),
                        metavar=("X1", "X2"), help="the point main.c evaluates")
    parser.add_argument("--cc", default="cc", help="the C compiler (default: cc)")
    parser.add_argument("--no-run", action="store_true",
                        help="only write the files, do not compile and run them")
    return parser


def write_files(folder: Path, point: Sequence[float]) -> tuple[Any, list[Path]]:
    """The gradient kernel, and f.c, f.h and main.c written into ``folder``."""
    x1, x2 = hd.symbols("x1 x2")
    kernel = hd.lambdify([x1, x2], hd.log(x1) + x1 * x2 - hd.sin(x2),
                         derivatives="gradient")
    source, header = kernel.to_c("f")
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / "f.c", folder / "f.h", folder / "main.c"]
    main_c = MAIN % {"x1": repr(float(point[0])), "x2": repr(float(point[1]))}
    for path, text in zip(files, (source, header, main_c)):
        path.write_text(text)
    return kernel, files


def compile_and_run(compiler: str, folder: Path) -> str:
    """Compile main.c with f.c (C99, libm only) and return the program's output."""
    program = folder / "main"
    subprocess.run([compiler, "-std=c99", "-O2", "-Wall", "-o", str(program),
                    str(folder / "main.c"), str(folder / "f.c"), "-lm"],
                   check=True, capture_output=True, text=True, timeout=300)
    return subprocess.run([str(program)], check=True, capture_output=True, text=True,
                          timeout=60).stdout


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Write the files; compile, run and check them when a compiler is there."""
    args = build_parser().parse_args(argv)
    kernel, files = write_files(args.out, args.at)
    print("wrote " + ", ".join(str(f) for f in files))
    value, gradient = kernel(np.array(args.at, dtype=float))
    result: dict[str, Any] = {"files": files, "kernel": [float(value), *gradient.tolist()],
                              "output": None}
    compiler = shutil.which(args.cc)
    if args.no_run or compiler is None:
        print("not compiled: " + ("--no-run" if args.no_run else f"no C compiler {args.cc!r}"))
        return result
    output = compile_and_run(compiler, args.out)
    print(f"{args.out / 'main'} (f.c compiled by {args.cc}) prints:\n{output.rstrip()}")
    printed = [float(line.split("=")[1]) for line in output.splitlines()]
    difference = max(abs(a - b) for a, b in zip(printed, result["kernel"]))
    print(f"the LLVM kernel gives value {result['kernel'][0]!r}, gradient "
          f"{result['kernel'][1:]}; largest difference {difference:.1e}")
    result.update(output=printed, difference=difference)
    return result


if __name__ == "__main__":
    main()
