// Per-ε rows and the ε-curve figure (figure2).
//
// An FGSM, PGD or Square configuration (or a transfer crafted with one) whose `eps` is a list
// writes one record per (ε, sample), ε-major in list order (ds_attack.h); merge.c orders a
// group's records ε-major over all its shards, so that ε index e is the slice
// [e * count, (e + 1) * count), in sample order. Each slice is one summary row, named by the
// params string of the same configuration with that single ε: a configuration with one ε has
// exactly the row (and params) it had before ε lists existed.
//
// figure2: success rate against ε, one panel per configuration with an ε list, one curve per
// attacked model, each model with its own dash type and point type (readable in black and
// white); with several seeds one curve per base model, the mean over the seeds with its 95% t
// interval as error bars (the aggregates of seeds.c). figure2.dat and figure2.gp stay in the
// run folder, like figure1's.
#include "ds_error.h"
#include "reduce_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int reduce_eps_index(const ds_craft *c, double eps) {
    const float *list;
    int n = ds_craft_eps(c, &list);
    for (int e = 0; e < n; e++)
        if (fabs(list[e] - eps) < 1e-6) return e; // a float setting: 0.3f = 0.30000001192...
    return -1;
}

int reduce_rows_count(const ds_plan *plan, const ds_job *job) {
    int n = 0;
    for (int i = 0; i < plan->ngroups; i++) {
        int k = ds_craft_eps(&job->attacks[plan->groups[i].attack].craft, NULL);
        n += k > 1 ? k : 1;
    }
    return n;
}

// c at its e-th ε alone (ds_craft_select_eps), the rest of the list zeroed so that two such
// copies compare equal with memcmp when their settings are equal (reduce_same_but_numerics).
static void craft_at(const ds_craft *c, int e, ds_craft *out) {
    *out = *c;
    ds_craft_select_eps(out, e);
    const float *eps;
    if (ds_craft_eps(out, &eps) == 1)
        memset((float *)eps + 1, 0, sizeof(float) * (DS_FGSM_MAX_EPS - 1)); // out's own list
}

void reduce_row_setup(reduce_row *row, const ds_attack_group *g, const ds_job_attack *a, int e) {
    const float *eps;
    row->g = g;
    row->a = a;
    row->n_eps = ds_craft_eps(&a->craft, &eps);
    row->eps_index = row->n_eps > 1 ? e : 0;
    row->eps = row->n_eps > 0 ? eps[row->eps_index] : NAN;
    row->outcome = NULL;
    row->tried = row->fooled = NULL;
    if (row->n_eps > 1) {
        craft_at(&a->craft, row->eps_index, &row->craft);
        ds_job_attack_params(a, &row->craft, row->params, sizeof row->params);
    } else {
        row->craft = a->craft;
        snprintf(row->params, sizeof row->params, "%s", a->params);
    }
}

int reduce_row_records(reduce_row *row, const ds_attack_record *rec, int n) {
    ds_attack_rates_compute(rec, n, &row->rates);
    row->clean_accuracy = row->rates.attempts ? (double)row->rates.correct / row->rates.attempts
                                              : 0.0;
    // Attempts and successes per sample: the checks compare two rows over the samples both
    // attacked (checks.c).
    int count = row->g->count;
    row->tried = calloc((size_t)count + 1, sizeof *row->tried);
    row->fooled = calloc((size_t)count + 1, sizeof *row->fooled);
    if (!row->tried || !row->fooled) return ds_fail(DS_ENOMEM, "%s: out of memory", row->a->name);
    for (int k = 0; k < n; k++) {
        int i = rec[k].index - row->g->first;
        if (i < 0 || i >= count || row->tried[i] == UINT16_MAX) continue;
        row->tried[i]++;
        row->fooled[i] += rec[k].success != 0;
    }
    if (row->n_eps == 0) return DS_OK;
    // One untargeted record per sample (merge.c's shard check): the per-sample worst case.
    row->outcome = calloc((size_t)count + 1, 1);
    if (!row->outcome) return ds_fail(DS_ENOMEM, "%s: out of memory", row->a->name);
    for (int k = 0; k < n; k++) {
        int i = rec[k].index - row->g->first;
        if (i < 0 || i >= count) continue;
        row->outcome[i] = (uint8_t)((rec[k].clean_pred == rec[k].label ? REDUCE_CORRECT : 0) |
                                    (rec[k].success ? REDUCE_FOOLED : 0));
    }
    return DS_OK;
}

