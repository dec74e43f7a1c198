// Gang benchmark (ds_gang.h): the cost of one training step's gradient reduction on a gang of all
// world ranks (tests/bench/run.sh runs it with scripts/mpirun.sh -np 2), for the model's
// ds_params_count() floats and a batch of 128 in chunks of 8 (16 chunks) and of 32 (4 chunks):
//   bench gang<K>_ordered_chunk<C>_ms    ms per step of the ordered reduction (ds_gang_reducer)
//   bench gang<K>_ordered_chunk<C>_sent_mb  MB this rank sends per step in it
//   bench gang<K>_fixed_chunk<C>_ms      the same for ds_gang_reduce_fixed
//   bench gang<K>_fixed_chunk<C>_sent_mb
// Only the reduction is timed (the chunks' gradients are computed once). MB sent: the payload a
// rank must deliver (its chunks' values of other members' slices, its slice to each other
// member, its losses; for the fixed point a ring allreduce's 2(K-1)/K of the int64 sums), whatever
// algorithm Open MPI picks. ms: the slowest rank's mean. BENCH_SECONDS (default 8) is split over
// the four figures.
#include "ds_error.h"
#include "ds_fpmode.h"
#include "ds_gang.h"
#include "ds_mpi.h"
#include "ds_nn.h"
#include "ds_rng.h"
#include "bench_util.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

enum { BATCH = 128 };

typedef struct {
    ds_gang *g;
    int chunk, nc, c0, c1;
    size_t np;
    float *cg, *grad;
    double *losses;
} step_in;

static int step(step_in *s, int fixed) {
    if (fixed) return ds_gang_reduce_fixed(s->g, s->cg, s->c0, s->c1, s->nc, s->np, s->grad);
    const ds_grad_reducer *r = ds_gang_reducer(s->g, s->chunk);
    return r->reduce(r->user, s->cg, s->c0, s->c1, s->nc, s->np, s->losses, BATCH, s->grad);
}

// Seconds per step over about `seconds` (rank 0 picks the step count from 3 timed steps, so that
// every member runs the same collectives), the slowest rank's.
static double time_steps(step_in *s, int fixed, double seconds) {
    for (int i = 0; i < 2; i++) // the buffers are allocated at the first step
        if (step(s, fixed)) return -1;
    double t0 = now();
    for (int i = 0; i < 3; i++) step(s, fixed);
    int steps = (int)(seconds / ((now() - t0) / 3)) + 1;
    ds_gang_bcast_int(s->g, &steps);
    DS_MPI_CHECK(MPI_Barrier(MPI_COMM_WORLD));
    t0 = now();
    for (int i = 0; i < steps; i++) step(s, fixed);
    double t = (now() - t0) / steps, slowest;
    DS_MPI_CHECK(MPI_Allreduce(&t, &slowest, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD));
    return slowest;
}

// Bytes this member must send per step.
static double sent_bytes(const step_in *s, int k, int member, int fixed) {
    double ring = 2.0 * (k - 1) / k; // of an allreduce's data, per rank
    if (fixed) return ring * (2 * DS_NUM_LAYERS * sizeof(float) + (double)s->np * sizeof(int64_t));
    size_t lo = (size_t)member * s->np / k, len = (size_t)(member + 1) * s->np / k - lo;
    int own = s->c1 - s->c0, a = s->c0 * s->chunk, b = s->c1 * s->chunk < BATCH ? s->c1 * s->chunk : BATCH;
    return (double)own * (double)(s->np - len) * sizeof(float) + (double)(k - 1) * len * sizeof(float) +
           (double)(k - 1) * (b - a) * sizeof(double);
}

int main(int argc, char **argv) {
    int provided, k, me;
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) return 1;
    DS_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    DS_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &k));
    DS_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &me));
    if (k < 2) {
        printf("bench note gang_needs_ranks 0 (run it as scripts/mpirun.sh -np 2 %s)\n", argv[0]);
        MPI_Finalize();
        return 1;
    }
    double seconds = env_num("BENCH_SECONDS", 8) / 4;
    int members[k];
    for (int i = 0; i < k; i++) members[i] = i;
    step_in s = {.np = ds_params_count()};
    if (ds_gang_create(&s.g, members, k, 1, "bench", 60)) {
        fprintf(stderr, "bench_gang: %s\n", ds_errmsg());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    ds_fpmode fp = ds_fpmode_set(ds_fpmode_train_flush()); // as in training
    int status = 0;
    const int chunks[] = {8, 32};
    for (int ci = 0; ci < 2; ci++) {
        s.chunk = chunks[ci], s.nc = ds_chunk_count(BATCH, s.chunk);
        ds_chunk_range(s.nc, k, me, &s.c0, &s.c1);
        s.cg = malloc((size_t)(s.c1 - s.c0) * s.np * sizeof(float) + 1);
        s.grad = malloc(s.np * sizeof(float));
        s.losses = calloc(BATCH, sizeof(double));
        if (!s.cg || !s.grad || !s.losses) MPI_Abort(MPI_COMM_WORLD, 1);
        ds_rng r = ds_rng_stream(1, 9, (uint64_t)me);
        for (size_t j = 0; j < (size_t)(s.c1 - s.c0) * s.np; j++) s.cg[j] = (ds_rng_uniform(&r) - 0.5f) * 1e-3f;
        for (int fixed = 0; fixed < 2; fixed++) {
            double t = time_steps(&s, fixed, seconds);
            if (t < 0) {
                fprintf(stderr, "bench_gang: %s\n", ds_errmsg());
                status = 1;
                continue;
            }
            if (me == 0) {
                const char *kind = fixed ? "fixed" : "ordered";
                printf("bench gang%d_%s_chunk%d_ms %.3f ms\n", k, kind, s.chunk, t * 1e3);
                printf("bench gang%d_%s_chunk%d_sent_mb %.3f MB\n", k, kind, s.chunk,
                       sent_bytes(&s, k, me, fixed) / 1e6);
                fflush(stdout);
            }
        }
        free(s.cg), free(s.grad), free(s.losses);
    }
    ds_fpmode_restore(fp);
    ds_gang_free(s.g);
    DS_MPI_CHECK(MPI_Finalize());
    return status;
}
