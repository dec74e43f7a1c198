// Square Attack, L-inf (Andriushchenko et al., ECCV 2020), as max-andr/square-attack's
// square_attack_linf (attack.py):
//
//   x_0 = clip(x + vertical stripes), one +-eps per column           (query 1)
//   for k = 1 .. queries-1 (the sample's own iteration count, from 0):
//       p = p_schedule(p_init, k - 1, queries); s = side(p)          (ds_square_p, ds_square_side)
//       a random s x s square at row, col in [0, h - s) gets one +-eps (the image's one channel);
//       a sign that would leave the square's pixels as they are is replaced by the other sign
//       (the reference redraws until one changes; with one channel that is the other sign)
//       x_new = clip(x + delta) inside the square, x_best outside          (query k + 1)
//       accept x_new if the margin F_y - max_{j!=y} F_j falls, or if it fools the model
// F is the attacked space's output (z, softmax(z), softmax(z/T)); y the true label or the clean
// prediction. A sample stops as soon as the deployed model (argmax z) no longer outputs y, when
// its budget of `queries` forward passes (the initial one included) is spent, or when no square
// can change it (eps below float32's resolution of x, e.g. eps = 0). The clean forward that
// gives clean_pred (and y for labels=predicted) is the record's, not the attacker's: it is not
// counted, as in the reference, which classifies the clean set before it attacks.
//
// Only the outputs are used: no input gradient is ever asked for (zero_grad is 0). The random
// draws of a (sample, eps) attempt come from ds_rng_stream(seed, SQUARE_STREAM, sample index),
// the same for every eps (common random numbers along an eps curve), in a fixed order: so a
// sample's run depends on (seed, index) alone, not on the batch or the process that runs it.
//
// Batching as in C&W: up to c->max_batch live attempts share one forward per round; a finished
// attempt's slot takes the next one. Each slot keeps x_best, its margin and the prediction at
// x_best.
#include "attack_internal.h"
#include "ds_error.h"
#include "ds_rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The attack's purpose among DS_STREAM_ATTACK streams ("SQUARE" in ASCII above its low bits).
#define SQUARE_STREAM ((uint64_t)DS_STREAM_ATTACK ^ 0x5351554152450000ULL)

// ---- Settings ----

void ds_square_params_default(ds_square_params *p) {
    memset(p, 0, sizeof *p);
    p->eps[0] = 0.3f;
    p->n_eps = 1;
    p->queries = 1000;
    p->p_init = 0.8f;
    p->space = DS_SPACE_LOGITS;
    p->labels = DS_LABELS_TRUE;
    p->denormals = DS_DENORMALS_KEEP;
}

int ds_square_params_check(const ds_square_params *p) {
    if (p->n_eps < 1 || p->n_eps > DS_FGSM_MAX_EPS)
        return ds_fail(DS_EINVAL, "square: %d eps values (expected 1 to %d)", p->n_eps, DS_FGSM_MAX_EPS);
    for (int i = 0; i < p->n_eps; i++)
        if (!(p->eps[i] >= 0.0f && p->eps[i] <= 1.0f))
            return ds_fail(DS_EINVAL, "square: eps %g outside [0, 1]", (double)p->eps[i]);
    if (p->queries < 1) return ds_fail(DS_EINVAL, "square: queries %d < 1", p->queries);
    if (!(p->p_init > 0.0f && p->p_init <= 1.0f))
        return ds_fail(DS_EINVAL, "square: p_init %g outside (0, 1]", (double)p->p_init);
    if ((unsigned)p->space > DS_SPACE_LOGITS_T)
        return ds_fail(DS_EINVAL, "square: unknown space %d (expected softmax, logits or logits_T)",
                       (int)p->space);
    if (!isfinite(p->temperature)) return ds_fail(DS_EINVAL, "square: temperature must be finite");
    if ((unsigned)p->labels > DS_LABELS_PREDICTED)
        return ds_fail(DS_EINVAL, "square: unknown label mode %d (expected true or predicted)",
                       (int)p->labels);
    if ((unsigned)p->denormals > DS_DENORMALS_FLUSH)
        return ds_fail(DS_EINVAL, "square: unknown denormals setting %d (expected keep or flush)",
                       (int)p->denormals);
    return DS_OK;
}

// "eps=0.3 queries=1000 p_init=0.8 space=logits labels=true denormals=keep" (" T=..." after
// labels when the temperature is explicit); truncated to cap, never overrun.
void ds_square_params_string(const ds_square_params *p, char *out, size_t cap) {
    char eps[DS_FGSM_MAX_EPS * 16] = "", T[32] = "";
    size_t len = 0;
    for (int i = 0; i < p->n_eps && len < sizeof eps; i++)
        len += (size_t)snprintf(eps + len, sizeof eps - len, "%s%g", i ? "," : "", (double)p->eps[i]);
    if (p->temperature > 0.0f) snprintf(T, sizeof T, " T=%g", (double)p->temperature);
    snprintf(out, cap, "eps=%s queries=%d p_init=%g space=%s labels=%s%s denormals=%s", eps,
             p->queries, (double)p->p_init, ds_space_name(p->space), ds_label_mode_name(p->labels),
             T, ds_denormals_name(p->denormals));
}

