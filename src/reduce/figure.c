// figure1: the papers' Figure 1, adversarial success rate (%) of the distilled (student) networks
// against the distillation temperature (log scale), one curve per attack configuration (per ε
// of a configuration with an ε list), with the baseline's rate of the same configuration as a
// dashed line of the same colour.
//
// With several seeds ([run] seeds), each point is the mean over the seeds with its 95% Student t
// interval as an error bar, each seed's curve faint and dotted behind it, and the baseline's
// mean dashed; point types and dash patterns keep it readable in black and white. A
// configuration with an ε list is then drawn at one ε only (0.3 if listed, else its first):
// figure2 (eps.c) shows success against ε.
//
// figure1.dat and figure1.gp are kept in the run folder (`cd RUN && gnuplot figure1.gp` re-plots).
// gnuplot ($DS_GNUPLOT, default "gnuplot" on the PATH; an empty DS_GNUPLOT switches the figures
// off silently) runs without a shell, in the run folder, on a copy of the script whose outputs
// are the staged names; a missing or failing gnuplot is a one-line warning on stderr, never an
// error.
#define _GNU_SOURCE // posix_spawn_file_actions_addchdir_np
#include "ds_error.h"
#include "reduce_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

// The one ε index of configuration a that Figure 1 draws (a curve per ε of every list, and with
// several seeds their error bars and every seed's curve, made it unreadable; figure2 has the ε
// curves): that of 0.3 when the list holds it, else the first.
static int figure1_eps_index(const ds_job_attack *a) {
    int e = reduce_eps_index(&a->craft, 0.3);
    return e < 0 ? 0 : e;
}

// Curves (reduce_row_curve: a configuration at the ε of figure1_eps_index) with at least one student row, in job and ε order; returns how many. out[k]
// is the first student row of curve k.
static int curve_configs(const reducer *r, int *out) {
    int n = 0;
    for (int ai = 0; ai < r->job.nattacks; ai++) {
        for (int e = 0; e < DS_FGSM_MAX_EPS; e++) {
            if (e != figure1_eps_index(&r->job.attacks[ai])) continue;
            for (int i = 0; i < r->nrows; i++) {
                if (reduce_row_curve(&r->rows[i]) == ai * DS_FGSM_MAX_EPS + e &&
                    r->rows[i].g->role == DS_ROLE_STUDENT) {
                    out[n++] = i;
                    break;
                }
            }
        }
    }
    return n;
}

static const reduce_row *baseline_row(const reducer *r, int curve) {
    for (int i = 0; i < r->nrows; i++)
        if (reduce_row_curve(&r->rows[i]) == curve && r->rows[i].g->role == DS_ROLE_BASELINE)
            return &r->rows[i];
    return NULL;
}

// Several seeds: the baseline's aggregate of the curve, or NULL.
static const reduce_agg *baseline_agg(const reducer *r, int curve) {
    for (int i = 0; i < r->naggs; i++)
        if (reduce_row_curve(r->aggs[i].row) == curve &&
            r->aggs[i].row->g->role == DS_ROLE_BASELINE)
            return &r->aggs[i];
    return NULL;
}

static void dat_pct(ds_strbuf *b, double x) {
    if (isnan(x)) ds_sb_printf(b, " NaN");
    else ds_sb_printf(b, " %.10g", 100 * x);
}

