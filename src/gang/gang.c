// The gang layer (ds_gang.h): a communicator per gang, the ordered gradient reduction, the
// fixed-point alternative, and the quiet timed wait every operation ends with.
#include "ds_gang.h"

#include "ds_error.h"
#include "ds_mpi.h"

#include <limits.h>
#include <math.h>
#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct ds_gang {
    MPI_Comm comm;
    int member, size, world_rank;
    char *name;
    double timeout_s;
    int chunk;                 // samples per chunk of the reducer's batches (ds_gang_reducer)
    ds_grad_reducer reducer;
    // Per-member counts and displacements [size] (MPI's int counts), reused every step: eight
    // arrays in one allocation, counts.
    int *counts, *scount, *sdispl, *rcount, *rdispl, *pcount, *pdispl, *lcount, *ldispl;
    // Step buffers, grown on demand and then reused: pack [own chunks, np] (by destination),
    // recv [nc, own slice] (by chunk), chunks [nc] pointers into recv, fixed [np] int64 sums.
    float *pack, *recv;
    const float **chunks;
    int64_t *fixed;
    size_t pack_cap, recv_cap, chunks_cap, fixed_cap;
};

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Waits for reqs[0..n) with MPI_Test and short sleeps, never spinning: the cores may be shared
// with members still computing. A large message moves only inside MPI calls (shared-memory
// fragments), so naps stay at 20 us for the first 10 ms of a wait (a transfer: 200 us naps made
// a 5 MB exchange 3x slower) and then double up to 200 us (a member still computing; a step
// takes 10-100 ms). Past the gang's timeout the job ends: one line, then MPI_Abort.
static void gang_wait(ds_gang *g, int n, MPI_Request *reqs, const char *what) {
    double t0 = now_s();
    long nap_ns = 20000;
    for (;;) {
        int done = 0;
        DS_MPI_CHECK(MPI_Testall(n, reqs, &done, MPI_STATUSES_IGNORE));
        if (done) return;
        if (now_s() - t0 > g->timeout_s) {
            fprintf(stderr,
                    "distill_sweep: rank %d: gang %s (%d ranks): %s got no answer from its members "
                    "within %g s; aborting the job (a rerun resumes from the last checkpoint)\n",
                    g->world_rank, g->name, g->size, what, g->timeout_s);
            fflush(stderr);
            MPI_Abort(MPI_COMM_WORLD, 1);
        }
        struct timespec ts = {0, nap_ns};
        nanosleep(&ts, NULL);
        if (nap_ns < 200000 && now_s() - t0 > 0.01) nap_ns *= 2;
    }
}

// Grows *buf to hold n elements of size sz (never shrinks: steady-state steps allocate nothing).
static int reserve(void **buf, size_t *cap, size_t n, size_t sz, const ds_gang *g) {
    if (n <= *cap) return DS_OK;
    void *p = realloc(*buf, n * sz);
    if (!p) return ds_fail(DS_ENOMEM, "gang %s: out of memory (%zu bytes)", g->name, n * sz);
    *buf = p;
    *cap = n;
    return DS_OK;
}

// The parameter slice member m owns: [slice_lo(m), slice_lo(m+1)), balanced and contiguous.
static size_t slice_lo(size_t np, int size, int m) { return (size_t)m * np / (size_t)size; }

// *member: the index of world rank me in members[0..k) (increasing world ranks).
static int check_members(const char *name, const int *members, int k, int world, int me, int *member) {
    *member = -1;
    for (int i = 0; i < k; i++) {
        if (members[i] < 0 || members[i] >= world || (i && members[i] <= members[i - 1]))
            return ds_fail(DS_EINVAL, "gang %s: members must be increasing world ranks in [0, %d)", name, world);
        if (members[i] == me) *member = i;
    }
    if (*member < 0) return ds_fail(DS_EINVAL, "gang %s: rank %d is not among its members", name, me);
    return DS_OK;
}

