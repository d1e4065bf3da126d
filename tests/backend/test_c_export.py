"""C export (DESIGN §7): ``k.to_c(name)`` / ``hd.codegen.to_c`` compiled by the system C
compiler and called through ctypes give the LLVM kernel's numbers."""

import ctypes
import itertools
import shutil
import subprocess

import numpy as np
import pytest
from numpy.testing import assert_array_equal

import hybridad as hd
from hybridad.backend.c.translate import c_double

CC = shutil.which("cc")
needs_cc = pytest.mark.skipif(CC is None, reason="no C compiler (cc) on this machine")
_DOUBLES = ctypes.POINTER(ctypes.c_double)
_BUILDS = itertools.count()          # dlopen caches by path: every build its own file


def compile_c(source, header, name, folder):
    """The shared library of ``source``, compiled with the header included first (so
    the prototypes are checked against the definitions), warnings refused."""
    (folder / f"{name}.h").write_text(header)
    k = next(_BUILDS)
    c_file = folder / f"{name}_{k}.c"
    c_file.write_text(f'#include "{name}.h"\n' + source)
    library = folder / f"{name}_{k}.so"
    done = subprocess.run([CC, "-std=c99", "-O2", "-Wall", "-Wextra", "-pedantic", "-shared",
                           "-fPIC", "-o", str(library), str(c_file), "-lm"],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "warning" not in done.stderr, done.stderr
    return ctypes.CDLL(str(library))


def call(library, name, n_rows, args, strides, out_shapes, work=None):
    """``name(n_rows, arg0, stride0, ..., out0, ...)`` (``name_work`` given ``work``)
    into fresh arrays of ``out_shapes``."""
    arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in args]
    outs = [np.full(shape, -7.0) for shape in out_shapes]
    function = getattr(library, name if work is None else f"{name}_work")
    function.restype = None
    pointers = [p for a, s in zip(arrays, strides) for p in (a.ctypes.data_as(_DOUBLES),
                                                             ctypes.c_long(s))]
    extra = [] if work is None else [work.ctypes.data_as(_DOUBLES)]
    function(ctypes.c_long(n_rows), *pointers, *[o.ctypes.data_as(_DOUBLES) for o in outs],
             *extra)
    return outs


def largest_difference(outs, expected):
    """max |c - llvm| / max(1, |llvm|) over every output."""
    return max(float(np.max(np.abs(np.reshape(o, np.shape(e)) - e) /
                            np.maximum(1.0, np.abs(e)), initial=0.0))
               for o, e in zip(outs, expected))


def rosenbrock(x):
    return sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(len(x) - 1))


X1, X2 = hd.symbols("x1 x2")
SEEDS = hd.log(X1) + X1 * X2 - hd.sin(X2)


# -- the element-level kernels ------------------------------------------------------------
@needs_cc
def test_seeds_example_value_and_gradient(tmp_path):
    kernel = hd.lambdify([X1, X2], SEEDS, derivatives="gradient")
    library = compile_c(*kernel.to_c("f"), "f", tmp_path)
    value, gradient = call(library, "f", 1, [[2.0, 5.0]], [2], [(1,), (1, 2)])
    assert largest_difference([value, gradient], kernel([2.0, 5.0])) <= 1e-14
    assert value[0] == pytest.approx(11.652071455223084, rel=1e-15)
    assert gradient[0].tolist() == pytest.approx([5.5, 2.0 - np.cos(5.0)], rel=1e-15)
    points = np.random.default_rng(0).uniform(0.5, 3.0, size=(9, 2))   # a batch, stride 2
    assert largest_difference(call(library, "f", 9, [points], [2], [(9,), (9, 2)]),
                              kernel(points)) <= 1e-14


def test_function_form_is_the_kernels_export():
    kernel = hd.lambdify([X1, X2], SEEDS, derivatives="gradient")
    assert hd.codegen.to_c([X1, X2], SEEDS, derivatives="gradient", name="g") == \
        kernel.to_c("g")


@needs_cc
def test_rosenbrock_100_gradient(tmp_path):
    x = hd.symarray("cx", 100)
    kernel = hd.lambdify(x, rosenbrock(x), derivatives="gradient")
    library = compile_c(*kernel.to_c("rosen"), "rosen", tmp_path)
    points = np.random.default_rng(1).normal(size=(20, 100))
    outs = call(library, "rosen", 20, [points], [100], [(20,), (20, 100)])
    assert largest_difference(outs, kernel(points)) <= 1e-14


