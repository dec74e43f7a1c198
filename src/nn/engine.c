// The engine: the whole network over a batch, threaded over groups of DS_GROUP samples.
//
// Each thread runs complete groups with one BLAS thread; the two layers of threading (ours and
// OpenBLAS's) never run at once. Weight gradients are summed per chunk of DS_CHUNK samples and the
// chunks are added in a fixed order, so a gradient is bit-identical for any thread count.
// Every engine thread computes in the caller's floating-point mode (denormals kept or flushed:
// ds_fpmode.h), so the caller's setting, not the thread that happens to run a group, decides.
#include "ds_error.h"
#include "ds_fpmode.h"
#include "ds_nn.h"

#include <cblas.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

// Activations of one group of G samples (C,N,H,W order in the convolution stack).
typedef struct {
    float *c1, *c2, *p1, *c3, *c4, *p2; // [32,G,26,26] [32,G,24,24] [32,G,12,12] [64,G,10,10] [64,G,8,8] [64,G,4,4]
    float *h0, *f1, *f2, *z;            // [G,1024] [G,200] [G,200] [G,10]
    float *mask;                        // [G,400] dropout scales for f1 (first 200) and f2
    uint8_t *arg1, *arg2;               // max-pool winners [32,G,12,12] [64,G,4,4]
    const float *x;                     // [G,784] input (not owned)
    int n;                              // samples in this group (<= DS_GROUP)
    int dropout;                        // masks applied in the last forward
} group_acts;

// Per-thread scratch: im2col matrices kept from forward to backward, and activation gradients.
typedef struct {
    float *col1, *col2, *col3, *col4, *dcol;
    float *dc1, *dc2, *dp1, *dc3, *dc4, *dp2, *dh0, *df1, *df2, *dz;
} thread_scratch;

struct ds_engine {
    int max_batch, threads, n_groups, n_chunks;
    group_acts *groups;
    thread_scratch *scratch;
    float *act_mem, *scratch_mem, *chunk_grads;
    uint8_t *arg_mem;
    double *losses; // [max_batch]
};

enum { G = DS_GROUP };
#define ACT_FLOATS ((size_t)G * (32 * 676 + 32 * 576 + 32 * 144 + 64 * 100 + 64 * 64 + 64 * 16 + 1024 + 200 + 200 + 10 + 400))
#define ARG_BYTES ((size_t)G * (32 * 144 + 64 * 16))
#define SCRATCH_FLOATS ((size_t)G * (9 * 676 + 288 * 576 + 288 * 100 + 576 * 64 + 288 * 576 + \
                                     32 * 676 + 32 * 576 + 32 * 144 + 64 * 100 + 64 * 64 + 64 * 16 + 1024 + 200 + 200 + 10))

static float *take(float **cursor, size_t n) {
    float *p = *cursor;
    *cursor += n;
    return p;
}

static void point_group(group_acts *a, float *mem, uint8_t *arg) {
    a->c1 = take(&mem, (size_t)G * 32 * 676);
    a->c2 = take(&mem, (size_t)G * 32 * 576);
    a->p1 = take(&mem, (size_t)G * 32 * 144);
    a->c3 = take(&mem, (size_t)G * 64 * 100);
    a->c4 = take(&mem, (size_t)G * 64 * 64);
    a->p2 = take(&mem, (size_t)G * 64 * 16);
    a->h0 = take(&mem, (size_t)G * 1024);
    a->f1 = take(&mem, (size_t)G * 200);
    a->f2 = take(&mem, (size_t)G * 200);
    a->z = take(&mem, (size_t)G * 10);
    a->mask = take(&mem, (size_t)G * 400);
    a->arg1 = arg;
    a->arg2 = arg + (size_t)G * 32 * 144;
}

