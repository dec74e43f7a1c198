// PGD (Madry et al. 2018), untargeted, as MadryLab/mnist_challenge's pgd_attack.py with the
// per-sample bookkeeping of AutoAttack:
//
//   x_0     = Pi(x + delta), delta uniform in [-eps, eps]^n (linf) or in the L2 ball (direction
//             normal, radius eps u^(1/n)); x_0 = x without random start
//   x_{k+1} = Pi(x_k + step sign(g))        (linf)
//   x_{k+1} = Pi(x_k + step g / ||g||_2)    (l2; a zero gradient does not move)
//   g       = dL/dx at x_k: loss ce = FGSM's loss of the space (ds_space_loss_dz), margin =
//             max_{j!=y} F_j - F_y on the space's output F (ds_space_margin_dz)
//   Pi      = projection onto the eps ball around the clean x, then clipping to [0, 1]. For linf
//             both are per-pixel intervals and their order does not matter; for l2 the ball
//             comes first, as in torchattacks and ART (clipping only shortens delta, so the
//             result stays in the ball). Both are enforced in float32 as the records measure
//             x' - x: |x'_k - x_k| <= eps, resp. ||x' - x||_2 <= eps, exactly.
//
// Success: the deployed model (argmax of the logits) gives another class than y (the true label,
// or the clean prediction with labels = predicted). Every iterate is forwarded; an attempt stops
// at the first that succeeds and keeps it (AutoAttack keeps the first adversarial found).
// Restart r runs only if restarts 0..r-1 failed, so the record holds the first successful
// restart's point, else the last restart's final point. Samples the model already misclassifies
// (labels = true) are not attacked: x' = x, 0 iterations (AutoAttack's convention).
// The record's success is every untargeted record's: adv_pred != label.
//
// Random starts come from the stream (seed, PGD_STREAM, index << 32 | r), index the test sample's
// (first_index + i): the same for any batch, split of the samples or rank, and restart r's start
// does not depend on the number of restarts (more restarts only add starts). The same uniforms
// serve every eps (scaled by it). Batching as in C&W: up to c->max_batch live
// (eps, sample) attempts share one forward and one input_grad per step; a finished attempt's
// slot is refilled.
#include "attack_internal.h"
#include "ds_error.h"
#include "ds_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

// PGD's purpose among the attack streams ("PGD" in the high bits of the purpose).
#define PGD_STREAM ((uint64_t)DS_STREAM_ATTACK ^ ((uint64_t)0x504744 << 32))

int ds_pgd_count(const ds_pgd_params *p, int n) {
    return p->n_eps * n;
}

typedef struct {
    int attempt, sample, e;  // record e * n + sample
    int restart, k;          // current restart and its steps so far
    int total_it;            // steps over all restarts
    uint8_t zero_grad, wants_grad, finished;
} slot;

typedef struct {
    const ds_classifier *c;
    const ds_pgd_params *p;
    const float *x;
    const uint8_t *labels;
    const int *clean, *y;    // [n] clean predictions, attacked labels
    const int *todo;         // attempts that run (the others were decided by the clean forward)
    int n, first_index, total, next, na, D, C;
    float T;
    slot *s;
    float *X, *g;            // [B, D] current iterates, input gradients
    float *z, *dz;           // [B, C]
    ds_attack_record *rec;
    float *x_adv;
} pgd_run;

static float sign_of(float g) {
    return g > 0.0f ? 1.0f : g < 0.0f ? -1.0f : 0.0f; // NaN counts as 0
}

static float clip01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

// ||a - b||_2 of float32 differences, in double (as ds_attack_distortion measures it).
static double l2_dist(const float *a, const float *b, int D) {
    double s = 0.0;
    for (int k = 0; k < D; k++) {
        float d = a[k] - b[k];
        s += (double)d * d;
    }
    return sqrt(s);
}

// Pi for linf: X into [x - eps, x + eps] and [0, 1], with bounds rounded inwards so that the
// float32 difference X - x never exceeds eps.
static void project_linf(float *X, const float *x, float eps, int D) {
    for (int k = 0; k < D; k++) {
        float lo = x[k] - eps, hi = x[k] + eps;
        if (x[k] - lo > eps) lo = nextafterf(lo, INFINITY);
        if (hi - x[k] > eps) hi = nextafterf(hi, -INFINITY);
        float v = X[k] < lo ? lo : X[k] > hi ? hi : X[k];
        X[k] = clip01(v);
    }
}

// Pi for l2: delta = X - x scaled onto the ball if outside it, then X = clip(x + delta). The
// scale shrinks by 2^-20 until the float32 result measures <= eps (one pass but for rounding);
// clipping only shortens delta.
static void project_l2(float *X, const float *x, float eps, int D) {
    double norm = l2_dist(X, x, D);
    if (norm <= eps) {
        for (int k = 0; k < D; k++) X[k] = clip01(X[k]);
        return;
    }
    for (int k = 0; k < D; k++) X[k] -= x[k]; // delta
    double f = eps / norm;
    for (;;) {
        double s = 0.0;
        for (int k = 0; k < D; k++) {
            float d = clip01(x[k] + (float)(f * X[k])) - x[k];
            s += (double)d * d;
        }
        if (sqrt(s) <= eps) break;
        f *= 1.0 - 1.0 / 1048576.0;
    }
    for (int k = 0; k < D; k++) X[k] = clip01(x[k] + (float)(f * X[k]));
}

