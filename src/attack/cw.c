// Carlini & Wagner L2 (S&P 2017), following carlini/nn_robust_attacks (l2_attack.py).
//
//   x'(w) = (tanh(w) + 1) / 2 + (x - x0),  w0 = atanh((2x - 1) * 0.999999),  x0 = x'(w0) - (x - x0)
//   minimise ||x' - x||^2 + c * f(x'),  targeted f = max(max_{i!=t} Z_i - Z_t, -kappa),
//                                       untargeted f = max(Z_y - max_{i!=y} Z_i, -kappa)
// The offset (x - x0), at most 5e-7, makes x' equal x exactly at w0 (the reference code's x0
// differs from x by the 0.999999 factor); x' is clipped to [0, 1]. Adam (lr, 0.9, 0.999, 1e-8),
// restarted from w0 at every binary search step over c: c *= 10 while a step never succeeded,
// else bisect between the bounds. A step ends after max_iterations, or early when the loss has
// not fallen below 0.9999 of its value max_iterations/10 iterations before. The smallest-L2
// successful x' over all steps is the result.
//
// Batching as in JSMA: up to c->max_batch attempts (each with its own c, Adam state and step) share
// one forward and one input_grad per iteration; a finished attempt's slot is refilled.
#include "attack_internal.h"
#include "ds_error.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ds_cw_count(const ds_classifier *c, const ds_cw_params *p, int n) {
    return p->targets == DS_TARGETS_ALL ? n * (c->n_classes - 1) : n;
}

typedef struct {
    int attempt, sample, target;   // target -1: untargeted
    int step, it, total_it, adam_t;
    float cst, lo, hi;             // c and its bounds
    float prev_loss;               // for the early abort
    int step_success;              // this step found a successful x'
    float best_l2;                 // smallest squared L2 of a success so far (all steps)
    int best_pred;
    uint8_t zero_grad;
    uint8_t finished;
    uint8_t step_done;             // the step ends after this iteration's bookkeeping
    float active;                  // c if the hinge is not clamped, else 0
} slot;

typedef struct {
    const ds_classifier *c;
    const ds_cw_params *p;
    const float *x;
    const uint8_t *labels;
    const int *clean;              // [n] clean predictions
    int n, first_index, total, next, na, D, C;
    slot *s;
    float *X;                      // [B, D] current x'
    float *w, *m, *v, *off, *best; // [B, D] tanh-space variable, Adam moments, x - x0, best x'
    float *z, *dlog;               // [B, C]
    float *dx;                     // [B, D]
    ds_attack_record *rec;
    float *x_adv;
} cw_run;

static void reset_step(cw_run *r, int i) {
    slot *s = &r->s[i];
    const float *x = r->x + (size_t)s->sample * r->D;
    float *w = r->w + (size_t)i * r->D, *X = r->X + (size_t)i * r->D, *off = r->off + (size_t)i * r->D;
    for (int k = 0; k < r->D; k++) {
        w[k] = atanhf((2.0f * x[k] - 1.0f) * 0.999999f);
        float x0 = (tanhf(w[k]) + 1.0f) * 0.5f;
        off[k] = x[k] - x0;
        X[k] = x0 + off[k]; // == x[k] (Sterbenz: x - x0 is exact, so is the sum)
    }
    memset(r->m + (size_t)i * r->D, 0, sizeof(float) * r->D);
    memset(r->v + (size_t)i * r->D, 0, sizeof(float) * r->D);
    s->it = 0;
    s->adam_t = 0;
    s->prev_loss = INFINITY;
    s->step_success = 0;
    s->step_done = 0;
}

static void load_attempt(void *run, int i, int a) {
    cw_run *r = run;
    slot *s = &r->s[i];
    memset(s, 0, sizeof *s);
    s->attempt = a;
    if (r->p->targets == DS_TARGETS_ALL) {
        s->sample = a / (r->C - 1);
        int k = a % (r->C - 1), label = r->labels[s->sample];
        s->target = k < label ? k : k + 1;
    } else {
        s->sample = a;
        s->target = -1;
    }
    s->cst = r->p->c0;
    s->lo = 0.0f;
    s->hi = 1e10f;
    s->best_l2 = INFINITY;
    s->best_pred = -1;
    s->zero_grad = 1;
    reset_step(r, i);
}

