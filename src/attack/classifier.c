// ds_classifier over the CNN: a ds_engine and the model's parameters behind the two callbacks.
#include "ds_attack.h"
#include "ds_error.h"
#include "ds_fault.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    ds_engine *engine;
    const ds_params *params;
    int max_batch;
    int last_n; // samples of the last forward, so input_grad can refuse a mismatch
} model_ctx;

static int model_forward(void *ctx, const float *x, int n, float *logits) {
    model_ctx *m = ctx;
    if (n < 1 || n > m->max_batch)
        return ds_fail(DS_EINVAL, "classifier: batch of %d samples (expected 1 to %d)", n, m->max_batch);
    ds_engine_forward(m->engine, m->params, x, n, logits);
    m->last_n = n;
    return DS_OK;
}

static int model_input_grad(void *ctx, const float *dlogits, int n, float *dx) {
    model_ctx *m = ctx;
    if (n != m->last_n)
        return ds_fail(DS_EINVAL, "classifier: input gradient for %d samples after a forward of %d",
                       n, m->last_n);
    ds_engine_input_grad(m->engine, m->params, dlogits, n, dx);
    ds_fault("attack-batch", NULL);
    return DS_OK;
}

static void model_free(void *ctx) {
    model_ctx *m = ctx;
    if (!m) return;
    ds_engine_free(m->engine);
    free(m);
}

int ds_classifier_from_model(ds_classifier *c, const ds_model *m, int max_batch, int threads) {
    memset(c, 0, sizeof *c);
    if (!m || !m->mem) return ds_fail(DS_EINVAL, "classifier: model not loaded");
    if (max_batch < 1) return ds_fail(DS_EINVAL, "classifier: batch %d < 1", max_batch);
    if (threads < 1) return ds_fail(DS_EINVAL, "classifier: threads %d < 1", threads);
    model_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return ds_fail(DS_ENOMEM, "classifier: out of memory");
    int rc = ds_engine_create(&ctx->engine, max_batch, threads, 0);
    if (rc) {
        free(ctx);
        return rc;
    }
    ctx->params = &m->p;
    ctx->max_batch = max_batch;
    c->n_in = DS_PIXELS;
    c->n_classes = DS_CLASSES;
    c->max_batch = max_batch;
    c->temperature = m->temperature > 0.0f ? m->temperature : 1.0f;
    c->ctx = ctx;
    c->forward = model_forward;
    c->input_grad = model_input_grad;
    c->free = model_free;
    return DS_OK;
}

void ds_classifier_free(ds_classifier *c) {
    if (!c) return;
    if (c->free) c->free(c->ctx);
    memset(c, 0, sizeof *c);
}
