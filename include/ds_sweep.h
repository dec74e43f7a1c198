// The sweep: task execution, coordinator and workers (the run's rules: ds_run.h).
//
// `mpirun -np N distill_sweep JOB`: rank 0 is the coordinator: it hands ready tasks (ds_plan.h)
// to idle workers as the scheduling policy decides (ds_sched.h), trainings possibly to gangs of
// ranks (ds_gang.h), and records each completed task in the journal. Rank 0 also runs tasks
// itself in a second thread (unless told not to), so -np 1 runs everything in one process and
// -np 2 on two cores keeps both cores busy. That thread calls MPI only as a gang member, which
// needs MPI_THREAD_MULTIPLE (without it, it takes one-rank tasks only); the HDF5 library is only
// ever used by one thread of a process at a time.
//
// Durability: every task writes its output atomically (ds_atomic.h, ds_h5.h) and rank 0 appends
// a line to tasks/done.log when the worker reports it; whether a task is done is decided by
// ds_run_tasks_done (ds_run.h) alone, so a run killed at any moment and started again redoes
// nothing that was complete and nothing half-written counts. Training tasks save a checkpoint
// after every epoch and continue from it (ds_train.h).
#ifndef DS_SWEEP_H
#define DS_SWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ds_data.h"
#include "ds_job.h"
#include "ds_plan.h"
#include "ds_run.h"
#include "ds_train.h"

// ---- Tasks (task.c) ----

// What a training task did in this session (for the log and the rate calibration).
typedef struct {
    int epoch0, epoch1, epochs; // it trained epochs [epoch0, epoch1) of epochs; 0 0 0 if no training
} ds_task_report;

typedef struct {
    const ds_job *job;
    const ds_plan *plan;
    const char *run_dir;
    const ds_dataset *train, *test;
    int threads;                 // engine threads
    volatile int *stop;          // set by a signal: stop after the current epoch
    int rank;                    // for messages only
    const ds_train_gang *gang;   // a training on a gang of ranks (sweep.c), or NULL
    ds_task_report *report;      // filled by training tasks, or NULL
} ds_worker_ctx;

// Runs task `task` (not the reduce task) and writes its output file atomically; *bytes and *crc
// describe the written file (for the journal). DS_ESTOP if *ctx->stop was set (the training
// checkpoint is saved), other DS_E* codes with a message.
int ds_task_execute(const ds_worker_ctx *ctx, int task, uint64_t *bytes, uint32_t *crc);

// ---- The sweep (sweep.c) ----

typedef struct {
    const char *job_path;
    int threads;          // engine threads per worker, overriding the job; 0 = the job's
    int new_run;          // a changed job starts a new run instead of being refused
    int coordinator_only; // rank 0 runs no tasks itself (many ranks)
    int gang_max;         // the most ranks one training may use (1: no gangs); 0 = 16
    double gang_timeout;  // seconds a gang member may wait for the others; 0 = 600
    double comm_s;        // the scheduler's communication per step and extra gang rank (ds_sched.h)
    int rank0_gangs;      // rank 0's worker thread may join gangs (MPI_THREAD_MULTIPLE provided)
    int progress_bar;     // -1: when stdout is a terminal; 0 never; 1 always
} ds_sweep_options;

// The whole sweep; call between MPI_Init_thread and MPI_Finalize on every rank. Returns the
// process exit status: 0 done, 1 failed (message printed by rank 0), 3 stopped by a signal.
// A failed MPI call ends the job through DS_MPI_CHECK (ds_mpi.h): set MPI_ERRORS_RETURN on
// MPI_COMM_WORLD first so that its message names the call and the rank.
int ds_sweep_run(const ds_sweep_options *o);
// ---- The dry run (dryrun.c) ----

typedef struct {
    const char *job_path;
    const int *ranks;   // rank counts to predict the makespan for (ds_sched.h); NULL: none
    int nranks;
    double rate_gflops; // > 0: every task at this rate per rank; 0: the rates of the run folder's
                        //   sweep.log (ds_sim_calibrate) if it has finished tasks of this plan,
                        //   else a measurement (a second of training steps on random data)
    int gang_max;       // the most ranks of one gang (>= 1)
    double comm_ms;     // communication per training step and extra gang rank (>= 0)
} ds_dry_run_options;

// Prints the plan of a job (no MPI, no training): the task list and, if the run folder exists,
// which tasks are done; then, for o->nranks > 0, a line on the rate and the prediction table
// (ds_sim_print). Returns the exit status.
int ds_sweep_dry_run(const ds_dry_run_options *o, FILE *out);

// The command line (src/cli/cmd_sweep.c): `distill_sweep [run] JOB`, `--dry-run JOB`,
// `--reduce RUN_DIR`. argv[0] is the program or sub-command name. Returns the exit status.
int ds_cmd_sweep(int argc, char **argv);

#endif
