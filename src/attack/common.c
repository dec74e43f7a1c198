// What every attack shares: the attacked quantity ("space") and its gradients with respect to the
// logits, settings and their validation, distortion and the one definition of success rates.
#include "attack_internal.h"
#include "ds_error.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

// ---- float32 helpers ----

void dsa_softmax(float *p, const float *z, int C, float T) {
    float m = z[0];
    for (int j = 1; j < C; j++)
        if (z[j] > m) m = z[j];
    float sum = 0.0f;
    for (int j = 0; j < C; j++) {
        p[j] = expf((z[j] - m) / T); // exactly 0 below about -103 (float32 underflow)
        sum += p[j];
    }
    for (int j = 0; j < C; j++) p[j] /= sum;
}

void dsa_refill(void *run, int (*finished)(void *run, int slot),
                void (*load)(void *run, int slot, int attempt), void (*move)(void *run, int to, int from),
                int *na, int *next, int total, int max_batch) {
    for (int i = 0; i < *na;) {
        if (!finished(run, i)) {
            i++;
        } else if (*next < total) {
            load(run, i++, (*next)++);
        } else {
            if (i != *na - 1) move(run, i, *na - 1);
            (*na)--;
        }
    }
    while (*na < max_batch && *next < total) load(run, (*na)++, (*next)++);
}

int dsa_argmax_except(const float *z, int C, int skip) {
    int best = -1;
    for (int j = 0; j < C; j++)
        if (j != skip && (best < 0 || z[j] > z[best])) best = j;
    return best;
}

float dsa_temperature(const ds_classifier *c, float explicit_T) {
    if (explicit_T > 0.0f) return explicit_T;
    return c->temperature > 0.0f ? c->temperature : 1.0f;
}

int dsa_check_inputs(const char *attack, const ds_classifier *c, const float *x,
                     const uint8_t *labels, int n, const ds_attack_record *rec) {
    if (!c || !c->forward || !c->input_grad || c->n_in < 1 || c->n_classes < 2 || c->max_batch < 1)
        return ds_fail(DS_EINVAL, "%s: classifier not initialised", attack);
    if (c->n_classes > DSA_MAX_CLASSES)
        return ds_fail(DS_EINVAL, "%s: %d classes (at most %d)", attack, c->n_classes, DSA_MAX_CLASSES);
    if (n < 0) return ds_fail(DS_EINVAL, "%s: negative sample count %d", attack, n);
    if (n > 0 && (!x || !labels || !rec))
        return ds_fail(DS_EINVAL, "%s: missing inputs, labels or record buffer", attack);
    for (int i = 0; i < n; i++)
        if (labels[i] >= c->n_classes)
            return ds_fail(DS_EINVAL, "%s: label %d of sample %d is not one of %d classes", attack,
                           labels[i], i, c->n_classes);
    return DS_OK;
}

// ---- Spaces ----

