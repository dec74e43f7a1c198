// The per-sample worst case ("robust accuracy", AutoAttack's) and the gradient-masking checks
// (Carlini et al. 2019, "On Evaluating Adversarial Robustness"; Athalye et al. 2018), per model
// (of one replicate: s<seed>/<model> with several seeds), from the summary rows (one per
// configuration and ε, eps.c) and their per-sample outcomes.
// Every comparison, tolerance and verdict lives here; README.md, "Masking checks", documents
// them. Outputs: checks.csv, robust.csv, the datasets "checks" and "robust" of summary.h5, and
// two sections of summary.md.
//
// Success rates are fractions of attempts (ds_attack_rates.success_rate); a point is 0.01. A
// comparison of two rows takes both rates over the test samples both rows attacked (on_common):
// configurations of one run attack different sample ranges (PGD the first 1,000, FGSM all
// 10,000), and rates over different samples differ by more than the tolerance by chance.
#include "ds_error.h"
#include "ds_h5.h"
#include "reduce_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---- Tolerances: the one place ----
#define TOL_POINTS 0.01      // success rates within one point of each other are not evidence
#define LARGEST_EPS_MIN 0.99 // check eps_curve: success at the largest ε of a list
#define ZERO_GRAD_MAX 0.01   // check zero_grad: share of attempts with an exactly zero gradient
#define SLACK 1e-9           // rates are quotients: a difference of exactly a point passes

enum { CK_ITERATIVE, CK_EPS_CURVE, CK_GRADIENT_FREE, CK_TRANSFER, CK_ZERO_GRAD, CK_LOGITS,
       CK_ROUNDING };

static const struct {
    const char *name, *what, *reason; // reason: why a failure suggests masking (summary.md)
} CHECKS[REDUCE_NCHECKS] = {
    {"iterative", "PGD (L-inf) success >= FGSM success - 1 point, same eps, space, labels and "
     "rounding", "an iterative attack (PGD) is weaker than a single step (FGSM)"},
    {"eps_curve", "success never falls by more than 1 point as eps grows (every eps list of an "
     "attack on the model itself), and is >= 99% at the largest eps of a PGD or Square list "
     "(not FGSM: a single step need not reach 99%)",
     "success falls as eps grows or an iterative or gradient-free attack stays below 99% at the "
     "largest eps"},
    {"gradient_free", "Square success <= the best white-box success on the deployed model's "
     "softmax (FGSM, PGD L-inf; space softmax, default rounding) at the same eps + 1 point",
     "a gradient-free attack (Square) beats the white-box attacks on the softmax"},
    {"transfer", "transfer from the baseline <= the best white-box success on the model's "
     "softmax (FGSM, PGD at the same norm and eps; JSMA for JSMA; space softmax, default "
     "rounding) + 1 point", "examples crafted on the baseline beat white-box attacks on the "
     "model's softmax"},
    {"zero_grad", "zero-gradient share of every white-box attack on the softmax (FGSM, JSMA, "
     "PGD) <= 1%", "the white-box attacks' gradients are exactly zero"},
    {"logits", "an attack on the logits or logits/T <= the best of the same kind (and eps) on "
     "the softmax + 1 point", "attacking the logits or logits/T beats attacking the softmax"},
    {"rounding", "the same attack under other rounding settings (denormals, gradient, precision) "
     "moves success by at most 1 point", "the rounding of the gradients moves success"},
};

const char *reduce_check_name(int check) {
    return check >= 0 && check < REDUCE_NCHECKS ? CHECKS[check].name : "?";
}

const char *reduce_verdict_name(reduce_verdict v) {
    return v == REDUCE_PASS ? "pass" : v == REDUCE_FAIL ? "FAIL" : "n/a";
}

// ---- What a row is ----

static int is_transfer(const reduce_row *w) { return w->a->kind == DS_KIND_TRANSFER; }
static double success(const reduce_row *w) { return w->rates.success_rate; }

// The threat model of an attack with an ε: DS_NORM_LINF or DS_NORM_L2; -1 without ε.
static int norm_of(const ds_craft *c) {
    switch (c->kind) {
    case DS_KIND_FGSM:
    case DS_KIND_SQUARE: return DS_NORM_LINF;
    case DS_KIND_PGD: return (int)c->pgd.norm;
    default: return -1;
    }
}

// The attacked space; -1 for C&W (the logits, no setting).
static int space_of(const ds_craft *c) {
    switch (c->kind) {
    case DS_KIND_FGSM: return (int)c->fgsm.space;
    case DS_KIND_JSMA: return (int)c->jsma.space;
    case DS_KIND_PGD: return (int)c->pgd.space;
    case DS_KIND_SQUARE: return (int)c->square.space;
    default: return -1;
    }
}

