// Checking MPI calls at the boundary (after hpc/ior's MPI_CHECK).
//
//   DS_MPI_CHECK(MPI_Send(&r, n, MPI_BYTE, 0, TAG, MPI_COMM_WORLD));
//
// A call that does not return MPI_SUCCESS prints one line on stderr,
//   distill_sweep: rank 3: MPI_Send failed: <MPI_Error_string> (src/sweep/sweep.c:266)
// and ends the whole job with MPI_Abort(MPI_COMM_WORLD, 1), so that no rank is left waiting for
// one that gave up. MPI only returns errors to the caller under MPI_ERRORS_RETURN, which the
// command sets on MPI_COMM_WORLD right after MPI_Init_thread (src/cli/cmd_sweep.c); under the
// default MPI_ERRORS_ARE_FATAL the library aborts by itself, without this message.
// Any thread that calls MPI may use it (rank 0's worker thread joins gangs under
// MPI_THREAD_MULTIPLE).
#ifndef DS_MPI_H
#define DS_MPI_H

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// Reports the failed call (`call` is its source text: the name up to '(' is printed) and ends
// the job. Never returns. rank -1: MPI is not running (before MPI_Init or after MPI_Finalize),
// in which case the process exits with status 1 instead of MPI_Abort.
static inline void ds_mpi_fail(const char *call, int err, const char *file, int line) {
    int up = 0, down = 1, rank = -1, len = 0;
    char why[MPI_MAX_ERROR_STRING] = "unknown error";
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    if (up && !down) MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    if (MPI_Error_string(err, why, &len) != MPI_SUCCESS) snprintf(why, sizeof why, "error %d", err);
    fprintf(stderr, "distill_sweep: rank %d: %.*s failed: %s (%s:%d)\n", rank,
            (int)strcspn(call, "( "), call, why, file, line);
    fflush(stderr);
    if (up && !down) MPI_Abort(MPI_COMM_WORLD, 1);
    exit(1);
}

#define DS_MPI_CHECK(call)                                                                 \
    do {                                                                                   \
        int ds_mpi_rc_ = (call);                                                           \
        if (ds_mpi_rc_ != MPI_SUCCESS) ds_mpi_fail(#call, ds_mpi_rc_, __FILE__, __LINE__); \
    } while (0)

#endif
