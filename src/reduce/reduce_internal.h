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

#include <math.h>
#include <stddef.h>
#include <stdint.h>

// One row of the summary: one ds_attack_group (an attack configuration against one model) at one
// ε of its list (eps.c): a configuration with an ε list (FGSM, PGD, Square, or a transfer of
// them) gives one row per ε, in list order, over that ε's slice of the records; every other
// configuration one row over all its records. The rows of a group are consecutive.
typedef struct {
    const ds_attack_group *g;
    const ds_job_attack *a;
    ds_attack_rates rates;   // ds_attack_rates_compute over the row's records
    double clean_accuracy;   // rates.correct / rates.attempts (0 when there are no attempts)
    double test_accuracy;    // the attacked model's test_accuracy attribute
    int n_shards;
    int has_images;          // the shards kept adversarial images
    uint64_t seed;           // the replicate's seed (job->seeds[g->rep])
    double success_lo, success_hi; // 95% Wilson interval of success_rate over the attempts
    // ---- per-ε rows (eps.c) ----
    int n_eps;               // ε values of the configuration's crafting settings; 0: no ε
    int eps_index;           // which of them this row is (0 when n_eps <= 1)
    float eps;               // that ε (NAN when n_eps == 0)
    ds_craft craft;          // the crafting settings at this ε alone (n_eps 1): a->craft when
                             //   the configuration has at most one ε
    char params[256];        // the params column: a->params when n_eps <= 1, else the string
                             //   of `craft` (ds_job_attack_params)
    uint8_t *outcome;        // [g->count], rows with an ε (untargeted, one record per sample):
                             //   REDUCE_CORRECT | REDUCE_FOOLED of sample g->first + i; else NULL
    uint16_t *tried, *fooled; // [g->count], every row: attempts and successes of sample
                             //   g->first + i (JSMA, C&W: one attempt per target; 0: not attacked)
} reduce_row;

#define REDUCE_CORRECT 1 // the clean input was classified correctly
#define REDUCE_FOOLED 2  // the attack succeeded