void reduce_rows_free(reducer *r) {
    for (int i = 0; r->rows && i < r->nrows; i++) {
        free(r->rows[i].outcome);
        free(r->rows[i].tried);
        free(r->rows[i].fooled);
        r->rows[i].outcome = NULL;
        r->rows[i].tried = r->rows[i].fooled = NULL;
    }
}

// ---- figure2 ----

static const char *norm_label(const ds_craft *c) {
    return c->kind == DS_KIND_PGD && c->pgd.norm == DS_NORM_L2 ? "L2" : "L-inf";
}

// Configurations with an ε list and at least one row, in job order; returns how many.
static int list_configs(const reducer *r, int *out) {
    int n = 0;
    for (int ai = 0; ai < r->job.nattacks; ai++) {
        if (ds_craft_eps(&r->job.attacks[ai].craft, NULL) < 2) continue;
        for (int i = 0; i < r->nrows; i++)
            if (r->rows[i].g->attack == ai) {
                out[n++] = ai;
                break;
            }
    }
    return n;
}

// The curve's model of a row: the attacked model, with several seeds its base model (the
// curves are then the means over the replicates).
static const char *curve_model(const reducer *r, const reduce_row *row) {
    return r->job.nseeds > 1 ? row->g->base_model : row->g->model;
}

// The attacked models in row order (plan order: baseline, then by temperature); returns how many.
static int row_models(const reducer *r, const char **out) {
    int n = 0;
    for (int i = 0; i < r->nrows; i++) {
        const char *m = curve_model(r, &r->rows[i]);
        int k = 0;
        while (k < n && strcmp(out[k], m)) k++;
        if (k == n) out[n++] = m;
    }
    return n;
}

// Several seeds: the line of ε index e of configuration ai against base model base, from its
// aggregate: eps, mean, t interval, n, sd, then each seed's rate (NaN: missing).
static void write_agg_line(ds_strbuf *b, const reducer *r, int ai, const char *base, int e) {
    const reduce_agg *g = reduce_find_agg(r, base, ai, e);
    if (!g) return;
    const ds_stats *s = &g->success;
    double v[] = {s->mean, s->lo, s->hi};
    ds_sb_printf(b, "%g", (double)g->row->eps);
    for (int i = 0; i < 3; i++) ds_sb_printf(b, isnan(v[i]) ? " NaN" : " %.10g", 100 * v[i]);
    ds_sb_printf(b, " %d", s->n);
    ds_sb_printf(b, isnan(s->sd) ? " NaN" : " %.10g", 100 * s->sd);
    for (int j = 0; j < r->job.nseeds; j++)
        if (g->reps[j]) ds_sb_printf(b, " %.10g", 100 * g->reps[j]->rates.success_rate);
        else ds_sb_printf(b, " NaN");
    ds_sb_printf(b, "\n");
}

// The first row of group (configuration ai, model; with several seeds of the first replicate
// of base model `model`); rows of a group are consecutive.
static int group_start(const reducer *r, int ai, const char *model) {
    for (int i = 0; i < r->nrows; i++)
        if (r->rows[i].g->attack == ai && !strcmp(curve_model(r, &r->rows[i]), model)) return i;
    return -1;
}

