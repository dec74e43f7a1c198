// Training (SGD with momentum), evaluation and the teacher's soft labels.
#include "ds_error.h"
#include "ds_fault.h"
#include "ds_fpmode.h"
#include "ds_nn.h"
#include "ds_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

void ds_train_config_default(ds_train_config *c) {
    *c = (ds_train_config){.epochs = 50, .batch = 128, .lr = 0.1f, .lr_decay = 1.0f,
                           .momentum = 0.5f, .dropout = 0.5f, .temperature = 1.0f, .seed = 1, .threads = 1,
                           .chunk = DS_CHUNK};
}

int ds_train_config_check(const ds_train_config *c) {
    if (c->epochs < 0 || c->epochs > 100000) return ds_fail(DS_EINVAL, "epochs must be in [0, 100000], got %d", c->epochs);
    if (c->batch < 1 || c->batch > 65536) return ds_fail(DS_EINVAL, "batch must be in [1, 65536], got %d", c->batch);
    if (!(c->lr > 0.0f) || !isfinite(c->lr)) return ds_fail(DS_EINVAL, "learning rate must be positive, got %g", c->lr);
    if (!(c->lr_decay > 0.0f && c->lr_decay <= 1.0f)) return ds_fail(DS_EINVAL, "learning-rate decay must be in (0, 1], got %g", c->lr_decay);
    if (c->lr_decay_from < 0) return ds_fail(DS_EINVAL, "learning-rate decay epoch must be >= 0, got %d", c->lr_decay_from);
    if (!(c->momentum >= 0.0f && c->momentum < 1.0f)) return ds_fail(DS_EINVAL, "momentum must be in [0, 1), got %g", c->momentum);
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f)) return ds_fail(DS_EINVAL, "dropout must be in [0, 1), got %g", c->dropout);
    if (!(c->temperature > 0.0f) || !isfinite(c->temperature)) return ds_fail(DS_EINVAL, "temperature must be positive, got %g", c->temperature);
    if (c->threads < 1 || c->threads > 1024) return ds_fail(DS_EINVAL, "threads must be in [1, 1024], got %d", c->threads);
    if (c->chunk < DS_GROUP || c->chunk % DS_GROUP) return ds_fail(DS_EINVAL, "chunk must be a positive multiple of %d, got %d", DS_GROUP, c->chunk);
    return DS_OK;
}

float ds_train_lr(const ds_train_config *c, int e) {
    return e >= c->lr_decay_from ? c->lr * c->lr_decay : c->lr;
}

// A gang member's buffers: its chunks of a full batch (ceil(nc / size) at most, ds_chunk_range)
// [that, np] and every sample's loss [batch]. Alone: none.
static int gang_buffers(ds_trainer *t, const ds_grad_reducer *r) {
    t->reducer = r;
    if (!r) return DS_OK;
    if (r->size < 1 || r->member < 0 || r->member >= r->size || !r->reduce)
        return ds_fail(DS_EINVAL, "trainer: member %d of a gang of %d, or no reduce function", r->member, r->size);
    int nc = ds_chunk_count(t->cfg.batch, t->cfg.chunk), mine = (nc + r->size - 1) / r->size;
    t->chunk_grads = malloc((size_t)mine * ds_params_count() * sizeof(float));
    t->losses = malloc((size_t)t->cfg.batch * sizeof(double));
    if (!t->chunk_grads || !t->losses) return ds_fail(DS_ENOMEM, "trainer: out of memory for %d chunk gradients", mine);
    return DS_OK;
}

int ds_trainer_init(ds_trainer *t, const ds_train_config *cfg, int n_train,
                    const ds_grad_reducer *reducer) {
    memset(t, 0, sizeof *t);
    int rc = ds_train_config_check(cfg);
    if (rc) return rc;
    if (n_train < 1) return ds_fail(DS_EINVAL, "training set is empty");
    t->cfg = *cfg;
    t->n = n_train;
    size_t np = ds_params_count();
    t->velocity = calloc(np, sizeof(float));
    t->grad = malloc(np * sizeof(float));
    t->x = malloc((size_t)cfg->batch * DS_PIXELS * sizeof(float));
    t->order = malloc((size_t)n_train * sizeof(int32_t));
    t->labels = malloc((size_t)cfg->batch);
    t->soft = malloc((size_t)cfg->batch * DS_CLASSES * sizeof(float));
    if (!t->velocity || !t->grad || !t->x || !t->order || !t->labels || !t->soft) {
        ds_trainer_free(t);
        return ds_fail(DS_ENOMEM, "trainer: out of memory");
    }
    if (!rc) rc = gang_buffers(t, reducer);
    if (!rc) rc = ds_engine_create(&t->engine, cfg->batch, cfg->threads, cfg->chunk);
    if (rc) ds_trainer_free(t);
    return rc;
}