static int labels_of(const ds_craft *c) {
    switch (c->kind) {
    case DS_KIND_FGSM: return (int)c->fgsm.labels;
    case DS_KIND_PGD: return (int)c->pgd.labels;
    case DS_KIND_SQUARE: return (int)c->square.labels;
    default: return -1;
    }
}

// The rounding settings of FGSM, JSMA and PGD (ds_craft_numerics) are the same.
static int same_numerics(const ds_craft *x, const ds_craft *y) {
    const ds_numerics *a = ds_craft_numerics(x), *b = ds_craft_numerics(y);
    return a && b ? !memcmp(a, b, sizeof *a) : !a && !b;
}

// A white-box gradient attack with an ε on the model itself: FGSM or PGD.
static int white_box_eps(const reduce_row *w) {
    return !is_transfer(w) && (w->craft.kind == DS_KIND_FGSM || w->craft.kind == DS_KIND_PGD);
}

// The attack library's default rounding (denormals kept, stable gradient, float32), or no
// rounding settings at all.
static int default_rounding(const ds_craft *c) {
    const ds_numerics *n = ds_craft_numerics(c);
    return !n || (n->denormals == DS_DENORMALS_KEEP && n->gradient == DS_GRADIENT_STABLE &&
                  n->precision == DS_PRECISION_FLOAT32);
}

// A white-box attack on the deployed model as everyone runs it: on its softmax (not the logits
// or logits/T, which see through the temperature), with the default rounding (the rounding
// variants are check rounding's).
static int on_deployed_softmax(const reduce_row *w) {
    return !is_transfer(w) && space_of(&w->craft) == DS_SPACE_SOFTMAX &&
           default_rounding(&w->craft);
}

static void strip_numerics(ds_craft *c) {
    switch (c->kind) {
    case DS_KIND_FGSM: c->fgsm.num = (ds_numerics){0}; break;
    case DS_KIND_JSMA: c->jsma.num = (ds_numerics){0}; break;
    case DS_KIND_CW_L2: c->cw.denormals = DS_DENORMALS_KEEP; break;
    case DS_KIND_PGD:
        c->pgd.num = (ds_numerics){0};
        c->pgd.seed = 0;
        break;
    case DS_KIND_SQUARE:
        c->square.denormals = DS_DENORMALS_KEEP;
        c->square.seed = 0;
        break;
    default: break;
    }
}

int reduce_same_but_numerics(const ds_craft *x, const ds_craft *y) {
    if (x->kind != y->kind) return 0;
    ds_craft a = *x, b = *y;
    strip_numerics(&a);
    strip_numerics(&b);
    return !memcmp(&a, &b, sizeof a);
}

static void label(const reduce_row *w, char *out, size_t cap) {
    if (w->n_eps > 0) snprintf(out, cap, "%s eps=%g", w->a->name, (double)w->eps);
    else snprintf(out, cap, "%s", w->a->name);
}

// ---- One model's checks ----

// Success of rows x and y over the test samples both attacked (a sample with an attempt in
// each row; JSMA and C&W: every attempt, one per target, of such a sample). n: those samples.
typedef struct {
    double x, y;
    int n;
} common;

static common on_common(const reduce_row *x, const reduce_row *y) {
    common c = {0, 0, 0};
    if (!x->tried || !y->tried) return c;
    int lo = x->g->first > y->g->first ? x->g->first : y->g->first;
    int ex = x->g->first + x->g->count, ey = y->g->first + y->g->count, hi = ex < ey ? ex : ey;
    long tx = 0, fx = 0, ty = 0, fy = 0;
    for (int s = lo; s < hi; s++) {
        int i = s - x->g->first, j = s - y->g->first;
        if (!x->tried[i] || !y->tried[j]) continue;
        c.n++;
        tx += x->tried[i];
        fx += x->fooled[i];
        ty += y->tried[j];
        fy += y->fooled[j];
    }
    if (c.n) c.x = (double)fx / (double)tx, c.y = (double)fy / (double)ty;
    return c;
}

// The worst comparison of a check: margin = how far `v` exceeds `ref` (check iterative: falls
// short of it), both over their common samples (on: v's rate in .x, ref's in .y); the verdict
// is FAIL when the worst margin is above TOL_POINTS.
typedef struct {
    int n;
    double margin;
    const reduce_row *v, *ref;
    common on;
} worst;

