// The engine: the whole network over a batch, threaded over groups of DS_GROUP samples.
//
// Each thread runs complete groups with one BLAS or oneDNN thread; the two layers of threading
// (ours and the library's) never run at once. The convolution stack of a group is either the
// GEMM one below or oneDNN's (conv_onednn.c): ds_engine_kind. Weight gradients are summed per
// chunk of DS_CHUNK samples and the chunks are added in a fixed order, so a gradient is
// bit-identical for any thread count.
// Every engine thread computes in the caller's floating-point mode (denormals kept or flushed:
// ds_fpmode.h), so the caller's setting, not the thread that happens to run a group, decides.
//
// Every buffer size and every layer call's dimensions come from the layer table (ds_layer_shapes
// and the geometry ds_layer_geometry derives from it, gathered in engine_dims by dims_fill); the
// shapes in comments are the values it gives for MNIST.
#include "ds_error.h"
#include "ds_fpmode.h"
#include "engine_internal.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

enum { G = DS_GROUP };

static size_t sum(const size_t *v, int n) {
    size_t s = 0;
    for (int i = 0; i < n; i++) s += v[i];
    return s;
}

static void dims_fill(engine_dims *d) {
    const ds_layer_geom *L = d->L;
    ds_layer_geometry(d->L);
    d->act[A_C1] = L[DS_CONV1].out_size;    // [32,26,26]
    d->act[A_C2] = L[DS_CONV2].out_size;    // [32,24,24]
    d->act[A_P1] = L[DS_CONV2].pooled_size; // [32,12,12]
    d->act[A_C3] = L[DS_CONV3].out_size;    // [64,10,10]
    d->act[A_C4] = L[DS_CONV4].out_size;    // [64,8,8]
    d->act[A_P2] = L[DS_CONV4].pooled_size; // [64,4,4]
    d->act[A_H0] = L[DS_FC1].in_size;       // [1024], p2 flattened
    d->act[A_F1] = L[DS_FC1].out_size;      // [200]
    d->act[A_F2] = L[DS_FC2].out_size;      // [200]
    d->act[A_Z] = L[DS_FC3].out_size;       // [10]
    d->act[A_MASK] = d->act[A_F1] + d->act[A_F2];
    d->col[DCOL] = 0; // the largest im2col: conv2's [288, 576]
    for (int l = 0; l < N_CONV; l++) {
        d->col[l] = (size_t)L[l].col_rows * L[l].oh * L[l].ow;
        if (d->col[l] > d->col[DCOL]) d->col[DCOL] = d->col[l];
    }
    d->act_floats = G * sum(d->act, NUM_ACTS);
    d->arg_bytes = G * (d->act[A_P1] + d->act[A_P2]);
    d->scratch_floats = G * (sum(d->col, NUM_COLS) + sum(d->act, A_MASK));
}

static float *take(float **cursor, size_t n) {
    float *p = *cursor;
    *cursor += n;
    return p;
}

static void point_group(group_acts *a, const engine_dims *d, float *mem, uint8_t *arg) {
    float **act[NUM_ACTS] = {&a->c1, &a->c2, &a->p1, &a->c3, &a->c4, &a->p2,
                             &a->h0, &a->f1, &a->f2, &a->z,  &a->mask};
    for (int i = 0; i < NUM_ACTS; i++) *act[i] = take(&mem, G * d->act[i]);
    a->arg1 = arg;
    a->arg2 = arg + G * d->act[A_P1];
}

static void point_scratch(thread_scratch *s, const engine_dims *d, float *mem) {
    float **col[NUM_COLS] = {&s->col1, &s->col2, &s->col3, &s->col4, &s->dcol};
    float **grad[A_MASK] = {&s->dc1, &s->dc2, &s->dp1, &s->dc3, &s->dc4,
                            &s->dp2, &s->dh0, &s->df1, &s->df2, &s->dz};
    for (int i = 0; i < NUM_COLS; i++) *col[i] = take(&mem, G * d->col[i]);
    for (int i = 0; i < A_MASK; i++) *grad[i] = take(&mem, G * d->act[i]);
}

