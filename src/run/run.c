// The run folder (ds_run.h, layout in ds_plan.h): data, the lock, run.txt (what the run was
// made from: written and read only here), opening a folder for a sweep or a reduction.
#include "ds_run.h"

#include "ds_atomic.h"
#include "ds_error.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

int ds_run_load_data(const ds_job *job, ds_run *run, ds_dataset *train, ds_dataset *test,
                     FILE *log) {
    memset(train, 0, sizeof *train);
    memset(test, 0, sizeof *test);
    const char *name = !strcmp(job->dataset, "auto") ? "mnist" : job->dataset;
    int rc = ds_data_locate(name, job->data_dir, run->data_dir, sizeof run->data_dir);
    if (rc && !strcmp(job->dataset, "auto")) {
        char why[1024];
        snprintf(why, sizeof why, "%s", ds_errmsg());
        rc = ds_data_locate("fashion-mnist", NULL, run->data_dir, sizeof run->data_dir);
        if (rc)
            return ds_fail(rc, "%s: [data] dataset = auto: neither MNIST (%s) nor Fashion-MNIST "
                           "(%s) was found", job->path, why, ds_errmsg());
        name = "fashion-mnist";
        if (log)
            fprintf(log, "note: MNIST was not found (%s); using Fashion-MNIST from %s instead. "
                    "The results are NOT the paper's MNIST experiment.\n", why, run->data_dir);
    }
    if (rc) return ds_fail_context(rc, job->path);
    snprintf(run->dataset, sizeof run->dataset, "%s", name);
    if ((rc = ds_dataset_load(train, run->data_dir, "train"))) return rc;
    if ((rc = ds_dataset_load(test, run->data_dir, "t10k"))) {
        ds_dataset_free(train);
        return rc;
    }
    if (train->rows != 28 || train->cols != 28 || test->rows != 28 || test->cols != 28) {
        ds_dataset_free(train);
        ds_dataset_free(test);
        return ds_fail(DS_EFORMAT, "%s: images are not 28x28", run->data_dir);
    }
    const char *what = NULL;
    int want = 0, have = 0;
    if (job->train_samples > train->n) what = "train_samples", want = job->train_samples, have = train->n;
    if (job->test_samples > test->n) what = "test_samples", want = job->test_samples, have = test->n;
    if (what) {
        ds_dataset_free(train);
        ds_dataset_free(test);
        return ds_fail(DS_EINVAL, "%s: [data] %s = %d, but %s has only %d", job->path, what, want,
                       run->data_dir, have);
    }
    if (job->train_samples > 0) ds_dataset_slice(train, 0, job->train_samples);
    if (job->test_samples > 0) ds_dataset_slice(test, 0, job->test_samples);
    run->train_n = train->n;
    run->test_n = test->n;
    uLong c = crc32(0L, Z_NULL, 0);
    c = crc32(c, train->images, (uInt)((size_t)train->n * 784));
    c = crc32(c, train->labels, (uInt)train->n);
    c = crc32(c, test->images, (uInt)((size_t)test->n * 784));
    c = crc32(c, test->labels, (uInt)test->n);
    run->data_crc = (uint32_t)c;
    return DS_OK;
}

// mkdir -p for one or more levels.
static int make_dirs(const char *path) {
    char buf[1200];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; ; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) && errno != EEXIST) {
                int err = errno;
                return ds_fail(ds_errno_code(err), "%s: cannot create the folder: %s", buf, strerror(err));
            }
            struct stat st;
            if (stat(buf, &st) || !S_ISDIR(st.st_mode))
                return ds_fail(DS_EIO, "%s: not a folder", buf);
            *p = c;
            if (!c) break;
        }
    }
    return DS_OK;
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t got;
    while (s && (got = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (n + 1 == cap) {
            char *t = realloc(s, cap *= 2);
            if (!t) free(s);
            s = t;
        }
    }
    fclose(f);
    if (s) s[n] = 0;
    return s;
}

static int write_file_atomic(const char *path, const char *text) {
    return ds_atomic_write(path, text, strlen(text));
}

