// Engine benchmark: sgemm peak, training and input-gradient throughput of the paper's network.
// Prints "bench <name> <value> <unit>" lines. BENCH_SECONDS (default 8) per figure, BENCH_THREADS
// (default 2) engine threads. Training is measured at the default chunk (DS_CHUNK, the
// train_samples_per_s line) and, half as long each, at the chunks gangs of 8 and 16 ranks need
// (train_samples_per_s_chunk16, _chunk8): smaller chunks mean more gradient buffers to sum.
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

int main(void) {
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
    ds_engine *e;
    if (ds_engine_create(&e, B, threads, DS_CHUNK)) return 1;
    printf("bench train_samples_per_s %.1f samples/s\n", train_rate(e, &m, x, labels, grad, seconds));
    fflush(stdout);
    for (int chunk = 16; chunk >= 8; chunk /= 2) {
        ds_engine *ec;
        if (ds_engine_create(&ec, B, threads, chunk)) return 1;
        printf("bench train_samples_per_s_chunk%d %.1f samples/s\n", chunk,
               train_rate(ec, &m, x, labels, grad, seconds / 2));
        fflush(stdout);
        ds_engine_free(ec);
    }

    // FGSM's gradient: forward, dz = softmax(z) - onehot, backward to the input only.
    long samples = 0;
    double t0 = now(), t;
    do {
        ds_engine_forward(e, &m.p, x, B, z);
        for (int i = 0; i < B; i++) ds_softmax_xent(dz + i * 10, z + i * 10, NULL, labels[i], 10, 1.0f);
        ds_engine_input_grad(e, &m.p, dz, B, dx);
        samples += B;
    } while ((t = now() - t0) < seconds);
    printf("bench input_grad_samples_per_s %.1f samples/s\n", samples / t);

    ds_engine_free(e);
    ds_model_free(&m);
    free(x), free(z), free(dz), free(dx), free(grad);
    return 0;
}