// Several seeds: one block per curve (a configuration at one ε), one line per temperature (its
// students over the seeds), then every seed's own rate.
static void write_dat_seeds(ds_strbuf *b, const reducer *r, const int *cfg, int n) {
    ds_sb_printf(b, "# figure1.dat (distill_sweep): adversarial success of the distilled (student) "
                 "networks against the temperature, over %d seeds.\n"
                 "# One block per attack configuration (gnuplot index 0, 1, ...), separated by two "
                 "blank lines.\n"
                 "# columns: T  mean_success_%%  t95_lo_%%  t95_hi_%%  baseline_mean_%% (NaN: "
                 "baseline not attacked)  n_seeds  sd_%%, then success_%% of seed",
                 r->job.nseeds);
    for (int j = 0; j < r->job.nseeds; j++)
        ds_sb_printf(b, " %llu", (unsigned long long)r->job.seeds[j]);
    ds_sb_printf(b, " (NaN: missing)\n");
    for (int k = 0; k < n; k++) {
        const reduce_row *first = &r->rows[cfg[k]];
        const ds_job_attack *a = first->a;
        int curve = reduce_row_curve(first);
        const reduce_agg *base = baseline_agg(r, curve);
        ds_sb_printf(b, "%s# index %d: [attack %s] %s %s\n", k ? "\n\n" : "", k, a->name,
                     ds_attack_kind_name(a->kind), reduce_row_params(first));
        for (int i = 0; i < r->naggs; i++) {
            const reduce_agg *g = &r->aggs[i];
            if (reduce_row_curve(g->row) != curve || g->row->g->role != DS_ROLE_STUDENT) continue;
            ds_sb_printf(b, "%g", g->row->g->temperature);
            dat_pct(b, g->success.mean);
            dat_pct(b, g->success.lo);
            dat_pct(b, g->success.hi);
            dat_pct(b, base ? base->success.mean : NAN);
            ds_sb_printf(b, " %d", g->success.n);
            dat_pct(b, g->success.sd);
            for (int j = 0; j < r->job.nseeds; j++)
                dat_pct(b, g->reps[j] ? g->reps[j]->rates.success_rate : NAN);
            ds_sb_printf(b, "\n");
        }
    }
}

static void write_dat(ds_strbuf *b, const reducer *r, const int *cfg, int n) {
    ds_sb_printf(b, "# figure1.dat (distill_sweep): adversarial success of the distilled (student) "
                 "networks against the temperature.\n"
                 "# One block per attack configuration (gnuplot index 0, 1, ...), separated by two "
                 "blank lines.\n"
                 "# columns: T  success_%%  baseline_success_%% (NaN: baseline not attacked)  "
                 "attempts  successes  zero_grad_%%\n");
    for (int k = 0; k < n; k++) {
        const reduce_row *first = &r->rows[cfg[k]];
        const ds_job_attack *a = first->a;
        int curve = reduce_row_curve(first);
        const reduce_row *base = baseline_row(r, curve);
        ds_sb_printf(b, "%s# index %d: [attack %s] %s %s\n", k ? "\n\n" : "", k, a->name,
                     ds_attack_kind_name(a->kind), reduce_row_params(first));
        for (int i = 0; i < r->nrows; i++) {
            const reduce_row *row = &r->rows[i];
            if (reduce_row_curve(row) != curve || row->g->role != DS_ROLE_STUDENT) continue;
            ds_sb_printf(b, "%g %.10g ", row->g->temperature, 100 * row->rates.success_rate);
            if (base) ds_sb_printf(b, "%.10g", 100 * base->rates.success_rate);
            else ds_sb_printf(b, "NaN");
            ds_sb_printf(b, " %d %d %.10g\n", row->rates.attempts, row->rates.successes,
                         100 * row->rates.zero_grad_share);
        }
    }
}

void reduce_gp_str(ds_strbuf *b, const char *s) {
    ds_sb_printf(b, "'");
    for (; *s; s++) ds_sb_printf(b, *s == '\'' ? "''" : "%c", *s);
    ds_sb_printf(b, "'");
}