static void project(const pgd_run *r, float *X, const float *x, float eps) {
    if (r->p->norm == DS_NORM_LINF) project_linf(X, x, eps, r->D);
    else project_l2(X, x, eps, r->D);
}

// x_0 of restart s->restart for slot i.
static void start_point(pgd_run *r, int i) {
    const ds_pgd_params *p = r->p;
    slot *s = &r->s[i];
    const int D = r->D;
    const float *x = r->x + (size_t)s->sample * D;
    float *X = r->X + (size_t)i * D, eps = p->eps[s->e];
    if (!p->random_start) {
        memcpy(X, x, sizeof(float) * D);
        return;
    }
    uint64_t index = (uint32_t)(r->first_index + s->sample);
    ds_rng rng = ds_rng_stream(p->seed, PGD_STREAM, index << 32 | (uint32_t)s->restart);
    if (p->norm == DS_NORM_LINF) {
        for (int k = 0; k < D; k++) X[k] = x[k] + eps * (2.0f * ds_rng_uniform(&rng) - 1.0f);
    } else {
        // Box-Muller normals for the direction, then the radius eps u^(1/D) of a uniform point.
        double norm = 0.0;
        for (int k = 0; k < D; k += 2) {
            double u1 = 1.0 - ds_rng_uniform(&rng), u2 = ds_rng_uniform(&rng);
            double rad = sqrt(-2.0 * log(u1)), a = 2.0 * M_PI * u2;
            X[k] = (float)(rad * cos(a));
            if (k + 1 < D) X[k + 1] = (float)(rad * sin(a));
        }
        for (int k = 0; k < D; k++) norm += (double)X[k] * X[k];
        double radius = eps * pow(ds_rng_uniform(&rng), 1.0 / D);
        double f = norm > 0.0 ? radius / sqrt(norm) : 0.0;
        for (int k = 0; k < D; k++) X[k] = x[k] + (float)(f * X[k]);
    }
    project(r, X, x, eps);
}

static void load_attempt(void *run, int i, int a) {
    pgd_run *r = run;
    slot *s = &r->s[i];
    memset(s, 0, sizeof *s);
    s->attempt = r->todo[a];
    s->e = s->attempt / r->n;
    s->sample = s->attempt % r->n;
    start_point(r, i);
}

// The record of an attempt whose point is X with prediction pred.
static void write_record(pgd_run *r, int attempt, int sample, const float *X, int pred, int iters,
                         int zero_grad) {
    ds_attack_record *rec = &r->rec[attempt];
    const float *x = r->x + (size_t)sample * r->D;
    rec->index = r->first_index + sample;
    rec->label = r->labels[sample];
    rec->target = -1;
    rec->clean_pred = r->clean[sample];
    rec->adv_pred = pred;
    rec->success = pred != rec->label;
    rec->zero_grad = (uint8_t)zero_grad;
    rec->iterations = iters;
    ds_attack_distortion(rec, x, X, r->D);
    if (r->x_adv) memcpy(r->x_adv + (size_t)attempt * r->D, X, sizeof(float) * r->D);
}

static void finish_attempt(pgd_run *r, int i, int pred) {
    slot *s = &r->s[i];
    write_record(r, s->attempt, s->sample, r->X + (size_t)i * r->D, pred, s->total_it, s->zero_grad);
    s->finished = 1;
}

static void move_slot(void *run, int to, int from) {
    pgd_run *r = run;
    r->s[to] = r->s[from];
    memcpy(r->X + (size_t)to * r->D, r->X + (size_t)from * r->D, sizeof(float) * r->D);
}

static int slot_finished(void *run, int i) { return ((pgd_run *)run)->s[i].finished; }

static void refill(pgd_run *r) {
    dsa_refill(r, slot_finished, load_attempt, move_slot, &r->na, &r->next, r->total, r->c->max_batch);
}

// After the forward of slot i's iterate: success ends the attempt; the end of a restart starts
// the next one or ends the attempt; otherwise dL/dz for the step.
static void evaluate(pgd_run *r, int i) {
    const ds_pgd_params *p = r->p;
    slot *s = &r->s[i];
    const float *z = r->z + i * r->C;
    float *dz = r->dz + i * r->C;
    int pred = ds_argmax(z, r->C), y = r->y[s->sample];
    s->wants_grad = 0;
    memset(dz, 0, sizeof(float) * r->C);
    if (pred != y) {
        finish_attempt(r, i, pred);
    } else if (s->k == p->steps) {
        if (s->restart + 1 < p->restarts) {
            s->restart++;
            s->k = 0;
            start_point(r, i);
        } else {
            finish_attempt(r, i, pred);
        }
    } else {
        if (p->loss == DS_LOSS_CE) ds_space_loss_dz(p->space, &p->num, z, r->C, y, r->T, dz);
        else ds_space_margin_dz(p->space, &p->num, z, r->C, y, r->T, dz);
        s->wants_grad = 1;
    }
}