static void consider(worst *w, double margin, const reduce_row *v, const reduce_row *ref,
                     common on) {
    if (w->n++ && margin <= w->margin) return;
    w->margin = margin;
    w->v = v;
    w->ref = ref;
    w->on = on;
}

typedef int (*match_fn)(const reduce_row *cand, const reduce_row *subject);

// The row of the model matching subject with the highest success over the samples it and
// subject both attacked (NULL if none shares a sample with subject); *on: the two rates there.
static const reduce_row *best_match(const reduce_row *const *m, int nm, const reduce_row *subject,
                                    match_fn match, common *on) {
    const reduce_row *b = NULL;
    for (int i = 0; i < nm; i++) {
        if (m[i] == subject || !m[i]->rates.attempts || !match(m[i], subject)) continue;
        common c = on_common(subject, m[i]);
        if (c.n && (!b || c.y > on->y)) b = m[i], *on = c;
    }
    return b;
}

// iterative: FGSM at the PGD row's ε, space, labels and rounding.
static int fgsm_like(const reduce_row *c, const reduce_row *s) {
    return !is_transfer(c) && c->craft.kind == DS_KIND_FGSM && c->eps == s->eps &&
           space_of(&c->craft) == space_of(&s->craft) &&
           labels_of(&c->craft) == labels_of(&s->craft) && same_numerics(&c->craft, &s->craft);
}
static int pgd_linf(const reduce_row *w) {
    return !is_transfer(w) && w->craft.kind == DS_KIND_PGD && w->craft.pgd.norm == DS_NORM_LINF;
}

// gradient_free, transfer: a white-box attack (FGSM, PGD) on the deployed model's softmax at the
// same threat model (norm and ε).
static int softmax_white_box_at(const reduce_row *c, const reduce_row *s) {
    return white_box_eps(c) && on_deployed_softmax(c) && norm_of(&c->craft) == norm_of(&s->craft) &&
           c->eps == s->eps;
}

// transfer of an attack without ε: JSMA on the deployed model's softmax for JSMA. C&W has no
// softmax variant (it attacks the logits): a C&W transfer has no reference.
static int softmax_white_box_of_kind(const reduce_row *c, const reduce_row *s) {
    if (s->n_eps > 0) return softmax_white_box_at(c, s);
    return s->craft.kind == DS_KIND_JSMA && c->craft.kind == DS_KIND_JSMA &&
           on_deployed_softmax(c);
}

// logits: the same kind on the softmax (at the same ε and norm).
static int softmax_twin(const reduce_row *c, const reduce_row *s) {
    return !is_transfer(c) && c->craft.kind == s->craft.kind &&
           space_of(&c->craft) == DS_SPACE_SOFTMAX &&
           (s->n_eps == 0 || (c->eps == s->eps && norm_of(&c->craft) == norm_of(&s->craft)));
}

// ref_best: the reference is the best of several matching rows ("vs best ...").
static void set_result(reduce_check *ck, const worst *w, int ref_best, const char *na) {
    if (!w->n) {
        ck->verdict = REDUCE_NA;
        ck->value = ck->reference = NAN;
        snprintf(ck->detail, sizeof ck->detail, "%s", na);
        return;
    }
    ck->verdict = w->margin > TOL_POINTS + SLACK ? REDUCE_FAIL : REDUCE_PASS;
    ck->value = w->on.x;
    ck->reference = w->on.y;
    char a[96], b[96];
    label(w->v, a, sizeof a);
    label(w->ref, b, sizeof b);
    snprintf(ck->detail, sizeof ck->detail, "%s %.2f%% vs %s%s %.2f%% on the %d sample%s both "
             "attacked (%+.2f points; %d comparison%s)", a, 100 * ck->value,
             ref_best ? "best " : "", b, 100 * ck->reference, w->on.n, w->on.n == 1 ? "" : "s",
             100 * (ck->value - ck->reference), w->n, w->n == 1 ? "" : "s");
}

// The pattern of iterative, gradient_free, transfer and logits: every subject row against the
// best matching reference row, over the samples the two both attacked.
static void compare(reduce_check *ck, const reduce_row *const *m, int nm,
                    int (*subject)(const reduce_row *), match_fn match, int reversed,
                    const char *na) {
    worst w = {0};
    for (int i = 0; i < nm; i++) {
        if (!m[i]->rates.attempts || !subject(m[i])) continue;
        common on = {0, 0, 0};
        const reduce_row *ref = best_match(m, nm, m[i], match, &on);
        if (!ref) continue;
        consider(&w, reversed ? on.y - on.x : on.x - on.y, m[i], ref, on);
    }
    set_result(ck, &w, 1, na);
}