static int parse_name(const char *s, const char *const *names, int count, const char *what, int *out) {
    for (int i = 0; s && i < count; i++)
        if (!strcmp(s, names[i])) {
            *out = i;
            return DS_OK;
        }
    char list[128] = "";
    for (int i = 0; i < count; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
    return ds_fail(DS_EINVAL, "unknown %s '%s' (expected one of: %s)", what, s ? s : "(null)", list);
}

// The names of an enum setting, in its order, and its parse/name pair over them.
#define NAMED_ENUM(type, fn, what, ...)                                                         \
    static const char *const fn##_names[] = {__VA_ARGS__};                                       \
    enum { fn##_count = sizeof fn##_names / sizeof fn##_names[0] };                              \
    int ds_##fn##_parse(const char *s, type *out) {                                              \
        int v = 0, rc = parse_name(s, fn##_names, fn##_count, what, &v);                        \
        if (!rc) *out = (type)v;                                                                 \
        return rc;                                                                               \
    }                                                                                            \
    const char *ds_##fn##_name(type x) { return (unsigned)x < fn##_count ? fn##_names[x] : "?"; }

NAMED_ENUM(ds_space, space, "space", "softmax", "logits", "logits_T")
NAMED_ENUM(ds_label_mode, label_mode, "label mode", "true", "predicted")
NAMED_ENUM(ds_target_mode, target_mode, "target mode", "all", "none")
NAMED_ENUM(ds_denormals, denormals, "denormals setting", "keep", "flush")
NAMED_ENUM(ds_gradient, gradient, "gradient formula", "stable", "framework")
NAMED_ENUM(ds_precision, precision, "precision", "float32", "float64")
NAMED_ENUM(ds_norm, norm, "norm", "linf", "l2")
NAMED_ENUM(ds_loss, loss, "loss", "ce", "margin")

// ---- float64: the softmax and its derivatives in the log domain ----

// lp[j] = log softmax(z/T)_j in double: exact to double rounding, and never -inf from underflow.
static void log_softmax64(double *lp, const float *z, int C, double T) {
    double m = z[0];
    for (int j = 1; j < C; j++)
        if (z[j] > m) m = z[j];
    double sum = 0.0;
    for (int j = 0; j < C; j++) sum += exp(((double)z[j] - m) / T);
    double lse = log(sum);
    for (int j = 0; j < C; j++) lp[j] = ((double)z[j] - m) / T - lse;
}

// log sum_{j != skip} exp(lp[j]) (the log of 1 - p_skip, computed without cancellation).
static double log_sum_except(const double *lp, int C, int skip) {
    double m = -INFINITY, sum = 0.0;
    for (int j = 0; j < C; j++)
        if (j != skip && lp[j] > m) m = lp[j];
    if (m == -INFINITY) return -INFINITY;
    for (int j = 0; j < C; j++)
        if (j != skip) sum += exp(lp[j] - m);
    return m + log(sum);
}

// log(1 - p_i): the stable form, or 1 - p_i rounded in double as autograd would.
static double log_one_minus(const double *lp, int C, int i, ds_gradient g) {
    if (g == DS_GRADIENT_STABLE) return log_sum_except(lp, C, i);
    double v = 1.0 - exp(lp[i]);
    return v > 0.0 ? log(v) : -INFINITY;
}

// The largest of the log magnitudes lm[0..n) (-inf for zeros, and when n = 0).
static double log_max(const double *lm, int n) {
    double mx = -INFINITY;
    for (int k = 0; k < n; k++)
        if (lm[k] > mx) mx = lm[k];
    return mx;
}

// The power of two, as a natural log (e ln 2), that brings a largest magnitude exp(mx) into
// [0.5, 1): the float64 values' way into float32 range.
static double pow2_shift(double mx) {
    return mx == -INFINITY ? 0.0 : (floor(mx / M_LN2) + 1.0) * M_LN2;
}

static float scaled(double lm, double sign, double shift) {
    return lm == -INFINITY ? 0.0f : (float)(sign * exp(lm - shift));
}

// ---- Spaces: gradients with respect to the logits ----

static float space_T(ds_space s, float T) { return s == DS_SPACE_SOFTMAX ? 1.0f : T; }

// FGSM's dL/dz in float64: p_j / T for j != y, -(1 - p_y) / T for y, times a power of two.
static void loss_dz64(ds_gradient g, const float *z, int C, int y, float T, float *dz) {
    double lp[DSA_MAX_CLASSES], lm[DSA_MAX_CLASSES];
    double lt = log((double)T);
    log_softmax64(lp, z, C, T);
    for (int j = 0; j < C; j++) lm[j] = lp[j] - lt;
    lm[y] = log_one_minus(lp, C, y, g) - lt;
    double shift = pow2_shift(log_max(lm, C));
    for (int j = 0; j < C; j++) dz[j] = scaled(lm[j], j == y ? -1.0 : 1.0, shift);
}

// 1 - p_i in float32: stable, as the sum of the other p_j (zero only when every p_j underflows:
// 1.0f - p_i is 0 as soon as p_i rounds to 1.0f while the others are still ~1e-10, which would
// silently drop the -dz_i/dx term of a confident, not saturated, model), or framework, as the
// difference that autograd computes.
static float one_minus(const float *p, int C, int i, ds_gradient g) {
    if (g == DS_GRADIENT_FRAMEWORK) return 1.0f - p[i];
    float rest = 0.0f;
    for (int j = 0; j < C; j++)
        if (j != i) rest += p[j];
    return rest;
}

// FGSM's dL/dz. The softmax cases go through p - onehot in float32: when p saturates to the
// one-hot vector of y, dz is exactly zero, and so is every input gradient after it.
void ds_space_loss_dz(ds_space s, const ds_numerics *num, const float *z, int C, int y, float T,
                      float *dz) {
    if (s == DS_SPACE_LOGITS) {
        for (int j = 0; j < C; j++) dz[j] = 0.0f;
        dz[dsa_argmax_except(z, C, y)] = 1.0f; // margin max_{j!=y} z_j - z_y
        dz[y] = -1.0f;
        return;
    }
    T = space_T(s, T);
    if (num->precision == DS_PRECISION_FLOAT64) {
        loss_dz64(num->gradient, z, C, y, T, dz);
        return;
    }
    dsa_softmax(dz, z, C, T);
    dz[y] = -one_minus(dz, C, y, num->gradient); // p_y - 1 (a - b = -(b - a) exactly)
    if (T != 1.0f)
        for (int j = 0; j < C; j++) dz[j] /= T;
}

// log(exp(a) + exp(b)), -inf when both are.
static double log_add(double a, double b) {
    double m = fmax(a, b);
    return m == -INFINITY ? -INFINITY : m + log(exp(a - m) + exp(b - m));
}

// log |exp(a) - exp(b)|, -inf when they are equal.
static double log_diff(double a, double b) {
    double hi = fmax(a, b), lo = fmin(a, b);
    return hi == lo ? -INFINITY : hi + log1p(-exp(lo - hi));
}

// The margin's dF_j/dz - dF_y/dz in float64, every term a product of positive factors:
//   k != j, y:  p_k (p_y - p_j) / T;   k = j:  p_j ((1 - p_j) + p_y) / T;
//   k = y:     -p_y ((1 - p_y) + p_j) / T;   then times a power of two, as loss_dz64.
static void margin_dz64(ds_gradient g, const float *z, int C, int y, int j, float T, float *dz) {
    double lp[DSA_MAX_CLASSES], lm[DSA_MAX_CLASSES], sign[DSA_MAX_CLASSES];
    double lt = log((double)T);
    log_softmax64(lp, z, C, T);
    double ld = log_diff(lp[y], lp[j]), sd = lp[y] >= lp[j] ? 1.0 : -1.0;
    for (int k = 0; k < C; k++) {
        lm[k] = lp[k] + ld - lt;
        sign[k] = sd;
    }
    lm[j] = lp[j] + log_add(log_one_minus(lp, C, j, g), lp[y]) - lt;
    sign[j] = 1.0;
    lm[y] = lp[y] + log_add(log_one_minus(lp, C, y, g), lp[j]) - lt;
    sign[y] = -1.0;
    double shift = pow2_shift(log_max(lm, C));
    for (int k = 0; k < C; k++) dz[k] = scaled(lm[k], sign[k], shift);
}

// dF_i/dz_j = p_i (delta_ij - p_j) / T for the softmax spaces, delta_ij for the logits.
void ds_space_output_dz(ds_space s, ds_gradient g, const float *p, int C, int i, float T,
                        float *dFi_dz) {
    if (s == DS_SPACE_LOGITS) {
        for (int j = 0; j < C; j++) dFi_dz[j] = j == i ? 1.0f : 0.0f;
        return;
    }
    T = space_T(s, T);
    float rest = one_minus(p, C, i, g);
    for (int j = 0; j < C; j++) {
        dFi_dz[j] = j == i ? p[i] * rest : -p[i] * p[j];
        if (T != 1.0f) dFi_dz[j] /= T;
    }
}

void ds_space_margin_dz(ds_space s, const ds_numerics *num, const float *z, int C, int y, float T,
                        float *dz) {
    int j = dsa_argmax_except(z, C, y); // the softmax is monotone: the same j on F as on z
    if (s == DS_SPACE_LOGITS) {
        for (int k = 0; k < C; k++) dz[k] = 0.0f;
        dz[j] = 1.0f;
        dz[y] = -1.0f;
        return;
    }
    T = space_T(s, T);
    if (num->precision == DS_PRECISION_FLOAT64) {
        margin_dz64(num->gradient, z, C, y, j, T, dz);
        return;
    }
    // p = {0}: gcc's -Wmaybe-uninitialized does not see that dsa_softmax fills it
    float p[DSA_MAX_CLASSES] = {0}, rj[DSA_MAX_CLASSES], ry[DSA_MAX_CLASSES];
    dsa_softmax(p, z, C, T);
    ds_space_output_dz(s, num->gradient, p, C, j, T, rj);
    ds_space_output_dz(s, num->gradient, p, C, y, T, ry);
    for (int k = 0; k < C; k++) dz[k] = rj[k] - ry[k];
}

// The float64 Jacobian: log magnitudes of p_i (delta_ij - p_j) / T, then row `target` and the
// other rows (summed into JSMA's beta) each scaled into float32 range by their own power of two.
static void jacobian64(ds_gradient g, const float *z, int C, float T, int target, float *J) {
    double lp[DSA_MAX_CLASSES], lm[DSA_MAX_CLASSES * DSA_MAX_CLASSES];
    double lt = log((double)T);
    log_softmax64(lp, z, C, T);
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++)
            lm[i * C + j] = lp[i] + (i == j ? log_one_minus(lp, C, i, g) : lp[j]) - lt;
    // The target's row, and the other rows (before and after it) in common.
    double t_shift = pow2_shift(log_max(lm + target * C, C));
    double o_shift = pow2_shift(fmax(log_max(lm, target * C),
                                     log_max(lm + (target + 1) * C, (C - 1 - target) * C)));
    for (int i = 0; i < C; i++)
        for (int j = 0; j < C; j++)
            J[i * C + j] = scaled(lm[i * C + j], i == j ? 1.0 : -1.0, i == target ? t_shift : o_shift);
}

void ds_space_jacobian_dz(ds_space s, const ds_numerics *num, const float *z, int C, float T,
                          int target, float *J) {
    T = space_T(s, T);
    if (s != DS_SPACE_LOGITS && num->precision == DS_PRECISION_FLOAT64) {
        jacobian64(num->gradient, z, C, T, target, J);
        return;
    }
    float p[DSA_MAX_CLASSES];
    if (s != DS_SPACE_LOGITS) dsa_softmax(p, z, C, T);
    for (int i = 0; i < C; i++) ds_space_output_dz(s, num->gradient, p, C, i, T, J + i * C);
}

// ---- Settings ----

void ds_fgsm_params_default(ds_fgsm_params *p) {
    memset(p, 0, sizeof *p);
    p->eps[0] = 0.3f;
    p->n_eps = 1;
    p->space = DS_SPACE_SOFTMAX;
    p->labels = DS_LABELS_TRUE;
}

void ds_jsma_params_default(ds_jsma_params *p) {
    memset(p, 0, sizeof *p);
    p->space = DS_SPACE_SOFTMAX;
    p->gamma = 0.145f;
    p->theta = 1.0f;
    p->threads = 1;
}

void ds_cw_params_default(ds_cw_params *p) {
    memset(p, 0, sizeof *p);
    p->targets = DS_TARGETS_ALL;
    p->steps = 6;
    p->max_iterations = 200;
    p->c0 = 1e-2f;
    p->lr = 0.1f;
    p->kappa = 0.0f;
    p->abort_early = 1;
}

// MadryLab/mnist_challenge's evaluation settings (config.json): eps 0.3, 100 steps of 0.01,
// random start.
void ds_pgd_params_default(ds_pgd_params *p) {
    memset(p, 0, sizeof *p);
    p->eps[0] = 0.3f;
    p->n_eps = 1;
    p->norm = DS_NORM_LINF;
    p->step = 0.01f;
    p->steps = 100;
    p->random_start = 1;
    p->restarts = 1;
    p->loss = DS_LOSS_CE;
    p->space = DS_SPACE_SOFTMAX;
    p->labels = DS_LABELS_TRUE;
}

static int check_numerics(const char *attack, const ds_numerics *n) {
    if ((unsigned)n->denormals > DS_DENORMALS_FLUSH || (unsigned)n->gradient > DS_GRADIENT_FRAMEWORK ||
        (unsigned)n->precision > DS_PRECISION_FLOAT64)
        return ds_fail(DS_EINVAL, "%s: unknown numerics %d/%d/%d (expected denormals keep|flush, "
                       "gradient stable|framework, precision float32|float64)", attack,
                       (int)n->denormals, (int)n->gradient, (int)n->precision);
    return DS_OK;
}

static int check_space(const char *attack, ds_space s, float T) {
    if ((unsigned)s > DS_SPACE_LOGITS_T)
        return ds_fail(DS_EINVAL, "%s: unknown space %d (expected softmax, logits or logits_T)",
                       attack, (int)s);
    if (!isfinite(T))
        return ds_fail(DS_EINVAL, "%s: temperature must be finite", attack);
    return DS_OK;
}

int ds_fgsm_params_check(const ds_fgsm_params *p) {
    if (p->n_eps < 1 || p->n_eps > DS_FGSM_MAX_EPS)
        return ds_fail(DS_EINVAL, "fgsm: %d eps values (expected 1 to %d)", p->n_eps, DS_FGSM_MAX_EPS);
    for (int i = 0; i < p->n_eps; i++)
        if (!(p->eps[i] >= 0.0f && p->eps[i] <= 1.0f))
            return ds_fail(DS_EINVAL, "fgsm: eps %g outside [0, 1]", (double)p->eps[i]);
    if ((unsigned)p->labels > DS_LABELS_PREDICTED)
        return ds_fail(DS_EINVAL, "fgsm: unknown label mode %d (expected true or predicted)",
                       (int)p->labels);
    int rc = check_numerics("fgsm", &p->num);
    return rc ? rc : check_space("fgsm", p->space, p->temperature);
}

int ds_pgd_params_check(const ds_pgd_params *p) {
    if (p->n_eps < 1 || p->n_eps > DS_FGSM_MAX_EPS)
        return ds_fail(DS_EINVAL, "pgd: %d eps values (expected 1 to %d)", p->n_eps, DS_FGSM_MAX_EPS);
    if ((unsigned)p->norm > DS_NORM_L2)
        return ds_fail(DS_EINVAL, "pgd: unknown norm %d (expected linf or l2)", (int)p->norm);
    for (int i = 0; i < p->n_eps; i++)
        if (!(p->eps[i] > 0.0f) || !isfinite(p->eps[i]) ||
            (p->norm == DS_NORM_LINF && p->eps[i] > 1.0f))
            return ds_fail(DS_EINVAL, "pgd: eps %g outside %s", (double)p->eps[i],
                           p->norm == DS_NORM_LINF ? "(0, 1]" : "(0, inf)");
    if (!(p->step > 0.0f) || !isfinite(p->step))
        return ds_fail(DS_EINVAL, "pgd: step %g must be positive", (double)p->step);
    if (p->steps < 1) return ds_fail(DS_EINVAL, "pgd: steps %d < 1", p->steps);
    if (p->restarts < 1) return ds_fail(DS_EINVAL, "pgd: restarts %d < 1", p->restarts);
    if ((double)p->steps * p->restarts > 1e9) // a record's iterations are an int32
        return ds_fail(DS_EINVAL, "pgd: steps x restarts = %.0f is more than 1e9",
                       (double)p->steps * p->restarts);
    if (p->random_start != 0 && p->random_start != 1)
        return ds_fail(DS_EINVAL, "pgd: random_start %d (expected 0 or 1)", p->random_start);
    if (p->restarts > 1 && !p->random_start)
        return ds_fail(DS_EINVAL, "pgd: %d restarts without random_start would repeat one start",
                       p->restarts);
    if ((unsigned)p->loss > DS_LOSS_MARGIN)
        return ds_fail(DS_EINVAL, "pgd: unknown loss %d (expected ce or margin)", (int)p->loss);
    if ((unsigned)p->labels > DS_LABELS_PREDICTED)
        return ds_fail(DS_EINVAL, "pgd: unknown label mode %d (expected true or predicted)",
                       (int)p->labels);
    int rc = check_numerics("pgd", &p->num);
    return rc ? rc : check_space("pgd", p->space, p->temperature);
}

int ds_jsma_params_check(const ds_jsma_params *p) {
    if (!(p->gamma > 0.0f && p->gamma <= 1.0f))
        return ds_fail(DS_EINVAL, "jsma: gamma %g outside (0, 1]", (double)p->gamma);
    if (!(p->theta >= -1.0f && p->theta <= 1.0f) || p->theta == 0.0f)
        return ds_fail(DS_EINVAL, "jsma: theta %g must be in [-1, 1] and not 0", (double)p->theta);
    if (p->max_iterations < 0)
        return ds_fail(DS_EINVAL, "jsma: iterations %d < 1", p->max_iterations);
    if (p->threads < 1) return ds_fail(DS_EINVAL, "jsma: threads %d < 1", p->threads);
    int rc = check_numerics("jsma", &p->num);
    return rc ? rc : check_space("jsma", p->space, p->temperature);
}

int ds_cw_params_check(const ds_cw_params *p) {
    if ((unsigned)p->targets > DS_TARGETS_NONE)
        return ds_fail(DS_EINVAL, "cw-l2: unknown target mode %d (expected all or none)",
                       (int)p->targets);
    if (p->steps < 1) return ds_fail(DS_EINVAL, "cw-l2: binary search steps %d < 1", p->steps);
    if (p->max_iterations < 1)
        return ds_fail(DS_EINVAL, "cw-l2: iterations %d < 1", p->max_iterations);
    if (!(p->c0 > 0.0f) || !isfinite(p->c0))
        return ds_fail(DS_EINVAL, "cw-l2: initial c %g must be positive", (double)p->c0);
    if (!(p->lr > 0.0f) || !isfinite(p->lr))
        return ds_fail(DS_EINVAL, "cw-l2: learning rate %g must be positive", (double)p->lr);
    if (!(p->kappa >= 0.0f) || !isfinite(p->kappa))
        return ds_fail(DS_EINVAL, "cw-l2: kappa %g must be >= 0", (double)p->kappa);
    ds_numerics n = {.denormals = p->denormals};
    return check_numerics("cw-l2", &n);
}

int ds_jsma_budget(const ds_jsma_params *p, int n_in) {
    if (p->max_iterations > 0) return p->max_iterations;
    return (int)floor((double)n_in * (double)p->gamma / 2.0 + 1e-9);
}

// Appends to out[cap] at *len, never past cap.
static void appendf(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char *out, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    *len = k < 0 || *len + (size_t)k >= cap ? cap : *len + (size_t)k;
}

// " denormals=keep gradient=stable precision=float32": gradient and precision only where a
// softmax is differentiated.
static void append_numerics(char *out, size_t cap, size_t *len, const ds_numerics *n, int softmax) {
    appendf(out, cap, len, " denormals=%s", ds_denormals_name(n->denormals));
    if (softmax)
        appendf(out, cap, len, " gradient=%s precision=%s", ds_gradient_name(n->gradient),
                ds_precision_name(n->precision));
}

// The eps list of FGSM and PGD: "eps=0.3" or "eps=0.05,0.1,0.3".
static void append_eps(char *out, size_t cap, size_t *len, const float *eps, int n) {
    appendf(out, cap, len, "eps=");
    for (int i = 0; i < n; i++) appendf(out, cap, len, "%s%g", i ? "," : "", (double)eps[i]);
}

void ds_fgsm_params_string(const ds_fgsm_params *p, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    append_eps(out, cap, &len, p->eps, p->n_eps);
    appendf(out, cap, &len, " space=%s labels=%s", ds_space_name(p->space), ds_label_mode_name(p->labels));
    if (p->temperature > 0.0f) appendf(out, cap, &len, " T=%g", (double)p->temperature);
    append_numerics(out, cap, &len, &p->num, p->space != DS_SPACE_LOGITS);
}

void ds_pgd_params_string(const ds_pgd_params *p, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    append_eps(out, cap, &len, p->eps, p->n_eps);
    appendf(out, cap, &len, " norm=%s step=%g steps=%d random_start=%s restarts=%d loss=%s space=%s "
            "labels=%s", ds_norm_name(p->norm), (double)p->step, p->steps,
            p->random_start ? "true" : "false", p->restarts, ds_loss_name(p->loss),
            ds_space_name(p->space), ds_label_mode_name(p->labels));
    if (p->temperature > 0.0f) appendf(out, cap, &len, " T=%g", (double)p->temperature);
    append_numerics(out, cap, &len, &p->num, p->space != DS_SPACE_LOGITS);
}

void ds_jsma_params_string(const ds_jsma_params *p, int n_in, char *out, size_t cap) {
    size_t len = 0;
    out[0] = 0;
    appendf(out, cap, &len, "space=%s gamma=%g theta=%g iterations=%d", ds_space_name(p->space),
            (double)p->gamma, (double)p->theta, ds_jsma_budget(p, n_in));
    if (p->temperature > 0.0f) appendf(out, cap, &len, " T=%g", (double)p->temperature);
    append_numerics(out, cap, &len, &p->num, p->space != DS_SPACE_LOGITS);
}

void ds_cw_params_string(const ds_cw_params *p, char *out, size_t cap) {
    snprintf(out, cap, "targets=%s steps=%d iterations=%d c0=%g lr=%g kappa=%g abort_early=%d "
             "denormals=%s", ds_target_mode_name(p->targets), p->steps, p->max_iterations,
             (double)p->c0, (double)p->lr, (double)p->kappa, p->abort_early,
             ds_denormals_name(p->denormals));
}

// ---- Results ----

void ds_attack_distortion(ds_attack_record *r, const float *x, const float *x_adv, int n) {
    int l0 = 0;
    double l2 = 0.0;
    float linf = 0.0f;
    for (int k = 0; k < n; k++) {
        float d = x_adv[k] - x[k];
        if (d != 0.0f) l0++;
        l2 += (double)d * d;
        if (fabsf(d) > linf) linf = fabsf(d);
    }
    r->l0 = (float)l0;
    r->l2 = (float)sqrt(l2);
    r->linf = linf;
}

void ds_attack_rates_compute(const ds_attack_record *r, int n, ds_attack_rates *out) {
    memset(out, 0, sizeof *out);
    double l0 = 0, l2 = 0, linf = 0, iters = 0;
    for (int i = 0; i < n; i++) {
        int correct = r[i].clean_pred == r[i].label;
        out->attempts++;
        out->correct += correct;
        out->zero_grad += r[i].zero_grad != 0;
        iters += r[i].iterations;
        if (!r[i].success) continue;
        out->successes++;
        out->correct_successes += correct;
        l0 += r[i].l0;
        l2 += r[i].l2;
        linf += r[i].linf;
    }
    if (out->attempts) {
        out->success_rate = (double)out->successes / out->attempts;
        out->zero_grad_share = (double)out->zero_grad / out->attempts;
        out->mean_iterations = iters / out->attempts;
    }
    if (out->correct) out->success_rate_correct = (double)out->correct_successes / out->correct;
    if (out->successes) {
        out->mean_l0 = l0 / out->successes;
        out->mean_l2 = l2 / out->successes;
        out->mean_linf = linf / out->successes;
    }
}
