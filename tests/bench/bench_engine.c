// Engine benchmark: sgemm peak, training and input-gradient throughput of the paper's network.
// Prints "bench <name> <value> <unit>" lines. BENCH_SECONDS (default 8) per figure, BENCH_THREADS
// (default 2) engine threads. Training is measured at the default chunk (DS_CHUNK, the
// train_samples_per_s line) and, half as long each, at the chunks gangs of 8 and 16 ranks need
// (train_samples_per_s_chunk16, _chunk8): smaller chunks mean more gradient buffers to sum.
// Those lines are the default engine kind's; conv_impl_<kind>_* give each kind, measured side by
// side, and their ratio.
#include "ds_nn.h"
#include "ds_rng.h"
#include "bench_util.h"

#include <cblas.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

// Single-precision GEMM rate of `threads` independent 1-thread GEMMs of size n (our engine's
// pattern: one BLAS thread per engine thread).
static double sgemm_gflops(int threads, int n, double seconds) {
    float *a = malloc(sizeof(float) * n * n * threads * 3);
    for (long i = 0; i < (long)n * n * threads * 3; i++) a[i] = (float)(i % 7) * 0.1f;
    long reps = 0;
    double t0 = now(), t;
    do {
#pragma omp parallel for num_threads(threads)
        for (int k = 0; k < threads; k++) {
            float *A = a + (size_t)k * 3 * n * n;
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, A, n, A + n * n, n, 0.0f,
                        A + 2 * n * n, n);
        }
        reps++;
    } while ((t = now() - t0) < seconds);
    free(a);
    return 2.0 * n * n * n * threads * reps / t * 1e-9;
}

// Training: forward with dropout, loss, backward, as ds_trainer_epoch does (the SGD update
// itself is 0.3M multiply-adds per step, included), in samples/s over batches of 128.
static double train_rate(ds_engine *e, ds_model *m, const float *x, const uint8_t *labels,
                         float *grad, double seconds) {
    enum { B = 128 };
    ds_train_pass pass = {.temperature = 1, .dropout = 0.5f, .seed = 1};
    long samples = 0;
    double t0 = now(), t;
    do {
        pass.step++;
        ds_engine_train_grad(e, &m->p, x, labels, NULL, B, &pass, grad);
        for (size_t j = 0; j < ds_params_count(); j++) m->mem[j] -= 1e-6f * grad[j];
        samples += B;
    } while ((t = now() - t0) < seconds);
    return samples / t;
}

// FGSM's gradient: forward, dz = softmax(z) - onehot, backward to the input only (an inference
// engine e), in samples/s over batches of 128.
static double input_grad_rate(ds_engine *e, ds_model *m, const float *x, const uint8_t *labels, float *z,
                              float *dz, float *dx, double seconds) {
    enum { B = 128 };
    long samples = 0;
    double t0 = now(), t;
    do {
        ds_engine_forward(e, &m->p, x, B, z);
        for (int i = 0; i < B; i++) ds_softmax_xent(dz + i * 10, z + i * 10, NULL, labels[i], 10, 1.0f);
        ds_engine_input_grad(e, &m->p, dz, B, dx);
        samples += B;
    } while ((t = now() - t0) < seconds);
    return samples / t;
}

static double median(double *v, int n) {
    for (int i = 1; i < n; i++)
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1], v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

int main(void) {
    enum { ROUNDS = 3, KINDS = 2 };
    double seconds = env_num("BENCH_SECONDS", 8);
    int threads = (int)env_num("BENCH_THREADS", 2), B = 128;
    openblas_set_num_threads(1);
    printf("bench sgemm_peak_gflops %.1f GFLOP/s\n", sgemm_gflops(threads, 1024, seconds / 2));
    fflush(stdout);

    ds_model m;
    if (ds_model_init(&m, 1)) return 1;
    float *x = malloc(sizeof(float) * B * DS_PIXELS), *z = malloc(sizeof(float) * B * 10);
    float *dz = malloc(sizeof(float) * B * 10), *dx = malloc(sizeof(float) * B * DS_PIXELS);
    float *grad = malloc(sizeof(float) * ds_params_count());
    uint8_t labels[128];
    ds_rng r = ds_rng_stream(1, 2, 3);
    for (int i = 0; i < B * DS_PIXELS; i++) x[i] = ds_rng_uniform(&r);
    for (int i = 0; i < B; i++) labels[i] = (uint8_t)ds_rng_below(&r, 10);

    // Both engine kinds side by side: ROUNDS alternating short runs of each, medians reported
    // (these machines drift by 10% within minutes: ../shared/docs/perf-notes.md).
    const ds_engine_kind kinds[KINDS] = {DS_ENGINE_ONEDNN, DS_ENGINE_GEMM};
    ds_engine *tr[KINDS], *inf[KINDS];
    for (int k = 0; k < KINDS; k++) {
        if (ds_engine_create_kind(&tr[k], B, threads, DS_CHUNK, kinds[k])) return 1;
        if (ds_engine_create_kind(&inf[k], B, threads, 0, kinds[k])) return 1;
    }
    fprintf(stderr, "%s", ds_engine_describe(tr[0]));
    double train[KINDS][ROUNDS], igrad[KINDS][ROUNDS];
    for (int round = 0; round < ROUNDS; round++)
        for (int k = 0; k < KINDS; k++) {
            train[k][round] = train_rate(tr[k], &m, x, labels, grad, seconds / ROUNDS);
            igrad[k][round] = input_grad_rate(inf[k], &m, x, labels, z, dz, dx, seconds / ROUNDS);
        }
    double tmed[KINDS], imed[KINDS];
    for (int k = 0; k < KINDS; k++) tmed[k] = median(train[k], ROUNDS), imed[k] = median(igrad[k], ROUNDS);
    // The unprefixed lines are the default engine's (the kind a job runs unless it says otherwise).
    printf("bench train_samples_per_s %.1f samples/s\n", tmed[0]);
    fflush(stdout);
    for (int chunk = 16; chunk >= 8; chunk /= 2) {
        ds_engine *ec;
        if (ds_engine_create_kind(&ec, B, threads, chunk, kinds[0])) return 1;
        printf("bench train_samples_per_s_chunk%d %.1f samples/s\n", chunk,
               train_rate(ec, &m, x, labels, grad, seconds / 2));
        fflush(stdout);
        ds_engine_free(ec);
    }
    printf("bench input_grad_samples_per_s %.1f samples/s\n", imed[0]);
    for (int k = 0; k < KINDS; k++) {
        const char *name = ds_engine_kind_name(kinds[k]);
        printf("bench conv_impl_%s_train_samples_per_s %.1f samples/s\n", name, tmed[k]);
        printf("bench conv_impl_%s_input_grad_samples_per_s %.1f samples/s\n", name, imed[k]);
    }
    printf("bench conv_impl_onednn_over_gemm_train %.2f x\n", tmed[0] / tmed[1]);
    printf("bench conv_impl_onednn_over_gemm_input_grad %.2f x\n", imed[0] / imed[1]);

    for (int k = 0; k < KINDS; k++) ds_engine_free(tr[k]), ds_engine_free(inf[k]);
    ds_model_free(&m);
    free(x), free(z), free(dz), free(dx), free(grad);
    return 0;
}