@needs_cc
def test_hessian(tmp_path):
    x = hd.symarray("hx", 10)
    f = rosenbrock(x) + hd.exp(x[0] * x[1]) * hd.tanh(x[2])
    kernel = hd.lambdify(x, f, derivatives="hessian")
    library = compile_c(*kernel.to_c("hess"), "hess", tmp_path)
    points = np.random.default_rng(2).normal(size=(5, 10))
    outs = call(library, "hess", 5, [points], [10], [(5,), (5, 10), (5, 10, 10)])
    assert largest_difference(outs, kernel(points)) <= 1e-14
    assert_array_equal(outs[2], np.transpose(outs[2], (0, 2, 1)))


def logistic_loss():
    row, w, y = hd.symarray("lx", 3), hd.symarray("lw", 3), hd.symbols("ly")
    z = hd.dot(row, w)
    return [row, w, y], hd.log1p(hd.exp(-z)) + (1 - y) * z, w


def logistic_data(n):
    rng = np.random.default_rng(3)
    return rng.normal(size=(n, 3)), np.array([0.5, -0.25, 1.0]), (rng.random(n) < 0.5) * 1.0


@needs_cc
@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_shared_parameters_reduced(tmp_path, reduce):
    """Rows with a shared weight vector (stride 0), summed over 20,000 rows: three
    pieces of partial sums, added in order as the LLVM kernel does."""
    args, loss, w = logistic_loss()
    kernel = hd.lambdify(args, loss, derivatives="gradient", wrt=w, reduce=reduce)
    library = compile_c(*kernel.to_c("fit"), "fit", tmp_path)
    X, weights, labels = logistic_data(20_000)
    outs = call(library, "fit", 20_000, [X, weights, labels], [3, 0, 1], [(1,), (1, 3)])
    expected = kernel(X, weights, labels)
    assert largest_difference(outs, expected) <= 1e-14
    if reduce == "mean":
        closed_form = X.T @ (1 / (1 + np.exp(-X @ weights)) - labels) / len(X)
        assert np.allclose(outs[1][0], closed_form, rtol=1e-10)
    empty = call(library, "fit", 0, [X, weights, labels], [3, 0, 1], [(1,), (1, 3)])
    assert np.isnan(empty[1]).all() if reduce == "mean" else (empty[1] == 0).all()
    work = np.empty(4)                          # the workspace variant: FIT_WORK_DOUBLES
    assert "#define FIT_WORK_DOUBLES 4" in kernel.to_c("fit")[1]
    again = call(library, "fit", 20_000, [X, weights, labels], [3, 0, 1], [(1,), (1, 3)],
                 work=work)
    assert_array_equal(again[1], outs[1])


@needs_cc
def test_batch_with_a_shared_argument(tmp_path):
    args, loss, w = logistic_loss()
    kernel = hd.lambdify(args, loss, derivatives="gradient", wrt=w)
    library = compile_c(*kernel.to_c("rows"), "rows", tmp_path)
    X, weights, labels = logistic_data(50)
    outs = call(library, "rows", 50, [X, weights, labels], [3, 0, 1], [(50,), (50, 3)])
    assert largest_difference(outs, kernel(X, weights, labels)) <= 1e-14
    one_x = call(library, "rows", 50, [X[7], weights, labels], [0, 0, 1], [(50,), (50, 3)])
    assert_array_equal(one_x[0], kernel(np.tile(X[7], (50, 1)), weights, labels)[0])


@needs_cc
@pytest.mark.parametrize("kind", ["jacobian", "jvp", "vjp"])
def test_jacobian_jvp_vjp(tmp_path, kind):
    y = hd.symarray("jy", 3)
    exprs = [y[0] * y[1], hd.sin(y[2]) / y[0]]
    kernel = hd.lambdify(y, exprs, derivatives=kind)
    library = compile_c(*kernel.to_c("jac"), "jac", tmp_path)
    rng = np.random.default_rng(4)
    point = rng.uniform(0.5, 2.0, size=3)
    args = [point] + ([] if kind == "jacobian" else [rng.normal(size=3 if kind == "jvp"
                                                                else 2)])
    shapes = [(1, 2), (1, 2, 3) if kind == "jacobian" else (1, 2) if kind == "jvp" else (1, 3)]
    outs = call(library, "jac", 1, args, [a.size for a in args], shapes)
    assert largest_difference(outs, kernel(*args)) <= 1e-14


