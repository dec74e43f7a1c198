// Replicates: every attack configuration (at each ε of an ε list: one per summary row of a
// replicate) and every model over the seeds of a run ([run] seeds), with the statistics of
// ds_stats.h, written to summary-seeds.csv, summary.h5's "aggregate" and "aggregate_models"
// and summary.md's tables over seeds; and every per-seed row's 95% Wilson interval over its
// attempts. A one-seed run has aggregates too (n = 1: no spread, no interval).
#include "ds_error.h"
#include "reduce_internal.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SEEDS_CAP = DS_JOB_MAX_SEEDS * 21 }; // "1 2 3": up to 20 digits and a blank per seed

// ---- Grouping ----

const reduce_agg *reduce_find_agg(const reducer *r, const char *base, int ai, int e) {
    for (int i = 0; i < r->naggs; i++) {
        const reduce_row *row = r->aggs[i].row;
        if (row->g->attack == ai && row->eps_index == e && !strcmp(row->g->base_model, base))
            return &r->aggs[i];
    }
    return NULL;
}

const reduce_model_agg *reduce_find_model_agg(const reducer *r, const char *base) {
    for (int i = 0; i < r->nmodel_aggs; i++)
        if (!strcmp(r->model_aggs[i].task->base_model, base)) return &r->model_aggs[i];
    return NULL;
}

// The replicates' values in replicate order.
static void agg_stats(reduce_agg *a) {
    double s[DS_JOB_MAX_SEEDS], c[DS_JOB_MAX_SEEDS], t[DS_JOB_MAX_SEEDS], z[DS_JOB_MAX_SEEDS];
    double sc[DS_JOB_MAX_SEEDS];
    int n = 0, nc = 0;
    a->row = NULL;
    for (int k = 0; k < DS_JOB_MAX_SEEDS; k++) {
        const reduce_row *row = a->reps[k];
        if (!row) continue;
        if (!a->row) a->row = row;
        s[n] = row->rates.success_rate;
        c[n] = row->clean_accuracy;
        t[n] = row->test_accuracy;
        z[n] = row->rates.zero_grad_share;
        n++;
        if (row->rates.correct) sc[nc++] = row->rates.success_rate_correct;
    }
    ds_stats_compute(s, n, &a->success);
    ds_stats_compute(c, n, &a->clean);
    ds_stats_compute(t, n, &a->test_accuracy);
    ds_stats_compute(z, n, &a->zero_grad);
    ds_stats_compute(sc, nc, &a->success_correct);
}

// One aggregate per (base model, attack configuration, ε index): each ε of a list its own.
static int group_attacks(reducer *r) {
    r->aggs = calloc((size_t)r->nrows + 1, sizeof *r->aggs);
    if (!r->aggs) return ds_fail(DS_ENOMEM, "%s: out of memory", r->run_dir);
    for (int i = 0; i < r->nrows; i++) {
        const reduce_row *row = &r->rows[i];
        int rep = row->g->rep;
        if (rep < 0 || rep >= r->job.nseeds)
            return ds_fail(DS_EINVAL, "reduce: %s %s: replicate %d of %d", row->g->model,
                           row->a->name, rep, r->job.nseeds);
        reduce_agg *a = (reduce_agg *)reduce_find_agg(r, row->g->base_model, row->g->attack,
                                                      row->eps_index);
        if (!a) {
            a = &r->aggs[r->naggs++];
            a->row = row;
        }
        if (a->reps[rep])
            return ds_fail(DS_EINVAL, "reduce: two rows of %s (%s) against %s in replicate %d",
                           row->a->name, row->params, row->g->base_model, rep);
        a->reps[rep] = row;
    }
    for (int i = 0; i < r->naggs; i++) agg_stats(&r->aggs[i]);
    return DS_OK;
}