static ds_engine_kind default_kind = DS_ENGINE_ONEDNN;

void ds_engine_set_default_kind(ds_engine_kind k) { default_kind = k; }
ds_engine_kind ds_engine_default_kind(void) { return default_kind; }

int ds_engine_kind_parse(const char *s, ds_engine_kind *out) {
    if (!strcmp(s, "onednn")) *out = DS_ENGINE_ONEDNN;
    else if (!strcmp(s, "gemm")) *out = DS_ENGINE_GEMM;
    else return ds_fail(DS_EINVAL, "engine '%s' is not onednn or gemm", s);
    return DS_OK;
}

const char *ds_engine_kind_name(ds_engine_kind k) { return k == DS_ENGINE_GEMM ? "gemm" : "onednn"; }

int ds_engine_create(ds_engine **out, int max_batch, int threads, int chunk) {
    return ds_engine_create_kind(out, max_batch, threads, chunk, default_kind);
}

int ds_engine_create_kind(ds_engine **out, int max_batch, int threads, int chunk, ds_engine_kind kind) {
    if (max_batch < 1 || threads < 1 || threads > 1024)
        return ds_fail(DS_EINVAL, "engine: impossible batch %d or thread count %d", max_batch, threads);
    if (chunk < 0 || chunk % G)
        return ds_fail(DS_EINVAL, "engine: chunk %d is not a multiple of %d samples", chunk, G);
    int train = chunk > 0;
    ds_engine *e = calloc(1, sizeof *e);
    if (!e) return ds_fail(DS_ENOMEM, "engine: out of memory");
    e->kind = kind;
    e->max_batch = max_batch;
    e->threads = threads;
    // Inference keeps every group's activations (an input gradient follows the forward); a
    // training pass runs each group's forward and backward in a row, on one thread.
    e->n_groups = train ? threads : (max_batch + G - 1) / G;
    e->chunk = chunk;
    e->n_chunks = train ? ds_chunk_count(max_batch, chunk) : 0;
    e->groups = calloc((size_t)e->n_groups, sizeof *e->groups);
    e->scratch = calloc((size_t)threads, sizeof *e->scratch);
    engine_dims *d = &e->dims;
    dims_fill(d);
    e->act_mem = malloc(d->act_floats * e->n_groups * sizeof(float));
    e->arg_mem = malloc(d->arg_bytes * e->n_groups);
    e->scratch_mem = malloc(d->scratch_floats * threads * sizeof(float));
    e->losses = malloc((size_t)max_batch * sizeof(double));
    if (train) e->chunk_grads = malloc((size_t)e->n_chunks * ds_params_count() * sizeof(float));
    if (!e->groups || !e->scratch || !e->act_mem || !e->arg_mem || !e->scratch_mem || !e->losses ||
        (train && !e->chunk_grads)) {
        ds_engine_free(e);
        return ds_fail(DS_ENOMEM, "engine: out of memory for batch %d", max_batch);
    }
    for (int g = 0; g < e->n_groups; g++)
        point_group(&e->groups[g], d, e->act_mem + d->act_floats * g, e->arg_mem + d->arg_bytes * g);
    for (int t = 0; t < threads; t++) point_scratch(&e->scratch[t], d, e->scratch_mem + d->scratch_floats * t);
    int rc = kind == DS_ENGINE_ONEDNN ? dnn_stack_create(&e->dnn, d, threads, train) : DS_OK;
    if (rc) {
        ds_engine_free(e);
        return rc;
    }
    // Parallelism comes from our threads; a multi-threaded BLAS inside them would oversubscribe.
    openblas_set_num_threads(1);
    *out = e;
    return DS_OK;
}

void ds_engine_free(ds_engine *e) {
    if (!e) return;
    free(e->groups);
    free(e->scratch);
    free(e->act_mem);
    free(e->arg_mem);
    free(e->scratch_mem);
    free(e->chunk_grads);
    free(e->losses);
    dnn_stack_free(e->dnn);
    free(e);
}