static void point_scratch(thread_scratch *s, float *mem) {
    s->col1 = take(&mem, (size_t)G * 9 * 676);
    s->col2 = take(&mem, (size_t)G * 288 * 576);
    s->col3 = take(&mem, (size_t)G * 288 * 100);
    s->col4 = take(&mem, (size_t)G * 576 * 64);
    s->dcol = take(&mem, (size_t)G * 288 * 576); // the largest dcol: conv2's
    s->dc1 = take(&mem, (size_t)G * 32 * 676);
    s->dc2 = take(&mem, (size_t)G * 32 * 576);
    s->dp1 = take(&mem, (size_t)G * 32 * 144);
    s->dc3 = take(&mem, (size_t)G * 64 * 100);
    s->dc4 = take(&mem, (size_t)G * 64 * 64);
    s->dp2 = take(&mem, (size_t)G * 64 * 16);
    s->dh0 = take(&mem, (size_t)G * 1024);
    s->df1 = take(&mem, (size_t)G * 200);
    s->df2 = take(&mem, (size_t)G * 200);
    s->dz = take(&mem, (size_t)G * 10);
}

int ds_engine_create(ds_engine **out, int max_batch, int threads, int train) {
    if (max_batch < 1 || threads < 1 || threads > 1024)
        return ds_fail(DS_EINVAL, "engine: impossible batch %d or thread count %d", max_batch, threads);
    ds_engine *e = calloc(1, sizeof *e);
    if (!e) return ds_fail(DS_ENOMEM, "engine: out of memory");
    e->max_batch = max_batch;
    e->threads = threads;
    e->n_groups = (max_batch + G - 1) / G;
    e->n_chunks = (max_batch + DS_CHUNK - 1) / DS_CHUNK;
    e->groups = calloc((size_t)e->n_groups, sizeof *e->groups);
    e->scratch = calloc((size_t)threads, sizeof *e->scratch);
    e->act_mem = malloc(ACT_FLOATS * e->n_groups * sizeof(float));
    e->arg_mem = malloc(ARG_BYTES * e->n_groups);
    e->scratch_mem = malloc(SCRATCH_FLOATS * threads * sizeof(float));
    e->losses = malloc((size_t)max_batch * sizeof(double));
    if (train) e->chunk_grads = malloc((size_t)e->n_chunks * ds_params_count() * sizeof(float));
    if (!e->groups || !e->scratch || !e->act_mem || !e->arg_mem || !e->scratch_mem || !e->losses ||
        (train && !e->chunk_grads)) {
        ds_engine_free(e);
        return ds_fail(DS_ENOMEM, "engine: out of memory for batch %d", max_batch);
    }
    for (int g = 0; g < e->n_groups; g++)
        point_group(&e->groups[g], e->act_mem + ACT_FLOATS * g, e->arg_mem + ARG_BYTES * g);
    for (int t = 0; t < threads; t++) point_scratch(&e->scratch[t], e->scratch_mem + SCRATCH_FLOATS * t);
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
    free(e);
}

int ds_engine_threads(const ds_engine *e) { return e->threads; }

static void group_forward(group_acts *a, thread_scratch *s, const ds_params *p, const float *x,
                          int n, const ds_train_pass *pass, int first_sample) {
    a->x = x;
    a->n = n;
    a->dropout = pass && pass->dropout > 0.0f;
    ds_conv_forward(a->c1, s->col1, x, p->w[DS_CONV1], p->b[DS_CONV1], n, 1, 28, 28, 32, 1);
    ds_conv_forward(a->c2, s->col2, a->c1, p->w[DS_CONV2], p->b[DS_CONV2], n, 32, 26, 26, 32, 1);
    ds_maxpool_forward(a->p1, a->arg1, a->c2, 32 * n, 24, 24);
    ds_conv_forward(a->c3, s->col3, a->p1, p->w[DS_CONV3], p->b[DS_CONV3], n, 32, 12, 12, 64, 1);
    ds_conv_forward(a->c4, s->col4, a->c3, p->w[DS_CONV4], p->b[DS_CONV4], n, 64, 10, 10, 64, 1);
    ds_maxpool_forward(a->p2, a->arg2, a->c4, 64 * n, 8, 8);
    // [64][n][16] -> [n][64*16]: flatten each sample in C,H,W order for fc1.
    for (int c = 0; c < 64; c++)
        for (int g = 0; g < n; g++)
            memcpy(a->h0 + (size_t)g * 1024 + c * 16, a->p2 + ((size_t)c * n + g) * 16, 16 * sizeof(float));
    if (a->dropout)
        for (int g = 0; g < n; g++)
            ds_dropout_mask(a->mask + g * 400, 400, pass->dropout, pass->seed, pass->step,
                            (uint64_t)(first_sample + g));
    ds_fc_forward(a->f1, a->h0, p->w[DS_FC1], p->b[DS_FC1], n, 1024, 200, 1);
    if (a->dropout)
        for (int g = 0; g < n; g++) ds_mul_forward(a->f1 + g * 200, a->mask + g * 400, 200);
    ds_fc_forward(a->f2, a->f1, p->w[DS_FC2], p->b[DS_FC2], n, 200, 200, 1);
    if (a->dropout)
        for (int g = 0; g < n; g++) ds_mul_forward(a->f2 + g * 200, a->mask + g * 400 + 200, 200);
    ds_fc_forward(a->z, a->f2, p->w[DS_FC3], p->b[DS_FC3], n, 200, 10, 0);
}