static void finish_attempt(cw_run *r, int i) {
    slot *s = &r->s[i];
    ds_attack_record *rec = &r->rec[s->attempt];
    const float *x = r->x + (size_t)s->sample * r->D;
    const float *xa = s->best_l2 < INFINITY ? r->best + (size_t)i * r->D : x;
    rec->index = r->first_index + s->sample;
    rec->label = r->labels[s->sample];
    rec->target = s->target;
    rec->clean_pred = r->clean[s->sample];
    rec->adv_pred = s->best_l2 < INFINITY ? s->best_pred : rec->clean_pred;
    rec->success = s->target >= 0 ? rec->adv_pred == s->target : rec->adv_pred != rec->label;
    rec->zero_grad = s->zero_grad;
    rec->iterations = s->total_it;
    ds_attack_distortion(rec, x, xa, r->D);
    if (r->x_adv) memcpy(r->x_adv + (size_t)s->attempt * r->D, xa, sizeof(float) * r->D);
    s->finished = 1;
}

static void move_slot(void *run, int to, int from) {
    cw_run *r = run;
    r->s[to] = r->s[from];
    float *arrays[] = {r->X, r->w, r->m, r->v, r->off, r->best};
    for (int a = 0; a < 6; a++)
        memcpy(arrays[a] + (size_t)to * r->D, arrays[a] + (size_t)from * r->D, sizeof(float) * r->D);
}

static int slot_finished(void *run, int i) { return ((cw_run *)run)->s[i].finished; }

static void refill(cw_run *r) {
    dsa_refill(r, slot_finished, load_attempt, move_slot, &r->na, &r->next, r->total, r->c->max_batch);
}

// Loss, success and the logit gradient of the margin for slot i at the current x'.
static void evaluate(cw_run *r, int i) {
    slot *s = &r->s[i];
    const int C = r->C, D = r->D;
    const float kappa = r->p->kappa;
    const float *z = r->z + i * C, *X = r->X + (size_t)i * D, *x = r->x + (size_t)s->sample * D;
    float *dlog = r->dlog + i * C;
    int y = s->target >= 0 ? s->target : r->labels[s->sample];
    int other = dsa_argmax_except(z, C, y);
    // Targeted: push Z_t above the best other logit; untargeted: push Z_y below it.
    float margin = s->target >= 0 ? z[other] - z[y] : z[y] - z[other];
    float f = fmaxf(margin, -kappa);
    float l2 = 0.0f;
    for (int k = 0; k < D; k++) l2 += (X[k] - x[k]) * (X[k] - x[k]);
    float loss = l2 + s->cst * f;
    // Success as the reference's compare(): argmax of Z with Z_t lowered (targeted) or Z_y raised
    // (untargeted) by kappa.
    float zk[C];
    memcpy(zk, z, sizeof zk);
    zk[y] += s->target >= 0 ? -kappa : kappa;
    int pred = ds_argmax(z, C), kpred = ds_argmax(zk, C);
    int success = s->target >= 0 ? kpred == y : kpred != y;
    if (success) {
        s->step_success = 1;
        if (l2 < s->best_l2) {
            s->best_l2 = l2;
            s->best_pred = pred;
            memcpy(r->best + (size_t)i * D, X, sizeof(float) * D);
        }
    }
    for (int j = 0; j < C; j++) dlog[j] = 0.0f;
    dlog[other] = s->target >= 0 ? 1.0f : -1.0f; // d margin / dZ
    dlog[y] = s->target >= 0 ? -1.0f : 1.0f;
    s->active = margin > -kappa ? s->cst : 0.0f;
    int every = r->p->max_iterations / 10;
    if (r->p->abort_early && every > 0 && s->it % every == 0) {
        if (loss > s->prev_loss * 0.9999f) s->step_done = 1;
        s->prev_loss = loss;
    }
}

// Adam step on w for slot i; g = d loss / d x' = 2 (x' - x) + c dmargin/dx (when not clamped).
static void adam_step(cw_run *r, int i) {
    slot *s = &r->s[i];
    const int D = r->D;
    const float lr = r->p->lr, b1 = 0.9f, b2 = 0.999f, eps = 1e-8f;
    const float *x = r->x + (size_t)s->sample * D, *dx = r->dx + (size_t)i * D;
    float *X = r->X + (size_t)i * D, *w = r->w + (size_t)i * D, *off = r->off + (size_t)i * D;
    float *m = r->m + (size_t)i * D, *v = r->v + (size_t)i * D;
    s->adam_t++;
    float lr_t = lr * sqrtf(1.0f - powf(b2, (float)s->adam_t)) / (1.0f - powf(b1, (float)s->adam_t));
    for (int k = 0; k < D; k++) {
        float th = tanhf(w[k]);
        float g = (2.0f * (X[k] - x[k]) + s->active * dx[k]) * 0.5f * (1.0f - th * th);
        m[k] = b1 * m[k] + (1.0f - b1) * g;
        v[k] = b2 * v[k] + (1.0f - b2) * g * g;
        w[k] -= lr_t * m[k] / (sqrtf(v[k]) + eps);
        float xn = (tanhf(w[k]) + 1.0f) * 0.5f + off[k];
        X[k] = xn < 0.0f ? 0.0f : xn > 1.0f ? 1.0f : xn;
    }
}