int ds_engine_threads(const ds_engine *e) { return e->threads; }
const char *ds_engine_describe(const ds_engine *e) { return e->dnn ? dnn_stack_describe(e->dnn) : ""; }

// Layer l of the table over a group of n samples: the calls of ds_nn.h with the table's dimensions.
// Backward accumulates into grad's layer l when grad is non-NULL.
static void conv_layer_forward(float *out, float *col, const float *in, const ds_params *p,
                               const ds_layer_geom *L, int l, int n) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    ds_conv_forward(out, col, in, p->w[l], p->b[l], n, s->in, L[l].h, L[l].w, s->out, 1);
}

static void conv_layer_backward(float *din, ds_params *grad, float *dcol, const float *dout,
                                const float *col, const ds_params *p, const ds_layer_geom *L, int l,
                                int n) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    ds_conv_backward(din, grad ? grad->w[l] : NULL, grad ? grad->b[l] : NULL, dcol, dout, col, p->w[l],
                     n, s->in, L[l].h, L[l].w, s->out);
}

// The max pool after conv layer l: [out,G,oh,ow] -> [out,G,ph,pw].
static void pool_layer_forward(float *out, uint8_t *arg, const float *in, const ds_layer_geom *L,
                               int l, int n) {
    ds_maxpool_forward(out, arg, in, ds_layer_shapes[l].out * n, L[l].oh, L[l].ow);
}

static void pool_layer_backward(float *din, const float *dout, const uint8_t *arg, const float *in,
                                const ds_layer_geom *L, int l, int n) {
    ds_maxpool_backward(din, dout, arg, in, ds_layer_shapes[l].out * n, L[l].oh, L[l].ow);
}

// The fully connected layers: OpenBLAS for the GEMM kind (its bits), row by row for oneDNN's.
static void fc_layer_forward(ds_engine_kind kind, float *out, const float *in, const ds_params *p, int l,
                             int n, int relu) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    (kind == DS_ENGINE_GEMM ? ds_fc_forward : ds_fc_forward_rowwise)(out, in, p->w[l], p->b[l], n, s->in,
                                                                     s->out, relu);
}

static void fc_layer_backward(ds_engine_kind kind, float *din, ds_params *grad, const float *dout,
                              const float *in, const ds_params *p, int l, int n) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    (kind == DS_ENGINE_GEMM ? ds_fc_backward : ds_fc_backward_rowwise)(
        din, grad ? grad->w[l] : NULL, grad ? grad->b[l] : NULL, dout, in, p->w[l], n, s->in, s->out);
}

// [C][n][HW] -> [n][C*HW]: each sample of the last pool flattened in C,H,W order for fc1.
static void flatten_forward(float *out, const float *in, int n, int C, int HW) {
    for (int c = 0; c < C; c++)
        for (int g = 0; g < n; g++)
            memcpy(out + (size_t)g * C * HW + (size_t)c * HW, in + ((size_t)c * n + g) * HW,
                   HW * sizeof(float));
}

static void flatten_backward(float *din, const float *dout, int n, int C, int HW) {
    for (int c = 0; c < C; c++)
        for (int g = 0; g < n; g++)
            memcpy(din + ((size_t)c * n + g) * HW, dout + (size_t)g * C * HW + (size_t)c * HW,
                   HW * sizeof(float));
}

// x [n,N] *= mask [n,stride] (each sample's row starting at mask): dropout, and its backward on dx.
static void dropout_apply(float *x, const float *mask, int n, size_t N, size_t stride) {
    for (int g = 0; g < n; g++) ds_mul_forward(x + g * N, mask + g * stride, N);
}