// dz [n,10] -> weight gradients into grad (if non-NULL) and the input gradient into dx (if non-NULL).
static void group_backward(const group_acts *a, thread_scratch *s, const ds_params *p,
                           const float *dz, ds_params *grad, float *dx) {
    int n = a->n;
#define GW(l) (grad ? grad->w[l] : NULL)
#define GB(l) (grad ? grad->b[l] : NULL)
    ds_fc_backward(s->df2, GW(DS_FC3), GB(DS_FC3), dz, a->f2, p->w[DS_FC3], n, 200, 10);
    if (a->dropout)
        for (int g = 0; g < n; g++) ds_mul_forward(s->df2 + g * 200, a->mask + g * 400 + 200, 200);
    ds_relu_backward(s->df2, a->f2, (size_t)n * 200);
    ds_fc_backward(s->df1, GW(DS_FC2), GB(DS_FC2), s->df2, a->f1, p->w[DS_FC2], n, 200, 200);
    if (a->dropout)
        for (int g = 0; g < n; g++) ds_mul_forward(s->df1 + g * 200, a->mask + g * 400, 200);
    ds_relu_backward(s->df1, a->f1, (size_t)n * 200);
    ds_fc_backward(s->dh0, GW(DS_FC1), GB(DS_FC1), s->df1, a->h0, p->w[DS_FC1], n, 1024, 200);
    for (int c = 0; c < 64; c++)
        for (int g = 0; g < n; g++)
            memcpy(s->dp2 + ((size_t)c * n + g) * 16, s->dh0 + (size_t)g * 1024 + c * 16, 16 * sizeof(float));
    ds_maxpool_backward(s->dc4, s->dp2, a->arg2, a->c4, 64 * n, 8, 8);
    ds_conv_backward(s->dc3, GW(DS_CONV4), GB(DS_CONV4), s->dcol, s->dc4, s->col4, p->w[DS_CONV4], n, 64, 10, 10, 64);
    ds_relu_backward(s->dc3, a->c3, (size_t)64 * n * 100);
    ds_conv_backward(s->dp1, GW(DS_CONV3), GB(DS_CONV3), s->dcol, s->dc3, s->col3, p->w[DS_CONV3], n, 32, 12, 12, 64);
    ds_maxpool_backward(s->dc2, s->dp1, a->arg1, a->c2, 32 * n, 24, 24);
    ds_conv_backward(s->dc1, GW(DS_CONV2), GB(DS_CONV2), s->dcol, s->dc2, s->col2, p->w[DS_CONV2], n, 32, 26, 26, 32);
    ds_relu_backward(s->dc1, a->c1, (size_t)32 * n * 676);
    ds_conv_backward(dx, GW(DS_CONV1), GB(DS_CONV1), s->dcol, s->dc1, s->col1, p->w[DS_CONV1], n, 1, 28, 28, 32);
#undef GW
#undef GB
}

static int omp_thread(void) { return omp_get_thread_num(); }

static int group_size(int n, int g) { return n - g * G < G ? n - g * G : G; }