static void write_gp(ds_strbuf *b, const reducer *r, const int *cfg, int n, const char *dat,
                     const char *png, const char *svg) {
    // Tall enough for the key: two entries (students, baseline) per configuration.
    int height = 120 + 36 * n > 700 ? 120 + 36 * n : 700;
    double tmin = r->job.temps[0], tmax = r->job.temps[r->job.ntemps - 1];
    ds_sb_printf(b, "# figure1.gp (distill_sweep): the papers' Figure 1 from figure1.dat.\n"
                 "# Re-plot with: cd <run folder> && gnuplot figure1.gp  (writes figure1.png and "
                 "figure1.svg)\n"
                 "if (strstrt(GPVAL_TERMINALS, 'pngcairo') > 0) {\n"
                 "    set terminal pngcairo size 1000,%d font 'sans,11'\n"
                 "} else {\n"
                 "    set terminal png size 1000,%d\n"
                 "}\n"
                 "set output ", height, height);
    reduce_gp_str(b, png);
    char sub[128];
    snprintf(sub, sizeof sub, "%s, %d training and %d test samples",
             r->dataset[0] ? r->dataset : "this run", r->plan.train_n, r->plan.test_n);
    ds_sb_printf(b, "\nset title 'Adversarial success against the distillation temperature "
                 "(Papernot et al. 2016, Figure 1)' . \"\\n\" . ");
    reduce_gp_str(b, sub);
    ds_sb_printf(b, " noenhanced\n"
                 "set logscale x\n"
                 "set xrange [%g:%g]\n"
                 "set yrange [-2:102]\n"
                 "set xtics (", tmin / 1.4, tmax * 1.4);
    for (int i = 0; i < r->job.ntemps; i++) ds_sb_printf(b, "%s%g", i ? ", " : "", r->job.temps[i]);
    ds_sb_printf(b, ")\nset ytics 0, 10, 100\n"
                 "set xlabel 'distillation temperature T (log scale)'\n"
                 "set ylabel 'adversarial success rate (%%)'\n"
                 "set grid\n");
    int seeds = r->job.nseeds > 1;
    if (seeds)
        ds_sb_printf(b, "set bars small\n"
                     "set key outside right top vertical Left reverse noenhanced title \"solid: "
                     "students, mean over %d seeds\\nbars: 95%% t interval\\ndotted: each seed\\n"
                     "dashed: baseline (mean)\"\n"
                     "# solid with error bars: the students' mean over the seeds with its 95%% "
                     "Student t interval;\n# dotted, faint: each seed; dashed: the baseline's mean, "
                     "same configuration\n"
                     "plot ", r->job.nseeds);
    else
        ds_sb_printf(b, "set key outside right top vertical Left reverse noenhanced title \"solid: students\\ndashed: baseline\"\n"
                     "# solid: the students (distilled at T); dashed: the baseline, same configuration\n"
                     "plot ");
    // 16 colours (tab10, then six of tab20's light ones) and 15 point types, so that up to 15
    // configurations (a job with every rounding variant of its attacks) stay apart.
    static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e",
                                          "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22",
                                          "#000000", "#aec7e8", "#ff9896", "#98df8a", "#c5b0d5",
                                          "#ffbb78"};
    static const int points[] = {7, 5, 9, 11, 13, 15, 4, 6, 8, 10, 12, 14, 1, 2, 3};
    enum { NCOL = sizeof colours / sizeof colours[0], NPT = sizeof points / sizeof points[0] };
    // Several seeds: every seed's curve first, so that the means are drawn over them. Each
    // configuration's points sit a few percent of T apart ("dodge", x * 1.04^(k - (n-1)/2) on
    // the log axis) so that error bars at the same temperature do not hide each other.
    for (int k = 0; seeds && k < n; k++) {
        char x[64];
        snprintf(x, sizeof x, "($1*%.6g)", pow(1.04, k - (n - 1) / 2.0));
        for (int j = 0; j < r->job.nseeds; j++) {
            if (k || j) ds_sb_printf(b, ", \\\n     ");
            reduce_gp_str(b, k || j ? "" : dat);
            // '#AARRGGBB' (AA 0 = opaque): faint behind the mean; the configuration's point type
            ds_sb_printf(b, " index %d using %s:%d with linespoints dt (3,3) lw 1.5 pt %d ps 0.7 "
                         "lc rgb '#50%s' notitle", k, x, 8 + j, points[k % NPT],
                         colours[k % NCOL] + 1);
        }
    }
    for (int k = 0; k < n; k++) {
        const reduce_row *first = &r->rows[cfg[k]];
        const ds_job_attack *a = first->a;
        const char *kind = ds_attack_kind_name(a->kind), *colour = colours[k % NCOL];
        char t[200];
        // The section name, and the kind when the name does not start with it (and the ε of a
        // configuration with an ε list).
        if (!strncmp(a->name, kind, strlen(kind))) snprintf(t, sizeof t, "%s", a->name);
        else snprintf(t, sizeof t, "%s (%s)", a->name, kind);
        if (first->n_eps > 1) {
            size_t len = strlen(t);
            snprintf(t + len, sizeof t - len, " eps=%g", (double)first->eps);
        }
        int curve = reduce_row_curve(first);
        if (k || seeds) ds_sb_printf(b, ", \\\n     ");
        reduce_gp_str(b, k || seeds ? "" : dat);
        if (seeds)
            ds_sb_printf(b, " index %d using ($1*%.6g):2:3:4 with yerrorlines lw 2 pt %d ps 1.3 lc "
                         "rgb '%s' title ", k, pow(1.04, k - (n - 1) / 2.0), points[k % NPT],
                         colour);
        else
            ds_sb_printf(b, " index %d using 1:2 with linespoints lw 2 pt %d ps 1.3 lc rgb '%s' "
                         "title ", k, points[k % NPT], colour);
        reduce_gp_str(b, t);
        if (seeds ? baseline_agg(r, curve) != NULL : baseline_row(r, curve) != NULL) {
            size_t len = strlen(t);
            snprintf(t + len, sizeof t - len, ", baseline");
            ds_sb_printf(b, ", \\\n     '' index %d using 1:%d with lines dt 2 lw 1.5 lc rgb '%s' "
                         "title ", k, seeds ? 5 : 3, colour);
            reduce_gp_str(b, t);
        }
    }
    ds_sb_printf(b, "\nset terminal svg size 1000,%d dynamic font 'sans,11'\nset output ", height);
    reduce_gp_str(b, svg);
    ds_sb_printf(b, "\nreplot\nunset output\n");
}

