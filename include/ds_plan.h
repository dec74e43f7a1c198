// The plan of a sweep: a deterministic list of tasks with dependencies, and the run folder.
//
// The plan depends only on the job and the sizes of the (sliced) training and test sets, never
// on the number of ranks, so every rank, the reducer and a resumed run build the same list.
// Tasks are stored in a topological order (every dependency comes before the task):
//
//   warmstart          train warm_start epochs at T=1 (only if [train] warm_start > 0)
//   baseline           train the baseline at T=1 on hard labels
//   T<t>/teacher       train the teacher at T=t on hard labels (from warmstart if any)
//   T<t>/soft          soft labels softmax(z_teacher/t) of every training sample
//   T<t>/student       train the student at T=t on T<t>/soft (from warmstart if any)
//   attack/<model>/<attack>/<first>-<end>
//                      one shard of test samples [first, end) of attack configuration <attack>
//                      (a job section name) against <model> ("baseline", "T100/student")
//   reduce             aggregate everything into the files below (always redone at the end)
//
// Replicates ([run] seeds = 3 7): each seed is a full replicate of the list above (its own warm
// start, baseline, teachers, soft labels, students and attacks), replicate by replicate, then
// the one reduce task. With several seeds every model name, task id and file of replicate
// seed k carries the seed ("s<k>/" in names and ids, "s<k>-" in file names):
//   s3/baseline, s3/T100/soft, attack/s3/T100/student/fgsm/0-1000      (ids)
//   tasks/s3-baseline.h5, tasks/s3-T100-soft.h5, tasks/atk-s3-T100-student-fgsm-000000.h5
//   groups /s3/baseline in weights.h5, /s3/T100 in soft_labels.h5, /s3/T100/student/fgsm in
//   adversarial.h5
// A task's seed comes from (its replicate's seed, its id without the prefix), so replicate k's
// tasks compute exactly what a one-seed sweep with seed = k computes. Attack `models` and
// transfer `source` name models within the replicate. With one seed nothing carries a prefix:
// the plan is the one from before replicates existed.
//
// Results folder layout, results/<run>/ (every HDF5 file carries provenance attributes on its
// root group: job text, code version, seed, task id, host, library versions, UTC time):
//
//   job.ini            the job file's text as the run was started with (the reducer and a
//                      resumed run rebuild the plan from it)
//   run.txt            what the run was made from: canonical job, dataset name, folder, sizes
//                      and checksum; a resume with a different one is refused
//   lock               held (flock) by the coordinator while a sweep runs
//   tasks/             one output file per task, written atomically (.tmp, fsync, rename):
//     warmstart.h5, baseline.h5, T<t>-teacher.h5, T<t>-student.h5
//                      a model group as ds_store.h defines, named like the model
//                      ("baseline", "T100/teacher"), with test_accuracy measured on the test set
//     T<t>-soft.h5     float32 [train_n,10] dataset "soft_labels"
//     atk-<model with / as ->-<attack>-<first>.h5
//                      the shard's per-attempt records (the attack module's writer)
//     *.ckpt.h5        per-epoch training checkpoints (removed when the task is done)
//     done.log         the journal: one line per completed task, "<id> <file> <bytes> <crc32>
//                      <line-crc32>", appended and fsync'ed by the coordinator only
//   weights.h5         /baseline, /T<t>/teacher, /T<t>/student (model groups)     [reducer]
//   soft_labels.h5     /T<t> float32 [train_n,10]                                 [reducer]
//   adversarial.h5     /<model>/<attack>/... per-sample results                     [reducer]
//   summary.h5, summary.csv, summary-seeds.csv, summary.md, figure1.png/.svg     [reducer]
//   checks.csv, robust.csv, figure2.png, figure2.svg (with an eps list)           [reducer]
//
// A task is done if and only if done.log has a valid line for it and its file exists with the
// recorded size and CRC-32 (ds_run_tasks_done, ds_run.h: the one place that decides). Anything
// else (a missing line, a .tmp, a truncated or corrupted file) means the task runs again, from
// its last checkpoint if it has one.
#ifndef DS_PLAN_H
#define DS_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ds_job.h"

typedef enum {
    DS_TASK_TRAIN,  // warmstart, baseline, teacher or student
    DS_TASK_SOFT,   // soft labels of a teacher
    DS_TASK_ATTACK, // one shard of one attack configuration against one model
    DS_TASK_REDUCE, // the reducer
} ds_task_kind;

typedef enum { DS_ROLE_NONE, DS_ROLE_WARMSTART, DS_ROLE_BASELINE, DS_ROLE_TEACHER, DS_ROLE_STUDENT } ds_role;

#define DS_TASK_ID 160