// One block per (configuration, model) with rows; *nblocks blocks, block k of configuration
// cfg_of[k] and model model_of[k].
static void write_dat2(ds_strbuf *b, const reducer *r, const int *cfg, int ncfg,
                       const char **models, int nmodels, int *cfg_of, int *model_of, int *nblocks) {
    int seeds = r->job.nseeds > 1;
    ds_sb_printf(b, "# figure2.dat (distill_sweep): adversarial success against eps, per "
                 "configuration with an eps list and attacked model%s.\n"
                 "# One block per (configuration, model) (gnuplot index 0, 1, ...), separated by "
                 "two blank lines; eps in increasing order.\n",
                 seeds ? " (base model, over the seeds)" : "");
    if (seeds) {
        ds_sb_printf(b, "# columns: eps  mean_success_%%  t95_lo_%%  t95_hi_%%  n_seeds  sd_%%, "
                     "then success_%% of seed");
        for (int j = 0; j < r->job.nseeds; j++)
            ds_sb_printf(b, " %llu", (unsigned long long)r->job.seeds[j]);
        ds_sb_printf(b, " (NaN: missing)\n");
    } else {
        ds_sb_printf(b, "# columns: eps  success_%%  attempts  successes  zero_grad_%%\n");
    }
    int k = 0;
    for (int c = 0; c < ncfg; c++) {
        const ds_job_attack *a = &r->job.attacks[cfg[c]];
        for (int m = 0; m < nmodels; m++) {
            int s = group_start(r, cfg[c], models[m]);
            if (s < 0) continue;
            int n = r->rows[s].n_eps, ord[DS_FGSM_MAX_EPS];
            for (int e = 0; e < n; e++) ord[e] = s + e;
            for (int i = 1; i < n; i++) // insertion sort by ε (a list is short)
                for (int j = i; j > 0 && r->rows[ord[j]].eps < r->rows[ord[j - 1]].eps; j--) {
                    int t = ord[j];
                    ord[j] = ord[j - 1];
                    ord[j - 1] = t;
                }
            ds_sb_printf(b, "%s# index %d: [attack %s] %s on %s\n", k ? "\n\n" : "", k, a->name,
                         ds_attack_kind_name(a->kind), models[m]);
            for (int e = 0; e < n; e++) {
                const reduce_row *row = &r->rows[ord[e]];
                if (seeds) {
                    write_agg_line(b, r, cfg[c], models[m], row->eps_index);
                    continue;
                }
                ds_sb_printf(b, "%g %.10g %d %d %.10g\n", (double)row->eps,
                             100 * row->rates.success_rate, row->rates.attempts,
                             row->rates.successes, 100 * row->rates.zero_grad_share);
            }
            cfg_of[k] = c;
            model_of[k] = m;
            k++;
        }
    }
    *nblocks = k;
}

static void write_body2(ds_strbuf *b, const reducer *r, const int *cfg, int ncfg,
                        const char **models, const int *cfg_of, const int *model_of, int nblocks,
                        const char *dat, int cols, int rows) {
    // Each model one style in every panel: dash type, point type (black and white) and colour.
    static const char *const colours[] = {"#000000", "#1f77b4", "#d62728", "#2ca02c", "#9467bd",
                                          "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#7f7f7f",
                                          "#bcbd22"};
    static const int points[] = {7, 5, 9, 11, 13, 15, 4, 6, 8, 10, 12, 14, 1, 2, 3};
    enum { NCOL = sizeof colours / sizeof colours[0], NPT = sizeof points / sizeof points[0] };
    char sub[128];
    snprintf(sub, sizeof sub, "%s, %d training and %d test samples",
             r->dataset[0] ? r->dataset : "this run", r->plan.train_n, r->plan.test_n);
    ds_sb_printf(b, "set multiplot layout %d,%d title 'Adversarial success against eps' . "
                 "\"\\n\" . ", rows, cols);
    reduce_gp_str(b, sub);
    ds_sb_printf(b, " noenhanced\n"
                 "set yrange [-2:102]\n"
                 "set ytics 0, 10, 100\n"
                 "set ylabel 'adversarial success rate (%%)'\n"
                 "set grid\n"
                 "set key outside right top vertical Left reverse noenhanced\n");
    for (int c = 0; c < ncfg; c++) {
        const ds_job_attack *a = &r->job.attacks[cfg[c]];
        const float *eps;
        int n = ds_craft_eps(&a->craft, &eps);
        float hi = 0;
        for (int e = 0; e < n; e++) hi = eps[e] > hi ? eps[e] : hi;
        // Title: the section, then its settings without the ε list (the x axis).
        char t[400], settings[256];
        snprintf(t, sizeof t, "[attack %s] %s", a->name, ds_attack_kind_name(a->kind));
        const char *p = strstr(a->params, "eps="), *q = p ? strchr(p, ' ') : NULL;
        if (p) snprintf(settings, sizeof settings, "%.*s%s", (int)(p - a->params), a->params,
                        q ? q + 1 : "");
        else snprintf(settings, sizeof settings, "%s", a->params);
        ds_sb_printf(b, "set title ");
        reduce_gp_str(b, t);
        // The settings in lines of about 60 characters, broken at blanks (a panel is narrow).
        for (char *line = settings; *line;) {
            char *cut = line + strlen(line);
            if (cut - line > 60) {
                cut = line + 60;
                while (cut > line && *cut != ' ') cut--;
                if (cut == line) cut = line + strlen(line);
            }
            char keep = *cut;
            *cut = '\0';
            ds_sb_printf(b, " . \"\\n\" . ");
            reduce_gp_str(b, line);
            *cut = keep;
            line = keep ? cut + 1 : cut;
        }
        ds_sb_printf(b, " font ',9' noenhanced\nset xrange [0:%g]\nset xlabel ", 1.05 * hi);
        snprintf(t, sizeof t, "eps (%s)", norm_label(&a->craft));
        reduce_gp_str(b, t);
        ds_sb_printf(b, "\nplot ");
        int first = 1;
        for (int k = 0; k < nblocks; k++) {
            if (cfg_of[k] != c) continue;
            int m = model_of[k];
            if (!first) ds_sb_printf(b, ", \\\n     ");
            reduce_gp_str(b, first ? dat : "");
            // Several seeds: the mean with its 95% t interval as error bars.
            ds_sb_printf(b, " index %d using %s with %s lw 1.5 dt %d pt %d ps 1.2 lc rgb '%s' "
                         "title ", k, r->job.nseeds > 1 ? "1:2:3:4" : "1:2",
                         r->job.nseeds > 1 ? "yerrorlines" : "linespoints", 1 + m % 5,
                         points[m % NPT], colours[m % NCOL]);
            reduce_gp_str(b, models[m]);
            first = 0;
        }
        ds_sb_printf(b, "\n");
    }
    ds_sb_printf(b, "unset multiplot\n");
}