// The GEMM convolution stack of a group: x [n,784] -> a->c1 ... a->p2 (C,N,H,W) -> a->h0 [n,1024].
static void gemm_stack_forward(group_acts *a, thread_scratch *s, const engine_dims *d, const ds_params *p,
                               const float *x, int n) {
    const ds_layer_geom *L = d->L;
    conv_layer_forward(a->c1, s->col1, x, p, L, DS_CONV1, n);     // [1,G,28,28] -> [32,G,26,26]
    conv_layer_forward(a->c2, s->col2, a->c1, p, L, DS_CONV2, n); // -> [32,G,24,24]
    pool_layer_forward(a->p1, a->arg1, a->c2, L, DS_CONV2, n);    // -> [32,G,12,12]
    conv_layer_forward(a->c3, s->col3, a->p1, p, L, DS_CONV3, n); // -> [64,G,10,10]
    conv_layer_forward(a->c4, s->col4, a->c3, p, L, DS_CONV4, n); // -> [64,G,8,8]
    pool_layer_forward(a->p2, a->arg2, a->c4, L, DS_CONV4, n);    // -> [64,G,4,4]
    flatten_forward(a->h0, a->p2, n, ds_layer_shapes[DS_CONV4].out, L[DS_CONV4].ph * L[DS_CONV4].pw);
}

// s->dh0 [n,1024] -> conv gradients into grad (if non-NULL) and dx [n,784] (if non-NULL).
static void gemm_stack_backward(const group_acts *a, thread_scratch *s, const engine_dims *d,
                                const ds_params *p, ds_params *grad, float *dx) {
    const ds_layer_geom *L = d->L;
    int n = a->n;
    flatten_backward(s->dp2, s->dh0, n, ds_layer_shapes[DS_CONV4].out, L[DS_CONV4].ph * L[DS_CONV4].pw);
    pool_layer_backward(s->dc4, s->dp2, a->arg2, a->c4, L, DS_CONV4, n);
    conv_layer_backward(s->dc3, grad, s->dcol, s->dc4, s->col4, p, L, DS_CONV4, n);
    ds_relu_backward(s->dc3, a->c3, (size_t)n * d->act[A_C3]);
    conv_layer_backward(s->dp1, grad, s->dcol, s->dc3, s->col3, p, L, DS_CONV3, n);
    pool_layer_backward(s->dc2, s->dp1, a->arg1, a->c2, L, DS_CONV2, n);
    conv_layer_backward(s->dc1, grad, s->dcol, s->dc2, s->col2, p, L, DS_CONV2, n);
    ds_relu_backward(s->dc1, a->c1, (size_t)n * d->act[A_C1]);
    conv_layer_backward(dx, grad, s->dcol, s->dc1, s->col1, p, L, DS_CONV1, n);
}

// Thread t's forward of group a: the convolution stack of the engine's kind, then the fully
// connected layers with dropout.
static void group_forward(ds_engine *e, int t, group_acts *a, const ds_params *p, const float *x, int n,
                          const ds_train_pass *pass, int first_sample) {
    const engine_dims *d = &e->dims;
    size_t f1 = d->act[A_F1], f2 = d->act[A_F2], nmask = d->act[A_MASK];
    a->x = x;
    a->n = n;
    a->dropout = pass && pass->dropout > 0.0f;
    if (e->kind == DS_ENGINE_ONEDNN)
        dnn_stack_forward(e->dnn, t, a, x, n);
    else
        gemm_stack_forward(a, &e->scratch[t], d, p, x, n);
    if (a->dropout)
        for (int g = 0; g < n; g++)
            ds_dropout_mask(a->mask + g * nmask, nmask, pass->dropout, pass->seed, pass->step,
                            (uint64_t)(first_sample + g));
    fc_layer_forward(e->kind, a->f1, a->h0, p, DS_FC1, n, 1); // [G,1024] -> [G,200]
    if (a->dropout) dropout_apply(a->f1, a->mask, n, f1, nmask);
    fc_layer_forward(e->kind, a->f2, a->f1, p, DS_FC2, n, 1); // -> [G,200]
    if (a->dropout) dropout_apply(a->f2, a->mask + f1, n, f2, nmask);
    fc_layer_forward(e->kind, a->z, a->f2, p, DS_FC3, n, 0); // -> [G,10]
}

