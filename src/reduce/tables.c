// The summary tables: summary.h5 (compound dataset "summary"), summary.csv (machine-readable,
// byte-identical for any number of ranks) and summary.md (for people, beside the papers' numbers).
// One row per ds_attack_group, in plan order; the rates are ds_attack_rates (ds_attack.h).
#include "ds_error.h"
#include "ds_h5.h"
#include "reduce_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

const char *reduce_row_params(const reduce_row *row) { return row->params; }

// ---- summary.h5 ----

// The memory layout of one row of the "summary" dataset: the CSV's columns first, then extras.
typedef struct {
    const char *model;
    double temperature;
    const char *attack;
    const char *params;
    int64_t n, successes;
    double success_rate, clean_accuracy, zero_grad_share;
    double test_accuracy;          // of the attacked model
    double success_rate_correct;   // over attempts whose clean prediction was right
    const char *config;            // the job's [attack NAME]
    const char *role;
    int64_t first, count;          // test samples
    int64_t correct, correct_successes, zero_grad;
    double mean_l0, mean_l2, mean_linf, mean_iterations; // over successful attempts (iterations: all)
    uint64_t seed;                 // the replicate's seed
    double success_lo, success_hi; // 95% Wilson interval of success_rate over the n attempts
} summary_row;

static hid_t summary_type(hid_t str) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(summary_row));
    if (t < 0) return t;
    herr_t e = 0;
#define F(name, type) e |= H5Tinsert(t, #name, HOFFSET(summary_row, name), type)
    F(model, str);
    F(temperature, H5T_NATIVE_DOUBLE);
    F(attack, str);
    F(params, str);
    F(n, H5T_NATIVE_INT64);
    F(successes, H5T_NATIVE_INT64);
    F(success_rate, H5T_NATIVE_DOUBLE);
    F(clean_accuracy, H5T_NATIVE_DOUBLE);
    F(zero_grad_share, H5T_NATIVE_DOUBLE);
    F(test_accuracy, H5T_NATIVE_DOUBLE);
    F(success_rate_correct, H5T_NATIVE_DOUBLE);
    F(config, str);
    F(role, str);
    F(first, H5T_NATIVE_INT64);
    F(count, H5T_NATIVE_INT64);
    F(correct, H5T_NATIVE_INT64);
    F(correct_successes, H5T_NATIVE_INT64);
    F(zero_grad, H5T_NATIVE_INT64);
    F(mean_l0, H5T_NATIVE_DOUBLE);
    F(mean_l2, H5T_NATIVE_DOUBLE);
    F(mean_linf, H5T_NATIVE_DOUBLE);
    F(mean_iterations, H5T_NATIVE_DOUBLE);
    F(seed, H5T_NATIVE_UINT64);
    F(success_lo, H5T_NATIVE_DOUBLE);
    F(success_hi, H5T_NATIVE_DOUBLE);
#undef F
    if (e < 0) {
        H5Tclose(t);
        return -1;
    }
    return t;
}

static void fill_row(const reduce_row *r, summary_row *s) {
    const ds_attack_rates *q = &r->rates;
    *s = (summary_row){
        .model = r->g->model, .temperature = r->g->temperature,
        .attack = ds_attack_kind_name(r->a->kind), .params = reduce_row_params(r),
        .n = q->attempts, .successes = q->successes, .success_rate = q->success_rate,
        .clean_accuracy = r->clean_accuracy, .zero_grad_share = q->zero_grad_share,
        .test_accuracy = r->test_accuracy, .success_rate_correct = q->success_rate_correct,
        .config = r->a->name, .role = ds_role_name(r->g->role), .first = r->g->first,
        .count = r->g->count, .correct = q->correct, .correct_successes = q->correct_successes,
        .zero_grad = q->zero_grad, .mean_l0 = q->mean_l0, .mean_l2 = q->mean_l2,
        .mean_linf = q->mean_linf, .mean_iterations = q->mean_iterations, .seed = r->seed,
        .success_lo = r->success_lo, .success_hi = r->success_hi};
}

