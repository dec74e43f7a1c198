// gang_check: the gang layer (ds_gang.h) against one process, under mpirun with any rank count.
//
//   scripts/mpirun.sh -np 3 build/tests/mpi/gang_check [--threads T] [--chunk C] [--batch B]
//       [--train-n N] [--epochs E] [--seed S] [--timeout SEC] [--hang-member M]
//
// All world ranks form one gang. On every rank:
//   1. a synthetic batch's gradient and per-sample losses through the gang's reducer (each member
//      computes its ds_chunk_range, then reduces) must equal, byte for byte, ds_engine_train_grad
//      and ds_engine_chunk_grads over all chunks computed alone on that rank;
//   2. ds_gang_reduce_fixed must be within float rounding of the chunks' exact sum (computed in
//      double), and the same on every rank;
//   3. ds_gang_bcast_int must deliver member 0's value;
//   4. E epochs of training on a synthetic set of N samples with ds_trainer_epoch on the gang
//      (ds_trainer_init with the gang's reducer) must leave the weights, velocity and mean
//      losses of ds_trainer_epoch run alone (reducer NULL).
// Then rank 0 prints one line
//   gang_check: ok ranks K threads T batch B chunk C chunks NC grad X losses X fixed X weights X
// with CRC-32s (hex) of the gradient, losses, fixed-point gradient and trained weights, which must
// not depend on K or T (tests/it_gang_grad.sh compares them across runs). Any mismatch: a line
// naming it on stderr and exit status 1. --hang-member M: member M sleeps forever instead of
// reducing, so the others must end the job after --timeout seconds (default 60).
#include "ds_error.h"
#include "ds_fpmode.h"
#include "ds_gang.h"
#include "ds_mpi.h"
#include "ds_nn.h"
#include "ds_rng.h"

#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

typedef struct {
    int threads, chunk, batch, train_n, epochs, hang;
    uint64_t seed;
    double timeout;
} options;

static int rank_;

static void die(const char *what, int rc) {
    fprintf(stderr, "gang_check: rank %d: %s: %s\n", rank_, what, rc ? ds_errmsg() : "failed");
    MPI_Abort(MPI_COMM_WORLD, 1);
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory", 0);
    return p;
}

static int parse(int argc, char **argv, options *o) {
    *o = (options){.threads = 1, .chunk = 8, .batch = 40, .train_n = 100, .epochs = 2, .hang = -1,
                   .seed = 5, .timeout = 60};
    for (int i = 1; i < argc; i++) {
        const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) return fprintf(stderr, "gang_check: %s needs a value\n", k), -1;
        i++;
        if (!strcmp(k, "--threads")) o->threads = atoi(v);
        else if (!strcmp(k, "--chunk")) o->chunk = atoi(v);
        else if (!strcmp(k, "--batch")) o->batch = atoi(v);
        else if (!strcmp(k, "--train-n")) o->train_n = atoi(v);
        else if (!strcmp(k, "--epochs")) o->epochs = atoi(v);
        else if (!strcmp(k, "--seed")) o->seed = strtoull(v, NULL, 10);
        else if (!strcmp(k, "--timeout")) o->timeout = atof(v);
        else if (!strcmp(k, "--hang-member")) o->hang = atoi(v);
        else return fprintf(stderr, "gang_check: unknown option %s\n", k), -1;
    }
    if (o->threads < 1 || o->batch < 1 || o->train_n < 1 || o->epochs < 0 || o->chunk < DS_GROUP ||
        o->chunk % DS_GROUP || !(o->timeout > 0))
        return fprintf(stderr, "gang_check: bad option value\n"), -1;
    return 0;
}

static uint32_t crc(const void *p, size_t bytes) {
    return (uint32_t)crc32(crc32(0L, Z_NULL, 0), p, (uInt)bytes);
}

// 0 if a and b hold the same bytes; else a line naming what differs and where.
static int same(const char *what, const void *a, const void *b, size_t n, size_t elem) {
    if (!memcmp(a, b, n * elem)) return 0;
    size_t j = 0;
    while (!memcmp((const char *)a + j * elem, (const char *)b + j * elem, elem)) j++;
    double va = elem == 4 ? ((const float *)a)[j] : ((const double *)a)[j];
    double vb = elem == 4 ? ((const float *)b)[j] : ((const double *)b)[j];
    fprintf(stderr, "gang_check: rank %d: %s differs from the single-process one (first at %zu of %zu: %.*g vs %.*g)\n",
            rank_, what, j, n, elem == 4 ? 9 : 17, va, elem == 4 ? 9 : 17, vb);
    return 1;
}

// The member that hangs (--hang-member) never returns from here.
static void maybe_hang(const options *o, int member) {
    if (member != o->hang) return;
    fprintf(stderr, "gang_check: rank %d: member %d hangs instead of reducing\n", rank_, member);
    for (;;) sleep(1000);
}