// ---- The schedule ----

double ds_square_p(double p_init, int it, int queries) {
    // The reference's p_selection: the iteration rescaled to a 10,000-query budget, then p_init
    // halved once past each of these.
    static const int halve_after[] = {10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000};
    int k = (int)((double)it / (double)queries * 10000.0);
    if (k > 10000) return p_init; // the reference's fall-through (not reached for it < queries)
    int halvings = 0;
    for (size_t i = 0; i < sizeof halve_after / sizeof halve_after[0]; i++) halvings += k > halve_after[i];
    return p_init / (double)(1 << halvings);
}

int ds_square_side(double p, int h) {
    // round(sqrt(p * n_features / c)), c = 1: Python's round, half to even, is rint's default.
    int s = (int)rint(sqrt(p * (double)h * (double)h));
    return s < 1 ? 1 : s > h - 1 ? h - 1 : s;
}

// ---- The attack ----

int ds_square_count(const ds_square_params *p, int n) {
    return p->n_eps * n;
}

typedef struct {
    int attempt, sample;  // record index (eps-major) and sample within the call
    float eps;
    int queries;          // forward passes spent on this attempt
    float margin;         // margin at x_best
    int best_pred;        // argmax of the logits at x_best
    ds_rng rng;
    uint8_t finished;
} slot;

typedef struct {
    const ds_classifier *c;
    const ds_square_params *p;
    const float *x;
    const uint8_t *labels;
    const int *clean;     // [n] clean predictions
    int n, first_index, total, next, na, D, C, h;
    float T;              // of the attacked space (1 for softmax)
    slot *s;
    float *best;          // [B, D] x_best
    float *X;             // [B, D] the pending query of each slot
    float *z;             // [B, C]
    ds_attack_record *rec;
    float *x_adv;
} sq_run;

static float clip01(float v) { return v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v; }

static float rng_sign(ds_rng *r) { return (ds_rng_u64(r) >> 63) ? 1.0f : -1.0f; }

static int target_label(const sq_run *r, int sample) {
    return r->p->labels == DS_LABELS_TRUE ? r->labels[sample] : r->clean[sample];
}

// F_y - max_{j != y} F_j of logits z in the attacked space.
static float margin_of(const sq_run *r, const float *z, int y) {
    float f[DSA_MAX_CLASSES];
    if (r->p->space == DS_SPACE_LOGITS) memcpy(f, z, sizeof(float) * r->C);
    else dsa_softmax(f, z, r->C, r->T);
    return f[y] - f[dsa_argmax_except(f, r->C, y)];
}

// The initial query: x + one +-eps per column, clipped (the reference's vertical stripes).
static void load_attempt(void *run, int i, int a) {
    sq_run *r = run;
    slot *s = &r->s[i];
    memset(s, 0, sizeof *s);
    s->attempt = a;
    s->sample = a % r->n;
    s->eps = r->p->eps[a / r->n];
    s->rng = ds_rng_stream(r->p->seed, SQUARE_STREAM, (uint64_t)(r->first_index + s->sample));
    const float *x = r->x + (size_t)s->sample * r->D;
    float *X = r->X + (size_t)i * r->D;
    for (int col = 0; col < r->h; col++) {
        float d = s->eps * rng_sign(&s->rng);
        for (int row = 0; row < r->h; row++) X[row * r->h + col] = clip01(x[row * r->h + col] + d);
    }
}

static void finish_attempt(sq_run *r, int i) {
    slot *s = &r->s[i];
    ds_attack_record *rec = &r->rec[s->attempt];
    const float *x = r->x + (size_t)s->sample * r->D, *xb = r->best + (size_t)i * r->D;
    rec->index = r->first_index + s->sample;
    rec->label = r->labels[s->sample];
    rec->target = -1;
    rec->clean_pred = r->clean[s->sample];
    rec->adv_pred = s->best_pred;
    rec->success = rec->adv_pred != rec->label; // the one definition of untargeted success
    rec->zero_grad = 0;                         // no gradient is computed
    rec->iterations = s->queries;
    ds_attack_distortion(rec, x, xb, r->D);
    if (r->x_adv) memcpy(r->x_adv + (size_t)s->attempt * r->D, xb, sizeof(float) * r->D);
    s->finished = 1;
}

// Writes the square of side q at (r0, c0) with x + d clipped into X; 1 if any pixel differs
// from x_best.
static int put_square(const sq_run *r, const float *x, const float *xb, float *X, int r0, int c0,
                      int q, float d) {
    int changed = 0;
    for (int row = r0; row < r0 + q; row++)
        for (int col = c0; col < c0 + q; col++) {
            int k = row * r->h + col;
            X[k] = clip01(x[k] + d);
            changed |= X[k] != xb[k];
        }
    return changed;
}