void ds_trainer_free(ds_trainer *t) {
    ds_engine_free(t->engine);
    free(t->velocity);
    free(t->grad);
    free(t->x);
    free(t->order);
    free(t->labels);
    free(t->soft);
    free(t->chunk_grads);
    free(t->losses);
    memset(t, 0, sizeof *t);
}

// The gradient of the batch staged in t (b samples) into t->grad, and its mean loss. Alone: the
// engine's whole pass. In a gang: this member's chunks, then the reducer's fold of all of them,
// and the loss as the engine sums it (in sample order, then / b): the same bits either way.
static int step_grad(ds_trainer *t, const ds_params *p, const float *soft, int b, const ds_train_pass *pass,
                     double *loss) {
    const ds_grad_reducer *r = t->reducer;
    if (!r) {
        *loss = ds_engine_train_grad(t->engine, p, t->x, t->labels, soft, b, pass, t->grad);
        return DS_OK;
    }
    int nc = ds_chunk_count(b, t->cfg.chunk), c0, c1;
    ds_chunk_range(nc, r->size, r->member, &c0, &c1); // may be empty: the member still reduces
    ds_engine_chunk_grads(t->engine, p, t->x, t->labels, soft, b, c0, c1, pass, t->chunk_grads, t->losses);
    int rc = r->reduce(r->user, t->chunk_grads, c0, c1, nc, ds_params_count(), t->losses, b, t->grad);
    if (rc) return rc;
    *loss = ds_batch_mean_loss(t->losses, b);
    return DS_OK;
}

static int run_epoch(ds_trainer *t, ds_model *m, const ds_dataset *train, const float *soft,
                     double *mean_loss) {
    const ds_train_config *c = &t->cfg;
    if (train->n != t->n) return ds_fail(DS_EINVAL, "trainer: made for %d samples, given %d", t->n, train->n);
    size_t np = ds_params_count();
    for (int i = 0; i < t->n; i++) t->order[i] = i;
    ds_rng shuffle = ds_rng_stream(c->seed, DS_STREAM_SHUFFLE, (uint64_t)t->epoch);
    ds_rng_shuffle(&shuffle, t->order, t->n);
    int steps = (t->n + c->batch - 1) / c->batch;
    double loss_sum = 0.0;
    float lr = ds_train_lr(c, t->epoch);
    for (int s = 0; s < steps; s++) {
        int first = s * c->batch, b = t->n - first < c->batch ? t->n - first : c->batch;
        const int32_t *idx = t->order + first;
        ds_batch_pixels(t->x, train, idx, b);
        for (int i = 0; i < b; i++) {
            t->labels[i] = train->labels[idx[i]];
            if (soft) memcpy(t->soft + (size_t)i * DS_CLASSES, soft + (size_t)idx[i] * DS_CLASSES, DS_CLASSES * sizeof(float));
        }
        ds_train_pass pass = {.temperature = c->temperature, .dropout = c->dropout, .seed = c->seed,
                              .step = (uint64_t)t->epoch * (uint64_t)steps + (uint64_t)s};
        double loss;
        int rc = step_grad(t, &m->p, soft ? t->soft : NULL, b, &pass, &loss);
        if (rc) return rc;
        if (!isfinite(loss))
            return ds_fail(DS_ENUMERIC, "training diverged: loss is %g at epoch %d, step %d (lower the learning rate)",
                           loss, t->epoch + 1, s + 1);
        loss_sum += loss * b;
        // SGD with momentum (PyTorch's form): v = mu v + g; w -= lr v.
        for (size_t j = 0; j < np; j++) {
            t->velocity[j] = c->momentum * t->velocity[j] + t->grad[j];
            m->mem[j] -= lr * t->velocity[j];
        }
        ds_fault("train-step", NULL);
    }
    for (size_t j = 0; j < np; j++)
        if (!isfinite(m->mem[j]))
            return ds_fail(DS_ENUMERIC, "training diverged: a weight is %g after epoch %d", m->mem[j], t->epoch + 1);
    t->epoch++;
    m->epochs = t->epoch;
    m->temperature = c->temperature;
    m->seed = c->seed;
    if (mean_loss) *mean_loss = loss_sum / t->n;
    return DS_OK;
}

