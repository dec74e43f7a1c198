// The sweep: run folder, journal of completed tasks, task execution, coordinator and workers.
//
// `mpirun -np N distill_sweep JOB`: rank 0 is the coordinator: it hands ready tasks (ds_plan.h)
// to idle workers, highest priority first, and records each completed task in the journal.
// Rank 0 also runs tasks itself in a second thread (unless told not to), so -np 1 runs
// everything in one process and -np 2 on two cores keeps both cores busy. Only rank 0's main
// thread calls MPI (MPI_THREAD_FUNNELED); the HDF5 library is only ever used by one thread of a
// process at a time.
//
// Durability: every task writes its output atomically (ds_h5.h) and rank 0 appends a line to
// tasks/done.log (with the file's size and CRC-32, fsync'ed) when the worker reports it. A task
// is done if and only if its journal line is valid and its file matches it, so a run killed at
// any moment and started again redoes nothing that was complete and nothing half-written counts.
// Training tasks save a checkpoint after every epoch and continue from it.
#ifndef DS_SWEEP_H
#define DS_SWEEP_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ds_data.h"
#include "ds_filecrc.h"
#include "ds_job.h"
#include "ds_plan.h"

// ---- Journal (journal.c) ----

typedef struct {
    char id[DS_TASK_ID];
    char file[DS_TASK_ID];
    uint64_t bytes;
    uint32_t crc;
} ds_journal_entry;

// Reads the valid lines of <run_dir>/tasks/done.log (a missing journal is empty; torn or
// corrupted lines are skipped and counted in *bad if bad != NULL). *entries malloc'ed.
int ds_journal_read(const char *run_dir, ds_journal_entry **entries, int *n, int *bad);
// Appends one line and fsyncs the journal. DS_EIO / DS_ENOSPC on failure.
int ds_journal_append(const char *run_dir, const ds_journal_entry *e);
// Replaces the journal by exactly these entries, atomically.
int ds_journal_rewrite(const char *run_dir, const ds_journal_entry *entries, int n);

// Which tasks are done: done[i] = 1 if task i has a valid journal line and its file has the
// recorded size and CRC. A line whose file is missing, truncated or changed is dropped from the
// journal (rewritten) and the file is renamed <file>.corrupt; each such event is described on
// `log` (if non-NULL). The reduce task is never done here.
int ds_journal_scan(const ds_plan *plan, const char *run_dir, uint8_t *done, FILE *log);

// ---- Run folder (run.c) ----

typedef struct {
    char dir[600];          // <results>/<name>
    char dataset[32];       // "mnist" or "fashion-mnist" (auto resolved)
    char data_dir[512];     // where it was found
    int train_n, test_n;    // after the job's slicing
    uint32_t data_crc;      // CRC-32 of the sliced images and labels
    int lock_fd;            // flock'ed <dir>/lock, -1 if none
} ds_run;

// Finds the dataset of job (auto: MNIST, else Fashion-MNIST, with a note on `log`), loads and
// slices the training and test sets. DS_EIO with how to get the data when it is missing.
int ds_run_load_data(const ds_job *job, ds_run *run, ds_dataset *train, ds_dataset *test,
                     FILE *log);
// Creates or reopens the run folder of job, takes its lock, and checks that it was made from
// the same job and data (canonical text, dataset sizes and CRC). A different job: DS_EINVAL
// saying what differs, unless new_run, in which case the next free <name>-2, <name>-3, ... is
// used and `log` says so. Removes stale *.tmp files. On success run->dir is the folder.
int ds_run_open(const ds_job *job, ds_run *run, int new_run, FILE *log);
void ds_run_close(ds_run *run);

// ---- Tasks (task.c) ----

typedef struct {
    const ds_job *job;
    const ds_plan *plan;
    const char *run_dir;
    const ds_dataset *train, *test;
    int threads;                 // engine threads
    volatile int *stop;          // set by a signal: stop after the current epoch
    int rank;                    // for messages only
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
    int progress_bar;     // -1: when stdout is a terminal; 0 never; 1 always
} ds_sweep_options;

// The whole sweep; call between MPI_Init_thread and MPI_Finalize on every rank. Returns the
// process exit status: 0 done, 1 failed (message printed by rank 0), 3 stopped by a signal.
// A failed MPI call ends the job through DS_MPI_CHECK (ds_mpi.h): set MPI_ERRORS_RETURN on
// MPI_COMM_WORLD first so that its message names the call and the rank.
int ds_sweep_run(const ds_sweep_options *o);
// Prints the plan of a job (no MPI, no training): the task list and, if the run folder exists,
// which tasks are done. Returns the exit status.
int ds_sweep_dry_run(const char *job_path, FILE *out);

// The command line (src/cli/cmd_sweep.c): `distill_sweep [run] JOB`, `--dry-run JOB`,
// `--reduce RUN_DIR`. argv[0] is the program or sub-command name. Returns the exit status.
int ds_cmd_sweep(int argc, char **argv);

#endif
