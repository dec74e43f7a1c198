// A gang: k ranks that train one model together (deterministic data parallelism).
//
// Each batch is split into nc fixed chunks (ds_nn.h: ceil(batch/chunk), set by the job, never
// by the rank or thread count). Member m computes the chunks ds_chunk_range(nc, k, m) and the
// members then reduce in chunk order:
//
//   1. the parameters are cut into k slices (balanced, contiguous); member m owns slice m;
//   2. MPI_Ialltoallv: every member sends, for each slice, its chunks' values of that slice; the
//      owner receives all nc chunk values of its slice, ordered by chunk (members hold
//      consecutive chunks, so ordering by source rank is ordering by chunk);
//   3. the owner folds its slice with ds_grad_fold (the engine's own order);
//   4. MPI_Iallgatherv returns the folded slices to everyone, and another the samples' losses.
//
// So every member ends each step with the same gradient, bit for bit the one a single process
// computes (ds_engine_train_grad), for any k, any rank placement and any thread count. Bytes per
// step per member (np = 312,202 floats, 1.25 MB; own = its chunk count, ~nc/k): step 2 sends
// own*np*(k-1)/k floats and receives (nc-own)*np/k; step 4 delivers np*(k-1)/k floats and
// n*(k-1)/k doubles (losses) to each member, and each sends as much (ring or linear algorithm).
// So at k = 2 a batch of 128 sends 5.6 MB per member in chunks of 8 (nc = 16), 1.9 MB in chunks
// of 32 (nc = 4). The fixed-point alternative sends 2*(k-1)/k*np int64 (2.5 MB at k = 2,
// whatever nc) with a ring allreduce. The buffers (own*np + nc*np/k floats, np int64 for the
// fixed point) are allocated at a gang's first step and reused.
//
// Communicator: MPI_Comm_create_group over MPI_COMM_WORLD, collective over the members only (the
// coordinator forms gangs while other ranks are busy; it blocks like any MPI collective: the
// timeout below covers every operation after it), with MPI_ERRORS_RETURN. Every wait polls with MPI_Test and short
// sleeps (no busy-waiting on shared cores) and gives up after the gang's timeout: a member that
// never answers ends the whole job through MPI_Abort with one line naming the gang and the
// operation (Open MPI 4.1 has no ULFM; the rerun resumes the training from its checkpoint).
// A member on rank 0 calls MPI from the local worker thread: that needs MPI_THREAD_MULTIPLE.
#ifndef DS_GANG_H
#define DS_GANG_H

#include <stddef.h>

#include "ds_nn.h"

typedef struct ds_gang ds_gang;

// Collective over the world ranks members[0..k) (increasing; the caller is one of them): the
// gang's communicator, made with tag (the same on every member, unique among gangs that can form
// at once). name: for messages ("T100/student"). timeout_s: how long any wait may take before
// the job is aborted (> 0). DS_ENOMEM or DS_EINVAL with a message; MPI failures abort the job.
int ds_gang_create(ds_gang **g, const int *members, int k, int tag, const char *name,
                   double timeout_s);
void ds_gang_free(ds_gang *g); // frees the communicator (collective over the members)
int ds_gang_member(const ds_gang *g); // this process's index in the gang
int ds_gang_size(const ds_gang *g);

// The ordered reduction above as a trainer's reducer (valid while g lives) for batches cut into
// chunks of `chunk` samples (the training's cfg.chunk): member m's samples, whose losses it
// contributes, are [c0*chunk, min(c1*chunk, n)) (they cannot be derived from n and nc alone).
// reduce fails with DS_EINVAL if ceil(n/chunk) != nc or [c0, c1) is not ds_chunk_range's.
const ds_grad_reducer *ds_gang_reducer(ds_gang *g, int chunk);

// *v of member 0 to every member (the leader's decisions at an epoch boundary), with the quiet
// timed wait.
void ds_gang_bcast_int(ds_gang *g, int *v);
// bytes of buf of member 0 to every member (the training's state at the start of a segment).
void ds_gang_bcast(ds_gang *g, void *buf, size_t bytes);

// The alternative measured in tests/bench/bench_gang.c: exact accumulation in 64-bit fixed point
// (a per-tensor exponent from an MPI_MAX allreduce, then one MPI_Allreduce of int64 sums, which
// is order-free). Same inputs as the reducer; the result is deterministic for any k but not the
// engine's float fold, so it is not used for training.
int ds_gang_reduce_fixed(ds_gang *g, const float *cg, int c0, int c1, int nc, size_t np,
                         float *grad);

#endif
