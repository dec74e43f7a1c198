// The reducer (ds_reduce.h): rebuilds the run's plan, checks that every task is done, writes
// weights.h5, soft_labels.h5, adversarial.h5, summary.h5, summary.csv, summary-seeds.csv,
// checks.csv, robust.csv, summary.md, figure1.* and figure2.* under staged names, then renames
// them into place (see reduce_internal.h).
#include "ds_reduce.h"

#include "ds_atomic.h"
#include "ds_error.h"
#include "ds_fault.h"
#include "ds_run.h"
#include "reduce_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// ---- Staging ----

static reduce_output *find_output(const reducer *r, const char *name) {
    for (int i = 0; i < r->noutputs; i++)
        if (!strcmp(r->outputs[i].name, name)) return (reduce_output *)&r->outputs[i];
    return NULL;
}

int reduce_stage(reducer *r, const char *name, char *out, size_t cap) {
    reduce_output *o = find_output(r, name);
    if (!o) {
        if (r->noutputs == REDUCE_MAX_OUTPUTS)
            return ds_fail(DS_EINVAL, "reduce: too many outputs (%s)", name);
        o = &r->outputs[r->noutputs++];
        o->name = name;
        o->written = 0;
        // The pid keeps two reducers of the same run (a --reduce during the sweep's own) apart.
        snprintf(o->staged, sizeof o->staged, ".reduce-%ld-%s.tmp", (long)getpid(), name);
    }
    if ((size_t)snprintf(out, cap, "%s/%s", r->run_dir, o->staged) >= cap)
        return ds_fail(DS_EINVAL, "%s: run folder path too long", r->run_dir);
    return DS_OK;
}

void reduce_staged_written(reducer *r, const char *name) {
    reduce_output *o = find_output(r, name);
    if (o) o->written = 1;
}

void reduce_staged_discard(reducer *r, const char *name) {
    reduce_output *o = find_output(r, name);
    if (!o) return;
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", r->run_dir, o->staged);
    unlink(path);
    o->written = 0;
}

const char *reduce_staged_name(const reducer *r, const char *name) {
    const reduce_output *o = find_output(r, name);
    return o ? o->staged : "";
}

int reduce_write_text(reducer *r, const char *name, const char *text, size_t len) {
    char path[1200];
    int rc = reduce_stage(r, name, path, sizeof path);
    if (!rc) rc = ds_atomic_write_synced(path, text, len); // removes the file if it fails
    if (!rc) reduce_staged_written(r, name);
    return rc;
}

static void discard_staged(reducer *r) {
    char path[1200];
    for (int i = 0; i < r->noutputs; i++) {
        snprintf(path, sizeof path, "%s/%s", r->run_dir, r->outputs[i].staged);
        unlink(path);
        // The ds_h5 writer's own temporary, in case it was interrupted.
        snprintf(path, sizeof path, "%s/%s.tmp", r->run_dir, r->outputs[i].staged);
        unlink(path);
    }
}

// Moves every written staged file into place (ds_atomic_commit: rename, fsync the folder).
static int commit_staged(reducer *r) {
    char from[1200], to[1200];
    for (int i = 0; i < r->noutputs; i++) {
        reduce_output *o = &r->outputs[i];
        if (!o->written) continue;
        snprintf(from, sizeof from, "%s/%s", r->run_dir, o->staged);
        snprintf(to, sizeof to, "%s/%s", r->run_dir, o->name);
        int rc = ds_atomic_commit(from, to);
        if (rc) return rc;
        o->written = 0;
        ds_fault("reduce-output", o->name);
    }
    return DS_OK;
}

// ---- Are all tasks done? (ds_run_tasks_done: the one rule) ----

static int check_done(reducer *r) {
    uint8_t *done = malloc((size_t)r->plan.ntasks);
    const char **why = malloc(sizeof *why * (size_t)r->plan.ntasks);
    int rc = done && why ? ds_run_tasks_done(&r->plan, r->run_dir, done, why)
                         : ds_fail(DS_ENOMEM, "%s: out of memory", r->run_dir);
    int missing = 0, total = 0;
    char list[768] = "";
    size_t len = 0;
    for (int i = 0; !rc && i < r->plan.ntasks; i++) {
        const ds_task *t = &r->plan.tasks[i];
        if (t->kind == DS_TASK_REDUCE) continue;
        total++;
        if (done[i]) continue;
        if (++missing <= 4 && len < sizeof list)
            len += (size_t)snprintf(list + len, sizeof list - len, "%s%s (%s %s)",
                                    missing > 1 ? ", " : "", t->id, t->file, why[i]);
    }
    free(done);
    free(why);
    if (!rc && missing)
        return ds_fail(DS_EIO, "%s: %d of %d tasks are not done: %s%s; run the sweep again to "
                       "finish them, then reduce", r->run_dir, missing, total, list,
                       missing > 4 ? ", ..." : "");
    return rc;
}

// The dataset name recorded in run.txt (informative: for summary.md).
static void read_dataset_name(reducer *r) {
    ds_run_state st;
    if (!ds_run_state_read(r->run_dir, &st)) snprintf(r->dataset, sizeof r->dataset, "%s", st.dataset);
    ds_run_state_free(&st);
}

int ds_reduce_run(const char *run_dir) {
    if (!run_dir || !*run_dir) return ds_fail(DS_EINVAL, "reduce: no run folder given");
    reducer *r = calloc(1, sizeof *r);
    if (!r) return ds_fail(DS_ENOMEM, "%s: out of memory", run_dir);
    r->run_dir = run_dir;
    int rc = ds_run_load_plan(run_dir, &r->job, &r->plan);
    if (rc) {
        free(r);
        return rc;
    }
    r->prov = (ds_provenance){.job_text = r->job.text, .code_version = ds_code_version(),
                              .seed = r->job.seed, .task = "reduce"};
    read_dataset_name(r);
    r->test_accuracy = malloc(sizeof(double) * (size_t)r->plan.ntasks);
    r->nrows = reduce_rows_count(&r->plan, &r->job);
    r->rows = calloc((size_t)r->nrows + 1, sizeof *r->rows);
    if (!r->test_accuracy || !r->rows) rc = ds_fail(DS_ENOMEM, "%s: out of memory", run_dir);
    for (int i = 0; !rc && i < r->plan.ntasks; i++) r->test_accuracy[i] = NAN;

    if (!rc) rc = check_done(r);
    if (!rc) rc = reduce_weights(r);
    if (!rc) rc = reduce_soft_labels(r);
    if (!rc) rc = reduce_adversarial(r);
    if (!rc) rc = reduce_replicates(r);
    if (!rc) rc = reduce_checks_compute(r);
    if (!rc) rc = reduce_summary_h5(r);
    if (!rc) rc = reduce_summary_csv(r);
    if (!rc) rc = reduce_seeds_csv(r);
    if (!rc) rc = reduce_checks_csv(r);
    if (!rc) rc = reduce_summary_md(r);
    if (!rc) rc = reduce_figure(r);
    if (!rc) rc = reduce_figure2(r);
    if (!rc) rc = commit_staged(r);
    if (rc) discard_staged(r);

    free(r->test_accuracy);
    reduce_checks_free(r);
    reduce_rows_free(r);
    free(r->rows);
    free(r->aggs);
    free(r->model_aggs);
    ds_plan_free(&r->plan);
    ds_job_free(&r->job);
    free(r);
    return rc;
}