// dz [n,10] -> weight gradients into grad (if non-NULL) and the input gradient into dx (if non-NULL).
static void group_backward(ds_engine *e, int t, const group_acts *a, const ds_params *p, const float *dz,
                           ds_params *grad, float *dx) {
    const engine_dims *d = &e->dims;
    thread_scratch *s = &e->scratch[t];
    size_t f1 = d->act[A_F1], f2 = d->act[A_F2], nmask = d->act[A_MASK];
    int n = a->n;
    fc_layer_backward(e->kind, s->df2, grad, dz, a->f2, p, DS_FC3, n);
    if (a->dropout) dropout_apply(s->df2, a->mask + f1, n, f2, nmask);
    ds_relu_backward(s->df2, a->f2, (size_t)n * f2);
    fc_layer_backward(e->kind, s->df1, grad, s->df2, a->f1, p, DS_FC2, n);
    if (a->dropout) dropout_apply(s->df1, a->mask, n, f1, nmask);
    ds_relu_backward(s->df1, a->f1, (size_t)n * f1);
    fc_layer_backward(e->kind, s->dh0, grad, s->df1, a->h0, p, DS_FC1, n);
    if (e->kind == DS_ENGINE_ONEDNN)
        dnn_stack_backward(e->dnn, t, a, s, s->dh0, grad, dx);
    else
        gemm_stack_backward(a, s, d, p, grad, dx);
}

static int group_size(int n, int g) { return n - g * G < G ? n - g * G : G; }

// Every engine thread computes in the caller's floating-point mode, and whatever the library
// runs inside it runs on that thread alone.
static void thread_enter(ds_fpmode fp) {
    ds_fpmode_restore(fp);
    omp_set_num_threads(1);
}

// The weights in the layouts the kernels read, before the threads start (oneDNN only).
static void prepare(ds_engine *e, const ds_params *p) {
    if (e->dnn) dnn_stack_prepare(e->dnn, p);
}

void ds_engine_forward(ds_engine *e, const ds_params *p, const float *x, int n, float *logits) {
    int ng = (n + G - 1) / G, train = e->chunk > 0;
    ds_fpmode fp = ds_fpmode_get(); // the caller decides: every engine thread computes in its mode
    prepare(e, p);
#pragma omp parallel num_threads(e->threads)
    {
        thread_enter(fp);
        int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int g = 0; g < ng; g++) {
            group_acts *a = &e->groups[train ? t : g];
            group_forward(e, t, a, p, x + (size_t)g * G * DS_PIXELS, group_size(n, g), NULL, 0);
            memcpy(logits + (size_t)g * G * DS_CLASSES, a->z, (size_t)a->n * DS_CLASSES * sizeof(float));
        }
    }
}

void ds_engine_input_grad(ds_engine *e, const ds_params *p, const float *dlogits, int n, float *dx) {
    int ng = (n + G - 1) / G;
    ds_fpmode fp = ds_fpmode_get(); // the caller decides: every engine thread computes in its mode
    // No prepare: the weights are the last forward's, already in the kernels' layouts (an attack
    // alternates the two calls at every step).
#pragma omp parallel num_threads(e->threads)
    {
        thread_enter(fp);
        int t = omp_get_thread_num();
#pragma omp for schedule(dynamic, 1)
        for (int g = 0; g < ng; g++)
            group_backward(e, t, &e->groups[g], p, dlogits + (size_t)g * G * DS_CLASSES, NULL,
                           dx + (size_t)g * G * DS_PIXELS);
    }
}

int ds_chunk_count(int n, int chunk) { return (n + chunk - 1) / chunk; }

void ds_chunk_range(int nc, int size, int member, int *c0, int *c1) {
    *c0 = (int)((long)member * nc / size);
    *c1 = (int)((long)(member + 1) * nc / size);
}