// Part 1 and 2: one batch x [n,784], labels [n].
static int check_batch(const options *o, ds_gang *g, ds_engine *e, const ds_model *m, uint32_t out[3]) {
    int n = o->batch, k = ds_gang_size(g), me = ds_gang_member(g);
    size_t np = ds_params_count();
    float *x = xmalloc((size_t)n * DS_PIXELS * sizeof(float));
    uint8_t *labels = xmalloc((size_t)n);
    ds_rng r = ds_rng_stream(o->seed, 101, 0);
    for (int i = 0; i < n * DS_PIXELS; i++) x[i] = ds_rng_uniform(&r);
    for (int i = 0; i < n; i++) labels[i] = (uint8_t)ds_rng_below(&r, DS_CLASSES);
    ds_train_pass pass = {.temperature = 1.0f, .dropout = 0.5f, .seed = o->seed, .step = 3};
    int nc = ds_chunk_count(n, o->chunk), c0, c1;
    ds_chunk_range(nc, k, me, &c0, &c1);

    // Alone: the engine's pass, and every chunk with its losses.
    float *grad1 = xmalloc(np * sizeof(float)), *all = xmalloc((size_t)nc * np * sizeof(float));
    double *loss1 = xmalloc((size_t)n * sizeof(double));
    double mean1 = ds_engine_train_grad(e, &m->p, x, labels, NULL, n, &pass, grad1);
    ds_engine_chunk_grads(e, &m->p, x, labels, NULL, n, 0, nc, &pass, all, loss1);
    double sum1 = 0;
    for (int i = 0; i < n; i++) sum1 += loss1[i];

    // The gang: own chunks, then the reducer.
    float *cg = xmalloc((size_t)(c1 - c0) * np * sizeof(float)), *grad = xmalloc(np * sizeof(float));
    double *loss = xmalloc((size_t)n * sizeof(double));
    for (int i = 0; i < n; i++) loss[i] = NAN; // every entry must come back filled
    ds_engine_chunk_grads(e, &m->p, x, labels, NULL, n, c0, c1, &pass, cg, loss);
    maybe_hang(o, me);
    const ds_grad_reducer *red = ds_gang_reducer(g, o->chunk);
    int rc = red->reduce(red->user, cg, c0, c1, nc, np, loss, n, grad);
    if (rc) die("reduce", rc);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += loss[i];
    int bad = same("batch gradient", grad, grad1, np, sizeof(float)) +
              same("per-sample losses", loss, loss1, (size_t)n, sizeof(double));
    double mean = sum / n;
    bad += same("mean loss (engine)", &mean, &mean1, 1, sizeof(double)) +
           same("mean loss (chunks)", &sum, &sum1, 1, sizeof(double));

    // The fixed point: the chunks' exact sum (in double: exact for a few chunks of floats of
    // similar size, else within 2^-50 of the largest) up to float rounding.
    float *fixed = xmalloc(np * sizeof(float));
    if ((rc = ds_gang_reduce_fixed(g, cg, c0, c1, nc, np, fixed))) die("reduce_fixed", rc);
    float big = 0;
    for (size_t j = 0; j < (size_t)nc * np; j++) big = fmaxf(big, fabsf(all[j]));
    int off = 0;
    for (size_t j = 0; j < np && !off; j++) {
        double d = 0;
        for (int c = 0; c < nc; c++) d += all[(size_t)c * np + j];
        if ((off = fabs(fixed[j] - d) > fabs(d) * 0x1p-23 + big * 0x1p-40))
            fprintf(stderr, "gang_check: rank %d: fixed-point gradient[%zu] = %.9g, exact sum %.17g\n",
                    rank_, j, fixed[j], d);
    }
    bad += off;
    out[0] = crc(grad, np * sizeof(float));
    out[1] = crc(loss, (size_t)n * sizeof(double));
    out[2] = crc(fixed, np * sizeof(float));
    free(x), free(labels), free(grad1), free(all), free(loss1), free(cg), free(grad), free(loss), free(fixed);
    return bad;
}

// n random images with a bright column at the label's place (learnable, deterministic).
static void synth_set(ds_dataset *d, int n, uint64_t seed) {
    d->n = n, d->rows = DS_IMG, d->cols = DS_IMG;
    d->images = xmalloc((size_t)n * DS_PIXELS);
    d->labels = xmalloc((size_t)n);
    ds_rng r = ds_rng_stream(seed, 102, 0);
    for (int i = 0; i < n; i++) {
        d->labels[i] = (uint8_t)ds_rng_below(&r, DS_CLASSES);
        for (int p = 0; p < DS_PIXELS; p++)
            d->images[(size_t)i * DS_PIXELS + p] = p % DS_IMG == 2 + 2 * d->labels[i] ? 255 : (uint8_t)ds_rng_below(&r, 80);
    }
}

