// Shared state of the reducer (src/reduce/*.c; the entry point is ds_reduce_run in reduce.c).
//
// The reducer never writes a final output directly: every file is first written under a staged
// name "<run_dir>/.reduce-<pid>-<name>.tmp" (HDF5 through the ds_h5 writer, text with
// ds_atomic_write_synced), and only when every table is written are they moved into place one
// by one with ds_atomic_commit (ds_atomic.h: each rename atomic, the folder fsync'ed). A
// failure removes the staged files, so the outputs of an earlier reduction stay untouched; a
// crash leaves *.tmp files that the next `distill_sweep` run removes (ds_run_open).
#ifndef DS_REDUCE_INTERNAL_H
#define DS_REDUCE_INTERNAL_H

#include "ds_attack.h"
#include "ds_job.h"
#include "ds_plan.h"
#include "ds_store.h"
#include "ds_strbuf.h"

#include <stddef.h>

// One row of the summary: one ds_attack_group (an attack configuration against one model).
typedef struct {
    const ds_attack_group *g;
    const ds_job_attack *a;
    ds_attack_rates rates;   // ds_attack_rates_compute over all the group's records
    double clean_accuracy;   // rates.correct / rates.attempts (0 when there are no attempts)
    double test_accuracy;    // the attacked model's test_accuracy attribute
    int n_shards;
    int has_images;          // the shards kept adversarial images
} reduce_row;

#define REDUCE_MAX_OUTPUTS 16

typedef struct {
    const char *name;          // final name in the run folder ("summary.csv")
    char staged[96];           // staged name, relative to the run folder
    int written;               // the staged file exists
} reduce_output;

typedef struct {
    const char *run_dir;
    ds_job job;
    ds_plan plan;
    char dataset[32];          // from run.txt ("mnist", "fashion-mnist"; "" if absent)
    double *test_accuracy;     // [plan.ntasks]: TRAIN tasks' test accuracy, NAN otherwise
    reduce_row *rows;          // [plan.ngroups], plan order
    ds_provenance prov;        // of every HDF5 file written (task "reduce")
    int noutputs;
    reduce_output outputs[REDUCE_MAX_OUTPUTS];
} reducer;

// ---- reduce.c: staging ----
// Registers output `name` and writes the full path of its staged file to out.
int reduce_stage(reducer *r, const char *name, char *out, size_t cap);
// Marks the staged file of `name` as written (it is renamed into place by the final commit).
void reduce_staged_written(reducer *r, const char *name);
// Removes the staged file of `name` (a scratch file that is not an output).
void reduce_staged_discard(reducer *r, const char *name);
// The staged name of `name` relative to the run folder ("" if not registered).
const char *reduce_staged_name(const reducer *r, const char *name);
// Writes text to the staged file of `name` (write, fsync, close; removed again on failure).
int reduce_write_text(reducer *r, const char *name, const char *text, size_t len);


// ---- merge.c: the merged HDF5 files ----
int reduce_weights(reducer *r);     // weights.h5; fills r->test_accuracy
int reduce_soft_labels(reducer *r); // soft_labels.h5
int reduce_adversarial(reducer *r); // adversarial.h5; fills r->rows

// ---- tables.c ----
int reduce_summary_h5(reducer *r);
int reduce_summary_csv(reducer *r);
int reduce_summary_md(reducer *r);
// The params column of a row: the job's params string (space-separated key=value).
const char *reduce_row_params(const reduce_row *row);

// ---- figure.c ----
// figure1.dat and figure1.gp, then figure1.png and figure1.svg with gnuplot (a missing or failing
// gnuplot is a warning on stderr, not an error).
int reduce_figure(reducer *r);

#endif