static int write_summary(hid_t file, const reducer *r) {
    int n = r->nrows, rc = DS_OK;
    summary_row *rows = calloc((size_t)n + 1, sizeof *rows);
    if (!rows) return ds_fail(DS_ENOMEM, "summary.h5: out of memory");
    for (int i = 0; i < n; i++) fill_row(&r->rows[i], &rows[i]);
    hid_t str = H5Tcopy(H5T_C_S1), mem = H5I_INVALID_HID, packed = H5I_INVALID_HID;
    hid_t space = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)n};
    if (str < 0 || H5Tset_size(str, H5T_VARIABLE) < 0 || H5Tset_cset(str, H5T_CSET_UTF8) < 0 ||
        (mem = summary_type(str)) < 0 || (packed = H5Tcopy(mem)) < 0 || H5Tpack(packed) < 0 ||
        (space = H5Screate_simple(1, dims, NULL)) < 0) {
        rc = ds_h5_fail(DS_EIO, file, "summary", "cannot make the row type");
        goto out;
    }
    d = H5Dcreate2(file, "summary", packed, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (d < 0) {
        rc = ds_h5_fail(DS_EIO, file, "summary", "cannot create dataset");
        goto out;
    }
    if (n > 0 && H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0) {
        rc = ds_h5_fail(DS_EIO, file, "summary", "cannot write dataset");
        goto out;
    }
    rc = ds_h5_attr_set_string(d, "success_rate", "successes / n attempts (ds_attack_rates)");
    if (!rc) rc = ds_h5_attr_set_string(d, "clean_accuracy", "attempts whose clean input the "
                                        "model classified correctly / n");
    if (!rc) rc = ds_h5_attr_set_string(d, "zero_grad_share", "attempts whose first input "
                                        "gradient was exactly zero / n");
    if (!rc) rc = ds_h5_attr_set_string(d, "success_lo", "lower end of the 95% Wilson score "
                                        "interval of success_rate over the n attempts");
    if (!rc) rc = ds_h5_attr_set_string(d, "success_hi", "upper end of the 95% Wilson score "
                                        "interval of success_rate over the n attempts");
out:
    if (d >= 0) H5Dclose(d);
    if (space >= 0) H5Sclose(space);
    if (packed >= 0) H5Tclose(packed);
    if (mem >= 0) H5Tclose(mem);
    if (str >= 0) H5Tclose(str);
    free(rows);
    return rc;
}

int reduce_summary_h5(reducer *r) {
    char path[1200];
    int rc = reduce_stage(r, "summary.h5", path, sizeof path);
    if (rc) return rc;
    ds_h5_writer w;
    if ((rc = ds_h5_begin(&w, path, &r->prov))) return rc;
    rc = write_summary(w.file, r);
    if (!rc) rc = reduce_aggregate_h5(r, w.file); // "aggregate", "aggregate_models" (seeds.c)
    if (!rc) rc = reduce_checks_h5(w.file, r);    // "robust" and "checks" (checks.c)
    if (!rc) rc = ds_h5_attr_set_string(w.file, "dataset", r->dataset);
    if (!rc) rc = ds_h5_attr_set_int64(w.file, "train_n", r->plan.train_n);
    if (!rc) rc = ds_h5_attr_set_int64(w.file, "test_n", r->plan.test_n);
    if (rc) {
        ds_h5_abandon(&w);
        return rc;
    }
    reduce_staged_written(r, "summary.h5");
    return ds_h5_commit(&w);
}

// ---- summary.csv ----

// A field per RFC 4180: quoted (with inner quotes doubled) if it holds a comma, quote or newline.
static void csv_field(ds_strbuf *b, const char *s) {
    if (!strpbrk(s, ",\"\r\n")) {
        ds_sb_printf(b, "%s", s);
        return;
    }
    ds_sb_printf(b, "\"");
    for (; *s; s++) ds_sb_printf(b, *s == '"' ? "\"\"" : "%c", *s);
    ds_sb_printf(b, "\"");
}

