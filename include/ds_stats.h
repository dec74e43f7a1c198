// Summary statistics for the reducer: the spread of a value over replicates (seeds) with a
// Student t interval, and the binomial (Wilson score) interval of a success rate over attempts.
// Pure functions over caller-owned values; NAN marks what is undefined (no interval from one
// value, no rate from zero attempts). src/reduce/stats.c.
#ifndef DS_STATS_H
#define DS_STATS_H

#define DS_Z975 1.959963984540054 // the standard normal 0.975 quantile (two-sided 95%)

// x[0..n): n, mean, sample standard deviation (divisor n - 1), min, max, and the 95% Student t
// interval mean -/+ t(0.975, n-1) sd / sqrt(n) in lo, hi (not clipped to any range).
// n = 0: everything NAN; n = 1: sd, lo and hi NAN.
typedef struct {
    int n;
    double mean, sd, min, max, lo, hi;
} ds_stats;

void ds_stats_compute(const double *x, int n, ds_stats *out);

// The regularised incomplete beta function I_x(a, b), a, b > 0, x in [0, 1] (continued
// fraction; relative error about 1e-14). NAN outside the domain.
double ds_betainc(double a, double b, double x);
// The CDF of Student's t distribution with df > 0 degrees of freedom at t.
double ds_t_cdf(double t, double df);
// Its p quantile, 0 < p < 1 (bisection on ds_t_cdf to the last bits; NAN outside the domain).
double ds_t_quantile(double p, double df);

// The 95% Wilson score interval of k successes in n attempts (0 <= k <= n), z = DS_Z975:
// inside [0, 1], lo = 0 when k = 0 and hi = 1 when k = n. n = 0: both NAN.
void ds_wilson(int k, int n, double *lo, double *hi);

#endif
