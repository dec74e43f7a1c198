#include "ds_fault.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    char point[32], text[128];
    int rank, nth, enospc, hang; // rank -1: any
} fault_spec;

static fault_spec spec;
static atomic_int hits;
static int armed; // set once (pthread_once): 1 if DS_FAULT holds a well-formed fault
static pthread_once_t read_env_once = PTHREAD_ONCE_INIT;

static int own_rank(void) {
    const char *vars[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK"};
    for (int i = 0; i < 3; i++)
        if (getenv(vars[i])) return atoi(getenv(vars[i]));
    return 0;
}

// "POINT[=TEXT][@RANK][#N][:ACTION]"; a malformed value arms nothing but says so once.
static int parse(const char *s) {
    spec = (fault_spec){.rank = -1, .nth = 1};
    size_t n = strcspn(s, "=@#:");
    if (n == 0 || n >= sizeof spec.point) return -1;
    memcpy(spec.point, s, n);
    s += n;
    if (*s == '=') {
        n = strcspn(++s, "@#:");
        if (n >= sizeof spec.text) return -1;
        memcpy(spec.text, s, n);
        s += n;
    }
    char *end;
    if (*s == '@') {
        spec.rank = (int)strtol(s + 1, &end, 10);
        if (end == s + 1) return -1;
        s = end;
    }
    if (*s == '#') {
        spec.nth = (int)strtol(s + 1, &end, 10);
        if (end == s + 1 || spec.nth < 1) return -1;
        s = end;
    }
    if (*s == ':') {
        s++;
        if (!strcmp(s, "enospc")) spec.enospc = 1;
        else if (!strcmp(s, "hang")) spec.hang = 1;
        else if (strcmp(s, "kill")) return -1;
        s += strlen(s);
    }
    return *s ? -1 : 1;
}

static void read_env(void) {
    const char *env = getenv("DS_FAULT");
    if (!env || !*env) return;
    armed = parse(env) > 0;
    if (!armed) fprintf(stderr, "distill_sweep: DS_FAULT=%s: malformed, ignored\n", env);
}

int ds_fault(const char *point, const char *text) {
    pthread_once(&read_env_once, read_env);
    if (!armed || strcmp(point, spec.point)) return 0;
    if (spec.text[0] && (!text || !strstr(text, spec.text))) return 0;
    if (spec.rank >= 0 && spec.rank != own_rank()) return 0;
    if (atomic_fetch_add(&hits, 1) + 1 != spec.nth) return 0;
    fprintf(stderr, "distill_sweep: DS_FAULT: %s at %s%s%s (rank %d)\n",
            spec.enospc ? "ENOSPC" : spec.hang ? "hang" : "kill -9", point, text ? " " : "",
            text ? text : "", own_rank());
    if (spec.enospc) return 1;
    while (spec.hang) pause(); // alive but silent until something kills it (a gang's timeout)
    fflush(NULL);
    raise(SIGKILL);
    return 0;
}
