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
#include "ds_h5.h"
#include "ds_job.h"
#include "ds_plan.h"
#include "ds_stats.h"
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
    uint64_t seed;           // the replicate's seed (job->seeds[g->rep])
    double success_lo, success_hi; // 95% Wilson interval of success_rate over the attempts
} reduce_row;

// One attack configuration against one base model over the replicates (seeds): the statistics
// of the replicates' rows (ds_stats over seeds; n = 1 in a one-seed run).
typedef struct {
    const reduce_row *row;   // the first replicate's row: names, temperature, params
    const reduce_row *reps[DS_JOB_MAX_SEEDS]; // by replicate index (NULL: not in the plan)
    ds_stats success, clean, test_accuracy;
    ds_stats success_correct; // over replicates with correctly classified attempts
    ds_stats zero_grad;
} reduce_agg;

// One base model (a TRAIN task of every replicate) over the replicates.
typedef struct {
    const ds_task *task;     // the first replicate's task
    int reps[DS_JOB_MAX_SEEDS]; // its task index per replicate (-1: none)
    ds_stats test_accuracy;
} reduce_model_agg;

#define REDUCE_MAX_OUTPUTS 32

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
    int naggs;
    reduce_agg *aggs;          // [naggs]: per (base model, attack configuration), in the plan
                               //   order of their first rows
    int nmodel_aggs;
    reduce_model_agg *model_aggs; // [nmodel_aggs]: per base model, in plan order
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

// ---- seeds.c: replicates ----
// Fills every row's seed and Wilson interval, then r->aggs and r->model_aggs (after
// reduce_weights and reduce_adversarial).
int reduce_replicates(reducer *r);
// The aggregate of attack configuration ai against base model base ("T100/student"), or NULL.
const reduce_agg *reduce_find_agg(const reducer *r, const char *base, int ai);
// The aggregate of base model base, or NULL.
const reduce_model_agg *reduce_find_model_agg(const reducer *r, const char *base);
// summary-seeds.csv: one line per aggregate.
int reduce_seeds_csv(reducer *r);
// summary.h5's datasets "aggregate" (r->aggs) and "aggregate_models" (r->model_aggs).
int reduce_aggregate_h5(const reducer *r, hid_t file);
// summary.md, several seeds: "87.42 ± 0.31 (3)" (percent; "—" without values), the 95% t
// interval "86.65–88.19" ("—" without one), and the tables over seeds.
void reduce_md_mean_sd(ds_strbuf *b, const ds_stats *s);
void reduce_md_interval(ds_strbuf *b, double lo, double hi);
void reduce_md_models_over_seeds(ds_strbuf *b, const reducer *r);
void reduce_md_attacks_over_seeds(ds_strbuf *b, const reducer *r);

// A CSV field per RFC 4180 (tables.c).
void reduce_csv_field(ds_strbuf *b, const char *s);

// ---- figure.c ----
// figure1.dat and figure1.gp, then figure1.png and figure1.svg with gnuplot (a missing or failing
// gnuplot is a warning on stderr, not an error).
int reduce_figure(reducer *r);

#endif