void reduce_csv_field(ds_strbuf *b, const char *s) { csv_field(b, s); }

int reduce_summary_csv(reducer *r) {
    ds_strbuf b = {0};
    ds_sb_printf(&b, "model,temperature,attack,params,n,successes,success_rate,clean_accuracy,"
                 "zero_grad_share,seed,success_lo,success_hi,config\n");
    for (int i = 0; i < r->nrows; i++) {
        const reduce_row *row = &r->rows[i];
        csv_field(&b, row->g->model);
        ds_sb_printf(&b, ",%g,", row->g->temperature);
        csv_field(&b, ds_attack_kind_name(row->a->kind));
        ds_sb_printf(&b, ",");
        csv_field(&b, reduce_row_params(row));
        ds_sb_printf(&b, ",%d,%d,%.17g,%.17g,%.17g", row->rates.attempts, row->rates.successes,
                     row->rates.success_rate, row->clean_accuracy, row->rates.zero_grad_share);
        // Appended columns (existing ones keep their place): seed, Wilson interval ("" if n = 0).
        ds_sb_printf(&b, ",%" PRIu64 ",", row->seed);
        if (row->rates.attempts)
            ds_sb_printf(&b, "%.17g,%.17g", row->success_lo, row->success_hi);
        else
            ds_sb_printf(&b, ",");
        ds_sb_printf(&b, ","); // the job's [attack NAME]: tells apart equal params of two sections
        csv_field(&b, row->a->name);
        ds_sb_printf(&b, "\n");
    }
    int rc = b.failed ? ds_fail(DS_ENOMEM, "summary.csv: out of memory")
                      : reduce_write_text(r, "summary.csv", b.s, b.len);
    ds_sb_free(&b);
    return rc;
}

// ---- summary.md ----

static void pct(ds_strbuf *b, double x) {
    if (isnan(x)) ds_sb_printf(b, "—");
    else ds_sb_printf(b, "%.2f", 100.0 * x);
}

void reduce_md_pct(ds_strbuf *b, double x) { pct(b, x); }

// The first attack configuration that is the papers' FGSM (eps 0.3 on the softmax, true labels;
// *e: the index of 0.3 in its ε list), JSMA (JSMA-F, theta +1, gamma 14.5%) or any C&W L2, or -1.
static int paper_attack(const ds_job *job, ds_attack_kind kind, int *e) {
    *e = 0;
    for (int i = 0; i < job->nattacks; i++) {
        const ds_job_attack *a = &job->attacks[i];
        const ds_craft *c = &a->craft;
        if (a->kind != kind) continue;
        // The default numerics only: the papers' numbers beside our evaluation as the README
        // defines it.
        const ds_numerics dflt = {0}, *n = ds_craft_numerics(c);
        if (n && memcmp(n, &dflt, sizeof dflt)) continue;
        if (kind == DS_KIND_FGSM && c->fgsm.space == DS_SPACE_SOFTMAX &&
            c->fgsm.labels == DS_LABELS_TRUE && (*e = reduce_eps_index(c, 0.3)) >= 0)
            return i;
        *e = 0;
        if (kind == DS_KIND_JSMA && c->jsma.space == DS_SPACE_SOFTMAX && c->jsma.theta == 1 &&
            fabs(c->jsma.gamma - 0.145) < 1e-6)
            return i;
        if (kind == DS_KIND_CW_L2) return i;
    }
    return -1;
}

static const char *T100_STUDENT = "T100/student";

