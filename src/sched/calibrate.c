// Rates for the simulator (ds_sched.h): a given rate, or the finished work of a sweep.log.
//
// The coordinator's lines (src/sweep/sweep.c, say() then handle_result), after the stamps
// "<UTC> [hh:mm:ss] ":
//   done   <id> (rank R, S s) | ...                                    the whole task
//   done   <id> (rank R, epochs E0-E1 of N, S s) | ...                 a training, one rank
//   done   <id> (gang of K from rank R, epochs E0-E1 of N, S s) | ...  a gang's last segment
//   regang <id> (gang of K from rank R, epochs E0-E1 of N, S s): ...   a gang's segment
// A line's work is cost * (E1-E0)/N for a training with epochs, else the task's cost; its
// rank-seconds S*K. A resumed run appends its sessions to the same log: every line counts.
#include "ds_sched.h"

#include "ds_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void ds_sim_seconds_from_rate(const ds_plan *plan, double rate_mflops, double *seconds) {
    for (int i = 0; i < plan->ntasks; i++)
        seconds[i] = plan->tasks[i].kind == DS_TASK_REDUCE ? 0 : plan->tasks[i].cost / rate_mflops;
}

typedef struct {
    char id[DS_TASK_ID];
    int gang;           // K (1 for "rank R")
    int e0, e1, n;      // epochs E0-E1 of N; n = 0 when the line has none
    double seconds;     // S
} log_line;

// The fields inside the parentheses: "rank R" or "gang of K from rank R", then optionally
// "epochs E0-E1 of N", then "S s". Returns 1 if they parse.
static int parse_fields(const char *p, log_line *l) {
    int rank, used = 0;
    l->n = 0;
    if (!strncmp(p, "gang ", 5)) {
        if (sscanf(p, "gang of %d from rank %d, %n", &l->gang, &rank, &used) != 2 || !used) return 0;
    } else {
        l->gang = 1;
        if (sscanf(p, "rank %d, %n", &rank, &used) != 1 || !used) return 0;
    }
    p += used;
    used = 0;
    if (sscanf(p, "epochs %d-%d of %d, %n", &l->e0, &l->e1, &l->n, &used) == 3 && used) {
        p += used;
        if (l->n < 1 || l->e0 < 0 || l->e1 <= l->e0 || l->e1 > l->n) return 0;
    }
    used = 0;
    return sscanf(p, "%lf s)%n", &l->seconds, &used) == 1 && used && l->gang >= 1 &&
           l->seconds >= 0;
}

// A "done" or "regang" line of the log into l; 0 for any other line.
static int parse_line(const char *line, log_line *l) {
    const char *m = strstr(line, "] ");
    if (!m) return 0;
    m += 2;
    if (!strncmp(m, "done ", 5)) m += 5;
    else if (!strncmp(m, "regang ", 7)) m += 7;
    else return 0;
    while (*m == ' ') m++;
    const char *end = strstr(m, " (");
    if (!end || end == m || (size_t)(end - m) >= sizeof l->id || memchr(m, ' ', (size_t)(end - m)))
        return 0;
    memcpy(l->id, m, (size_t)(end - m));
    l->id[end - m] = 0;
    return parse_fields(end + 2, l);
}

// Classes: 0 trainings, 1 soft labels, 2 + a the attack section a.
static int class_of(const ds_task *t) {
    if (t->kind == DS_TASK_TRAIN) return 0;
    if (t->kind == DS_TASK_SOFT) return 1;
    return 2 + t->attack;
}

typedef struct {
    double *work, *rs; // [nclass] MFLOP and rank-seconds
    int *lines;        // [nclass]
    int nclass, total;
} tally;

// Sorts the log's lines of this plan into t. DS_EIO if the log cannot be read.
static int read_log(const ds_plan *plan, const char *path, tally *t) {
    FILE *f = fopen(path, "r");
    if (!f) return ds_fail(DS_EIO, "%s: cannot be read", path);
    char *buf = NULL;
    size_t cap = 0;
    log_line l;
    while (getline(&buf, &cap, f) > 0) {
        if (!parse_line(buf, &l)) continue;
        int i = ds_plan_find(plan, l.id);
        if (i < 0 || plan->tasks[i].kind == DS_TASK_REDUCE) continue;
        const ds_task *task = &plan->tasks[i];
        int c = class_of(task);
        double frac = task->kind == DS_TASK_TRAIN && l.n > 0 ? (double)(l.e1 - l.e0) / l.n : 1;
        t->work[c] += task->cost * frac;
        t->rs[c] += l.seconds * l.gang;
        t->lines[c]++;
        t->total++;
    }
    int bad = ferror(f);
    free(buf);
    fclose(f);
    return bad ? ds_fail(DS_EIO, "%s: read error", path) : DS_OK;
}

static const char *class_name(const ds_plan *plan, int c, char *buf, size_t cap) {
    if (c == 0) return "training";
    if (c == 1) return "soft labels";
    snprintf(buf, cap, "attack %s", plan->job->attacks[c - 2].name);
    return buf;
}

// The rate of every class (MFLOP/s per rank) into rate[], and the line saying how.
static void class_rates(const ds_plan *plan, const tally *t, double overall, double *rate,
                        char *how, size_t cap) {
    size_t len = strlen(how);
    int others = 0;
    for (int c = 0; c < t->nclass; c++) {
        rate[c] = overall;
        if (t->lines[c] == 0 || !(t->rs[c] > 0) || !(t->work[c] > 0)) {
            others = 1;
            continue;
        }
        rate[c] = t->work[c] / t->rs[c];
        char nb[DS_JOB_NAME + 8];
        if (len < cap)
            len += (size_t)snprintf(how + len, cap - len, ", %s %.1f (%d)",
                                    class_name(plan, c, nb, sizeof nb), rate[c] / 1e3, t->lines[c]);
    }
    if (others && len < cap)
        snprintf(how + len, cap - len, ", the others at the overall %.1f", overall / 1e3);
}

int ds_sim_calibrate(const ds_plan *plan, const char *sweep_log, double *seconds, char *how,
                     size_t cap) {
    const ds_job *job = plan->job;
    tally t = {.nclass = 2 + job->nattacks};
    t.work = calloc((size_t)t.nclass, sizeof(double));
    t.rs = calloc((size_t)t.nclass, sizeof(double));
    t.lines = calloc((size_t)t.nclass, sizeof(int));
    double *rate = calloc((size_t)t.nclass, sizeof(double));
    int rc = t.work && t.rs && t.lines && rate ? read_log(plan, sweep_log, &t)
                                               : ds_fail(DS_ENOMEM, "calibration: out of memory");
    double work = 0, rs = 0;
    for (int c = 0; !rc && c < t.nclass; c++) work += t.work[c], rs += t.rs[c];
    if (!rc && (t.total == 0 || !(rs > 0) || !(work > 0)))
        rc = ds_fail(DS_EINVAL, "%s: no finished task of this plan with a duration", sweep_log);
    if (!rc) {
        snprintf(how, cap, "rates from %s (%d lines of this plan), GFLOP/s per rank (lines): "
                 "overall %.1f", sweep_log, t.total, work / rs / 1e3);
        class_rates(plan, &t, work / rs, rate, how, cap);
        for (int i = 0; i < plan->ntasks; i++) {
            const ds_task *task = &plan->tasks[i];
            seconds[i] = task->kind == DS_TASK_REDUCE ? 0 : task->cost / rate[class_of(task)];
        }
    }
    free(t.work);
    free(t.rs);
    free(t.lines);
    free(rate);
    return rc;
}
