// The journal of completed tasks, tasks/done.log, and the one rule that says a task is done
// (ds_run.h).
//
// One line per completed task: "<id> <file> <bytes> <crc32 of the file> <crc32 of the line so
// far>\n". Lines are appended with one write() and fsync'ed; a line torn by a crash fails its
// own checksum and is ignored. Only the coordinator writes it.
#include "ds_run.h"

#include "ds_atomic.h"
#include "ds_error.h"
#include "ds_fault.h"
#include "ds_filecrc.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

static void journal_path(const char *run_dir, char *out, size_t cap) {
    snprintf(out, cap, "%s/tasks/done.log", run_dir);
}

static int format_line(const ds_journal_entry *e, char *line, size_t cap) {
    int n = snprintf(line, cap, "%s %s %" PRIu64 " %08" PRIx32, e->id, e->file, e->bytes, e->crc);
    if (n < 0 || (size_t)n + 12 >= cap) return -1;
    uint32_t lc = (uint32_t)crc32(0L, (const Bytef *)line, (uInt)n);
    n += snprintf(line + n, cap - (size_t)n, " %08" PRIx32 "\n", lc);
    return n;
}

static int parse_line(char *line, ds_journal_entry *e) {
    size_t len = strlen(line);
    if (len < 2 || line[len - 1] != '\n') return 0; // torn
    line[--len] = 0;
    char *sp = strrchr(line, ' ');
    if (!sp) return 0;
    char *end;
    unsigned long lc = strtoul(sp + 1, &end, 16);
    if (*end || end - (sp + 1) != 8) return 0;
    if ((uint32_t)crc32(0L, (const Bytef *)line, (uInt)(sp - line)) != (uint32_t)lc) return 0;
    *sp = 0;
    char id[512], file[512];
    unsigned long long bytes;
    unsigned int crc;
    if (sscanf(line, "%511s %511s %llu %8x", id, file, &bytes, &crc) != 4) return 0;
    if (strlen(id) >= sizeof e->id || strlen(file) >= sizeof e->file) return 0;
    memcpy(e->id, id, strlen(id) + 1);
    memcpy(e->file, file, strlen(file) + 1);
    e->bytes = bytes;
    e->crc = crc;
    return 1;
}