// The first line of a (staged, relative) file in the run folder, for a warning.
static void first_line(const reducer *r, const char *rel, char *out, size_t cap) {
    char path[1200];
    snprintf(path, sizeof path, "%s/%s", r->run_dir, rel);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fgets(out, (int)cap, f)) out[strcspn(out, "\r\n")] = '\0';
    fclose(f);
}

// Runs `prog script` in the run folder, stdout to /dev/null, stderr to the file `log` (both
// relative to the run folder). Returns the exit status, 127 if prog cannot be run, -1 on errors.
static int run_in(const char *dir, const char *prog, const char *script, const char *log) {
    char *argv[] = {(char *)prog, (char *)script, NULL};
    pid_t pid;
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
    posix_spawn_file_actions_t fa;
    if (posix_spawn_file_actions_init(&fa)) return -1;
    int e = posix_spawn_file_actions_addchdir_np(&fa, dir);
    if (!e) e = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (!e) e = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    if (!e) e = posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!e) e = posix_spawnp(&pid, prog, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e == ENOENT || e == EACCES || e == ENOEXEC) return 127;
    if (e) return -1;
#else
    pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY), out = open("/dev/null", O_WRONLY);
        if (chdir(dir) != 0) _exit(126);
        int err = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (in >= 0) dup2(in, 0);
        if (out >= 0) dup2(out, 1);
        if (err >= 0) dup2(err, 2);
        execvp(prog, argv);
        _exit(127);
    }
#endif
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
}

static int nonempty(const reducer *r, const char *rel) {
    char path[1200];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", r->run_dir, rel);
    return !stat(path, &st) && S_ISREG(st.st_mode) && st.st_size > 0;
}