static void write_gp2(ds_strbuf *b, const reducer *r, const int *cfg, int ncfg,
                      const char **models, const int *cfg_of, const int *model_of, int nblocks,
                      const char *dat, const char *png, const char *svg) {
    int cols = ncfg > 1 ? 2 : 1, rows = (ncfg + cols - 1) / cols;
    int w = 760 * cols, h = 500 * rows + 60;
    ds_sb_printf(b, "# figure2.gp (distill_sweep): success against eps from figure2.dat.\n"
                 "# Re-plot with: cd <run folder> && gnuplot figure2.gp  (writes figure2.png and "
                 "figure2.svg)\n"
                 "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                 "    set terminal pngcairo size %d,%d font 'sans,11'\n"
                 "} else {\n"
                 "    set terminal png size %d,%d\n"
                 "}\n"
                 "set output ", w, h, w, h);
    reduce_gp_str(b, png);
    ds_sb_printf(b, "\n");
    // A multiplot cannot be replotted: the panels again for the SVG.
    write_body2(b, r, cfg, ncfg, models, cfg_of, model_of, nblocks, dat, cols, rows);
    ds_sb_printf(b, "set terminal svg size %d,%d dynamic font 'sans,11'\nset output ", w, h);
    reduce_gp_str(b, svg);
    ds_sb_printf(b, "\n");
    write_body2(b, r, cfg, ncfg, models, cfg_of, model_of, nblocks, dat, cols, rows);
    ds_sb_printf(b, "unset output\n");
}

static const reduce_figure_files FIGURE2 = {"figure2.dat", "figure2.gp", "figure2-run.gp",
                                            "figure2.png", "figure2.svg", "figure2.log"};

int reduce_figure2(reducer *r) {
    size_t nb = (size_t)r->job.nattacks * (size_t)(r->nrows + 1) + 1;
    int *cfg = malloc(sizeof(int) * ((size_t)r->job.nattacks + 1));
    int *cfg_of = malloc(sizeof(int) * nb), *model_of = malloc(sizeof(int) * nb);
    const char **models = malloc(sizeof(char *) * ((size_t)r->nrows + 1));
    ds_strbuf dat = {0}, gp = {0}, run = {0};
    int rc = DS_OK, nblocks = 0;
    if (!cfg || !cfg_of || !model_of || !models) {
        rc = ds_fail(DS_ENOMEM, "figure2: out of memory");
        goto out;
    }
    int ncfg = list_configs(r, cfg), nmodels = row_models(r, models);
    if (ncfg == 0) goto out; // no ε list: no ε curve
    write_dat2(&dat, r, cfg, ncfg, models, nmodels, cfg_of, model_of, &nblocks);
    write_gp2(&gp, r, cfg, ncfg, models, cfg_of, model_of, nblocks, FIGURE2.dat, FIGURE2.png,
              FIGURE2.svg);
    if ((rc = reduce_stage_figure(r, &FIGURE2))) goto out;
    write_gp2(&run, r, cfg, ncfg, models, cfg_of, model_of, nblocks,
              reduce_staged_name(r, FIGURE2.dat), reduce_staged_name(r, FIGURE2.png),
              reduce_staged_name(r, FIGURE2.svg));
    rc = reduce_write_figure(r, &FIGURE2, &dat, &gp, &run);
out:
    ds_sb_free(&dat);
    ds_sb_free(&gp);
    ds_sb_free(&run);
    free(cfg);
    free(cfg_of);
    free(model_of);
    free(models);
    return rc;
}