static int square_row(const reduce_row *w) {
    return !is_transfer(w) && w->craft.kind == DS_KIND_SQUARE;
}
static int baseline_transfer(const reduce_row *w) {
    return is_transfer(w) && !strcmp(w->a->source, "baseline") && w->g->role != DS_ROLE_BASELINE;
}
static int on_logits(const reduce_row *w) {
    int s = space_of(&w->craft);
    return !is_transfer(w) && (s == DS_SPACE_LOGITS || s == DS_SPACE_LOGITS_T);
}

// The curves that must reach LARGEST_EPS_MIN: iterative and gradient-free attacks. One FGSM
// step need not (98.4% at ε 0.5 on an undefended baseline is no masking).
static int must_reach(const reduce_row *w) {
    return w->craft.kind == DS_KIND_PGD || w->craft.kind == DS_KIND_SQUARE;
}

// eps_curve: per configuration with an ε list (not a transfer), success in increasing ε; its
// rows attack the same samples.
static void check_eps_curve(reduce_check *ck, const reduce_row *const *m, int nm) {
    int n = 0, nreach = 0;
    double low = 2, fall = 0;
    const reduce_row *low_row = NULL, *fall_from = NULL, *fall_to = NULL;
    for (int i = 0; i < nm; i++) {
        const reduce_row *w = m[i];
        if (w->n_eps < 2 || w->eps_index != 0 || is_transfer(w) || i + w->n_eps > nm) continue;
        const reduce_row *ord[DS_FGSM_MAX_EPS];
        int k = w->n_eps;
        for (int e = 0; e < k; e++) ord[e] = m[i + e]; // a group's rows are consecutive
        for (int a = 1; a < k; a++)
            for (int b = a; b > 0 && ord[b]->eps < ord[b - 1]->eps; b--) {
                const reduce_row *t = ord[b];
                ord[b] = ord[b - 1];
                ord[b - 1] = t;
            }
        n++;
        for (int e = 1; e < k; e++)
            if (success(ord[e - 1]) - success(ord[e]) > fall) {
                fall = success(ord[e - 1]) - success(ord[e]);
                fall_from = ord[e - 1];
                fall_to = ord[e];
            }
        if (!must_reach(w)) continue;
        nreach++;
        if (success(ord[k - 1]) < low) {
            low = success(ord[k - 1]);
            low_row = ord[k - 1];
        }
    }
    if (!n) {
        ck->verdict = REDUCE_NA;
        ck->value = ck->reference = NAN;
        snprintf(ck->detail, sizeof ck->detail, "no configuration with an eps list");
        return;
    }
    // value / reference: the lowest success at a largest ε of a PGD or Square list / 0.99 (NaN
    // without such a list: then only the falls count).
    ck->value = nreach ? low : NAN;
    ck->reference = nreach ? LARGEST_EPS_MIN : NAN;
    ck->verdict = (nreach && low < LARGEST_EPS_MIN - SLACK) || fall > TOL_POINTS + SLACK
                      ? REDUCE_FAIL
                      : REDUCE_PASS;
    char a[96] = "";
    if (low_row) label(low_row, a, sizeof a);
    int len = nreach ? snprintf(ck->detail, sizeof ck->detail, "lowest at a largest eps (PGD, "
                                "Square): %s %.2f%%; ", a, 100 * low)
                     : snprintf(ck->detail, sizeof ck->detail, "no PGD or Square eps list (FGSM "
                                "need not reach 99%%); ");
    if (len < 0 || (size_t)len >= sizeof ck->detail) return;
    if (fall_from)
        snprintf(ck->detail + len, sizeof ck->detail - (size_t)len, "largest fall %.2f points "
                 "(%s, eps %g -> %g)", 100 * fall, fall_from->a->name, (double)fall_from->eps,
                 (double)fall_to->eps);
    else
        snprintf(ck->detail + len, sizeof ck->detail - (size_t)len, "never falls");
}