// One attack configuration at one ε of its list against one base model over the replicates
// (seeds): the statistics of the replicates' rows of that (configuration, ε) (ds_stats over
// seeds; n = 1 in a one-seed run).
typedef struct {
    const reduce_row *row;   // the first replicate's row: names, temperature, params, ε
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

// ---- The per-sample worst case and the masking checks (checks.c) ----
// robust.csv / summary.h5 "robust": one row per model (of one replicate: s<seed>/... with
// several seeds) and threat model (norm, ε).
typedef struct {
    const char *model;
    double temperature;
    ds_norm norm;
    float eps;
    int n;                 // samples attacked by every configuration of this threat model
    int robust;            // of them: classified correctly and fooled by none
    double robust_accuracy; // robust / n (NAN when n == 0)
    char attacks[DS_JOB_MAX_ATTACKS * (DS_JOB_NAME + 1)]; // the configurations, space-separated
} reduce_robust;

typedef enum { REDUCE_NA, REDUCE_PASS, REDUCE_FAIL } reduce_verdict;
#define REDUCE_NCHECKS 7

// checks.csv / summary.h5 "checks": one row per attacked model (of one replicate) and check.
typedef struct {
    const char *model;
    double temperature;
    int check;             // 0 .. REDUCE_NCHECKS-1 (reduce_check_name)
    reduce_verdict verdict;
    double value, reference; // NAN for n/a (checks.c says what each holds)
    char detail[480];
} reduce_check;

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
    reduce_row *rows;          // [nrows]: plan order, a group's ε in list order
    int nrows;
    int naggs;
    reduce_agg *aggs;          // [naggs]: per (base model, attack configuration, ε index), in
                               //   the order of their first rows
    int nmodel_aggs;
    reduce_model_agg *model_aggs; // [nmodel_aggs]: per base model, in plan order
    int nrobust, nchecks;
    reduce_robust *robust;     // [nrobust] (checks.c)
    reduce_check *checks;      // [nchecks] (checks.c)
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
// The params column of a row: the job's params string (space-separated key=value), at the
// row's ε alone for a configuration with an ε list (reduce_row.params).
const char *reduce_row_params(const reduce_row *row);

// ---- seeds.c: replicates ----
// Fills every row's seed and Wilson interval, then r->aggs and r->model_aggs (after
// reduce_weights and reduce_adversarial).
int reduce_replicates(reducer *r);
// The aggregate of attack configuration ai at its ε index e (0 without a list) against base
// model base ("T100/student"), or NULL.
const reduce_agg *reduce_find_agg(const reducer *r, const char *base, int ai, int e);
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

// Shared formatting (tables.c): a CSV field (RFC 4180 quoting) and a rate as a percentage ("—"
// for NaN).
void reduce_csv_field(ds_strbuf *b, const char *s);
void reduce_md_pct(ds_strbuf *b, double x);

// ---- figure.c ----
// figure1.dat and figure1.gp, then figure1.png and figure1.svg with gnuplot (a missing or failing
// gnuplot is a warning on stderr, not an error).
int reduce_figure(reducer *r);
// Runs gnuplot ($DS_GNUPLOT) in the run folder on the staged script `script` (relative to it),
// which writes the staged files of outputs png and svg; marks them written when both exist. Its
// stderr goes to the staged file of output `log`. A missing or failing gnuplot is a warning on
// stderr naming the kept script `gp`, never an error. Output names must be string literals.
int reduce_gnuplot(reducer *r, const char *script, const char *log, const char *png,
                   const char *svg, const char *gp);
// The files of one figure (string literals: the reducer keeps the pointers). `run` is the
// staged script gnuplot runs, naming the staged outputs; `gp` the kept one, naming the final.
typedef struct { const char *dat, *gp, *run, *png, *svg, *log; } reduce_figure_files;
// Stages f's .dat, .png and .svg, so that the run script can name their staged files.
int reduce_stage_figure(reducer *r, const reduce_figure_files *f);
// Writes dat, gp and run to f's files, draws the figure with reduce_gnuplot and removes the run
// script again; DS_ENOMEM (naming f->dat) if building any of the texts ran out of memory.
int reduce_write_figure(reducer *r, const reduce_figure_files *f, const ds_strbuf *dat,
                        const ds_strbuf *gp, const ds_strbuf *run);
// A gnuplot single-quoted string ('' stands for a quote inside).
void reduce_gp_str(ds_strbuf *b, const char *s);
// The curve of figure1 a row belongs to: one per configuration and ε index.
static inline int reduce_row_curve(const reduce_row *row) {
    return row->g->attack * DS_FGSM_MAX_EPS + row->eps_index;
}

// ---- eps.c: per-ε rows and the ε-curve figure ----
// (The ε list of a configuration: ds_craft_eps, ds_attack.h.)
// The index of ε `eps` (within 1e-6) in the list of crafting settings c, or -1.
int reduce_eps_index(const ds_craft *c, double eps);
// Summary rows of the plan: one per ε of each group's configuration (at least one per group).
int reduce_rows_count(const ds_plan *plan, const ds_job *job);
// Sets the identity of row (group g, configuration a, ε index e): n_eps, eps, craft, params.
void reduce_row_setup(reduce_row *row, const ds_attack_group *g, const ds_job_attack *a, int e);
// The row's rates and clean accuracy from its records rec [n] (for a row with an ε: its slice,
// one record per sample in sample order), its per-sample counts (tried, fooled) and its outcome
// array. DS_ENOMEM.
int reduce_row_records(reduce_row *row, const ds_attack_record *rec, int n);
// Frees the rows' outcome arrays.
void reduce_rows_free(reducer *r);
// figure2.dat and figure2.gp, then figure2.png/.svg: success against ε, one panel per
// configuration with an ε list, one curve per model. Nothing when no configuration has a list.
int reduce_figure2(reducer *r);

// ---- checks.c: the per-sample worst case and the masking checks ----
// Fills r->robust and r->checks from r->rows (DS_ENOMEM); freed by reduce_checks_free.
int reduce_checks_compute(reducer *r);
void reduce_checks_free(reducer *r);
const char *reduce_check_name(int check);
const char *reduce_verdict_name(reduce_verdict v); // "pass", "FAIL", "n/a"
// Whether two crafting settings are the same attack but for their rounding settings (ds_numerics,
// or the denormals of C&W and Square; a random-start seed is not a setting either).
int reduce_same_but_numerics(const ds_craft *x, const ds_craft *y);
int reduce_checks_csv(reducer *r);                     // checks.csv and robust.csv
int reduce_checks_h5(hid_t file, const reducer *r);    // datasets "checks" and "robust"
void reduce_checks_md(ds_strbuf *b, const reducer *r); // the two summary.md sections

#endif
