// The prediction table of `distill_sweep --dry-run JOB --ranks ...` (ds_sched.h): the simulator
// under today's policy, gangs sized at start, and gangs that grow.
#include "ds_sched.h"

#include "ds_error.h"

#include <stdio.h>

// Seconds as h:mm:ss (rounded to the second).
static void hms(double s, char *out, size_t cap) {
    long t = (long)(s + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void print_row(FILE *out, const char *name, int nranks, const ds_sim_result *r) {
    char m[32], w[32], c[32];
    hms(r->makespan, m, sizeof m);
    hms(r->work / nranks, w, sizeof w);
    hms(r->critical_path, c, sizeof c);
    fprintf(out, "  %-26s %10s %11s %14s %11.1f%%\n", name, m, w, c, 100 * r->utilisation);
}

int ds_sim_print(const ds_plan *plan, const ds_sim_input *in, const int *ranks, int nranks,
                 int gang_max, FILE *out) {
    char grow[40];
    snprintf(grow, sizeof grow, "gangs that grow (<= %d)", gang_max);
    const struct {
        const char *name;
        ds_sched_policy pol;
    } rows[3] = {{"one rank per task (today)", {.gangs = 0, .grow = 0, .gang_max = 1}},
                 {"gangs sized at start", {.gangs = 1, .grow = 0, .gang_max = gang_max}},
                 {grow, {.gangs = 1, .grow = 1, .gang_max = gang_max}}};
    for (int k = 0; k < nranks; k++) {
        fprintf(out, "prediction on %d ranks (communication %.1f ms per step and extra gang rank):\n",
                ranks[k], 1e3 * in->comm_s);
        fprintf(out, "  %-26s %10s %11s %14s %12s\n", "policy", "makespan", "work/ranks",
                "critical path", "utilisation");
        for (int r = 0; r < 3; r++) {
            ds_sim_result res;
            int rc = ds_sim_run(plan, in, ranks[k], &rows[r].pol, &res);
            if (rc) return rc;
            print_row(out, rows[r].name, ranks[k], &res);
        }
    }
    return ferror(out) ? ds_fail(DS_EIO, "prediction: write error") : DS_OK;
}