// run.txt: the facts a resume must agree with, then the canonical job.
static char *state_text(const ds_job *job, const ds_run *run) {
    char *canon = ds_job_canonical(job);
    if (!canon) return NULL;
    size_t cap = strlen(canon) + 2048;
    char *s = malloc(cap);
    if (s)
        snprintf(s, cap, "# distill_sweep run state: do not edit. A resume must match it.\n"
                 "dataset %s\ntrain_n %d\ntest_n %d\ndata_crc32 %08x\n--- canonical job ---\n%s",
                 run->dataset, run->train_n, run->test_n, (unsigned)run->data_crc, canon);
    free(canon);
    return s;
}

// data_dir is informative (a moved dataset is the same data), so it sits in a separate file.
static int first_difference(const char *a, const char *b, char *out, size_t cap) {
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la)) {
            snprintf(out, cap, "'%.*s' became '%.*s'", (int)(la > 120 ? 120 : la), a,
                     (int)(lb > 120 ? 120 : lb), b);
            return 1;
        }
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    return 0;
}

static void remove_stale_tmp(const char *dir, FILE *log) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".tmp")) {
            char path[1400];
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (!unlink(path) && log) fprintf(log, "removed the half-written %s\n", path);
        }
    }
    closedir(d);
}

// ---- The lock ----

int ds_run_lock(const char *run_dir, int create, int *fd, int *busy) {
    char path[1200];
    snprintf(path, sizeof path, "%s/lock", run_dir);
    *busy = 0;
    *fd = open(path, create ? O_RDWR | O_CREAT : O_RDWR, 0644);
    if (*fd < 0) {
        if (!create && errno == ENOENT) return DS_OK; // never swept: nobody holds it
        return ds_fail(ds_errno_code(errno), "%s: cannot %s: %s (is the results folder "
                       "writable?)", path, create ? "create" : "open", strerror(errno));
    }
    if (flock(*fd, LOCK_EX | LOCK_NB)) {
        int err = errno;
        if (err == EWOULDBLOCK) {
            close(*fd);
            *fd = -1;
            *busy = 1;
            return ds_fail(DS_EIO, "%s is in use by another distill_sweep (its lock %s is held)",
                           run_dir, path);
        }
        // NFS without lock support: go on, the user must not start two sweeps at once.
        fprintf(stderr, "distill_sweep: warning: cannot lock %s (%s); do not run two sweeps of "
                "this job at once\n", path, strerror(err));
    }
    return DS_OK;
}

// ---- run.txt ----

// One "key value" line of run.txt's header; 0 if absent.
static int state_field(const char *text, const char *key, const char *fmt, void *out) {
    size_t k = strlen(key);
    for (const char *l = text; *l;) {
        if (!strncmp(l, "--- canonical job ---", 21)) return 0;
        if (!strncmp(l, key, k) && l[k] == ' ') return sscanf(l + k + 1, fmt, out) == 1;
        const char *nl = strchr(l, '\n');
        if (!nl) break;
        l = nl + 1;
    }
    return 0;
}

int ds_run_state_read(const char *run_dir, ds_run_state *st) {
    memset(st, 0, sizeof *st);
    char path[1200];
    snprintf(path, sizeof path, "%s/run.txt", run_dir);
    char *text = read_text(path);
    if (!text)
        return ds_fail(DS_EIO, "%s: cannot open (%s); is %s a run folder?", path, strerror(errno),
                       run_dir);
    const char *canon = strstr(text, "--- canonical job ---\n");
    unsigned crc = 0;
    int ok = canon && state_field(text, "dataset", "%31s", st->dataset) &&
             state_field(text, "train_n", "%d", &st->train_n) &&
             state_field(text, "test_n", "%d", &st->test_n) &&
             state_field(text, "data_crc32", "%x", &crc);
    st->data_crc = crc;
    if (ok) st->canonical = strdup(canon + strlen("--- canonical job ---\n"));
    free(text);
    if (!ok || st->train_n < 1 || st->test_n < 1)
        return ds_fail(DS_EFORMAT, "%s: not a run state of distill_sweep (a field is missing or "
                       "malformed)", path);
    if (!st->canonical) return ds_fail(DS_ENOMEM, "%s: out of memory", path);
    return DS_OK;
}

void ds_run_state_free(ds_run_state *st) {
    free(st->canonical);
    st->canonical = NULL;
}