void ds_engine_forward(ds_engine *e, const ds_params *p, const float *x, int n, float *logits) {
    int ng = (n + G - 1) / G;
    ds_fpmode fp = ds_fpmode_get(); // the caller decides: every engine thread computes in its mode
#pragma omp parallel num_threads(e->threads)
    {
        ds_fpmode_restore(fp);
#pragma omp for schedule(dynamic, 1)
        for (int g = 0; g < ng; g++) {
            int t = omp_thread();
            group_acts *a = &e->groups[g];
            group_forward(a, &e->scratch[t], p, x + (size_t)g * G * DS_PIXELS, group_size(n, g), NULL, 0);
            memcpy(logits + (size_t)g * G * DS_CLASSES, a->z, (size_t)a->n * DS_CLASSES * sizeof(float));
        }
    }
}

void ds_engine_input_grad(ds_engine *e, const ds_params *p, const float *dlogits, int n, float *dx) {
    int ng = (n + G - 1) / G;
    ds_fpmode fp = ds_fpmode_get(); // the caller decides: every engine thread computes in its mode
#pragma omp parallel num_threads(e->threads)
    {
        ds_fpmode_restore(fp);
#pragma omp for schedule(dynamic, 1)
        for (int g = 0; g < ng; g++)
            group_backward(&e->groups[g], &e->scratch[omp_thread()], p,
                           dlogits + (size_t)g * G * DS_CLASSES, NULL, dx + (size_t)g * G * DS_PIXELS);
    }
}

double ds_engine_train_grad(ds_engine *e, const ds_params *p, const float *x, const uint8_t *labels,
                           const float *soft, int n, const ds_train_pass *pass, float *grad) {
    size_t np = ds_params_count();
    int nc = (n + DS_CHUNK - 1) / DS_CHUNK;
    float inv_n = 1.0f / (float)n;
    ds_fpmode fp = ds_fpmode_get(); // the caller decides: every engine thread computes in its mode
#pragma omp parallel num_threads(e->threads)
    {
        ds_fpmode_restore(fp);
        thread_scratch *s = &e->scratch[omp_thread()];
        // One chunk at a time per thread: its groups run forward, loss, backward in sequence,
        // accumulating into the chunk's own gradient buffer.
#pragma omp for schedule(static)
        for (int c = 0; c < nc; c++) {
            float *cg = e->chunk_grads + (size_t)c * np;
            ds_params cgp;
            ds_params_point(&cgp, cg);
            memset(cg, 0, np * sizeof(float));
            int end = (c + 1) * DS_CHUNK < n ? (c + 1) * DS_CHUNK : n;
            for (int i = c * DS_CHUNK; i < end; i += G) {
                int g = i / G, gn = group_size(n, g);
                group_acts *a = &e->groups[g];
                group_forward(a, s, p, x + (size_t)i * DS_PIXELS, gn, pass, i);
                for (int k = 0; k < gn; k++) {
                    const float *sk = soft ? soft + (size_t)(i + k) * DS_CLASSES : NULL;
                    e->losses[i + k] = ds_softmax_xent(s->dz + k * DS_CLASSES, a->z + k * DS_CLASSES, sk,
                                                       labels ? labels[i + k] : 0, DS_CLASSES, pass->temperature);
                    for (int j = 0; j < DS_CLASSES; j++) s->dz[k * DS_CLASSES + j] *= inv_n;
                }
                group_backward(a, s, p, s->dz, &cgp, NULL);
            }
        }
        // Sum the chunks in a fixed order; threads split the parameters, not the chunks.
#pragma omp for schedule(static)
        for (size_t j = 0; j < np; j += 4096) {
            size_t end = j + 4096 < np ? j + 4096 : np;
            memcpy(grad + j, e->chunk_grads + j, (end - j) * sizeof(float));
            for (int c = 1; c < nc; c++) {
                const float *cg = e->chunk_grads + (size_t)c * np;
                for (size_t k = j; k < end; k++) grad[k] += cg[k];
            }
        }
    }
    double loss = 0.0;
    for (int i = 0; i < n; i++) loss += e->losses[i];
    return loss / n;
}