// Part 4: o->epochs epochs alone and on the gang, both with ds_trainer_epoch (the gang's trainer
// with the reducer); *weights: CRC of the result.
static int check_training(const options *o, ds_gang *g, const ds_model *init, uint32_t *weights) {
    ds_train_config c;
    ds_train_config_default(&c);
    c.epochs = o->epochs, c.batch = o->batch, c.lr = 0.05f, c.seed = o->seed, c.threads = o->threads,
    c.chunk = o->chunk;
    size_t np = ds_params_count();
    ds_dataset d;
    synth_set(&d, o->train_n, o->seed);
    ds_model alone, gang;
    ds_trainer t, tg;
    int rc;
    if ((rc = ds_model_copy(&alone, init)) || (rc = ds_model_copy(&gang, init)) ||
        (rc = ds_trainer_init(&t, &c, d.n, NULL)) ||
        (rc = ds_trainer_init(&tg, &c, d.n, ds_gang_reducer(g, c.chunk))))
        die("training setup", rc);
    int bad = 0;
    for (int ep = 0; ep < c.epochs; ep++) {
        double la, lg;
        if ((rc = ds_trainer_epoch(&t, &alone, &d, NULL, &la))) die("training alone", rc);
        if ((rc = ds_trainer_epoch(&tg, &gang, &d, NULL, &lg))) die("training on the gang", rc);
        bad += same("training mean loss", &lg, &la, 1, sizeof(double));
    }
    bad += same("trained weights", gang.mem, alone.mem, np, sizeof(float)) +
           same("momentum buffer", tg.velocity, t.velocity, np, sizeof(float));
    *weights = crc(gang.mem, np * sizeof(float));
    ds_trainer_free(&t);
    ds_trainer_free(&tg);
    ds_model_free(&alone), ds_model_free(&gang), ds_dataset_free(&d);
    return bad;
}

static int check_bcast(ds_gang *g, uint64_t seed) {
    int v = ds_gang_member(g) == 0 ? (int)(1000 + seed) : -1;
    ds_gang_bcast_int(g, &v);
    if (v == (int)(1000 + seed)) return 0;
    fprintf(stderr, "gang_check: rank %d: broadcast gave %d, not %d\n", rank_, v, (int)(1000 + seed));
    return 1;
}

static int run(const options *o) {
    int world;
    DS_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world));
    int *members = xmalloc((size_t)world * sizeof(int));
    for (int i = 0; i < world; i++) members[i] = i;
    ds_gang *g;
    int rc = ds_gang_create(&g, members, world, 77, "gang_check", o->timeout);
    if (rc) die("gang", rc);
    ds_model m;
    if ((rc = ds_model_init_as(&m, o->seed, DS_INIT_PYTORCH))) die("model", rc);
    ds_engine *e;
    if ((rc = ds_engine_create(&e, o->batch, o->threads, o->chunk))) die("engine", rc);
    uint32_t sums[4];
    ds_fpmode fp = ds_fpmode_set(ds_fpmode_train_flush()); // the mode training computes in
    int bad = check_batch(o, g, e, &m, sums);
    ds_fpmode_restore(fp);
    bad += check_bcast(g, o->seed);
    bad += check_training(o, g, &m, &sums[3]);
    // Every rank must have reached the same bits (each compared with itself so far).
    uint32_t lo[4], hi[4];
    DS_MPI_CHECK(MPI_Allreduce(sums, lo, 4, MPI_UINT32_T, MPI_MIN, MPI_COMM_WORLD));
    DS_MPI_CHECK(MPI_Allreduce(sums, hi, 4, MPI_UINT32_T, MPI_MAX, MPI_COMM_WORLD));
    if (memcmp(lo, hi, sizeof lo)) {
        fprintf(stderr, "gang_check: rank %d: the ranks' checksums differ\n", rank_);
        bad++;
    }
    int all_bad;
    DS_MPI_CHECK(MPI_Allreduce(&bad, &all_bad, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    if (!all_bad && rank_ == 0)
        printf("gang_check: ok ranks %d threads %d batch %d chunk %d chunks %d grad %08x losses %08x "
               "fixed %08x weights %08x\n",
               world, o->threads, o->batch, o->chunk, ds_chunk_count(o->batch, o->chunk), sums[0],
               sums[1], sums[2], sums[3]);
    ds_engine_free(e);
    ds_model_free(&m);
    ds_gang_free(g);
    free(members);
    return all_bad ? 1 : 0;
}

int main(int argc, char **argv) {
    int provided;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return 1;
    DS_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    DS_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank_));
    options o;
    if (parse(argc, argv, &o)) {
        MPI_Finalize();
        return 2;
    }
    int status = run(&o);
    DS_MPI_CHECK(MPI_Finalize());
    return status;
}
