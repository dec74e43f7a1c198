// The journal of completed tasks, tasks/done.log (ds_sweep.h, ds_plan.h).
//
// One line per completed task: "<id> <file> <bytes> <crc32 of the file> <crc32 of the line so
// far>\n". Lines are appended with one write() and fsync'ed; a line torn by a crash fails its
// own checksum and is ignored. Only the coordinator writes it.
#include "ds_sweep.h"

#include "ds_atomic.h"
#include "ds_error.h"
#include "ds_fault.h"

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

int ds_journal_scan(const ds_plan *plan, const char *run_dir, uint8_t *done, FILE *log) {
    memset(done, 0, (size_t)plan->ntasks);
    ds_journal_entry *e;
    int n, bad, rc = ds_journal_read(run_dir, &e, &n, &bad);
    if (rc) return rc;
    if (bad && log)
        fprintf(log, "journal: ignoring %d torn or corrupted line(s) of %s/tasks/done.log\n", bad,
                run_dir);
    int keep = 0, changed = bad > 0;
    for (int i = 0; i < n; i++) {
        int t = ds_plan_find(plan, e[i].id);
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", run_dir, e[i].file);
        if (t < 0 || strcmp(plan->tasks[t].file, e[i].file) || done[t]) {
            // Not a task of this plan (or listed twice): drop the line, keep the file.
            changed = 1;
            continue;
        }
        uint64_t bytes;
        uint32_t crc;
        struct stat st;
        const char *problem = NULL;
        if (stat(path, &st)) problem = "is missing";
        else if ((uint64_t)st.st_size != e[i].bytes) problem = "has the wrong size (truncated or rewritten)";
        else if (ds_file_crc32(path, &bytes, &crc)) problem = "cannot be read";
        else if (crc != e[i].crc) problem = "does not match its checksum (corrupted)";
        if (problem) {
            if (log) fprintf(log, "journal: %s %s; task %s will run again\n", e[i].file, problem, e[i].id);
            if (!stat(path, &st)) {
                char bad_path[1100];
                snprintf(bad_path, sizeof bad_path, "%s.corrupt", path);
                rename(path, bad_path);
            }
            changed = 1;
            continue;
        }
        done[t] = 1;
        e[keep++] = e[i];
    }
    if (changed) rc = ds_journal_rewrite(run_dir, e, keep);
    free(e);
    return rc;
}

int ds_plan_task_done(const ds_plan *plan, int task, const char *run_dir) {
    ds_journal_entry *e;
    int n;
    if (task < 0 || task >= plan->ntasks || ds_journal_read(run_dir, &e, &n, NULL)) return 0;
    int done = 0;
    for (int i = 0; i < n && !done; i++) {
        if (strcmp(e[i].id, plan->tasks[task].id) || strcmp(e[i].file, plan->tasks[task].file))
            continue;
        char path[1024];
        uint64_t bytes;
        uint32_t crc;
        snprintf(path, sizeof path, "%s/%s", run_dir, e[i].file);
        done = !ds_file_crc32(path, &bytes, &crc) && bytes == e[i].bytes && crc == e[i].crc;
    }
    free(e);
    return done;
}