static void md_models(ds_strbuf *b, const reducer *r) {
    ds_sb_printf(b, "## Models\n\n"
                 "Test accuracy on the %d test samples of the run (the `test_accuracy` attribute of "
                 "each model in weights.h5).\n\n", r->plan.test_n);
    if (r->job.nseeds > 1) reduce_md_models_over_seeds(b, r);
    ds_sb_printf(b, "| model | role | T | epochs | test accuracy (%%) |\n|---|---|---:|---:|---:|\n");
    int bad = 0;
    for (int i = 0; i < r->plan.ntasks; i++) {
        const ds_task *t = &r->plan.tasks[i];
        if (t->kind != DS_TASK_TRAIN) continue;
        ds_sb_printf(b, "| %s | %s | %g | %d", t->model, ds_role_name(t->role), t->temperature,
                     t->epochs);
        if (t->source_task >= 0)
            ds_sb_printf(b, " (+%d warm start)", r->plan.tasks[t->source_task].epochs);
        ds_sb_printf(b, " | ");
        pct(b, r->test_accuracy[i]);
        ds_sb_printf(b, " |\n");
        bad += t->role != DS_ROLE_WARMSTART && r->test_accuracy[i] < 0.5;
    }
    if (bad) {
        ds_sb_printf(b, "\n**Warning:** ");
        int k = 0;
        for (int i = 0; i < r->plan.ntasks; i++) {
            const ds_task *t = &r->plan.tasks[i];
            if (t->kind == DS_TASK_TRAIN && t->role != DS_ROLE_WARMSTART &&
                r->test_accuracy[i] < 0.5)
                ds_sb_printf(b, "%s%s (%.2f%%)", k++ ? ", " : "", t->model, 100 * r->test_accuracy[i]);
        }
        ds_sb_printf(b, " did not learn (test accuracy below 50%%): attack success rates against "
                     "%s are meaningless. Train longer (more epochs or samples)%s.\n",
                     bad > 1 ? "them" : "it",
                     r->job.warm_start > 0 ? "" : ", or start teachers and students from a shared "
                                               "warm start ([train] warm_start = 1)");
    }
    ds_sb_printf(b, "\n");
}

static void md_attacks(ds_strbuf *b, const reducer *r) {
    ds_sb_printf(b, "## Attacks\n\n"
                 "One row per attack configuration and model, in plan order (summary.csv has the "
                 "same rows as fractions at full precision). *success* is over all attempts, "
                 "*on correct* over the attempts whose clean input the model classified correctly; "
                 "*zero grad.* is the share of attempts whose first input gradient was exactly zero "
                 "(gradient masking).\n\n");
    int seeds = r->job.nseeds > 1; // then also the table over seeds, and a Wilson column
    if (seeds) reduce_md_attacks_over_seeds(b, r);
    ds_sb_printf(b, "| model | T | attack | configuration | params | attempts | successes | success (%%) "
                 "|%s on correct (%%) | clean accuracy (%%) | zero grad. (%%) |\n"
                 "|---|---:|---|---|---|---:|---:|---:|%s---:|---:|---:|\n",
                 seeds ? " 95% Wilson (%) |" : "", seeds ? "---:|" : "");
    for (int i = 0; i < r->nrows; i++) {
        const reduce_row *row = &r->rows[i];
        ds_sb_printf(b, "| %s | %g | %s | %s | %s | %d | %d | ", row->g->model, row->g->temperature,
                     ds_attack_kind_name(row->a->kind), row->a->name, reduce_row_params(row),
                     row->rates.attempts, row->rates.successes);
        pct(b, row->rates.success_rate);
        ds_sb_printf(b, " | ");
        if (seeds) {
            reduce_md_interval(b, row->success_lo, row->success_hi);
            ds_sb_printf(b, " | ");
        }
        if (row->rates.correct) pct(b, row->rates.success_rate_correct);
        else ds_sb_printf(b, "—");
        ds_sb_printf(b, " | ");
        pct(b, row->clean_accuracy);
        ds_sb_printf(b, " | ");
        pct(b, row->rates.zero_grad_share);
        ds_sb_printf(b, " |\n");
    }
    if (!r->plan.ngroups)
        ds_sb_printf(b, "| (no attacks in this job) | | | | | | | | | | |%s\n", seeds ? " |" : "");
    ds_sb_printf(b, "\n");
}