// The communicator of world ranks members[0..k) (member i is its rank i), collective over them.
static MPI_Comm gang_comm(const int *members, int k, int tag) {
    MPI_Group world_group, group;
    MPI_Comm comm;
    DS_MPI_CHECK(MPI_Comm_group(MPI_COMM_WORLD, &world_group));
    DS_MPI_CHECK(MPI_Group_incl(world_group, k, members, &group));
    DS_MPI_CHECK(MPI_Comm_create_group(MPI_COMM_WORLD, group, tag, &comm));
    DS_MPI_CHECK(MPI_Group_free(&group));
    DS_MPI_CHECK(MPI_Group_free(&world_group));
    DS_MPI_CHECK(MPI_Comm_set_errhandler(comm, MPI_ERRORS_RETURN));
    return comm;
}

static int gang_reduce(void *user, const float *cg, int c0, int c1, int nc, size_t np,
                       double *losses, int n, float *grad);

int ds_gang_create(ds_gang **out, const int *members, int k, int tag, const char *name,
                   double timeout_s) {
    *out = NULL;
    int world, me, main_thread, level;
    DS_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world));
    DS_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &me));
    if (!name) name = "?";
    if (k < 1 || tag < 0 || !(timeout_s > 0))
        return ds_fail(DS_EINVAL, "gang %s: needs >= 1 member, a tag >= 0 and a timeout > 0 (got %d, %d, %g)",
                       name, k, tag, timeout_s);
    DS_MPI_CHECK(MPI_Is_thread_main(&main_thread));
    DS_MPI_CHECK(MPI_Query_thread(&level));
    if (!main_thread && level < MPI_THREAD_MULTIPLE)
        return ds_fail(DS_EINVAL, "gang %s: a member off MPI's main thread needs MPI_THREAD_MULTIPLE", name);
    int member, rc = check_members(name, members, k, world, me, &member);
    if (rc) return rc;
    ds_gang *g = calloc(1, sizeof *g);
    int *counts = calloc((size_t)8 * k, sizeof(int));
    char *copy = strdup(name);
    if (!g || !counts || !copy) {
        free(g), free(counts), free(copy);
        return ds_fail(DS_ENOMEM, "gang %s: out of memory", name);
    }
    int **c[] = {&g->scount, &g->sdispl, &g->rcount, &g->rdispl, &g->pcount, &g->pdispl, &g->lcount, &g->ldispl};
    for (int i = 0; i < 8; i++) *c[i] = counts + (size_t)i * k;
    g->counts = counts, g->member = member, g->size = k, g->world_rank = me, g->name = copy;
    g->timeout_s = timeout_s;
    g->reducer = (ds_grad_reducer){.member = member, .size = k, .reduce = gang_reduce, .user = g};
    g->comm = gang_comm(members, k, tag);
    *out = g;
    return DS_OK;
}

void ds_gang_free(ds_gang *g) {
    if (!g) return;
    DS_MPI_CHECK(MPI_Comm_free(&g->comm));
    free(g->counts), free(g->pack), free(g->recv), free(g->chunks), free(g->fixed), free(g->name), free(g);
}

int ds_gang_member(const ds_gang *g) { return g->member; }
int ds_gang_size(const ds_gang *g) { return g->size; }

const ds_grad_reducer *ds_gang_reducer(ds_gang *g, int chunk) {
    g->chunk = chunk;
    return &g->reducer;
}

void ds_gang_bcast_int(ds_gang *g, int *v) { ds_gang_bcast(g, v, sizeof *v); }

void ds_gang_bcast(ds_gang *g, void *buf, size_t bytes) {
    for (size_t off = 0; off < bytes;) { // MPI counts are ints
        size_t n = bytes - off < (size_t)1 << 30 ? bytes - off : (size_t)1 << 30;
        MPI_Request req;
        DS_MPI_CHECK(MPI_Ibcast((char *)buf + off, (int)n, MPI_BYTE, 0, g->comm, &req));
        gang_wait(g, 1, &req, "broadcast");
        off += n;
    }
}

// The reducer's arguments against the gang: this member's chunks, the batch's chunk count, and
// MPI's int counts (nc * np floats must fit one).
static int check_step(const ds_gang *g, int c0, int c1, int nc, size_t np) {
    int e0, e1;
    if (nc < 1 || np < 1 || (size_t)nc * np > (size_t)INT_MAX)
        return ds_fail(DS_EINVAL, "gang %s: cannot reduce %d chunks of %zu floats", g->name, nc, np);
    ds_chunk_range(nc, g->size, g->member, &e0, &e1);
    if (c0 != e0 || c1 != e1)
        return ds_fail(DS_EINVAL, "gang %s: member %d of %d holds chunks [%d, %d) of %d, given [%d, %d)",
                       g->name, g->member, g->size, e0, e1, nc, c0, c1);
    return DS_OK;
}

