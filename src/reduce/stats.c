// Summary statistics (ds_stats.h): mean, spread and Student t interval over replicates, the
// Student t distribution through the regularised incomplete beta function, and Wilson's score
// interval of a binomial rate.
#include "ds_stats.h"

#include <float.h>
#include <math.h>

void ds_stats_compute(const double *x, int n, ds_stats *out) {
    *out = (ds_stats){.n = n, .mean = NAN, .sd = NAN, .min = NAN, .max = NAN, .lo = NAN, .hi = NAN};
    if (n <= 0) return;
    double sum = 0, min = x[0], max = x[0];
    for (int i = 0; i < n; i++) {
        sum += x[i];
        min = x[i] < min ? x[i] : min;
        max = x[i] > max ? x[i] : max;
    }
    out->mean = sum / n;
    out->min = min;
    out->max = max;
    if (n < 2) return; // one value: no spread, no interval
    double ss = 0; // two passes: no cancellation when the values are close
    for (int i = 0; i < n; i++) ss += (x[i] - out->mean) * (x[i] - out->mean);
    out->sd = sqrt(ss / (n - 1));
    double half = ds_t_quantile(0.975, n - 1) * out->sd / sqrt((double)n);
    out->lo = out->mean - half;
    out->hi = out->mean + half;
}

// The continued fraction of I_x(a, b) (modified Lentz; Numerical Recipes' betacf), converging
// fast for x < (a + 1) / (a + b + 2).
static double beta_cf(double a, double b, double x) {
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    d = 1 / (fabs(d) < tiny ? tiny : d);
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        double m2 = 2.0 * m;
        // even step: m (b - m) x / ((a + 2m - 1)(a + 2m))
        double aa = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        d = 1 + aa * d;
        d = 1 / (fabs(d) < tiny ? tiny : d);
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        h *= d * c;
        // odd step: -(a + m)(a + b + m) x / ((a + 2m)(a + 2m + 1))
        aa = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        d = 1 + aa * d;
        d = 1 / (fabs(d) < tiny ? tiny : d);
        c = 1 + aa / c;
        c = fabs(c) < tiny ? tiny : c;
        double del = d * c;
        h *= del;
        if (fabs(del - 1) < 4 * DBL_EPSILON) break;
    }
    return h;
}

double ds_betainc(double a, double b, double x) {
    if (!(a > 0) || !(b > 0) || !(x >= 0) || !(x <= 1)) return NAN;
    if (x == 0) return 0;
    if (x == 1) return 1;
    // x^a (1-x)^b / (a B(a, b)), in logs
    double lbt = lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x);
    if (x < (a + 1) / (a + b + 2)) return exp(lbt) * beta_cf(a, b, x) / a;
    return 1 - exp(lbt) * beta_cf(b, a, 1 - x) / b; // I_x(a, b) = 1 - I_{1-x}(b, a)
}

// P(T > t) for t >= 0: I_{df/(df+t^2)}(df/2, 1/2) / 2, without the cancellation of 1 - cdf.
static double t_upper(double t, double df) { return 0.5 * ds_betainc(df / 2, 0.5, df / (df + t * t)); }

double ds_t_cdf(double t, double df) {
    if (!(df > 0) || isnan(t)) return NAN;
    return t >= 0 ? 1 - t_upper(t, df) : t_upper(-t, df);
}

double ds_t_quantile(double p, double df) {
    if (!(df > 0) || !(p > 0) || !(p < 1)) return NAN;
    if (p == 0.5) return 0;
    if (p < 0.5) return -ds_t_quantile(1 - p, df);
    double q = 1 - p, lo = 0, hi = 1;
    while (t_upper(hi, df) > q) { // bracket: P(T > hi) <= q
        lo = hi;
        hi *= 2;
        if (hi > 1e300) return INFINITY;
    }
    for (int i = 0; i < 2000; i++) { // until the bracket cannot shrink any more
        double mid = lo + (hi - lo) / 2;
        if (mid <= lo || mid >= hi) break;
        if (t_upper(mid, df) > q) lo = mid;
        else hi = mid;
    }
    return lo + (hi - lo) / 2;
}

void ds_wilson(int k, int n, double *lo, double *hi) {
    if (n <= 0 || k < 0 || k > n) {
        *lo = *hi = NAN;
        return;
    }
    const double z = DS_Z975, z2 = z * z;
    double p = (double)k / n, den = 1 + z2 / n;
    double centre = (p + z2 / (2.0 * n)) / den;
    double half = z / den * sqrt(p * (1 - p) / n + z2 / (4.0 * n * n));
    // Exact ends at k = 0 and k = n (rounding would leave them a few ulps off).
    *lo = k == 0 ? 0 : fmax(0, centre - half);
    *hi = k == n ? 1 : fmin(1, centre + half);
}