static int group_models(reducer *r) {
    r->model_aggs = calloc((size_t)r->plan.ntasks + 1, sizeof *r->model_aggs);
    if (!r->model_aggs) return ds_fail(DS_ENOMEM, "%s: out of memory", r->run_dir);
    for (int i = 0; i < r->plan.ntasks; i++) {
        const ds_task *t = &r->plan.tasks[i];
        if (t->kind != DS_TASK_TRAIN) continue;
        if (t->rep < 0 || t->rep >= r->job.nseeds)
            return ds_fail(DS_EINVAL, "reduce: %s: replicate %d of %d", t->id, t->rep, r->job.nseeds);
        reduce_model_agg *m = (reduce_model_agg *)reduce_find_model_agg(r, t->base_model);
        if (!m) {
            m = &r->model_aggs[r->nmodel_aggs++];
            m->task = t;
            for (int k = 0; k < DS_JOB_MAX_SEEDS; k++) m->reps[k] = -1;
        }
        m->reps[t->rep] = i;
    }
    for (int i = 0; i < r->nmodel_aggs; i++) {
        reduce_model_agg *m = &r->model_aggs[i];
        double x[DS_JOB_MAX_SEEDS];
        int n = 0;
        m->task = NULL;
        for (int k = 0; k < DS_JOB_MAX_SEEDS; k++) {
            if (m->reps[k] < 0) continue;
            if (!m->task) m->task = &r->plan.tasks[m->reps[k]];
            x[n++] = r->test_accuracy[m->reps[k]];
        }
        ds_stats_compute(x, n, &m->test_accuracy);
    }
    return DS_OK;
}

int reduce_replicates(reducer *r) {
    for (int i = 0; i < r->nrows; i++) {
        reduce_row *row = &r->rows[i];
        row->seed = r->job.seeds[row->g->rep];
        ds_wilson(row->rates.successes, row->rates.attempts, &row->success_lo, &row->success_hi);
    }
    int rc = group_attacks(r);
    if (!rc) rc = group_models(r);
    return rc;
}

// "1 2 3": the seeds of the replicates k with has[k].
static void seeds_text(const reducer *r, const int *has, char *out, size_t cap) {
    size_t len = 0;
    out[0] = '\0';
    for (int k = 0; k < r->job.nseeds && len < cap; k++)
        if (has[k])
            len += (size_t)snprintf(out + len, cap - len, "%s%" PRIu64, len ? " " : "",
                                    r->job.seeds[k]);
}

static void agg_seeds(const reducer *r, const reduce_agg *a, char *out, size_t cap) {
    int has[DS_JOB_MAX_SEEDS];
    for (int k = 0; k < DS_JOB_MAX_SEEDS; k++) has[k] = a->reps[k] != NULL;
    seeds_text(r, has, out, cap);
}

static void model_seeds(const reducer *r, const reduce_model_agg *m, char *out, size_t cap) {
    int has[DS_JOB_MAX_SEEDS];
    for (int k = 0; k < DS_JOB_MAX_SEEDS; k++) has[k] = m->reps[k] >= 0;
    seeds_text(r, has, out, cap);
}

// ---- summary-seeds.csv ----

static void csv_num(ds_strbuf *b, double x) { // NAN: an empty field
    if (isnan(x)) ds_sb_printf(b, ",");
    else ds_sb_printf(b, ",%.17g", x);
}

int reduce_seeds_csv(reducer *r) {
    ds_strbuf b = {0};
    ds_sb_printf(&b, "model,temperature,attack,params,n_seeds,seeds,success_rate_mean,"
                 "success_rate_sd,success_rate_min,success_rate_max,success_rate_t_lo,"
                 "success_rate_t_hi,clean_accuracy_mean,clean_accuracy_sd,test_accuracy_mean,"
                 "test_accuracy_sd,config\n");
    for (int i = 0; i < r->naggs; i++) {
        const reduce_agg *a = &r->aggs[i];
        char seeds[SEEDS_CAP];
        agg_seeds(r, a, seeds, sizeof seeds);
        reduce_csv_field(&b, a->row->g->base_model);
        ds_sb_printf(&b, ",%g,", a->row->g->temperature);
        reduce_csv_field(&b, ds_attack_kind_name(a->row->a->kind));
        ds_sb_printf(&b, ",");
        reduce_csv_field(&b, reduce_row_params(a->row));
        ds_sb_printf(&b, ",%d,%s", a->success.n, seeds);
        const ds_stats *s = &a->success;
        csv_num(&b, s->mean);
        csv_num(&b, s->sd);
        csv_num(&b, s->min);
        csv_num(&b, s->max);
        csv_num(&b, s->lo);
        csv_num(&b, s->hi);
        csv_num(&b, a->clean.mean);
        csv_num(&b, a->clean.sd);
        csv_num(&b, a->test_accuracy.mean);
        csv_num(&b, a->test_accuracy.sd);
        ds_sb_printf(&b, ",");
        reduce_csv_field(&b, a->row->a->name);
        ds_sb_printf(&b, "\n");
    }
    int rc = b.failed ? ds_fail(DS_ENOMEM, "summary-seeds.csv: out of memory")
                      : reduce_write_text(r, "summary-seeds.csv", b.s, b.len);
    ds_sb_free(&b);
    return rc;
}