// Runs gnuplot on the staged script; on success marks the staged figures written.
int reduce_gnuplot(reducer *r, const char *script, const char *log, const char *png_name,
                   const char *svg_name, const char *gp) {
    const char *prog = getenv("DS_GNUPLOT");
    if (!prog) prog = "gnuplot";
    if (!*prog) return DS_OK; // figures switched off: the .dat and .gp files only
    char path[1200];
    int rc = reduce_stage(r, log, path, sizeof path);
    if (rc) return rc;
    int st = run_in(r->run_dir, prog, script, reduce_staged_name(r, log));
    char msg[256] = "";
    if (st > 0) first_line(r, reduce_staged_name(r, log), msg, sizeof msg);
    unlink(path);
    const char *png = reduce_staged_name(r, png_name), *svg = reduce_staged_name(r, svg_name);
    if (st == 0 && nonempty(r, png) && nonempty(r, svg)) {
        reduce_staged_written(r, png_name);
        reduce_staged_written(r, svg_name);
        return DS_OK;
    }
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", r->run_dir, i ? svg : png);
        unlink(path);
    }
    if (st == 127 || st == 126)
        fprintf(stderr, "distill_sweep: warning: %s not found: no %s/.svg (the tables are "
                "complete; plot later with: cd %s && gnuplot %s)\n",
                prog, png_name, r->run_dir, gp);
    else
        fprintf(stderr, "distill_sweep: warning: %s failed (status %d%s%s): no %s/.svg "
                "(the tables are complete; see %s/%s)\n", prog, st, msg[0] ? ": " : "",
                msg, png_name, r->run_dir, gp);
    return DS_OK;
}

int reduce_stage_figure(reducer *r, const reduce_figure_files *f) {
    char path[1200];
    int rc;
    if ((rc = reduce_stage(r, f->dat, path, sizeof path)) ||
        (rc = reduce_stage(r, f->png, path, sizeof path)) ||
        (rc = reduce_stage(r, f->svg, path, sizeof path)))
        return rc;
    return DS_OK;
}

int reduce_write_figure(reducer *r, const reduce_figure_files *f, const ds_strbuf *dat,
                        const ds_strbuf *gp, const ds_strbuf *run) {
    if (dat->failed || gp->failed || run->failed)
        return ds_fail(DS_ENOMEM, "%.*s: out of memory", (int)strcspn(f->dat, "."), f->dat);
    int rc;
    if ((rc = reduce_write_text(r, f->dat, dat->s, dat->len)) ||
        (rc = reduce_write_text(r, f->gp, gp->s, gp->len)) ||
        (rc = reduce_write_text(r, f->run, run->s, run->len)))
        return rc;
    rc = reduce_gnuplot(r, reduce_staged_name(r, f->run), f->log, f->png, f->svg, f->gp);
    reduce_staged_discard(r, f->run);
    return rc;
}

static const reduce_figure_files FIGURE1 = {"figure1.dat", "figure1.gp", "figure1-run.gp",
                                            "figure1.png", "figure1.svg", "figure1.log"};

int reduce_figure(reducer *r) {
    int *cfg = malloc(sizeof(int) * ((size_t)r->nrows + 1));
    if (!cfg) return ds_fail(DS_ENOMEM, "figure1: out of memory");
    int n = curve_configs(r, cfg), rc = DS_OK;
    if (n == 0 || r->job.ntemps == 0) { // no student was attacked: nothing to draw
        free(cfg);
        return DS_OK;
    }
    ds_strbuf dat = {0}, gp = {0}, run = {0};
    if (r->job.nseeds > 1) write_dat_seeds(&dat, r, cfg, n);
    else write_dat(&dat, r, cfg, n);
    write_gp(&gp, r, cfg, n, FIGURE1.dat, FIGURE1.png, FIGURE1.svg);
    // Staged names for gnuplot's own run (the kept script names the final files).
    if ((rc = reduce_stage_figure(r, &FIGURE1))) goto out;
    write_gp(&run, r, cfg, n, reduce_staged_name(r, FIGURE1.dat),
             reduce_staged_name(r, FIGURE1.png), reduce_staged_name(r, FIGURE1.svg));
    rc = reduce_write_figure(r, &FIGURE1, &dat, &gp, &run);
out:
    ds_sb_free(&dat);
    ds_sb_free(&gp);
    ds_sb_free(&run);
    free(cfg);
    return rc;
}