// zero_grad: the largest zero-gradient share of the white-box attacks on the softmax.
static void check_zero_grad(reduce_check *ck, const reduce_row *const *m, int nm) {
    const reduce_row *top = NULL;
    for (int i = 0; i < nm; i++) {
        const reduce_row *w = m[i];
        ds_attack_kind k = w->craft.kind;
        if (is_transfer(w) || !w->rates.attempts || space_of(&w->craft) != DS_SPACE_SOFTMAX ||
            (k != DS_KIND_FGSM && k != DS_KIND_JSMA && k != DS_KIND_PGD))
            continue;
        if (!top || w->rates.zero_grad_share > top->rates.zero_grad_share) top = w;
    }
    if (!top) {
        ck->verdict = REDUCE_NA;
        ck->value = ck->reference = NAN;
        snprintf(ck->detail, sizeof ck->detail, "no white-box attack on the softmax");
        return;
    }
    ck->value = top->rates.zero_grad_share;
    ck->reference = ZERO_GRAD_MAX;
    ck->verdict = ck->value > ZERO_GRAD_MAX + SLACK ? REDUCE_FAIL : REDUCE_PASS;
    char a[96];
    label(top, a, sizeof a);
    snprintf(ck->detail, sizeof ck->detail, "largest: %s, %d of %d attempts (%.2f%%)", a,
             top->rates.zero_grad, top->rates.attempts, 100 * ck->value);
}

// rounding: every pair of the same attack under two rounding settings (same ε), highest minus
// lowest over their common samples.
static void check_rounding(reduce_check *ck, const reduce_row *const *m, int nm) {
    worst w = {0};
    for (int i = 0; i < nm; i++)
        for (int j = i + 1; j < nm; j++) {
            const reduce_row *x = m[i], *y = m[j];
            if (is_transfer(x) || is_transfer(y) || !x->rates.attempts || !y->rates.attempts ||
                !reduce_same_but_numerics(&x->craft, &y->craft))
                continue;
            common on = on_common(x, y);
            if (!on.n) continue;
            if (on.x < on.y) { // value: the higher of the two
                x = m[j], y = m[i];
                on = (common){on.y, on.x, on.n};
            }
            consider(&w, on.x - on.y, x, y, on);
        }
    set_result(ck, &w, 0, "no attack run under two rounding settings");
}

static void model_checks(reduce_check *out, const reduce_row *const *m, int nm) {
    compare(&out[CK_ITERATIVE], m, nm, pgd_linf, fgsm_like, 1,
            "no PGD (L-inf) and FGSM at the same eps, space, labels and rounding");
    check_eps_curve(&out[CK_EPS_CURVE], m, nm);
    compare(&out[CK_GRADIENT_FREE], m, nm, square_row, softmax_white_box_at, 0,
            "no Square and white-box attack on the softmax (FGSM, PGD L-inf) at the same eps "
            "on common samples");
    compare(&out[CK_TRANSFER], m, nm, baseline_transfer, softmax_white_box_of_kind, 0,
            "no transfer from the baseline with a white-box attack on the softmax to compare");
    check_zero_grad(&out[CK_ZERO_GRAD], m, nm);
    compare(&out[CK_LOGITS], m, nm, on_logits, softmax_twin, 0,
            "no attack on the logits or logits/T with a softmax counterpart");
    check_rounding(&out[CK_ROUNDING], m, nm);
}

// ---- Robust accuracy ----

typedef struct {
    int norm;
    float eps;
} threat;

static int threat_cmp(const void *a, const void *b) {
    const threat *x = a, *y = b;
    if (x->norm != y->norm) return x->norm - y->norm;
    return (x->eps > y->eps) - (x->eps < y->eps);
}

// The model's threat models (norm, ε) of its untargeted ε attacks, in increasing order.
static int model_threats(const reduce_row *const *m, int nm, threat *out) {
    int n = 0;
    for (int i = 0; i < nm; i++) {
        if (!m[i]->outcome) continue;
        threat t = {norm_of(&m[i]->craft), m[i]->eps};
        int k = 0;
        while (k < n && (out[k].norm != t.norm || out[k].eps != t.eps)) k++;
        if (k == n) out[n++] = t;
    }
    qsort(out, (size_t)n, sizeof *out, threat_cmp);
    return n;
}