// ---- summary.h5: "aggregate" and "aggregate_models" ----

typedef struct {
    const char *model; // the base model
    double temperature;
    const char *attack, *params;
    int64_t n_seeds;
    const char *seeds;
    double success_rate_mean, success_rate_sd, success_rate_min, success_rate_max;
    double success_rate_t_lo, success_rate_t_hi;
    double clean_accuracy_mean, clean_accuracy_sd, test_accuracy_mean, test_accuracy_sd;
    const char *config, *role;
} agg_row;

typedef struct {
    const char *model, *role;
    double temperature;
    int64_t n_seeds;
    const char *seeds;
    double test_accuracy_mean, test_accuracy_sd, test_accuracy_min, test_accuracy_max;
    double test_accuracy_t_lo, test_accuracy_t_hi;
} model_row;

#define F(row, name, type) e |= H5Tinsert(t, #name, HOFFSET(row, name), type)
static hid_t agg_type(hid_t str) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(agg_row));
    if (t < 0) return t;
    herr_t e = 0;
    F(agg_row, model, str);
    F(agg_row, temperature, H5T_NATIVE_DOUBLE);
    F(agg_row, attack, str);
    F(agg_row, params, str);
    F(agg_row, n_seeds, H5T_NATIVE_INT64);
    F(agg_row, seeds, str);
    F(agg_row, success_rate_mean, H5T_NATIVE_DOUBLE);
    F(agg_row, success_rate_sd, H5T_NATIVE_DOUBLE);
    F(agg_row, success_rate_min, H5T_NATIVE_DOUBLE);
    F(agg_row, success_rate_max, H5T_NATIVE_DOUBLE);
    F(agg_row, success_rate_t_lo, H5T_NATIVE_DOUBLE);
    F(agg_row, success_rate_t_hi, H5T_NATIVE_DOUBLE);
    F(agg_row, clean_accuracy_mean, H5T_NATIVE_DOUBLE);
    F(agg_row, clean_accuracy_sd, H5T_NATIVE_DOUBLE);
    F(agg_row, test_accuracy_mean, H5T_NATIVE_DOUBLE);
    F(agg_row, test_accuracy_sd, H5T_NATIVE_DOUBLE);
    F(agg_row, config, str);
    F(agg_row, role, str);
    if (e < 0) H5Tclose(t);
    return e < 0 ? -1 : t;
}

static hid_t model_type(hid_t str) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(model_row));
    if (t < 0) return t;
    herr_t e = 0;
    F(model_row, model, str);
    F(model_row, role, str);
    F(model_row, temperature, H5T_NATIVE_DOUBLE);
    F(model_row, n_seeds, H5T_NATIVE_INT64);
    F(model_row, seeds, str);
    F(model_row, test_accuracy_mean, H5T_NATIVE_DOUBLE);
    F(model_row, test_accuracy_sd, H5T_NATIVE_DOUBLE);
    F(model_row, test_accuracy_min, H5T_NATIVE_DOUBLE);
    F(model_row, test_accuracy_max, H5T_NATIVE_DOUBLE);
    F(model_row, test_accuracy_t_lo, H5T_NATIVE_DOUBLE);
    F(model_row, test_accuracy_t_hi, H5T_NATIVE_DOUBLE);
    if (e < 0) H5Tclose(t);
    return e < 0 ? -1 : t;
}
#undef F