// Steps 1-2: pack [destination d][own chunk c][slice d] and exchange, so that recv holds
// [chunk 0..nc)[own slice] (sources are members in chunk order).
static void exchange_chunks(ds_gang *g, const float *cg, int c0, int c1, int nc, size_t np) {
    int k = g->size, own = c1 - c0;
    size_t lo = slice_lo(np, k, g->member), len = slice_lo(np, k, g->member + 1) - lo;
    float *p = g->pack;
    for (int d = 0; d < k; d++) {
        size_t dlo = slice_lo(np, k, d), dlen = slice_lo(np, k, d + 1) - dlo;
        g->scount[d] = (int)(own * dlen);
        g->sdispl[d] = (int)(p - g->pack);
        for (int c = 0; c < own; c++, p += dlen) memcpy(p, cg + (size_t)c * np + dlo, dlen * sizeof(float));
        int s0, s1;
        ds_chunk_range(nc, k, d, &s0, &s1);
        g->rcount[d] = (int)((size_t)(s1 - s0) * len);
        g->rdispl[d] = (int)((size_t)s0 * len);
    }
    MPI_Request req;
    DS_MPI_CHECK(MPI_Ialltoallv(g->pack, g->scount, g->sdispl, MPI_FLOAT, g->recv, g->rcount, g->rdispl,
                                MPI_FLOAT, g->comm, &req));
    gang_wait(g, 1, &req, "gradient exchange");
}

// Step 4: every member's folded slice, and its samples' losses, to everyone (in place).
static void gather_results(ds_gang *g, int nc, size_t np, double *losses, int n, float *grad) {
    int k = g->size;
    for (int m = 0; m < k; m++) {
        size_t lo = slice_lo(np, k, m);
        g->pcount[m] = (int)(slice_lo(np, k, m + 1) - lo);
        g->pdispl[m] = (int)lo;
        int s0, s1;
        ds_chunk_range(nc, k, m, &s0, &s1);
        long a = (long)s0 * g->chunk, b = (long)s1 * g->chunk;
        a = a < n ? a : n, b = b < n ? b : n;
        g->lcount[m] = (int)(b - a);
        g->ldispl[m] = (int)a;
    }
    MPI_Request req[2];
    DS_MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_FLOAT, grad, g->pcount, g->pdispl, MPI_FLOAT, g->comm, &req[0]));
    DS_MPI_CHECK(MPI_Iallgatherv(MPI_IN_PLACE, 0, MPI_DOUBLE, losses, g->lcount, g->ldispl, MPI_DOUBLE, g->comm, &req[1]));
    gang_wait(g, 2, req, "gradient allgather");
}

static int gang_reduce(void *user, const float *cg, int c0, int c1, int nc, size_t np,
                       double *losses, int n, float *grad) {
    ds_gang *g = user;
    int rc = check_step(g, c0, c1, nc, np);
    if (rc) return rc;
    if (g->chunk < 1 || ds_chunk_count(n, g->chunk) != nc)
        return ds_fail(DS_EINVAL, "gang %s: a batch of %d samples in chunks of %d is not %d chunks",
                       g->name, n, g->chunk, nc);
    size_t lo = slice_lo(np, g->size, g->member), len = slice_lo(np, g->size, g->member + 1) - lo;
    if ((rc = reserve((void **)&g->pack, &g->pack_cap, (size_t)(c1 - c0) * np, sizeof(float), g)) ||
        (rc = reserve((void **)&g->recv, &g->recv_cap, (size_t)nc * len, sizeof(float), g)) ||
        (rc = reserve((void **)&g->chunks, &g->chunks_cap, (size_t)nc, sizeof(float *), g)))
        return rc;
    exchange_chunks(g, cg, c0, c1, nc, np);
    // Step 3: the owner's slice, folded in chunk order: grad[lo + j] for j in [0, len), in
    // blocks that stay in cache (as the engine's fold).
    for (int c = 0; c < nc; c++) g->chunks[c] = g->recv + (size_t)c * len;
    for (size_t j = 0; j < len; j += 4096)
        ds_grad_fold(grad + lo, (const float *const *)g->chunks, nc, j, j + 4096 < len ? j + 4096 : len);
    gather_results(g, nc, np, losses, n, grad);
    return DS_OK;
}