// Training flushes denormals (ds_fpmode_train_flush): gradients scaled by 1/T reach the denormal
// range, which x86 handles in microcode, 10-100x slower.
int ds_trainer_epoch(ds_trainer *t, ds_model *m, const ds_dataset *train, const float *soft,
                     double *mean_loss) {
    ds_fpmode fp = ds_fpmode_set(ds_fpmode_train_flush());
    int rc = run_epoch(t, m, train, soft, mean_loss);
    ds_fpmode_restore(fp);
    return rc;
}

// Runs the engine over [first, first+n) of d in batches and hands each batch's logits to fn.
typedef void (*logits_fn)(void *ud, int first, int n, const float *logits);

static int for_each_logits(const ds_model *m, const ds_dataset *d, int first, int n, int threads,
                           logits_fn fn, void *ud) {
    if (first < 0 || n < 0 || first + n > d->n)
        return ds_fail(DS_EINVAL, "samples [%d, %d) are outside the dataset of %d", first, first + n, d->n);
    enum { B = 256 };
    ds_engine *e;
    int rc = ds_engine_create(&e, B, threads, 0);
    if (rc) return rc;
    ds_fpmode fp = ds_fpmode_set(ds_fpmode_train_flush()); // soft labels: as in training
    float *x = malloc((size_t)B * DS_PIXELS * sizeof(float));
    float *z = malloc((size_t)B * DS_CLASSES * sizeof(float));
    if (!x || !z) rc = ds_fail(DS_ENOMEM, "evaluation: out of memory");
    for (int i = 0; !rc && i < n; i += B) {
        int b = n - i < B ? n - i : B;
        ds_range_pixels(x, d, first + i, b);
        ds_engine_forward(e, &m->p, x, b, z);
        fn(ud, first + i, b, z);
    }
    ds_fpmode_restore(fp);
    free(x);
    free(z);
    ds_engine_free(e);
    return rc;
}

typedef struct {
    const ds_dataset *d;
    long correct;
} count_ctx;

static void count_correct(void *ud, int first, int n, const float *z) {
    count_ctx *c = ud;
    for (int i = 0; i < n; i++) c->correct += ds_argmax(z + (size_t)i * DS_CLASSES, DS_CLASSES) == c->d->labels[first + i];
}

int ds_evaluate(const ds_model *m, const ds_dataset *d, int threads, double *accuracy) {
    count_ctx c = {d, 0};
    int rc = for_each_logits(m, d, 0, d->n, threads, count_correct, &c);
    if (!rc) *accuracy = d->n ? (double)c.correct / d->n : 0.0;
    return rc;
}

typedef struct {
    float *out;
    float T;
    int first;
    int softmax;
} copy_ctx;

static void copy_logits(void *ud, int first, int n, const float *z) {
    copy_ctx *c = ud;
    float *dst = c->out + (size_t)(first - c->first) * DS_CLASSES;
    if (c->softmax) ds_fault("soft-labels", NULL);
    for (int i = 0; i < n; i++) {
        if (c->softmax) ds_softmax(dst + (size_t)i * DS_CLASSES, z + (size_t)i * DS_CLASSES, DS_CLASSES, c->T);
        else memcpy(dst + (size_t)i * DS_CLASSES, z + (size_t)i * DS_CLASSES, DS_CLASSES * sizeof(float));
    }
}

int ds_soft_labels(const ds_model *m, const ds_dataset *d, float T, int threads, float *out) {
    if (!(T > 0.0f)) return ds_fail(DS_EINVAL, "soft labels: temperature must be positive, got %g", T);
    copy_ctx c = {out, T, 0, 1};
    return for_each_logits(m, d, 0, d->n, threads, copy_logits, &c);
}

int ds_logits(const ds_model *m, const ds_dataset *d, int first, int n, int threads, float *out) {
    copy_ctx c = {out, 1.0f, first, 0};
    return for_each_logits(m, d, first, n, threads, copy_logits, &c);
}