// A compound dataset `name` of n rows (memory layout by `type`, packed in the file).
static int write_table(hid_t file, const char *name, hid_t (*type)(hid_t), const void *rows,
                       int n, const char *about) {
    int rc = DS_OK;
    hid_t str = H5Tcopy(H5T_C_S1), mem = H5I_INVALID_HID, packed = H5I_INVALID_HID;
    hid_t space = H5I_INVALID_HID, d = H5I_INVALID_HID;
    hsize_t dims[1] = {(hsize_t)n};
    if (str < 0 || H5Tset_size(str, H5T_VARIABLE) < 0 || H5Tset_cset(str, H5T_CSET_UTF8) < 0 ||
        (mem = type(str)) < 0 || (packed = H5Tcopy(mem)) < 0 || H5Tpack(packed) < 0 ||
        (space = H5Screate_simple(1, dims, NULL)) < 0)
        rc = ds_h5_fail(DS_EIO, file, name, "cannot make the row type");
    if (!rc && (d = H5Dcreate2(file, name, packed, space, H5P_DEFAULT, H5P_DEFAULT,
                               H5P_DEFAULT)) < 0)
        rc = ds_h5_fail(DS_EIO, file, name, "cannot create dataset");
    if (!rc && n > 0 && H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rows) < 0)
        rc = ds_h5_fail(DS_EIO, file, name, "cannot write dataset");
    if (!rc) rc = ds_h5_attr_set_string(d, "about", about);
    if (d >= 0) H5Dclose(d);
    if (space >= 0) H5Sclose(space);
    if (packed >= 0) H5Tclose(packed);
    if (mem >= 0) H5Tclose(mem);
    if (str >= 0) H5Tclose(str);
    return rc;
}

int reduce_aggregate_h5(const reducer *r, hid_t file) {
    agg_row *rows = calloc((size_t)r->naggs + 1, sizeof *rows);
    model_row *models = calloc((size_t)r->nmodel_aggs + 1, sizeof *models);
    char *seeds = malloc(SEEDS_CAP * ((size_t)r->naggs + (size_t)r->nmodel_aggs + 1));
    int rc = rows && models && seeds ? DS_OK : ds_fail(DS_ENOMEM, "summary.h5: out of memory");
    for (int i = 0; !rc && i < r->naggs; i++) {
        const reduce_agg *a = &r->aggs[i];
        char *sd = seeds + (size_t)i * SEEDS_CAP;
        agg_seeds(r, a, sd, SEEDS_CAP);
        rows[i] = (agg_row){
            .model = a->row->g->base_model, .temperature = a->row->g->temperature,
            .attack = ds_attack_kind_name(a->row->a->kind), .params = reduce_row_params(a->row),
            .n_seeds = a->success.n, .seeds = sd, .success_rate_mean = a->success.mean,
            .success_rate_sd = a->success.sd, .success_rate_min = a->success.min,
            .success_rate_max = a->success.max, .success_rate_t_lo = a->success.lo,
            .success_rate_t_hi = a->success.hi, .clean_accuracy_mean = a->clean.mean,
            .clean_accuracy_sd = a->clean.sd, .test_accuracy_mean = a->test_accuracy.mean,
            .test_accuracy_sd = a->test_accuracy.sd, .config = a->row->a->name,
            .role = ds_role_name(a->row->g->role)};
    }
    for (int i = 0; !rc && i < r->nmodel_aggs; i++) {
        const reduce_model_agg *m = &r->model_aggs[i];
        const ds_stats *s = &m->test_accuracy;
        char *sd = seeds + ((size_t)r->naggs + (size_t)i) * SEEDS_CAP;
        model_seeds(r, m, sd, SEEDS_CAP);
        models[i] = (model_row){
            .model = m->task->base_model, .role = ds_role_name(m->task->role),
            .temperature = m->task->temperature, .n_seeds = s->n, .seeds = sd,
            .test_accuracy_mean = s->mean, .test_accuracy_sd = s->sd, .test_accuracy_min = s->min,
            .test_accuracy_max = s->max, .test_accuracy_t_lo = s->lo, .test_accuracy_t_hi = s->hi};
    }
    if (!rc)
        rc = write_table(file, "aggregate", agg_type, rows, r->naggs,
                         "per base model, attack configuration and eps (params) over the seeds: "
                         "mean, sample sd, min, max and 95% Student t interval (NaN: undefined)");
    if (!rc)
        rc = write_table(file, "aggregate_models", model_type, models, r->nmodel_aggs,
                         "per base model over the seeds: its test accuracy's mean, sample sd, min, "
                         "max and 95% Student t interval (NaN: undefined)");
    free(rows);
    free(models);
    free(seeds);
    return rc;
}

// ---- summary.md: the tables over seeds ----

void reduce_md_mean_sd(ds_strbuf *b, const ds_stats *s) {
    if (s->n == 0 || isnan(s->mean)) {
        ds_sb_printf(b, "—");
        return;
    }
    ds_sb_printf(b, "%.2f", 100 * s->mean);
    if (!isnan(s->sd)) ds_sb_printf(b, " ± %.2f", 100 * s->sd);
    ds_sb_printf(b, " (%d)", s->n);
}