int ds_run_load_plan(const char *run_dir, ds_job *job, ds_plan *plan) {
    char path[1200];
    memset(plan, 0, sizeof *plan);
    snprintf(path, sizeof path, "%s/job.ini", run_dir);
    int rc = ds_job_parse(job, path);
    if (rc) return rc;
    ds_run_state st;
    if (!(rc = ds_run_state_read(run_dir, &st))) rc = ds_plan_build(plan, job, st.train_n, st.test_n);
    ds_run_state_free(&st);
    if (rc) ds_job_free(job);
    return rc;
}

// Opens dir as the run: lock, compare state, write job.ini/run.txt on first use.
// Returns DS_OK, DS_EINVAL (different job: *diff says what) or another error.
static int try_open(const ds_job *job, ds_run *run, const char *dir, char *diff, size_t cap) {
    int rc;
    char path[1200], tasks[700];
    snprintf(tasks, sizeof tasks, "%s/tasks", dir);
    if ((rc = make_dirs(tasks))) return rc;
    int fd, busy;
    if ((rc = ds_run_lock(dir, 1, &fd, &busy)))
        return busy ? ds_fail_context(rc, "wait for it to finish") : rc;
    run->lock_fd = fd;
    // Probe: can we write here?
    snprintf(path, sizeof path, "%s/.write_probe.tmp", tasks);
    if ((rc = write_file_atomic(path, "probe\n"))) {
        ds_run_close(run);
        return ds_fail_context(rc, "the results folder is not writable");
    }
    unlink(path);
    char *state = state_text(job, run);
    if (!state) {
        ds_run_close(run);
        return ds_fail(DS_ENOMEM, "out of memory");
    }
    snprintf(path, sizeof path, "%s/run.txt", dir);
    char *old = read_text(path);
    if (old) {
        int differs = first_difference(old, state, diff, cap);
        free(old);
        if (differs) {
            free(state);
            ds_run_close(run);
            return DS_EINVAL;
        }
        snprintf(path, sizeof path, "%s/job.ini", dir);
        if (access(path, F_OK) && (rc = write_file_atomic(path, job->text))) {
            free(state);
            ds_run_close(run);
            return rc;
        }
    } else {
        // A new run (or one killed before run.txt existed): job.ini first, then run.txt.
        snprintf(path, sizeof path, "%s/job.ini", dir);
        rc = write_file_atomic(path, job->text);
        snprintf(path, sizeof path, "%s/run.txt", dir);
        if (!rc) rc = write_file_atomic(path, state);
        if (rc) {
            free(state);
            ds_run_close(run);
            return rc;
        }
    }
    free(state);
    snprintf(path, sizeof path, "%s/data.txt", dir);
    char data[700];
    snprintf(data, sizeof data, "dataset %s\ndata_dir %s\n", run->dataset, run->data_dir);
    write_file_atomic(path, data); // informative only
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    return DS_OK;
}

int ds_run_open(const ds_job *job, ds_run *run, int new_run, FILE *log) {
    run->lock_fd = -1;
    char dir[600], diff[400];
    ds_job_run_dir(job, dir, sizeof dir);
    int rc = try_open(job, run, dir, diff, sizeof diff);
    if (rc == DS_EINVAL) {
        if (!new_run)
            return ds_fail(DS_EINVAL, "%s holds a run of a different job or dataset (%s). Refusing "
                           "to mix them: rerun with the original job, give this job another "
                           "[run] name, or pass --new-run to start %s-2", dir, diff, dir);
        for (int k = 2; k < 1000 && rc == DS_EINVAL; k++) {
            char alt[620];
            snprintf(alt, sizeof alt, "%s-%d", dir, k);
            rc = try_open(job, run, alt, diff, sizeof diff);
            if (!rc && log)
                fprintf(log, "note: %s holds a run of a different job; starting or resuming %s "
                        "instead (--new-run)\n", dir, alt);
        }
        if (rc == DS_EINVAL) return ds_fail(DS_EINVAL, "%s: no free run name up to -999", dir);
    }
    if (rc) return rc;
    char tasks[700];
    snprintf(tasks, sizeof tasks, "%s/tasks", run->dir);
    remove_stale_tmp(run->dir, log);
    remove_stale_tmp(tasks, log);
    return DS_OK;
}

void ds_run_close(ds_run *run) {
    if (run->lock_fd >= 0) close(run->lock_fd); // releases the flock
    run->lock_fd = -1;
}
