// The run's rules, in one place below both the scheduler (src/sweep) and the reducer
// (src/reduce): the journal and the one rule that says a task is done, the run state (run.txt,
// written and read only here), the folder's lock, and opening a run folder. The job-file language
// and the plan are ds_job.h and ds_plan.h (src/run/job.c, src/run/plan.c); the layout of a run
// folder is in ds_plan.h.
//
// All functions return DS_OK or a negative DS_E* code with a one-line message naming the file
// (ds_error.h); none exits.
#ifndef DS_RUN_H
#define DS_RUN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ds_data.h"
#include "ds_job.h"
#include "ds_plan.h"

// ---- Journal (journal.c): tasks/done.log ----

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

// ---- The done rule (journal.c) ----
//
// A task is done if and only if tasks/done.log has a valid line for it (its id and file) and
// the file exists with the recorded size and CRC-32. The reduce task is never done here.

// done[i] (plan->ntasks bytes) = 1 if task i is done. why (NULL, or plan->ntasks pointers) gets
// for every task not done the reason: "is not in tasks/done.log", "is missing", "has the wrong
// size (truncated or rewritten)", "cannot be read", "does not match its checksum (corrupted)".
// Reads only; a missing journal means nothing is done.
int ds_run_tasks_done(const ds_plan *plan, const char *run_dir, uint8_t *done, const char **why);
// ds_run_tasks_done, then repairs the journal for a sweep that starts: lines of other plans,
// duplicates, torn lines and lines whose file is damaged are dropped (the journal rewritten),
// and a damaged file is renamed <file>.corrupt; each such event is described on `log` (if
// non-NULL), e.g. "journal: tasks/x.h5 is missing; task x will run again".
int ds_journal_scan(const ds_plan *plan, const char *run_dir, uint8_t *done, FILE *log);

// ---- Run state (run.c): run.txt ----

// What a run folder was made from. run.txt holds it; a resume must agree with its data exactly
// and with its canonical job as ds_run_job_compare says.
typedef struct {
    char dataset[32];       // "mnist" or "fashion-mnist"
    int train_n, test_n;    // after the job's slicing
    uint32_t data_crc;      // CRC-32 of the sliced images and labels
    char *canonical;        // the canonical job text (ds_job_canonical), malloc'ed
} ds_run_state;

// Reads <run_dir>/run.txt. DS_EIO naming the file when it is missing ("is <run_dir> a run
// folder?"), DS_EFORMAT when a field is missing or malformed.
int ds_run_state_read(const char *run_dir, ds_run_state *st);
void ds_run_state_free(ds_run_state *st);
// Reads <run_dir>/job.ini and run.txt and builds the plan the run used (the reducer's view of a
// folder). DS_EFORMAT naming job.ini when it is not the job of run.txt (ds_run_job_compare: an
// extension interrupted between its two renames, or an edited job.ini). job and plan are
// filled; free both (plan first).
int ds_run_load_plan(const char *run_dir, ds_job *job, ds_plan *plan);

// ---- What a resume may change (run.c): the one comparison every path that opens a run uses ----
//
// old_canonical is the run's canonical job (run.txt), new_canonical this job's
// (ds_job_canonical). The job may resume the run if it is the same, or extend it: it may add
// attack configurations (new "attack.<NAME>.*" lines, anywhere) and add models to an existing
// configuration's `models` (compared as sets of models: "students" and the student names are
// the same set). Every other difference is refused: any setting outside the attacks (data,
// train, distill, run), any other setting of an existing attack (eps, samples, shard, ...),
// removing an attack or a model (the summary would silently drop their results), and a new
// order of the run's attacks.
//
// Returns DS_RUN_SAME (identical texts; summary ""), DS_RUN_EXTENDS (summary: what is added,
// e.g. "+ attack pgd (2 models), + models of fgsm: T100/student"), or DS_EINVAL with the first
// difference as the message, e.g. "the run was made with train.baseline_epochs = 4, this job
// has 5" (callers add the file and what to do), or DS_ENOMEM. summary holds cap bytes.
enum { DS_RUN_SAME = 0, DS_RUN_EXTENDS = 1 };
int ds_run_job_compare(const char *old_canonical, const char *new_canonical, char *summary,
                       size_t cap);

// ---- Lock (run.c): <run_dir>/lock, flock'ed while a sweep runs ----

// Takes the lock of run_dir without waiting. create: make the lock file if absent (a sweep);
// otherwise a folder without one is simply not locked (*fd = -1). *busy = 1 and DS_EIO ("<dir>
// is in use by another distill_sweep (its lock <dir>/lock is held)") when another process holds
// it. A file system without flock support gets a warning on stderr and DS_OK. Close *fd to
// release it.
int ds_run_lock(const char *run_dir, int create, int *fd, int *busy);

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
// the same job and data (run.txt: dataset sizes and CRC equal, canonical text by
// ds_run_job_compare). A job that extends the run replaces job.ini and run.txt (each atomically,
// under the lock, job.ini first) and `log` gets "<dir>: extending the run: <what>"; the tasks
// already done stay done. A job that may not resume the run: DS_EINVAL naming the first
// difference, unless new_run, in which case the next free <name>-2, <name>-3, ... is used and
// `log` says so. Removes stale *.tmp files. On success run->dir is the folder.
int ds_run_open(const ds_job *job, ds_run *run, int new_run, FILE *log);
void ds_run_close(ds_run *run);

#endif