// End of a binary search step: the reference's update of c, then restart or finish.
static void end_step(cw_run *r, int i) {
    slot *s = &r->s[i];
    if (s->step_success) {
        s->hi = fminf(s->hi, s->cst);
        if (s->hi < 1e9f) s->cst = (s->lo + s->hi) * 0.5f;
    } else {
        s->lo = fmaxf(s->lo, s->cst);
        s->cst = s->hi < 1e9f ? (s->lo + s->hi) * 0.5f : s->cst * 10.0f;
    }
    if (++s->step >= r->p->steps)
        finish_attempt(r, i);
    else
        reset_step(r, i);
}

static int run(cw_run *r) {
    int rc = DS_OK;
    refill(r);
    while (r->na > 0) {
        if ((rc = r->c->forward(r->c->ctx, r->X, r->na, r->z))) return rc;
        for (int i = 0; i < r->na; i++) evaluate(r, i);
        if ((rc = r->c->input_grad(r->c->ctx, r->dlog, r->na, r->dx))) return rc;
        for (int i = 0; i < r->na; i++) {
            slot *s = &r->s[i];
            if (s->step == 0 && s->it == 0) {
                const float *g = r->dx + (size_t)i * r->D;
                for (int k = 0; k < r->D && s->zero_grad; k++)
                    if (g[k] != 0.0f) s->zero_grad = 0;
            }
            s->it++;
            s->total_it++;
            if (s->step_done || s->it >= r->p->max_iterations)
                end_step(r, i);
            else
                adam_step(r, i);
        }
        refill(r);
    }
    return rc;
}

// Clean predictions of all n samples, in batches.
static int clean_predictions(const ds_classifier *c, const float *x, int n, float *z, int *pred) {
    for (int start = 0; start < n; start += c->max_batch) {
        int nb = n - start < c->max_batch ? n - start : c->max_batch;
        int rc = c->forward(c->ctx, x + (size_t)start * c->n_in, nb, z);
        if (rc) return rc;
        for (int i = 0; i < nb; i++) pred[start + i] = ds_argmax(z + i * c->n_classes, c->n_classes);
    }
    return DS_OK;
}

int ds_cw_l2(const ds_classifier *c, const ds_cw_params *p, const float *x, const uint8_t *labels,
             int n, int32_t first_index, ds_attack_record *rec, float *x_adv) {
    int rc = ds_cw_params_check(p);
    if (!rc) rc = dsa_check_inputs("cw-l2", c, x, labels, n, rec);
    if (rc) return rc;
    const int D = c->n_in, C = c->n_classes, B = c->max_batch;
    int *clean = malloc(sizeof(int) * (n > 0 ? n : 1));
    cw_run r = {.c = c, .p = p, .x = x, .labels = labels, .clean = clean, .n = n,
                .first_index = first_index, .total = ds_cw_count(c, p, n), .D = D, .C = C,
                .rec = rec, .x_adv = x_adv};
    r.s = calloc(B, sizeof *r.s);
    float *arena = malloc(sizeof(float) * ((size_t)7 * B * D + 2 * B * C));
    if (!clean || !r.s || !arena) {
        rc = ds_fail(DS_ENOMEM, "cw-l2: out of memory");
        goto done;
    }
    float *a = arena;
    float **bufs[] = {&r.X, &r.w, &r.m, &r.v, &r.off, &r.best, &r.dx};
    for (int k = 0; k < 7; k++, a += (size_t)B * D) *bufs[k] = a;
    r.z = a;
    r.dlog = a + B * C;
    ds_fpmode fp = dsa_enter(p->denormals);
    if (!(rc = clean_predictions(c, x, n, r.z, clean))) rc = run(&r);
    ds_fpmode_restore(fp);
done:
    free(clean);
    free(r.s);
    free(arena);
    return rc;
}