// Over the samples every configuration of threat t attacked (the intersection of their ranges):
// those classified correctly and fooled by none of them.
static void robust_row(reduce_robust *o, const reduce_row *const *m, int nm, threat t) {
    *o = (reduce_robust){.model = m[0]->g->model, .temperature = m[0]->g->temperature,
                         .norm = (ds_norm)t.norm, .eps = t.eps};
    int start = 0, end = 0, first = 1;
    size_t len = 0;
    for (int i = 0; i < nm; i++) {
        const reduce_row *w = m[i];
        if (!w->outcome || norm_of(&w->craft) != t.norm || w->eps != t.eps) continue;
        int s = w->g->first, e = w->g->first + w->g->count;
        start = first || s > start ? s : start;
        end = first || e < end ? e : end;
        first = 0;
        int k = snprintf(o->attacks + len, sizeof o->attacks - len, "%s%s", len ? " " : "",
                         w->a->name);
        if (k > 0) len = len + (size_t)k < sizeof o->attacks ? len + (size_t)k : sizeof o->attacks - 1;
    }
    o->n = end > start ? end - start : 0;
    for (int s = start; s < end; s++) {
        int ok = 1;
        for (int i = 0; i < nm && ok; i++) {
            const reduce_row *w = m[i];
            if (!w->outcome || norm_of(&w->craft) != t.norm || w->eps != t.eps) continue;
            ok = w->outcome[s - w->g->first] == REDUCE_CORRECT;
        }
        o->robust += ok;
    }
    o->robust_accuracy = o->n ? (double)o->robust / o->n : NAN;
}

// ---- All models ----

int reduce_checks_compute(reducer *r) {
    int nr = r->nrows;
    const reduce_row **m = malloc(sizeof *m * ((size_t)nr + 1));
    threat *th = malloc(sizeof *th * ((size_t)nr + 1));
    uint8_t *seen = calloc((size_t)nr + 1, 1);
    r->robust = calloc((size_t)nr + 1, sizeof *r->robust);
    r->checks = calloc((size_t)nr * REDUCE_NCHECKS + 1, sizeof *r->checks);
    r->nrobust = r->nchecks = 0;
    int rc = DS_OK;
    if (!m || !th || !seen || !r->robust || !r->checks) {
        rc = ds_fail(DS_ENOMEM, "checks: out of memory");
        goto out;
    }
    // Models in row order (plan order: baseline first, then by temperature). With several seeds
    // each replicate's model on its own (s<seed>/...): checks and the worst case never combine
    // attacks on two replicates (a transfer's source is of the attacked model's replicate).
    for (int i = 0; i < nr; i++) {
        if (seen[i]) continue;
        int nm = 0;
        for (int j = i; j < nr; j++)
            if (r->rows[j].g->rep == r->rows[i].g->rep &&
                !strcmp(r->rows[j].g->model, r->rows[i].g->model)) {
                m[nm++] = &r->rows[j];
                seen[j] = 1;
            }
        reduce_check *ck = &r->checks[r->nchecks];
        for (int c = 0; c < REDUCE_NCHECKS; c++)
            ck[c] = (reduce_check){.model = m[0]->g->model, .temperature = m[0]->g->temperature,
                                   .check = c};
        model_checks(ck, m, nm);
        r->nchecks += REDUCE_NCHECKS;
        int nt = model_threats(m, nm, th);
        for (int t = 0; t < nt; t++) robust_row(&r->robust[r->nrobust++], m, nm, th[t]);
    }
out:
    free(m);
    free(th);
    free(seen);
    return rc;
}

void reduce_checks_free(reducer *r) {
    free(r->robust);
    free(r->checks);
    r->robust = NULL;
    r->checks = NULL;
    r->nrobust = r->nchecks = 0;
}

// ---- checks.csv, robust.csv ----

static void csv_number(ds_strbuf *b, double x) {
    if (!isnan(x)) ds_sb_printf(b, "%.17g", x); // n/a: an empty field
}

int reduce_checks_csv(reducer *r) {
    ds_strbuf c = {0}, b = {0};
    ds_sb_printf(&c, "model,temperature,check,verdict,value,reference,detail\n");
    for (int i = 0; i < r->nchecks; i++) {
        const reduce_check *k = &r->checks[i];
        reduce_csv_field(&c, k->model);
        ds_sb_printf(&c, ",%g,%s,%s,", k->temperature, reduce_check_name(k->check),
                     reduce_verdict_name(k->verdict));
        csv_number(&c, k->value);
        ds_sb_printf(&c, ",");
        csv_number(&c, k->reference);
        ds_sb_printf(&c, ",");
        reduce_csv_field(&c, k->detail);
        ds_sb_printf(&c, "\n");
    }
    ds_sb_printf(&b, "model,temperature,norm,eps,n,robust,robust_accuracy,attacks\n");
    for (int i = 0; i < r->nrobust; i++) {
        const reduce_robust *o = &r->robust[i];
        reduce_csv_field(&b, o->model);
        ds_sb_printf(&b, ",%g,%s,%g,%d,%d,", o->temperature, ds_norm_name(o->norm),
                     (double)o->eps, o->n, o->robust);
        csv_number(&b, o->robust_accuracy);
        ds_sb_printf(&b, ",");
        reduce_csv_field(&b, o->attacks);
        ds_sb_printf(&b, "\n");
    }
    int rc = c.failed || b.failed ? ds_fail(DS_ENOMEM, "checks.csv: out of memory") : DS_OK;
    if (!rc) rc = reduce_write_text(r, "checks.csv", c.s, c.len);
    if (!rc) rc = reduce_write_text(r, "robust.csv", b.s, b.len);
    ds_sb_free(&c);
    ds_sb_free(&b);
    return rc;
}

