/* Rosenbrock value and gradient, hand-written: the physical reference of the benchmarks.
 *
 *   f(x) = sum_{i<n-1} 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2
 *
 * x is (batch, n) row-major; f gets batch values, g batch gradients (batch, n).
 * Built at run time with gcc -O3 -march=native -shared -fPIC (benchmarks/peers.py).
 */
void rosenbrock(const double *x, long batch, long n, double *f, double *g)
{
    for (long p = 0; p < batch; ++p) {
        const double *xp = x + p * n;
        double *gp = g + p * n;
        double value = 0.0;
        for (long i = 0; i < n; ++i)
            gp[i] = 0.0;
        for (long i = 0; i + 1 < n; ++i) {
            double t = xp[i + 1] - xp[i] * xp[i];
            double u = 1.0 - xp[i];
            value += 100.0 * t * t + u * u;
            gp[i] += -400.0 * t * xp[i] - 2.0 * u;
            gp[i + 1] += 200.0 * t;
        }
        f[p] = value;
    }
}
