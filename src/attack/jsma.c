// JSMA (Papernot et al., EuroS&P 2016) as the distillation paper ran it: targeted at every class
// but the true one, pixels changed two at a time, the pair chosen from the Jacobian of F.
//
// Batching: up to c->max_batch (sample, target) attempts are active at once. One iteration is a
// forward over the batch, the stop checks, then one input_grad per class (the Jacobian of every
// output), then each live attempt picks its pair. Finished attempts are replaced by new ones
// (their slot rides along with zero output gradients until the end of the iteration).
#include "attack_internal.h"
#include "ds_error.h"

#include <float.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

int ds_jsma_count(const ds_classifier *c, int n) {
    return n * (c->n_classes - 1);
}

// ---- The pair choice ----

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));

// a, b, smax, ub (floats) and idx (int32), m + 8 each: 5 * (m + 8) four-byte words.
static size_t pair_scratch_bytes(int m) {
    return (size_t)(m + 8) * (4 * sizeof(float) + sizeof(int32_t));
}

// Largest masked score of row p over q in (p, nd), vectorised: lanes past nd read the padding
// (a = -FLT_MAX, b = FLT_MAX), which never qualifies.
static float row_max(const float *a, const float *b, int p, int nd) {
    v8f va = {0}, vb = {0}, best = {0};
    va += a[p];
    vb += b[p];
    for (int q = p + 1; q < nd; q += 8) {
        v8f aq, bq;
        memcpy(&aq, a + q, sizeof aq);
        memcpy(&bq, b + q, sizeof bq);
        v8f s = va + aq, t = vb + bq;
        v8i ok = (s > 0.0f) & (t < 0.0f);
        v8f sc = (v8f)((v8i)(s * -t) & ok);
        v8i gt = sc > best;
        best = (v8f)(((v8i)sc & gt) | ((v8i)best & ~gt));
    }
    float m = 0.0f;
    for (int l = 0; l < 8; l++)
        if (best[l] > m) m = best[l];
    return m;
}

// First q of row p whose score equals target (same float32 arithmetic as row_max).
static int row_find(const float *a, const float *b, int p, int nd, float target) {
    for (int q = p + 1; q < nd; q++) {
        float s = a[p] + a[q], t = b[p] + b[q];
        if (s > 0.0f && t < 0.0f && s * -t == target) return q;
    }
    return -1;
}

static int best_pair(const float *alpha, const float *beta, const uint8_t *dom, int m, void *scratch,
                     int *pp, int *pq) {
    float *a = scratch, *b = a + m + 8, *smax = b + m + 8, *ub = smax + m + 8;
    int32_t *idx = (int32_t *)(ub + m + 8);
    // alpha and beta are rescaled by powers of two (exact) to a largest magnitude in [0.5, 1):
    // the choice is that of float32 arithmetic, but products of tiny gradients (1e-26 each on a
    // nearly saturated softmax) no longer underflow to 0. Exactly zero gradients stay zero.
    float amag = 0.0f, bmag = 0.0f;
    int nd = 0;
    for (int k = 0; k < m; k++)
        if (dom[k]) {
            idx[nd++] = k;
            amag = fmaxf(amag, fabsf(alpha[k]));
            bmag = fmaxf(bmag, fabsf(beta[k]));
        }
    if (nd < 2) return 0;
    int ea = 0, eb = 0;
    if (amag > 0.0f && isfinite(amag)) frexpf(amag, &ea);
    if (bmag > 0.0f && isfinite(bmag)) frexpf(bmag, &eb);
    for (int d = 0; d < nd; d++) {
        a[d] = ldexpf(alpha[idx[d]], -ea);
        b[d] = ldexpf(beta[idx[d]], -eb);
    }
    for (int k = nd; k < nd + 8; k++) {
        a[k] = -FLT_MAX;
        b[k] = FLT_MAX;
    }
    // Upper bound of row p's best score from the largest a and smallest b over q > p: rounding is
    // monotone, so no score of the row exceeds it in float32 either.
    float amax = -INFINITY, bmin = INFINITY;
    int top = -1;
    for (int p = nd - 1; p >= 0; p--) {
        smax[p] = amax;
        float s = a[p] + amax, t = b[p] + bmin;
        ub[p] = s > 0.0f && t < 0.0f ? s * -t : 0.0f;
        if (ub[p] > 0.0f && (top < 0 || ub[p] >= ub[top])) top = p;
        if (a[p] > amax) amax = a[p];
        if (b[p] < bmin) bmin = b[p];
    }
    if (top < 0) return 0;
    // The row with the largest bound first, to prune the others against a good score.
    float best = row_max(a, b, top, nd);
    int bp = -1, bq = -1;
    if (best > 0.0f) {
        bp = top;
        bq = row_find(a, b, top, nd, best);
    }
    for (int p = 0; p < nd - 1; p++) {
        if (p == top || ub[p] <= 0.0f || ub[p] < best) continue;
        float r = row_max(a, b, p, nd);
        if (r > 0.0f && (r > best || (r == best && p < bp))) {
            best = r;
            bp = p;
            bq = row_find(a, b, p, nd, r);
        }
    }
    if (bp < 0 || bq < 0) return 0;
    *pp = idx[bp];
    *pq = idx[bq];
    return 1;
}