// A number of the papers: as the table shows it, and the range it states (a value: lo = hi).
typedef struct {
    const char *text;
    double lo, hi; // percent
} paper_value;

// Several seeds: "yes" if the paper's value (any of its range) lies inside our 95% t interval.
static void inside_cell(ds_strbuf *b, paper_value p, const ds_stats *s) {
    if (isnan(s->lo) || isnan(s->hi)) ds_sb_printf(b, "—");
    else ds_sb_printf(b, "%s", p.lo <= 100 * s->hi && p.hi >= 100 * s->lo ? "yes" : "no");
}

// One "Beside the papers" line: ours is the success rate of an attack configuration against a
// model (one seed: the row's, with its Wilson interval; several: mean ± sd over the seeds).
static void paper_line(ds_strbuf *b, const reducer *r, const char *what, paper_value paper,
                       const reduce_agg *agg, const char *missing) {
    int seeds = r->job.nseeds > 1;
    ds_sb_printf(b, "| %s | %s | ", what, paper.text);
    if (!agg) {
        ds_sb_printf(b, "— |%s %s |\n", seeds ? " — |" : "", missing);
        return;
    }
    const reduce_row *row = agg->row;
    if (seeds) {
        reduce_md_mean_sd(b, &agg->success);
        ds_sb_printf(b, " | ");
        inside_cell(b, paper, &agg->success);
        ds_sb_printf(b, " | [attack %s], %d seeds of %d attempts on %d samples; 95%% t interval ",
                     row->a->name, agg->success.n, row->rates.attempts, row->g->count);
        reduce_md_interval(b, agg->success.lo, agg->success.hi);
        ds_sb_printf(b, "%%");
        // The other rates as means (the Attacks table has their spread).
        if (row->a->kind == DS_KIND_FGSM && agg->success_correct.n) {
            ds_sb_printf(b, "; mean ");
            pct(b, agg->success_correct.mean);
            ds_sb_printf(b, "%% over the correctly classified");
        }
        if (agg->zero_grad.max > 0) {
            ds_sb_printf(b, "; zero gradient in ");
            pct(b, agg->zero_grad.mean);
            ds_sb_printf(b, "%% (mean)");
        }
        ds_sb_printf(b, " |\n");
        return;
    }
    pct(b, row->rates.success_rate);
    ds_sb_printf(b, " | [attack %s], %d attempts on %d samples", row->a->name, row->rates.attempts,
                 row->g->count);
    if (row->rates.attempts) {
        ds_sb_printf(b, " (95%% Wilson interval ");
        reduce_md_interval(b, row->success_lo, row->success_hi);
        ds_sb_printf(b, "%%)");
    }
    if (row->a->kind == DS_KIND_FGSM && row->rates.correct) {
        ds_sb_printf(b, "; ");
        pct(b, row->rates.success_rate_correct);
        ds_sb_printf(b, "%% over the %d correctly classified", row->rates.correct);
    }
    if (row->rates.zero_grad) {
        ds_sb_printf(b, "; zero gradient in ");
        pct(b, row->rates.zero_grad_share);
        ds_sb_printf(b, "%%");
    }
    ds_sb_printf(b, " |\n");
}

static void accuracy_line(ds_strbuf *b, const reducer *r, const char *what, paper_value paper,
                          const char *model) {
    ds_sb_printf(b, "| %s | %s | ", what, paper.text);
    if (r->job.nseeds > 1) {
        const reduce_model_agg *m = reduce_find_model_agg(r, model);
        if (!m) {
            ds_sb_printf(b, "— | — | no %s in this sweep |\n", model);
            return;
        }
        reduce_md_mean_sd(b, &m->test_accuracy);
        ds_sb_printf(b, " | ");
        inside_cell(b, paper, &m->test_accuracy);
        ds_sb_printf(b, " | %s, %d seeds, %d test samples; 95%% t interval ", model,
                     m->test_accuracy.n, r->plan.test_n);
        reduce_md_interval(b, m->test_accuracy.lo, m->test_accuracy.hi);
        ds_sb_printf(b, "%% |\n");
        return;
    }
    int t = ds_plan_model_task(&r->plan, model);
    if (t < 0) {
        ds_sb_printf(b, "— | no %s in this sweep |\n", model);
        return;
    }
    pct(b, r->test_accuracy[t]);
    ds_sb_printf(b, " | %s, %d test samples |\n", model, r->plan.test_n);
}