void reduce_md_interval(ds_strbuf *b, double lo, double hi) {
    if (isnan(lo) || isnan(hi)) ds_sb_printf(b, "—");
    else ds_sb_printf(b, "%.2f–%.2f", 100 * lo, 100 * hi);
}

static void md_pct(ds_strbuf *b, double x) {
    if (isnan(x)) ds_sb_printf(b, "—");
    else ds_sb_printf(b, "%.2f", 100 * x);
}

void reduce_md_models_over_seeds(ds_strbuf *b, const reducer *r) {
    ds_sb_printf(b, "Over the %d seeds: the test accuracy's mean ± sample standard deviation "
                 "(number of seeds), min, max and 95%% Student t interval; each replicate's "
                 "models follow, named s<seed>/<model>.\n\n"
                 "| model | role | T | epochs | test accuracy (%%) | min (%%) | max (%%) | 95%% t "
                 "interval (%%) |\n|---|---|---:|---:|---:|---:|---:|---:|\n", r->job.nseeds);
    for (int i = 0; i < r->nmodel_aggs; i++) {
        const reduce_model_agg *m = &r->model_aggs[i];
        const ds_task *t = m->task;
        ds_sb_printf(b, "| %s | %s | %g | %d", t->base_model, ds_role_name(t->role),
                     t->temperature, t->epochs);
        if (t->source_task >= 0)
            ds_sb_printf(b, " (+%d warm start)", r->plan.tasks[t->source_task].epochs);
        ds_sb_printf(b, " | ");
        reduce_md_mean_sd(b, &m->test_accuracy);
        ds_sb_printf(b, " | ");
        md_pct(b, m->test_accuracy.min);
        ds_sb_printf(b, " | ");
        md_pct(b, m->test_accuracy.max);
        ds_sb_printf(b, " | ");
        reduce_md_interval(b, m->test_accuracy.lo, m->test_accuracy.hi);
        ds_sb_printf(b, " |\n");
    }
    ds_sb_printf(b, "\nEach replicate:\n\n");
}

void reduce_md_attacks_over_seeds(ds_strbuf *b, const reducer *r) {
    ds_sb_printf(b, "Over the %d seeds, one row per attack configuration (and eps of an eps "
                 "list) and model: each rate's mean ± sample standard deviation (number of seeds) "
                 "over the replicates, and the 95%% Student t interval of the success rate "
                 "(summary-seeds.csv has these rows at full precision).\n\n"
                 "| model | T | attack | configuration | params | attempts per seed | success (%%) "
                 "| 95%% t interval (%%) | on correct (%%) | clean accuracy (%%) | zero grad. (%%) "
                 "|\n|---|---:|---|---|---|---:|---:|---:|---:|---:|---:|\n", r->job.nseeds);
    for (int i = 0; i < r->naggs; i++) {
        const reduce_agg *a = &r->aggs[i];
        int lo = a->row->rates.attempts, hi = lo;
        for (int k = 0; k < r->job.nseeds; k++) {
            if (!a->reps[k]) continue;
            int n = a->reps[k]->rates.attempts;
            lo = n < lo ? n : lo;
            hi = n > hi ? n : hi;
        }
        ds_sb_printf(b, "| %s | %g | %s | %s | %s | ", a->row->g->base_model,
                     a->row->g->temperature, ds_attack_kind_name(a->row->a->kind),
                     a->row->a->name, reduce_row_params(a->row));
        if (lo == hi) ds_sb_printf(b, "%d | ", lo);
        else ds_sb_printf(b, "%d–%d | ", lo, hi);
        reduce_md_mean_sd(b, &a->success);
        ds_sb_printf(b, " | ");
        reduce_md_interval(b, a->success.lo, a->success.hi);
        ds_sb_printf(b, " | ");
        reduce_md_mean_sd(b, &a->success_correct);
        ds_sb_printf(b, " | ");
        reduce_md_mean_sd(b, &a->clean);
        ds_sb_printf(b, " | ");
        reduce_md_mean_sd(b, &a->zero_grad);
        ds_sb_printf(b, " |\n");
    }
    if (!r->naggs) ds_sb_printf(b, "| (no attacks in this job) | | | | | | | | | | |\n");
    ds_sb_printf(b, "\nEach replicate, with the 95%% Wilson interval of its success rate over its "
                 "attempts:\n\n");
}