@needs_cc
def test_ieee_special_values(tmp_path):
    """NaN, infinities and signed zeros through max/min, where, sign, comparisons and
    division: bit for bit the LLVM kernel's (numpy's) results."""
    a, b = hd.symbols("sa sb")
    exprs = [hd.maximum(a, b), hd.minimum(a, b), hd.where(a > b, a, b), hd.sign(a), a / b,
             hd.relu(a), hd.abs(b), (a <= b) * 1.0, hd.sqrt(a), hd.log(b)]
    kernel = hd.lambdify([a, b], exprs)
    library = compile_c(*kernel.to_c("ieee"), "ieee", tmp_path)
    special = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0]
    points = np.array([(p, q) for p in special for q in special])
    (outs,) = call(library, "ieee", len(points), [points], [2], [(len(points), 10)])
    expected = kernel(points)
    assert_array_equal(np.signbit(outs), np.signbit(expected))
    assert_array_equal(outs, expected)


def test_a_100000_node_chain_exports():
    """Every traversal is iterative: a chain of 100,000 operations becomes C."""
    x = hd.symbols("chain_x")
    e = x
    for i in range(100_000):
        e = hd.sin(e) if i % 2 else e * 0.999 + x
    source, header = hd.codegen.to_c([x], e, name="chain")
    assert source.count("static void chain_seg_") == 2 * 300     # prototypes, definitions
    assert "void chain(long n_rows, const double *arg0, long stride0, double *out0);" in header


# -- tensor kernels (loop nests) ------------------------------------------------------------
def mlp():
    X, W1, b1 = hd.tensor("cX", (8, 30)), hd.tensor("cW1", (30, 20)), hd.tensor("cb1", (20,))
    W2, T = hd.tensor("cW2", (20, 5)), hd.tensor("cT", (8, 5))
    loss = hd.mean((hd.relu(X @ W1 + b1) @ W2 - T) ** 2)
    rng = np.random.default_rng(5)
    values = [rng.normal(size=(8, 30)), 0.2 * rng.normal(size=(30, 20)), rng.normal(size=20),
              0.3 * rng.normal(size=(20, 5)), rng.normal(size=(8, 5))]
    return [X, W1, b1, W2, T], loss, [W1, b1, W2], values


@needs_cc
def test_tensor_mlp_gradient(tmp_path):
    args, loss, wrt, values = mlp()
    kernel = hd.lambdify(args, loss, derivatives="gradient", wrt=wrt, scalarize=False)
    source, header = kernel.to_c("mlp")
    assert "dgemm" not in source and "dgemv" not in source      # plain loops, no BLAS
    library = compile_c(source, header, "mlp", tmp_path)
    shapes = [(1,), (1, 30, 20), (1, 20), (1, 20, 5)]
    outs = call(library, "mlp", 1, values, [v.size for v in values], shapes)
    value, grads = kernel(*values)
    assert largest_difference(outs, [value, *grads]) <= 1e-13


@needs_cc
@pytest.mark.parametrize("reduce", [None, "mean"])
def test_tensor_batch_with_shared_weights(tmp_path, reduce):
    """100 rows of (X, T), the weights shared (stride 0): per-row results, or their
    mean in pieces of 64 rows as TensorLambdified sums them."""
    args, loss, wrt, values = mlp()
    kernel = hd.lambdify(args, loss, derivatives="gradient", wrt=wrt, reduce=reduce,
                         scalarize=False)
    library = compile_c(*kernel.to_c("batch"), "batch", tmp_path)
    rng = np.random.default_rng(6)
    X, T = rng.normal(size=(100, 8, 30)), rng.normal(size=(100, 8, 5))
    batch = [X, values[1], values[2], values[3], T]
    strides = [240, 0, 0, 0, 40]
    rows = 1 if reduce else 100
    outs = call(library, "batch", 100, batch, strides,
                [(rows,), (rows, 30, 20), (rows, 20), (rows, 20, 5)])
    value, grads = kernel(*batch)
    assert largest_difference(outs, [value, *grads]) <= 1e-13
    if reduce:
        size = int(kernel.to_c("batch")[1].split("#define BATCH_WORK_DOUBLES ")[1].split()[0])
        again = call(library, "batch", 100, batch, strides,
                     [(1,), (1, 30, 20), (1, 20), (1, 20, 5)], work=np.empty(size))
        assert_array_equal(again[1], outs[1])