static void md_papers(ds_strbuf *b, const reducer *r) {
    const ds_job *job = &r->job;
    int has100 = reduce_find_model_agg(r, T100_STUDENT) != NULL, seeds = job->nseeds > 1;
    ds_sb_printf(b, "## Beside the papers\n\n"
                 "Papernot et al., *Distillation as a Defense to Adversarial Perturbations against "
                 "Deep Neural Networks* (S&P 2016), MNIST. The papers crafted FGSM examples for all "
                 "10,000 test samples and ran JSMA on a subset (about 100 samples, 9 targets each); "
                 "compare with care when this run used fewer samples or shorter training.\n\n");
    if (seeds)
        ds_sb_printf(b, "*This run* is the mean ± sample standard deviation (number of seeds) over "
                     "the %d seeds; *in our interval* says whether the paper's value (for a range "
                     "or a bound: any part of it) lies inside our 95%% Student t interval over the "
                     "seeds.\n\n"
                     "| quantity | paper (%%) | this run (%%) | in our interval | notes |\n"
                     "|---|---:|---:|---|---|\n", job->nseeds);
    else
        ds_sb_printf(b, "| quantity | paper (%%) | this run (%%) | notes |\n|---|---:|---:|---|\n");
    accuracy_line(b, r, "baseline test accuracy", (paper_value){"99.51", 99.51, 99.51}, "baseline");
    accuracy_line(b, r, "distilled (T=100 student) test accuracy",
                  (paper_value){"99.05", 99.05, 99.05}, T100_STUDENT);
    const char *no100 = has100 ? "T100/student not attacked by this configuration"
                               : "T=100 is not in this sweep";
    int fe, je, ce;
    int f = paper_attack(job, DS_KIND_FGSM, &fe), j = paper_attack(job, DS_KIND_JSMA, &je);
    const char *nof = "no FGSM eps=0.3 space=softmax labels=true configuration in this job";
    const char *noj = "no JSMA theta=1 gamma=0.145 space=softmax configuration in this job";
    paper_line(b, r, "FGSM eps=0.3 success on the baseline", (paper_value){"88.03", 88.03, 88.03},
               f < 0 ? NULL : reduce_find_agg(r, "baseline", f, fe),
               f < 0 ? nof : "baseline not attacked");
    paper_line(b, r, "FGSM eps=0.3 success at T=100", (paper_value){"below 1.5", 0, 1.5},
               f < 0 ? NULL : reduce_find_agg(r, T100_STUDENT, f, fe), f < 0 ? nof : no100);
    paper_line(b, r, "JSMA success on the baseline", (paper_value){"~96-97 (reported)", 96, 97},
               j < 0 ? NULL : reduce_find_agg(r, "baseline", j, je),
               j < 0 ? noj : "baseline not attacked");
    paper_line(b, r, "JSMA success at T=100", (paper_value){"0.45", 0.45, 0.45},
               j < 0 ? NULL : reduce_find_agg(r, T100_STUDENT, j, je), j < 0 ? noj : no100);
    int c = paper_attack(job, DS_KIND_CW_L2, &ce);
    if (c >= 0) // Carlini & Wagner, "Defensive Distillation is Not Robust to Adversarial Examples"
        paper_line(b, r, "C&W L2 success at T=100 (Carlini & Wagner 2016)",
                   (paper_value){"~100", 100, 100}, reduce_find_agg(r, T100_STUDENT, c, ce),
                   no100);
    ds_sb_printf(b, "\n");
}