// ---- The fixed-point alternative ----

enum { N_TENSORS = 2 * DS_NUM_LAYERS };

// Tensor t of the parameters (w[0], b[0], w[1], ...): [off[t], off[t+1]).
static void tensor_offsets(size_t off[N_TENSORS + 1], float *base, size_t np) {
    ds_params p;
    ds_params_point(&p, base);
    for (int l = 0; l < DS_NUM_LAYERS; l++) {
        off[2 * l] = (size_t)(p.w[l] - base);
        off[2 * l + 1] = (size_t)(p.b[l] - base);
    }
    off[N_TENSORS] = np;
}

// Bits b with 2^b >= n.
static int ceil_log2(int n) {
    int b = 0;
    while ((1L << b) < n) b++;
    return b;
}

// The scale 2^s of a tensor whose largest |value| over all chunks is mx: |round(v 2^s)| <=
// 2^(62-b) for nc <= 2^b chunks, so their sum stays below 2^62 (one bit of int64 headroom).
static int fixed_shift(float mx, int nc) {
    int e;
    frexpf(mx, &e); // mx < 2^e
    return 62 - e - ceil_log2(nc);
}

int ds_gang_reduce_fixed(ds_gang *g, const float *cg, int c0, int c1, int nc, size_t np,
                         float *grad) {
    int rc = check_step(g, c0, c1, nc, np);
    if (rc) return rc;
    if (np != ds_params_count())
        return ds_fail(DS_EINVAL, "gang %s: fixed-point reduction needs the model's %zu parameters, given %zu",
                       g->name, ds_params_count(), np);
    if ((rc = reserve((void **)&g->fixed, &g->fixed_cap, np, sizeof(int64_t), g))) return rc;
    size_t off[N_TENSORS + 1];
    tensor_offsets(off, grad, np);
    // Per tensor, the largest |value| of any chunk (a NaN counts as infinite).
    float mx[N_TENSORS] = {0};
    for (int t = 0; t < N_TENSORS; t++)
        for (int c = 0; c < c1 - c0; c++)
            for (size_t j = off[t]; j < off[t + 1]; j++) {
                float a = fabsf(cg[(size_t)c * np + j]);
                if (a != a) a = INFINITY;
                if (a > mx[t]) mx[t] = a;
            }
    MPI_Request req;
    DS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, mx, N_TENSORS, MPI_FLOAT, MPI_MAX, g->comm, &req));
    gang_wait(g, 1, &req, "fixed-point maximum allreduce");
    for (int t = 0; t < N_TENSORS; t++)
        if (!isfinite(mx[t])) return ds_fail(DS_ENUMERIC, "gang %s: a chunk gradient is not finite", g->name);
    // Round to nearest (ties to even: the default mode) on the tensor's scale, sum in int64.
    int64_t *q = g->fixed;
    for (int t = 0; t < N_TENSORS; t++) {
        double scale = ldexp(1.0, mx[t] > 0 ? fixed_shift(mx[t], nc) : 0);
        for (size_t j = off[t]; j < off[t + 1]; j++) {
            int64_t s = 0;
            for (int c = 0; c < c1 - c0; c++) s += llrint((double)cg[(size_t)c * np + j] * scale);
            q[j] = s;
        }
    }
    DS_MPI_CHECK(MPI_Iallreduce(MPI_IN_PLACE, q, (int)np, MPI_INT64_T, MPI_SUM, g->comm, &req));
    gang_wait(g, 1, &req, "fixed-point sum allreduce");
    for (int t = 0; t < N_TENSORS; t++) {
        double inv = ldexp(1.0, mx[t] > 0 ? -fixed_shift(mx[t], nc) : 0);
        for (size_t j = off[t]; j < off[t + 1]; j++) grad[j] = (float)((double)q[j] * inv);
    }
    return DS_OK;
}