int ds_jsma_best_pair(const float *alpha, const float *beta, const uint8_t *dom, int m,
                      float *scratch, int *p, int *q) {
    return best_pair(alpha, beta, dom, m, scratch, p, q);
}

// ---- The batched attack ----

typedef struct {
    int attempt;     // record index
    int sample;      // index into x
    int target;
    int iterations;  // pixel pairs changed so far
    int clean_pred;
    uint8_t zero_grad;
    uint8_t finished;
} slot;

typedef struct {
    const ds_classifier *c;
    const ds_jsma_params *p;
    const float *x;
    const uint8_t *labels;
    int n, first_index, total, next, na;
    int D, C, budget;
    float T;
    slot *s;
    float *X;        // [B, D] current images of the active attempts
    uint8_t *dom;    // [B, D] search domain
    float *z, *dlog;         // [B, C]
    float *jac;              // [B, C, C] dF/dz of each live attempt (ds_space_jacobian_dz)
    float *dx, *alpha, *beta; // [B, D]
    void *scratch;   // per thread
    size_t scratch_bytes;
    ds_attack_record *rec;
    float *x_adv;
} jsma_run;

// Attempt a: sample a / (C-1), targets in increasing order skipping the label.
static void load_attempt(void *run, int i, int a) {
    jsma_run *r = run;
    slot *s = &r->s[i];
    int sample = a / (r->C - 1), k = a % (r->C - 1);
    int label = r->labels[sample];
    memset(s, 0, sizeof *s);
    s->attempt = a;
    s->sample = sample;
    s->target = k < label ? k : k + 1;
    const float *x = r->x + (size_t)sample * r->D;
    memcpy(r->X + (size_t)i * r->D, x, sizeof(float) * r->D);
    uint8_t *dom = r->dom + (size_t)i * r->D;
    for (int j = 0; j < r->D; j++) dom[j] = r->p->theta > 0.0f ? x[j] < 1.0f : x[j] > 0.0f;
}

static void finish_attempt(jsma_run *r, int i, int pred) {
    slot *s = &r->s[i];
    ds_attack_record *rec = &r->rec[s->attempt];
    const float *x = r->x + (size_t)s->sample * r->D, *xa = r->X + (size_t)i * r->D;
    rec->index = r->first_index + s->sample;
    rec->label = r->labels[s->sample];
    rec->target = s->target;
    rec->clean_pred = s->clean_pred;
    rec->adv_pred = pred;
    rec->success = pred == s->target;
    rec->zero_grad = s->zero_grad;
    rec->iterations = s->iterations;
    ds_attack_distortion(rec, x, xa, r->D);
    if (r->x_adv) memcpy(r->x_adv + (size_t)s->attempt * r->D, xa, sizeof(float) * r->D);
    s->finished = 1;
}

static void move_slot(void *run, int to, int from) {
    jsma_run *r = run;
    r->s[to] = r->s[from];
    memcpy(r->X + (size_t)to * r->D, r->X + (size_t)from * r->D, sizeof(float) * r->D);
    memcpy(r->dom + (size_t)to * r->D, r->dom + (size_t)from * r->D, r->D);
}

static int slot_finished(void *run, int i) { return ((jsma_run *)run)->s[i].finished; }

static void refill(jsma_run *r) {
    dsa_refill(r, slot_finished, load_attempt, move_slot, &r->na, &r->next, r->total, r->c->max_batch);
}

// The Jacobian of F for every live slot: alpha = dF_t/dx, beta = sum_{j != t} dF_j/dx (classes in
// increasing order), one input_grad per class over the whole batch.
static int jacobian(jsma_run *r, int first_iteration_any) {
    const int D = r->D, C = r->C, na = r->na;
    for (int i = 0; i < na; i++)
        if (!r->s[i].finished)
            ds_space_jacobian_dz(r->p->space, &r->p->num, r->z + i * C, C, r->T, r->s[i].target,
                                 r->jac + (size_t)i * C * C);
    for (int k = 0; k < C; k++) {
        for (int i = 0; i < na; i++) {
            float *row = r->dlog + i * C;
            if (r->s[i].finished)
                memset(row, 0, sizeof(float) * C);
            else
                memcpy(row, r->jac + ((size_t)i * C + k) * C, sizeof(float) * C);
        }
        int rc = r->c->input_grad(r->c->ctx, r->dlog, na, r->dx);
        if (rc) return rc;
        for (int i = 0; i < na; i++) {
            slot *s = &r->s[i];
            if (s->finished) continue;
            const float *g = r->dx + (size_t)i * D;
            if (first_iteration_any && s->iterations == 0 && s->zero_grad)
                for (int j = 0; j < D; j++)
                    if (g[j] != 0.0f) {
                        s->zero_grad = 0;
                        break;
                    }
            float *al = r->alpha + (size_t)i * D, *be = r->beta + (size_t)i * D;
            int first_other = s->target == 0 ? 1 : 0;
            if (k == s->target)
                memcpy(al, g, sizeof(float) * D);
            else if (k == first_other)
                memcpy(be, g, sizeof(float) * D);
            else
                for (int j = 0; j < D; j++) be[j] += g[j];
        }
    }
    return DS_OK;
}