// ---- Rounding: the same attack under different rounding settings ----

// Whether configurations x and y are the same attack but for their rounding settings.
// (FGSM and JSMA themselves: a transfer's rates are those of another model's examples.)
static int same_but_numerics(const ds_job_attack *x, const ds_job_attack *y) {
    if (x->kind != y->kind || (x->kind != DS_KIND_FGSM && x->kind != DS_KIND_JSMA)) return 0;
    return reduce_same_but_numerics(&x->craft, &y->craft); // the rule of check g (checks.c)
}

// One table per attack that the job runs under several rounding settings: success and zero
// gradients per model and setting (README, Definitions: how the attack gradients are computed).
static void md_rounding(ds_strbuf *b, const reducer *r) {
    const ds_job *job = &r->job;
    int done[DS_JOB_MAX_ATTACKS] = {0}, header = 0;
    for (int i = 0; i < job->nattacks; i++) {
        int fam[DS_JOB_MAX_ATTACKS], n = 0;
        if (done[i]) continue;
        for (int k = i; k < job->nattacks; k++)
            if (!done[k] && (k == i || same_but_numerics(&job->attacks[i], &job->attacks[k]))) {
                fam[n++] = k;
                done[k] = 1;
            }
        if (n < 2) continue;
        if (!header++)
            ds_sb_printf(b, "## Rounding\n\n"
                         "The same attack with different rounding of its gradients (`denormals`, "
                         "`gradient`, `precision`: README, Definitions). Success (%%) and, in "
                         "brackets, the share of attempts with an exactly zero first gradient%s.\n\n",
                         job->nseeds > 1 ? " (over the seeds: mean ± sd (number of seeds), and "
                                           "the mean share)" : "");
        ds_sb_printf(b, "%s `%s`:\n\n| model | T |", ds_attack_kind_name(job->attacks[i].kind),
                     job->attacks[i].name);
        for (int k = 0; k < n; k++) {
            const ds_numerics *m = ds_craft_numerics(&job->attacks[fam[k]].craft);
            ds_sb_printf(b, " %s<br>%s, %s, %s |", job->attacks[fam[k]].name,
                         ds_denormals_name(m->denormals), ds_gradient_name(m->gradient),
                         ds_precision_name(m->precision));
        }
        ds_sb_printf(b, "\n|---|---:|");
        for (int k = 0; k < n; k++) ds_sb_printf(b, "---:|");
        ds_sb_printf(b, "\n");
        // One line per base model (and ε of an ε list); one seed: one aggregate per row.
        for (int g = 0; g < r->naggs; g++) {
            const reduce_row *first = r->aggs[g].row;
            if (first->g->attack != i) continue;
            const char *model = first->g->base_model;
            ds_sb_printf(b, "| %s", model);
            if (first->n_eps > 1) ds_sb_printf(b, " (eps %g)", (double)first->eps);
            ds_sb_printf(b, " | %g |", first->g->temperature);
            for (int k = 0; k < n; k++) {
                const reduce_agg *x = reduce_find_agg(r, model, fam[k], first->eps_index);
                ds_sb_printf(b, " ");
                if (!x) {
                    ds_sb_printf(b, "— |");
                    continue;
                }
                if (job->nseeds > 1) reduce_md_mean_sd(b, &x->success);
                else pct(b, x->row->rates.success_rate);
                ds_sb_printf(b, " (");
                pct(b, x->zero_grad.mean); // one seed: the row's share itself
                ds_sb_printf(b, ") |");
            }
            ds_sb_printf(b, "\n");
        }
        ds_sb_printf(b, "\n");
    }
}