int ds_journal_read(const char *run_dir, ds_journal_entry **entries, int *n, int *bad) {
    char path[1024];
    journal_path(run_dir, path, sizeof path);
    *entries = NULL;
    *n = 0;
    if (bad) *bad = 0;
    FILE *f = fopen(path, "r");
    if (!f) {
        if (errno == ENOENT) return DS_OK;
        return ds_fail(DS_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    int cap = 0;
    char line[1024];
    int rc = DS_OK;
    while (fgets(line, sizeof line, f)) {
        ds_journal_entry e;
        if (!parse_line(line, &e)) {
            if (bad) (*bad)++;
            // A line longer than the buffer: skip its rest.
            while (!strchr(line, '\n') && fgets(line, sizeof line, f)) {}
            continue;
        }
        if (*n == cap) {
            cap = cap ? cap * 2 : 64;
            ds_journal_entry *t = realloc(*entries, sizeof **entries * (size_t)cap);
            if (!t) {
                rc = ds_fail(DS_ENOMEM, "%s: out of memory", path);
                break;
            }
            *entries = t;
        }
        (*entries)[(*n)++] = e;
    }
    if (!rc && ferror(f)) rc = ds_fail(DS_EIO, "%s: read error", path);
    fclose(f);
    if (rc) {
        free(*entries);
        *entries = NULL;
        *n = 0;
    }
    return rc;
}

static int write_all(int fd, const char *s, size_t n) {
    while (n) {
        ssize_t w = write(fd, s, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int ds_journal_append(const char *run_dir, const ds_journal_entry *e) {
    char path[1024], line[600];
    journal_path(run_dir, path, sizeof path);
    int len = format_line(e, line, sizeof line);
    if (len < 0) return ds_fail(DS_EINVAL, "%s: task id too long", path);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0) return ds_fail(ds_errno_code(errno), "%s: cannot open: %s", path, strerror(errno));
    int injected = ds_fault("journal", e->id);
    if (injected) errno = ENOSPC;
    if (injected || write_all(fd, line, (size_t)len) || fsync(fd)) {
        int err = errno;
        close(fd);
        return ds_fail(ds_errno_code(err), "%s: cannot record task %s: %s", path, e->id,
                       strerror(err));
    }
    if (close(fd)) return ds_fail(ds_errno_code(errno), "%s: close: %s", path, strerror(errno));
    ds_fault("journaled", e->id);
    return DS_OK;
}

int ds_journal_rewrite(const char *run_dir, const ds_journal_entry *entries, int n) {
    char path[1024], line[600];
    journal_path(run_dir, path, sizeof path);
    char *text = malloc((size_t)n * sizeof line + 1);
    if (!text) return ds_fail(DS_ENOMEM, "%s: out of memory", path);
    size_t len = 0;
    for (int i = 0; i < n; i++) {
        int k = format_line(&entries[i], line, sizeof line);
        if (k < 0) {
            free(text);
            return ds_fail(DS_EINVAL, "%s: task id too long", path);
        }
        memcpy(text + len, line, (size_t)k);
        len += (size_t)k;
    }
    int rc = ds_atomic_write(path, text, len);
    free(text);
    return rc;
}

// ---- The done rule ----

// What is wrong with the file of journal line e, or NULL if it has the recorded size and CRC.
static const char *file_problem(const char *run_dir, const ds_journal_entry *e) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", run_dir, e->file);
    struct stat st;
    uint64_t bytes;
    uint32_t crc;
    if (stat(path, &st)) return "is missing";
    if ((uint64_t)st.st_size != e->bytes) return "has the wrong size (truncated or rewritten)";
    if (ds_file_crc32(path, &bytes, &crc)) return "cannot be read";
    if (crc != e->crc) return "does not match its checksum (corrupted)";
    return NULL;
}

// The rule over journal lines e[0..n): done[] and why[] per task, and per line whether it
// proves its task done (ok[i]) and what is wrong with its file (problem[i], NULL if nothing or
// if the line is not one of this plan's or repeats a done task).
static void apply_rule(const ds_plan *plan, const char *run_dir, const ds_journal_entry *e, int n,
                       uint8_t *done, const char **why, uint8_t *ok, const char **problem) {
    memset(done, 0, (size_t)plan->ntasks);
    for (int i = 0; i < n; i++) {
        int t = ds_plan_find(plan, e[i].id);
        ok[i] = 0;
        problem[i] = NULL;
        if (t < 0 || strcmp(plan->tasks[t].file, e[i].file) || done[t]) continue;
        if (plan->tasks[t].kind == DS_TASK_REDUCE) continue;
        problem[i] = file_problem(run_dir, &e[i]);
        if (problem[i]) {
            if (why) why[t] = problem[i];
            continue;
        }
        done[t] = ok[i] = 1;
    }
    for (int t = 0; why && t < plan->ntasks; t++) {
        if (done[t]) why[t] = NULL;
        else if (!why[t] || plan->tasks[t].kind == DS_TASK_REDUCE) why[t] = "is not in tasks/done.log";
    }
}

// Reads the journal and applies the rule; *e, *ok, *problem malloc'ed (free all three).
static int status(const ds_plan *plan, const char *run_dir, uint8_t *done, const char **why,
                  ds_journal_entry **e, int *n, int *bad, uint8_t **ok, const char ***problem) {
    if (why)
        for (int t = 0; t < plan->ntasks; t++) why[t] = NULL;
    int rc = ds_journal_read(run_dir, e, n, bad);
    if (rc) return rc;
    *ok = malloc((size_t)*n + 1);
    *problem = malloc(sizeof **problem * ((size_t)*n + 1));
    if (!*ok || !*problem) {
        free(*e);
        free(*ok);
        free(*problem);
        return ds_fail(DS_ENOMEM, "%s/tasks/done.log: out of memory", run_dir);
    }
    apply_rule(plan, run_dir, *e, *n, done, why, *ok, *problem);
    return DS_OK;
}

int ds_run_tasks_done(const ds_plan *plan, const char *run_dir, uint8_t *done, const char **why) {
    ds_journal_entry *e;
    uint8_t *ok;
    const char **problem;
    int n, rc = status(plan, run_dir, done, why, &e, &n, NULL, &ok, &problem);
    if (rc) return rc;
    free(e);
    free(ok);
    free(problem);
    return DS_OK;
}

int ds_journal_scan(const ds_plan *plan, const char *run_dir, uint8_t *done, FILE *log) {
    ds_journal_entry *e;
    uint8_t *ok;
    const char **problem;
    int n, bad;
    int rc = status(plan, run_dir, done, NULL, &e, &n, &bad, &ok, &problem);
    if (rc) return rc;
    if (bad && log)
        fprintf(log, "journal: ignoring %d torn or corrupted line(s) of %s/tasks/done.log\n", bad,
                run_dir);
    int keep = 0, changed = bad > 0;
    for (int i = 0; i < n; i++) {
        if (ok[i]) {
            e[keep++] = e[i];
            continue;
        }
        changed = 1; // not a task of this plan, listed twice, or its file is damaged
        // A damaged file is quarantined unless another line of its task proved it intact.
        if (!problem[i] || done[ds_plan_find(plan, e[i].id)]) continue;
        if (log) fprintf(log, "journal: %s %s; task %s will run again\n", e[i].file, problem[i], e[i].id);
        char path[1024], bad_path[1100];
        snprintf(path, sizeof path, "%s/%s", run_dir, e[i].file);
        snprintf(bad_path, sizeof bad_path, "%s.corrupt", path);
        struct stat st;
        if (!stat(path, &st)) rename(path, bad_path); // quarantined, never trusted again
    }
    if (changed) rc = ds_journal_rewrite(run_dir, e, keep);
    free(e);
    free(ok);
    free(problem);
    return rc;
}