// Each live slot picks its pair and changes it, or finishes when no pair qualifies.
static void choose_pairs(jsma_run *r, const int *pred) {
    const int D = r->D;
    const float theta = r->p->theta;
#pragma omp parallel for schedule(dynamic, 1) num_threads(r->p->threads) if (r->p->threads > 1)
    for (int i = 0; i < r->na; i++) {
        slot *s = &r->s[i];
        if (s->finished) continue;
        void *scratch = (char *)r->scratch + (size_t)omp_get_thread_num() * r->scratch_bytes;
        uint8_t *dom = r->dom + (size_t)i * D;
        int p, q;
        if (!best_pair(r->alpha + (size_t)i * D, r->beta + (size_t)i * D, dom, D, scratch, &p, &q)) {
            finish_attempt(r, i, pred[i]);
            continue;
        }
        float *xi = r->X + (size_t)i * D;
        xi[p] = fminf(1.0f, fmaxf(0.0f, xi[p] + theta));
        xi[q] = fminf(1.0f, fmaxf(0.0f, xi[q] + theta));
        dom[p] = dom[q] = 0;
        s->iterations++;
    }
}

static int run(jsma_run *r) {
    const int C = r->C;
    int *pred = malloc(sizeof(int) * r->c->max_batch);
    if (!pred) return ds_fail(DS_ENOMEM, "jsma: out of memory");
    int rc = DS_OK;
    refill(r);
    while (r->na > 0) {
        if ((rc = r->c->forward(r->c->ctx, r->X, r->na, r->z))) break;
        int live = 0, first_any = 0;
        for (int i = 0; i < r->na; i++) {
            slot *s = &r->s[i];
            pred[i] = ds_argmax(r->z + i * C, C);
            if (s->iterations == 0) {
                s->clean_pred = pred[i];
                s->zero_grad = 1; // until a non-zero gradient shows up
                first_any = 1;
            }
            if (pred[i] == s->target || s->iterations >= r->budget) {
                if (s->iterations == 0) s->zero_grad = 0; // no gradient was taken
                finish_attempt(r, i, pred[i]);
            } else {
                live++;
            }
        }
        if (live) {
            if ((rc = jacobian(r, first_any))) break;
            choose_pairs(r, pred);
        }
        refill(r);
    }
    free(pred);
    return rc;
}

int ds_jsma(const ds_classifier *c, const ds_jsma_params *p, const float *x, const uint8_t *labels,
            int n, int32_t first_index, ds_attack_record *rec, float *x_adv) {
    int rc = ds_jsma_params_check(p);
    if (!rc) rc = dsa_check_inputs("jsma", c, x, labels, n, rec);
    if (rc) return rc;
    const int D = c->n_in, C = c->n_classes, B = c->max_batch;
    int budget = ds_jsma_budget(p, D);
    if (budget < 1)
        return ds_fail(DS_EINVAL, "jsma: gamma %g allows no iteration on %d inputs (floor(%d*gamma/2) = 0)",
                       (double)p->gamma, D, D);
    jsma_run r = {.c = c, .p = p, .x = x, .labels = labels, .n = n, .first_index = first_index,
                  .total = ds_jsma_count(c, n), .D = D, .C = C, .budget = budget,
                  .T = dsa_temperature(c, p->temperature), .rec = rec, .x_adv = x_adv};
    r.scratch_bytes = (pair_scratch_bytes(D) + 63) / 64 * 64;
    r.s = calloc(B, sizeof *r.s);
    r.X = malloc(sizeof(float) * B * D);
    r.dom = malloc((size_t)B * D);
    r.z = malloc(sizeof(float) * B * C);
    r.jac = calloc((size_t)B * C * C, sizeof(float));
    r.dlog = malloc(sizeof(float) * B * C);
    r.dx = malloc(sizeof(float) * B * D);
    r.alpha = malloc(sizeof(float) * B * D);
    r.beta = malloc(sizeof(float) * B * D);
    r.scratch = aligned_alloc(64, r.scratch_bytes * p->threads);
    if (!r.s || !r.X || !r.dom || !r.z || !r.jac || !r.dlog || !r.dx || !r.alpha || !r.beta || !r.scratch)
        rc = ds_fail(DS_ENOMEM, "jsma: out of memory");
    else {
        ds_fpmode fp = dsa_enter(p->num.denormals);
        rc = run(&r);
        ds_fpmode_restore(fp);
    }
    free(r.s);
    free(r.X);
    free(r.dom);
    free(r.z);
    free(r.jac);
    free(r.dlog);
    free(r.dx);
    free(r.alpha);
    free(r.beta);
    free(r.scratch);
    return rc;
}