static void md_definitions(ds_strbuf *b, const reducer *r) {
    int kinds[DS_NKINDS] = {0}, untargeted_cw = 0, targeted_cw = 0;
    for (int i = 0; i < r->job.nattacks; i++) {
        const ds_job_attack *a = &r->job.attacks[i];
        kinds[a->kind] = 1;
        if (a->kind == DS_KIND_CW_L2 && a->craft.cw.targets == DS_TARGETS_ALL) targeted_cw = 1;
        if (a->kind == DS_KIND_CW_L2 && a->craft.cw.targets == DS_TARGETS_NONE) untargeted_cw = 1;
    }
    ds_sb_printf(b, "## Success-rate definitions\n\n"
                 "Every rate is computed by `ds_attack_rates_compute` (src/attack/common.c) over the "
                 "per-attempt records in adversarial.h5.\n\n");
    if (kinds[DS_KIND_FGSM])
        ds_sb_printf(b, "- **fgsm**: one attempt per test sample; success = the adversarial example "
                     "is misclassified. *success* is over all samples (the papers' table), *on "
                     "correct* over the samples the model classified correctly.\n");
    if (kinds[DS_KIND_JSMA])
        ds_sb_printf(b, "- **jsma**: targeted at every class but the true one, 9 attempts per "
                     "sample; success = the model outputs the target within the budget. The rate is "
                     "over (sample, target) attempts.\n");
    if (targeted_cw)
        ds_sb_printf(b, "- **cw-l2** (targeted): like JSMA, over (sample, target) attempts; success "
                     "= the model outputs the target.\n");
    if (untargeted_cw)
        ds_sb_printf(b, "- **cw-l2** (untargeted): one attempt per sample; success = "
                     "misclassified.\n");
    if (kinds[DS_KIND_TRANSFER])
        ds_sb_printf(b, "- **transfer**: examples crafted on the source model (params `source=`), "
                     "shown to the attacked model; over the source attack's attempts (per sample "
                     "for FGSM, per (sample, target) for JSMA and targeted C&W); success = the "
                     "attacked model misclassifies (untargeted crafting) or outputs the target.\n");
    ds_sb_printf(b, "- *clean accuracy*: share of the attempts whose clean input the attacked model "
                 "classified correctly.\n\n");
}

int reduce_summary_md(reducer *r) {
    ds_strbuf b = {0};
    ds_sb_printf(&b, "# distill_sweep results: %s\n\n", r->job.name);
    ds_sb_printf(&b, "Dataset %s: %d training and %d test samples; ",
                 r->dataset[0] ? r->dataset : "(unknown)", r->plan.train_n, r->plan.test_n);
    if (r->job.nseeds == 1) {
        ds_sb_printf(&b, "job seed %llu", (unsigned long long)r->job.seed);
    } else { // every seed a full replicate, its models named s<seed>/...
        ds_sb_printf(&b, "%d seeds (replicates s<seed>/):", r->job.nseeds);
        for (int i = 0; i < r->job.nseeds; i++)
            ds_sb_printf(&b, " %llu", (unsigned long long)r->job.seeds[i]);
    }
    ds_sb_printf(&b, "; temperatures");
    for (int i = 0; i < r->job.ntemps; i++) ds_sb_printf(&b, " %g", r->job.temps[i]);
    ds_sb_printf(&b, "; %s. Files: weights.h5, soft_labels.h5, adversarial.h5, summary.h5, "
                 "summary.csv, %schecks.csv, robust.csv, figure1.png (figure1.gp and figure1.dat "
                 "to re-plot), figure2.png when a configuration has an eps list.\n\n",
                 r->job.warm_start > 0 ? "teachers and students start from a shared warm start"
                                    : "every network trained from scratch",
                 r->job.nseeds > 1 ? "summary-seeds.csv (over the seeds), " : "");
    md_models(&b, r);
    md_attacks(&b, r);
    md_papers(&b, r);
    md_rounding(&b, r);
    reduce_checks_md(&b, r); // robust accuracy and the masking checks (checks.c)
    md_definitions(&b, r);
    int rc = b.failed ? ds_fail(DS_ENOMEM, "summary.md: out of memory")
                      : reduce_write_text(r, "summary.md", b.s, b.len);
    ds_sb_free(&b);
    return rc;
}