void ds_grad_fold(float *grad, const float *const *chunks, int nc, size_t j0, size_t j1) {
    memcpy(grad + j0, chunks[0] + j0, (j1 - j0) * sizeof(float));
    for (int c = 1; c < nc; c++) {
        const float *cg = chunks[c];
        for (size_t k = j0; k < j1; k++) grad[k] += cg[k];
    }
}

// Chunk c of the batch: its groups run forward, loss, backward in sequence, accumulating into
// the chunk's own gradient buffer cg (the same groups whoever computes the chunk).
static void chunk_pass(ds_engine *e, int t, const ds_params *p, const float *x,
                       const uint8_t *labels, const float *soft, int n, int c,
                       const ds_train_pass *pass, float *cg, double *losses) {
    size_t np = ds_params_count();
    float inv_n = 1.0f / (float)n;
    thread_scratch *s = &e->scratch[t];
    group_acts *a = &e->groups[t];
    ds_params cgp;
    ds_params_point(&cgp, cg);
    memset(cg, 0, np * sizeof(float));
    int end = (c + 1) * e->chunk < n ? (c + 1) * e->chunk : n;
    for (int i = c * e->chunk; i < end; i += G) {
        int gn = group_size(n, i / G);
        group_forward(e, t, a, p, x + (size_t)i * DS_PIXELS, gn, pass, i);
        for (int k = 0; k < gn; k++) {
            const float *sk = soft ? soft + (size_t)(i + k) * DS_CLASSES : NULL;
            losses[i + k] = ds_softmax_xent(s->dz + k * DS_CLASSES, a->z + k * DS_CLASSES, sk,
                                            labels ? labels[i + k] : 0, DS_CLASSES, pass->temperature);
            for (int j = 0; j < DS_CLASSES; j++) s->dz[k * DS_CLASSES + j] *= inv_n;
        }
        group_backward(e, t, a, p, s->dz, &cgp, NULL);
    }
}

void ds_engine_chunk_grads(ds_engine *e, const ds_params *p, const float *x, const uint8_t *labels,
                           const float *soft, int n, int c0, int c1, const ds_train_pass *pass,
                           float *cg, double *losses) {
    size_t np = ds_params_count();
    ds_fpmode fp = ds_fpmode_get(); // the caller decides: every engine thread computes in its mode
    prepare(e, p);
#pragma omp parallel num_threads(e->threads)
    {
        thread_enter(fp);
        int t = omp_get_thread_num();
#pragma omp for schedule(static)
        for (int c = c0; c < c1; c++)
            chunk_pass(e, t, p, x, labels, soft, n, c, pass, cg + (size_t)(c - c0) * np, losses);
    }
}

double ds_engine_train_grad(ds_engine *e, const ds_params *p, const float *x, const uint8_t *labels,
                           const float *soft, int n, const ds_train_pass *pass, float *grad) {
    size_t np = ds_params_count();
    int nc = ds_chunk_count(n, e->chunk);
    ds_engine_chunk_grads(e, p, x, labels, soft, n, 0, nc, pass, e->chunk_grads, e->losses);
    const float *chunks[nc];
    for (int c = 0; c < nc; c++) chunks[c] = e->chunk_grads + (size_t)c * np;
    // Sum the chunks in a fixed order, in the caller's floating-point mode (as a gang's reducer
    // folds on the caller's thread); threads split the parameters, not the chunks.
    ds_fpmode fp = ds_fpmode_get();
#pragma omp parallel num_threads(e->threads)
    {
        ds_fpmode_restore(fp);
#pragma omp for schedule(static)
        for (size_t j = 0; j < np; j += 4096) ds_grad_fold(grad, chunks, nc, j, j + 4096 < np ? j + 4096 : np);
    }
    return ds_batch_mean_loss(e->losses, n);
}

double ds_batch_mean_loss(const double *losses, int n) {
    double sum = 0.0;
    for (int i = 0; i < n; i++) sum += losses[i];
    return sum / n;
}