// ---- summary.h5: "checks" and "robust" ----

typedef struct {
    const char *model;
    double temperature;
    const char *check, *verdict;
    double value, reference;
    const char *detail;
} check_h5;

typedef struct {
    const char *model;
    double temperature;
    const char *norm;
    double eps;
    int64_t n, robust;
    double robust_accuracy;
    const char *attacks;
} robust_h5;

// A compound dataset `name` of n rows of `mem` (packed in the file) with a description attribute.
static int write_table(hid_t file, const char *name, hid_t mem, const void *rows, int n,
                       const char *about) {
    hid_t packed = H5Tcopy(mem), space = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)n};
    int rc = DS_OK;
    if (packed < 0 || H5Tpack(packed) < 0 || (space = H5Screate_simple(1, dims, NULL)) < 0 ||
        (d = H5Dcreate2(file, name, packed, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0)
        rc = ds_h5_fail(DS_EIO, file, name, "cannot create dataset");
    else if (n > 0 && H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
        rc = ds_h5_fail(DS_EIO, file, name, "cannot write dataset");
    if (!rc) rc = ds_h5_attr_set_string(d, "about", about);
    if (d >= 0) H5Dclose(d);
    if (space >= 0) H5Sclose(space);
    if (packed >= 0) H5Tclose(packed);
    return rc;
}

int reduce_checks_h5(hid_t file, const reducer *r) {
    check_h5 *c = calloc((size_t)r->nchecks + 1, sizeof *c);
    robust_h5 *o = calloc((size_t)r->nrobust + 1, sizeof *o);
    hid_t str = H5Tcopy(H5T_C_S1), tc = H5I_INVALID_HID, to = H5I_INVALID_HID;
    int rc = DS_OK;
    if (!c || !o) {
        rc = ds_fail(DS_ENOMEM, "summary.h5: out of memory");
        goto out;
    }
    for (int i = 0; i < r->nchecks; i++) {
        const reduce_check *k = &r->checks[i];
        c[i] = (check_h5){k->model, k->temperature, reduce_check_name(k->check),
                          reduce_verdict_name(k->verdict), k->value, k->reference, k->detail};
    }
    for (int i = 0; i < r->nrobust; i++) {
        const reduce_robust *k = &r->robust[i];
        o[i] = (robust_h5){k->model, k->temperature, ds_norm_name(k->norm), k->eps, k->n,
                           k->robust, k->robust_accuracy, k->attacks};
    }
    herr_t e = str < 0 || H5Tset_size(str, H5T_VARIABLE) < 0 || H5Tset_cset(str, H5T_CSET_UTF8) < 0;
    if (!e && (tc = H5Tcreate(H5T_COMPOUND, sizeof(check_h5))) >= 0) {
#define F(name, type) e |= H5Tinsert(tc, #name, HOFFSET(check_h5, name), type) < 0
        F(model, str);
        F(temperature, H5T_NATIVE_DOUBLE);
        F(check, str);
        F(verdict, str);
        F(value, H5T_NATIVE_DOUBLE);
        F(reference, H5T_NATIVE_DOUBLE);
        F(detail, str);
#undef F
    }
    if (!e && (to = H5Tcreate(H5T_COMPOUND, sizeof(robust_h5))) >= 0) {
#define F(name, type) e |= H5Tinsert(to, #name, HOFFSET(robust_h5, name), type) < 0
        F(model, str);
        F(temperature, H5T_NATIVE_DOUBLE);
        F(norm, str);
        F(eps, H5T_NATIVE_DOUBLE);
        F(n, H5T_NATIVE_INT64);
        F(robust, H5T_NATIVE_INT64);
        F(robust_accuracy, H5T_NATIVE_DOUBLE);
        F(attacks, str);
#undef F
    }
    if (e || tc < 0 || to < 0) {
        rc = ds_h5_fail(DS_EIO, file, "checks", "cannot make the row types");
        goto out;
    }
    rc = write_table(file, "checks", tc, c, r->nchecks,
                     "masking checks: one row per model and check; verdict pass, FAIL or n/a; "
                     "value and reference are rates (NaN for n/a and for an eps_curve without a "
                     "PGD or Square eps list), README 'Masking checks'");
    if (!rc)
        rc = write_table(file, "robust", to, o, r->nrobust,
                         "per-sample worst case: per model and threat model (norm, eps), the "
                         "share of the n samples attacked by every untargeted configuration at "
                         "that eps that the model classified correctly and none fooled");
out:
    if (to >= 0) H5Tclose(to);
    if (tc >= 0) H5Tclose(tc);
    if (str >= 0) H5Tclose(str);
    free(c);
    free(o);
    return rc;
}

// ---- summary.md ----

static void md_robust(ds_strbuf *b, const reducer *r) {
    if (!r->nrobust) return;
    ds_sb_printf(b, "## Robust accuracy (per-sample worst case)\n\n"
                 "Per model and threat model (norm, eps): of the *n* test samples that every "
                 "untargeted configuration at exactly that eps attacked (FGSM, PGD, Square and "
                 "transfers crafted with them), the share the model classified correctly and that "
                 "none of them fooled (AutoAttack's robust accuracy; robust.csv).\n\n"
                 "| model | T | norm | eps | n | robust | robust accuracy (%%) | attacks |\n"
                 "|---|---:|---|---:|---:|---:|---:|---|\n");
    for (int i = 0; i < r->nrobust; i++) {
        const reduce_robust *o = &r->robust[i];
        ds_sb_printf(b, "| %s | %g | %s | %g | %d | %d | ", o->model, o->temperature,
                     ds_norm_name(o->norm), (double)o->eps, o->n, o->robust);
        reduce_md_pct(b, o->robust_accuracy);
        ds_sb_printf(b, " | %s |\n", o->attacks);
    }
    ds_sb_printf(b, "\n");
}

static void md_checks(ds_strbuf *b, const reducer *r) {
    if (!r->nchecks) return;
    ds_sb_printf(b, "## Masking checks\n\n"
                 "Carlini et al. 2019 and Athalye et al. 2018: each a statement about the model's "
                 "results that gradient masking breaks; the numbers behind every verdict are in "
                 "checks.csv. n/a: this run lacks the attacks to compare. Two rows are compared "
                 "over the test samples both attacked. Tolerance: one point of success rate.\n\n");
    for (int c = 0; c < REDUCE_NCHECKS; c++)
        ds_sb_printf(b, "- **%s**: %s.\n", CHECKS[c].name, CHECKS[c].what);
    ds_sb_printf(b, "\n| model | T |");
    for (int c = 0; c < REDUCE_NCHECKS; c++) ds_sb_printf(b, " %s |", CHECKS[c].name);
    ds_sb_printf(b, " gradient masking suspected |\n|---|---:|");
    for (int c = 0; c < REDUCE_NCHECKS; c++) ds_sb_printf(b, "---|");
    ds_sb_printf(b, "---|\n");
    int flagged = 0;
    for (int i = 0; i < r->nchecks; i += REDUCE_NCHECKS) {
        const reduce_check *k = &r->checks[i];
        int fails = 0;
        ds_sb_printf(b, "| %s | %g |", k->model, k->temperature);
        for (int c = 0; c < REDUCE_NCHECKS; c++) {
            fails += k[c].verdict == REDUCE_FAIL;
            ds_sb_printf(b, k[c].verdict == REDUCE_FAIL ? " **FAIL** |" : " %s |",
                         reduce_verdict_name(k[c].verdict));
        }
        ds_sb_printf(b, " %s |\n", fails ? "**yes**" : "no");
        flagged += fails > 0;
    }
    ds_sb_printf(b, "\n");
    if (!flagged) {
        ds_sb_printf(b, "No model fails a check.\n\n");
        return;
    }
    for (int i = 0; i < r->nchecks; i += REDUCE_NCHECKS) {
        const reduce_check *k = &r->checks[i];
        int first = 1;
        for (int c = 0; c < REDUCE_NCHECKS; c++) {
            if (k[c].verdict != REDUCE_FAIL) continue;
            if (first) ds_sb_printf(b, "**%s: gradient masking suspected.**\n", k->model);
            first = 0;
            ds_sb_printf(b, "- %s: %s: %s.\n", CHECKS[c].name, CHECKS[c].reason, k[c].detail);
        }
        if (!first) ds_sb_printf(b, "\n");
    }
}

void reduce_checks_md(ds_strbuf *b, const reducer *r) {
    md_robust(b, r);
    md_checks(b, r);
}