// One step of slot i along its input gradient, then Pi.
static void step(pgd_run *r, int i) {
    const ds_pgd_params *p = r->p;
    slot *s = &r->s[i];
    const int D = r->D;
    const float *x = r->x + (size_t)s->sample * D, *g = r->g + (size_t)i * D;
    float *X = r->X + (size_t)i * D;
    if (s->restart == 0 && s->k == 0) {
        int zero = 1;
        for (int k = 0; k < D && zero; k++) zero = g[k] == 0.0f;
        s->zero_grad = (uint8_t)zero;
    }
    if (p->norm == DS_NORM_LINF) {
        for (int k = 0; k < D; k++) X[k] += p->step * sign_of(g[k]);
    } else {
        double norm = 0.0;
        for (int k = 0; k < D; k++) norm += (double)g[k] * g[k];
        norm = sqrt(norm);
        if (norm > 0.0 && isfinite(norm)) {
            float f = (float)(p->step / norm);
            for (int k = 0; k < D; k++) X[k] += f * g[k];
        }
    }
    project(r, X, x, p->eps[s->e]);
    s->k++;
    s->total_it++;
}

static int run(pgd_run *r) {
    int rc = DS_OK;
    refill(r);
    while (r->na > 0) {
        if ((rc = r->c->forward(r->c->ctx, r->X, r->na, r->z))) return rc;
        int grads = 0;
        for (int i = 0; i < r->na; i++) {
            evaluate(r, i);
            grads += r->s[i].wants_grad;
        }
        if (grads) {
            if ((rc = r->c->input_grad(r->c->ctx, r->dz, r->na, r->g))) return rc;
            for (int i = 0; i < r->na; i++)
                if (r->s[i].wants_grad) step(r, i);
        }
        refill(r);
    }
    return rc;
}

// Clean predictions and attacked labels of the n samples; the records of the samples already
// misclassified (labels = true), and the list of the attempts that run.
static int clean_pass(pgd_run *r, int *clean, int *y, int *todo) {
    const ds_classifier *c = r->c;
    for (int start = 0; start < r->n; start += c->max_batch) {
        int nb = r->n - start < c->max_batch ? r->n - start : c->max_batch;
        int rc = c->forward(c->ctx, r->x + (size_t)start * r->D, nb, r->z);
        if (rc) return rc;
        for (int i = 0; i < nb; i++) {
            clean[start + i] = ds_argmax(r->z + i * r->C, r->C);
            y[start + i] = r->p->labels == DS_LABELS_TRUE ? r->labels[start + i] : clean[start + i];
        }
    }
    r->total = 0;
    for (int a = 0; a < ds_pgd_count(r->p, r->n); a++) {
        int i = a % r->n;
        if (clean[i] != y[i])
            write_record(r, a, i, r->x + (size_t)i * r->D, clean[i], 0, 0);
        else
            todo[r->total++] = a;
    }
    return DS_OK;
}

int ds_pgd(const ds_classifier *c, const ds_pgd_params *p, const float *x, const uint8_t *labels,
           int n, int32_t first_index, ds_attack_record *rec, float *x_adv) {
    int rc = ds_pgd_params_check(p);
    if (!rc) rc = dsa_check_inputs("pgd", c, x, labels, n, rec);
    if (rc) return rc;
    const int D = c->n_in, C = c->n_classes, B = c->max_batch, count = ds_pgd_count(p, n);
    int *ints = malloc(sizeof(int) * ((size_t)2 * n + count + 1));
    pgd_run r = {.c = c, .p = p, .x = x, .labels = labels, .n = n, .first_index = first_index,
                 .D = D, .C = C, .T = dsa_temperature(c, p->temperature), .rec = rec,
                 .x_adv = x_adv};
    r.s = calloc(B, sizeof *r.s);
    float *arena = malloc(sizeof(float) * ((size_t)2 * B * D + 2 * B * C));
    if (!ints || !r.s || !arena) {
        rc = ds_fail(DS_ENOMEM, "pgd: out of memory");
        goto done;
    }
    int *clean = ints, *y = ints + n, *todo = ints + 2 * n;
    r.clean = clean;
    r.y = y;
    r.todo = todo;
    r.X = arena;
    r.g = arena + (size_t)B * D;
    r.z = arena + (size_t)2 * B * D;
    r.dz = r.z + B * C;
    ds_fpmode fp = dsa_enter(p->num.denormals);
    if (!(rc = clean_pass(&r, clean, y, todo))) rc = run(&r);
    ds_fpmode_restore(fp);
done:
    free(ints);
    free(r.s);
    free(arena);
    return rc;
}