@needs_cc
def test_tensor_rosenbrock_10000(tmp_path):
    x = hd.tensor("crx", (10_000,))
    f = hd.sum(100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2)
    kernel = hd.lambdify([x], f, derivatives="gradient", scalarize=False)
    library = compile_c(*kernel.to_c("rosen"), "rosen", tmp_path)
    points = np.random.default_rng(7).normal(size=(3, 10_000))
    outs = call(library, "rosen", 3, [points], [10_000], [(3,), (3, 10_000)])
    assert largest_difference(outs, kernel(points)) <= 1e-13


@needs_cc
def test_tensor_constants_gathers_and_max(tmp_path):
    """Constant arrays and index arrays become static C tables; logsumexp's max
    reduction uses the NaN-propagating helper."""
    A, x = hd.tensor("cA", (6, 4)), hd.tensor("cxx", (4,))
    c = np.linspace(-1.0, 1.0, 6)
    y = (A @ x + c)[np.array([5, 0, 0, 3])]
    f = hd.logsumexp(y) + hd.max(A, axis=0) @ x
    kernel = hd.lambdify([A, x], f, derivatives="gradient", scalarize=False)
    source, header = kernel.to_c("lse")
    assert "static const double lse_buffer" in source and "static const int64_t" in source
    library = compile_c(source, header, "lse", tmp_path)
    rng = np.random.default_rng(8)
    values = [rng.normal(size=(6, 4)), rng.normal(size=4)]
    outs = call(library, "lse", 1, values, [24, 4], [(1,), (1, 6, 4), (1, 4)])
    value, grads = kernel(*values)
    assert largest_difference(outs, [value, *grads]) <= 1e-13


# -- the interface ------------------------------------------------------------------------
def test_header_documents_the_signature():
    args, loss, w = logistic_loss()
    source, header = hd.lambdify(args, loss, derivatives="gradient", wrt=w,
                                 reduce="mean").to_c("fit")
    signature = ("void fit(long n_rows, const double *arg0, long stride0, const double "
                 "*arg1, long stride1,")
    assert signature in " ".join(header.split())
    for words in ("stride 0", "one row, the mean over the rows",
                  "gradient with respect to arg1", "lx_0, lx_1, lx_2", "FIT_WORK_DOUBLES",
                  "fit_work", "malloc", "pieces of 8192 rows", "-ffast-math"):
        assert words in " ".join(header.replace(" * ", " ").split()), words
    assert "Python.h" not in source and "dgemm" not in source
    includes = {line for line in source.splitlines() if line.startswith("#include")}
    assert includes == {"#include <math.h>", "#include <stdint.h>", "#include <stdlib.h>"}


@pytest.mark.parametrize("name", ["1f", "my-func", "", "f g", "int", "sin", "sinf",
                                  "__f", "_F", "size_t", "main"])
def test_bad_names(name):
    kernel = hd.lambdify([X1, X2], SEEDS, backend="numpy")
    with pytest.raises(ValueError, match=f"to_c: name must .*got {name!r}"):
        kernel.to_c(name)
    with pytest.raises(ValueError, match="to_c: name must"):
        hd.codegen.to_c([X1, X2], SEEDS, name=name)


def test_bad_name_types_and_tensor_kernels():
    with pytest.raises(TypeError, match="name must be a str .*got int 3"):
        hd.codegen.to_c([X1, X2], SEEDS, name=3)
    x = hd.tensor("cbx", (5,))
    kernel = hd.lambdify([x], hd.sum(x ** 2), scalarize=False)
    with pytest.raises(ValueError, match="C identifier.*'f.c'"):
        kernel.to_c("f.c")


def test_c_literals_are_exact():
    for value in (0.1, -2.5e-300, 5e-324, 1.7976931348623157e308, 1 / 3, -0.0):
        text = c_double(value).strip("()")
        assert float(text) == value and np.signbit(float(text)) == np.signbit(value)
    assert (c_double(np.inf), c_double(-np.inf), c_double(np.nan)) == \
        ("HUGE_VAL", "(-HUGE_VAL)", "NAN")