typedef struct {
    int index;           // position in plan->tasks
    ds_task_kind kind;
    char id[DS_TASK_ID]; // unique and stable: see the list above
    char file[DS_TASK_ID]; // output, relative to the run folder: "tasks/T100-teacher.h5"
    // TRAIN: the model trained; SOFT: the teacher; ATTACK: the model attacked. Also the HDF5
    // group of the model in its task file and in weights.h5: "baseline", "T100/student".
    char model[DS_JOB_NAME];
    ds_role role;        // TRAIN: the role trained; SOFT: teacher; ATTACK: the attacked model's
    double temperature;  // training temperature of `model` (1 for warmstart and baseline)
    int epochs;          // TRAIN: epochs this task trains (after the warm start, if any)
    int attack;          // ATTACK: index in job->attacks, else -1
    int group;           // ATTACK: index in plan->groups, else -1
    int first, count;    // ATTACK: test samples [first, first+count)
    int model_task;      // ATTACK, SOFT: the task that produces `model`; TRAIN student: the soft
                         //   labels task; else -1
    int source_task;     // ATTACK transfer: the task that produces the source model; TRAIN
                         //   teacher/student with warm start: the warmstart task; else -1
    int ndeps;
    const int *deps;     // indices of the tasks that must be done before this one
    int chunks;          // TRAIN: chunks per batch (ds_chunk_count(batch, job->chunk)): the most
                         //   ranks its gang can use; other tasks 1
    int steps;           // TRAIN: steps (batches) per epoch; other tasks 0
    double cost;         // estimated work (MFLOP), for scheduling and the ETA
    double priority;     // cost plus the costliest chain of tasks that wait for it
    uint64_t seed;       // the task's seed: derived from (replicate seed, base id), not from its
                         //   index, so a replicate's tasks equal a one-seed sweep's with that seed
    int rep;             // replicate: index into job->seeds (0 when the job has one seed)
    char base_model[DS_JOB_NAME]; // `model` without the replicate prefix ("T100/student")
} ds_task;

// One row of the summary: one attack configuration against one model, over all its shards.
typedef struct {
    char model[DS_JOB_NAME]; // "baseline", "T100/student"
    ds_role role;
    double temperature;
    int attack;              // index in job->attacks
    int model_task;          // the task that trains the model
    int first_task, ntasks;  // its shards: plan->tasks[first_task .. first_task+ntasks), in
                             //   increasing sample order
    int first, count;        // all its test samples
    int rep;                 // replicate: index into job->seeds
    char base_model[DS_JOB_NAME]; // `model` without the replicate prefix
} ds_attack_group;

typedef struct {
    const ds_job *job;   // not owned; must outlive the plan
    int train_n, test_n; // sizes of the sliced training and test sets the plan was built for
    int ntasks;
    ds_task *tasks;
    int ngroups;
    ds_attack_group *groups; // baseline first, then by temperature (teacher, student), then by
                             //   attack in job order
    int *dep_pool;       // storage behind the tasks' deps
} ds_plan;

// Builds the plan of job for training and test sets of train_n and test_n samples (after the
// job's slicing). DS_EINVAL naming the job file's line when an attack's sample range does not
// fit in test_n, or a named model or transfer source does not exist in the sweep.
int ds_plan_build(ds_plan *plan, const ds_job *job, int train_n, int test_n);
void ds_plan_free(ds_plan *plan);

// Index of the task with this id, or -1.
int ds_plan_find(const ds_plan *plan, const char *id);
// Index of the TRAIN task producing the model ("baseline", "T100/student", "s2/T100/student"),
// or -1.
int ds_plan_model_task(const ds_plan *plan, const char *model);
// The same by replicate and unprefixed name: (1, "baseline") is "s<seeds[1]>/baseline".
int ds_plan_rep_model_task(const ds_plan *plan, int rep, const char *base_model);
// A name in replicate rep: "s<seed>/<base>" when the job has several seeds, else base. Returns
// the length it needed, as snprintf.
int ds_plan_rep_name(const ds_plan *plan, int rep, const char *base, char *out, size_t cap);
// Seed of an ATTACK task's random draws (PGD and Square random starts: ds_pgd_params.seed):
// from (the replicate's seed, the attack section's name), not from the task's id or sample
// range, so results do not depend on the shard size or the number of ranks. 0 for other tasks.
uint64_t ds_plan_attack_seed(const ds_plan *plan, const ds_task *t);
// The tasks that wait for each task: those of task i are rdep[rstart[i] .. rstart[i+1]), in
// increasing order (*rstart: ntasks + 1 ints, *rdep: one per dependency; malloc'ed, the caller
// frees both). The coordinator and the simulator (ds_sched.h) both walk the plan with them.
// DS_ENOMEM.
int ds_plan_dependents(const ds_plan *plan, int **rstart, int **rdep);
// "<run_dir>/<task file>".
void ds_plan_task_path(const ds_plan *plan, int task, const char *run_dir, char *out, size_t cap);
const char *ds_task_kind_name(ds_task_kind k); // "train", "soft", "attack", "reduce"
const char *ds_role_name(ds_role r);           // "warmstart", "baseline", "teacher", "student"

// Prints the plan, one task a line (index, id, dependencies, estimated cost, output file).
void ds_plan_print(const ds_plan *plan, FILE *f);

#endif