// The next query of slot i, from x_best; finishes the attempt when no square can change it.
static void propose(sq_run *r, int i) {
    slot *s = &r->s[i];
    const float *x = r->x + (size_t)s->sample * r->D, *xb = r->best + (size_t)i * r->D;
    float *X = r->X + (size_t)i * r->D;
    int q = ds_square_side(ds_square_p(r->p->p_init, s->queries - 1, r->p->queries), r->h);
    int r0 = (int)ds_rng_below(&s->rng, (uint32_t)(r->h - q));
    int c0 = (int)ds_rng_below(&s->rng, (uint32_t)(r->h - q));
    float d = s->eps * rng_sign(&s->rng);
    memcpy(X, xb, sizeof(float) * r->D);
    if (!put_square(r, x, xb, X, r0, c0, q, d) && !put_square(r, x, xb, X, r0, c0, q, -d))
        finish_attempt(r, i);
}

// Slot i's query was answered with logits z: keep it if better, then stop or propose the next.
static void evaluate(sq_run *r, int i) {
    slot *s = &r->s[i];
    const float *z = r->z + (size_t)i * r->C;
    int y = target_label(r, s->sample), pred = ds_argmax(z, r->C);
    float m = margin_of(r, z, y);
    int fooled = pred != y;
    if (s->queries++ == 0 || m < s->margin || fooled) {
        s->margin = m;
        s->best_pred = pred;
        memcpy(r->best + (size_t)i * r->D, r->X + (size_t)i * r->D, sizeof(float) * r->D);
    }
    if (fooled || s->queries >= r->p->queries) finish_attempt(r, i);
    else propose(r, i);
}

static void move_slot(void *run, int to, int from) {
    sq_run *r = run;
    r->s[to] = r->s[from];
    memcpy(r->best + (size_t)to * r->D, r->best + (size_t)from * r->D, sizeof(float) * r->D);
    memcpy(r->X + (size_t)to * r->D, r->X + (size_t)from * r->D, sizeof(float) * r->D);
}

static int slot_finished(void *run, int i) { return ((sq_run *)run)->s[i].finished; }

static int run(sq_run *r) {
    int rc = DS_OK;
    dsa_refill(r, slot_finished, load_attempt, move_slot, &r->na, &r->next, r->total, r->c->max_batch);
    while (r->na > 0) {
        if ((rc = r->c->forward(r->c->ctx, r->X, r->na, r->z))) return rc;
        for (int i = 0; i < r->na; i++) evaluate(r, i);
        dsa_refill(r, slot_finished, load_attempt, move_slot, &r->na, &r->next, r->total,
                   r->c->max_batch);
    }
    return rc;
}

int ds_square(const ds_classifier *c, const ds_square_params *p, const float *x,
              const uint8_t *labels, int n, int32_t first_index, ds_attack_record *rec,
              float *x_adv) {
    int rc = ds_square_params_check(p);
    if (!rc) rc = dsa_check_inputs("square", c, x, labels, n, rec);
    if (rc) return rc;
    const int D = c->n_in, C = c->n_classes, B = c->max_batch;
    int h = (int)lround(sqrt((double)D));
    if (h * h != D || h < 2)
        return ds_fail(DS_EINVAL, "square: %d inputs are not a square image of side >= 2 (one "
                       "channel, e.g. 784 = 28 x 28)", D);
    sq_run r = {.c = c, .p = p, .x = x, .labels = labels, .n = n, .first_index = first_index,
                .total = ds_square_count(p, n), .D = D, .C = C, .h = h, .rec = rec, .x_adv = x_adv,
                .T = p->space == DS_SPACE_LOGITS_T ? dsa_temperature(c, p->temperature) : 1.0f};
    int *clean = malloc(sizeof(int) * (n > 0 ? n : 1));
    r.s = calloc((size_t)B, sizeof *r.s);
    float *arena = malloc(sizeof(float) * ((size_t)2 * B * D + (size_t)B * C));
    if (!clean || !r.s || !arena) {
        rc = ds_fail(DS_ENOMEM, "square: out of memory");
        goto done;
    }
    r.clean = clean;
    r.best = arena;
    r.X = arena + (size_t)B * D;
    r.z = arena + (size_t)2 * B * D;
    ds_fpmode fp = dsa_enter(p->denormals);
    for (int start = 0; start < n && !rc; start += B) { // clean predictions, not queries
        int nb = n - start < B ? n - start : B;
        rc = c->forward(c->ctx, x + (size_t)start * D, nb, r.z);
        for (int i = 0; i < nb && !rc; i++) clean[start + i] = ds_argmax(r.z + (size_t)i * C, C);
    }
    if (!rc) rc = run(&r);
    ds_fpmode_restore(fp);
done:
    free(clean);
    free(r.s);
    free(arena);
    return rc;
}
