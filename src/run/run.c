// The run folder (ds_run.h, layout in ds_plan.h): data, the lock, run.txt (what the run was
// made from: written and read only here), opening a folder for a sweep or a reduction.
#include "ds_run.h"

#include "ds_atomic.h"
#include "ds_error.h"
#include "ds_strbuf.h"

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

// The first differing line of run.txt's header (the data: name, sizes, CRC) as a refusal, DS_OK
// if none. data_dir is informative (a moved dataset is the same data), so it sits in a separate
// file.
static int header_difference(const char *a, const char *b) {
    while (*a || *b) {
        const char *ea = strchr(a, '\n'), *eb = strchr(b, '\n');
        size_t la = ea ? (size_t)(ea - a) : strlen(a), lb = eb ? (size_t)(eb - b) : strlen(b);
        if (la != lb || memcmp(a, b, la))
            return ds_fail(DS_EINVAL, "the run was made with %.*s, this job has %.*s",
                           (int)(la > 120 ? 120 : la), a, (int)(lb > 120 ? 120 : lb), b);
        a += la + (ea ? 1 : 0);
        b += lb + (eb ? 1 : 0);
    }
    return DS_OK;
}

// ---- Comparing a job with its run: the one rule of what a resume may change ----
//
// The canonical text (ds_job_canonical) is one "key = value" a line; an attack configuration's
// lines are "attack.<NAME>.<key> = value" (NAME may hold dots, keys do not). Everything outside
// the attacks must stay; every attack of the run must stay with the same lines, in the run's
// order, except that its models may grow; new attacks may be added anywhere.

typedef struct {
    const char *key, *val; // key: before " = " (the whole line if none); val: after it
    int klen, vlen;
    const char *atk, *akey; // attack lines: NAME and key of attack.NAME.key; else atk = NULL
    int alen, aklen;
} cline;

typedef struct {
    cline *l;
    int n;
} ctext;

static int ctext_parse(const char *s, ctext *t) {
    int cap = 1;
    for (const char *c = s; *c; c++) cap += *c == '\n';
    t->n = 0;
    t->l = calloc((size_t)cap, sizeof *t->l);
    if (!t->l) return ds_fail(DS_ENOMEM, "comparing the job with its run: out of memory");
    while (*s) {
        const char *e = strchr(s, '\n');
        int len = e ? (int)(e - s) : (int)strlen(s);
        if (len) {
            cline *l = &t->l[t->n++];
            const char *eq = NULL;
            for (const char *c = s; !eq && c + 3 <= s + len; c++)
                if (!memcmp(c, " = ", 3)) eq = c;
            l->key = s;
            l->klen = eq ? (int)(eq - s) : len;
            l->val = eq ? eq + 3 : s + len;
            l->vlen = eq ? len - l->klen - 3 : 0;
            const char *dot = NULL;
            for (const char *c = s + 7; c < s + l->klen; c++)
                if (*c == '.') dot = c;
            if (l->klen > 7 && !strncmp(s, "attack.", 7) && dot && dot > s + 7) {
                l->atk = s + 7;
                l->alen = (int)(dot - l->atk);
                l->akey = dot + 1;
                l->aklen = (int)(s + l->klen - l->akey);
            }
        }
        s += len + (e ? 1 : 0);
    }
    return DS_OK;
}

static int same_span(const char *a, int na, const char *b, int nb) {
    return na == nb && !memcmp(a, b, (size_t)na);
}

// The lines of attack NAME (or, with name NULL, the lines outside the attacks) in order: *out
// (caller-freed) indexes t->l.
static int ctext_select(const ctext *t, const char *name, int nlen, int *out) {
    int n = 0;
    for (int i = 0; i < t->n; i++)
        if (name ? t->l[i].atk && same_span(t->l[i].atk, t->l[i].alen, name, nlen) : !t->l[i].atk)
            out[n++] = i;
    return n;
}

static int has_key(const ctext *t, const int *idx, int n, const cline *l) {
    for (int i = 0; i < n; i++)
        if (same_span(t->l[idx[i]].key, t->l[idx[i]].klen, l->key, l->klen)) return 1;
    return 0;
}

#define SPAN(p, n) (n) > 120 ? 120 : (n), (p) // "%.*s" of at most 120 characters

// The first difference between two lists of lines, as a refusal; DS_OK if none. A key both
// sides have compares its value, except that one_key (if non-NULL) is left to the caller.
static int compare_lines(const ctext *o, const int *oi, int no, const ctext *n, const int *ni,
                         int nn, const char *one_key, int *one_o, int *one_n) {
    int i = 0, j = 0;
    while (i < no || j < nn) {
        const cline *a = i < no ? &o->l[oi[i]] : NULL, *b = j < nn ? &n->l[ni[j]] : NULL;
        if (a && b && same_span(a->key, a->klen, b->key, b->klen)) {
            if (one_key && a->atk && same_span(a->akey, a->aklen, one_key, (int)strlen(one_key))) {
                *one_o = oi[i];
                *one_n = ni[j];
            } else if (!same_span(a->val, a->vlen, b->val, b->vlen)) {
                return ds_fail(DS_EINVAL, "the run was made with %.*s = %.*s, this job has %.*s",
                               SPAN(a->key, a->klen), SPAN(a->val, a->vlen), SPAN(b->val, b->vlen));
            }
            i++, j++;
        } else if (a && !has_key(n, ni, nn, a)) {
            return ds_fail(DS_EINVAL, "the run was made with %.*s = %.*s, this job has no %.*s",
                           SPAN(a->key, a->klen), SPAN(a->val, a->vlen), SPAN(a->key, a->klen));
        } else if (b && !has_key(o, oi, no, b)) {
            return ds_fail(DS_EINVAL, "the run was made without %.*s, this job has %.*s = %.*s",
                           SPAN(b->key, b->klen), SPAN(b->key, b->klen), SPAN(b->val, b->vlen));
        } else { // the same keys in another order: not a text ds_job_canonical writes
            const cline *c = a ? a : b;
            return ds_fail(DS_EINVAL, "the run's %.*s comes elsewhere in this job",
                           SPAN(c->key, c->klen));
        }
    }
    return DS_OK;
}

// The models of an attack's `models` value, "<DS_TARGET_* bits> [model names]", as a set of
// names: the bits expanded over the temperatures (distill.temperatures, "%.17g" each).
// NOT_MODELS if the value is not of that form.
enum { NOT_MODELS = 1 };
static int model_set(const cline *l, const double *temps, int ntemps, char (**set)[DS_JOB_NAME],
                     int *n) {
    char buf[2048];
    snprintf(buf, sizeof buf, "%.*s", l->vlen, l->val);
    char *end;
    errno = 0;
    unsigned long bits = strtoul(buf, &end, 10);
    if (end == buf || errno || bits > 7 || (*end && *end != ' ')) return NOT_MODELS;
    int cap = 1 + 2 * ntemps + (int)strlen(end) / 2 + 1;
    *set = calloc((size_t)cap, sizeof **set);
    if (!*set) return ds_fail(DS_ENOMEM, "comparing the job with its run: out of memory");
    *n = 0;
    char name[32]; // "T%g"
    if (bits & DS_TARGET_BASELINE) snprintf((*set)[(*n)++], DS_JOB_NAME, "baseline");
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < ntemps && (bits & (r ? DS_TARGET_STUDENTS : DS_TARGET_TEACHERS)); i++) {
            ds_temp_name(temps[i], name, sizeof name);
            snprintf((*set)[(*n)++], DS_JOB_NAME, "%s/%s", name, r ? "student" : "teacher");
        }
    char *save;
    for (char *tok = strtok_r(end, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        int dup = 0;
        for (int k = 0; k < *n && !dup; k++) dup = !strcmp((*set)[k], tok);
        if (!dup && *n < cap) snprintf((*set)[(*n)++], DS_JOB_NAME, "%s", tok);
    }
    return DS_OK;
}

static int in_set(char (*set)[DS_JOB_NAME], int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(set[i], name)) return 1;
    return 0;
}

// distill.temperatures of t (the run's and the job's agree by the time this is read).
static int temperatures(const ctext *t, double *temps) {
    for (int i = 0; i < t->n; i++)
        if (same_span(t->l[i].key, t->l[i].klen, "distill.temperatures", 20)) {
            char buf[2048], *p = buf, *end;
            snprintf(buf, sizeof buf, "%.*s", t->l[i].vlen, t->l[i].val);
            int n = 0;
            for (double v = strtod(p, &end); end != p && n < DS_JOB_MAX_TEMPS; v = strtod(p, &end)) {
                temps[n++] = v;
                p = end;
            }
            return n;
        }
    return 0;
}

// Attack NAME's models: the run's set must be in the job's; the added ones go to *b. A value
// that is not a model list compares as text.
static int compare_models(const ctext *o, const ctext *n, int lo, int ln, const double *temps,
                          int ntemps, ds_strbuf *b) {
    const cline *a = &o->l[lo], *c = &n->l[ln];
    char (*os)[DS_JOB_NAME] = NULL, (*ns)[DS_JOB_NAME] = NULL;
    int no = 0, nn = 0, rc = model_set(a, temps, ntemps, &os, &no);
    if (rc == DS_OK) rc = model_set(c, temps, ntemps, &ns, &nn);
    if (rc == NOT_MODELS) {
        rc = same_span(a->val, a->vlen, c->val, c->vlen) ? DS_OK :
             ds_fail(DS_EINVAL, "the run was made with %.*s = %.*s, this job has %.*s",
                     SPAN(a->key, a->klen), SPAN(a->val, a->vlen), SPAN(c->val, c->vlen));
    }
    for (int i = 0; rc == DS_OK && i < no; i++)
        if (!in_set(ns, nn, os[i]))
            rc = ds_fail(DS_EINVAL, "the run attacks %s with [attack %.*s], this job does not: "
                         "removing a model would silently drop its results from the summary",
                         os[i], a->alen, a->atk);
    int added = 0;
    for (int i = 0; rc == DS_OK && i < nn; i++)
        if (!in_set(os, no, ns[i])) {
            if (!added++) ds_sb_printf(b, "%s+ models of %.*s:", b->len ? ", " : "", a->alen, a->atk);
            ds_sb_printf(b, " %s", ns[i]);
        }
    free(os);
    free(ns);
    return rc;
}

// Index in t of the first line of attack NAME, or -1.
static int find_attack(const ctext *t, const char *name, int nlen) {
    for (int i = 0; i < t->n; i++)
        if (t->l[i].atk && same_span(t->l[i].atk, t->l[i].alen, name, nlen)) return i;
    return -1;
}

// The run's attacks (o) against the job's (n), then the job's new attacks; additions to *b.
static int compare_attacks(const ctext *o, const ctext *n, int *oi, int *ni, ds_strbuf *b) {
    double temps[DS_JOB_MAX_TEMPS];
    int ntemps = temperatures(o, temps), last = -1, last_o = -1;
    for (int i = 0; i < o->n; i++) {
        const cline *a = &o->l[i];
        if (!a->atk || find_attack(o, a->atk, a->alen) != i) continue; // one pass per attack
        int at = find_attack(n, a->atk, a->alen);
        if (at < 0)
            return ds_fail(DS_EINVAL, "the run has [attack %.*s], this job does not: removing an "
                           "attack configuration would silently drop its results from the summary",
                           a->alen, a->atk);
        if (at < last)
            return ds_fail(DS_EINVAL, "[attack %.*s] comes before [attack %.*s] in this job, "
                           "after it in the run: keep the run's attack sections in their order "
                           "(new ones may go anywhere)", a->alen, a->atk, o->l[last_o].alen,
                           o->l[last_o].atk);
        last = at;
        last_o = i;
        int no = ctext_select(o, a->atk, a->alen, oi), nn = ctext_select(n, a->atk, a->alen, ni);
        int mo = -1, mn = -1;
        int rc = compare_lines(o, oi, no, n, ni, nn, "models", &mo, &mn);
        if (!rc && mo >= 0) rc = compare_models(o, n, mo, mn, temps, ntemps, b);
        if (rc) return rc;
    }
    for (int i = 0; i < n->n; i++) {
        const cline *c = &n->l[i];
        if (!c->atk || find_attack(n, c->atk, c->alen) != i || find_attack(o, c->atk, c->alen) >= 0)
            continue;
        int count = 0;
        for (int k = i; k < n->n; k++)
            if (n->l[k].atk && same_span(n->l[k].atk, n->l[k].alen, c->atk, c->alen) &&
                same_span(n->l[k].akey, n->l[k].aklen, "models", 6)) {
                char (*set)[DS_JOB_NAME] = NULL;
                if (!model_set(&n->l[k], temps, ntemps, &set, &count)) free(set);
            }
        ds_sb_printf(b, "%s+ attack %.*s", b->len ? ", " : "", c->alen, c->atk);
        if (count) ds_sb_printf(b, " (%d model%s)", count, count == 1 ? "" : "s");
    }
    return DS_OK;
}

int ds_run_job_compare(const char *old_canonical, const char *new_canonical, char *summary,
                       size_t cap) {
    if (cap) summary[0] = 0;
    if (!strcmp(old_canonical, new_canonical)) return DS_RUN_SAME;
    ctext o = {0}, n = {0};
    int *oi = NULL, *ni = NULL;
    ds_strbuf b = {0};
    int rc = ctext_parse(old_canonical, &o);
    if (!rc) rc = ctext_parse(new_canonical, &n);
    if (!rc) {
        oi = malloc(sizeof *oi * ((size_t)o.n + 1));
        ni = malloc(sizeof *ni * ((size_t)n.n + 1));
        if (!oi || !ni) rc = ds_fail(DS_ENOMEM, "comparing the job with its run: out of memory");
    }
    if (!rc) {
        int no = ctext_select(&o, NULL, 0, oi), nn = ctext_select(&n, NULL, 0, ni);
        rc = compare_lines(&o, oi, no, &n, ni, nn, NULL, NULL, NULL);
    }
    if (!rc) rc = compare_attacks(&o, &n, oi, ni, &b);
    if (!rc && b.failed) rc = ds_fail(DS_ENOMEM, "comparing the job with its run: out of memory");
    if (!rc) {
        // Equal sets spelled differently ("students" or their names) add nothing.
        snprintf(summary, cap, "%s", b.s ? b.s : "no new tasks (the same models, named otherwise)");
        rc = DS_RUN_EXTENDS;
    }
    ds_sb_free(&b);
    free(oi);
    free(ni);
    free(o.l);
    free(n.l);
    return rc;
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

// job.ini must be a job of run.txt: anything but the same canonical text is refused, naming
// what differs. Only an extension interrupted between its two renames leaves a job.ini ahead
// of run.txt; the next sweep of either job repairs it (try_open).
static int check_job_ini(const char *run_dir, const ds_job *job, const char *canonical) {
    char *canon = ds_job_canonical(job), summary[512];
    if (!canon) return ds_fail(DS_ENOMEM, "%s/job.ini: out of memory", run_dir);
    int rc = ds_run_job_compare(canonical, canon, summary, sizeof summary);
    free(canon);
    if (rc == DS_RUN_EXTENDS)
        return ds_fail(DS_EFORMAT, "%s/job.ini is ahead of its run.txt (%s): an extension of the "
                       "run was interrupted; run the sweep of that job again to finish it",
                       run_dir, summary);
    if (rc == DS_EINVAL) {
        char why[1024];
        snprintf(why, sizeof why, "%s", ds_errmsg());
        return ds_fail(DS_EFORMAT, "%s/job.ini does not match its run.txt (%s; \"this job\" is "
                       "job.ini): rerun the sweep of the run's job to repair the folder", run_dir,
                       why);
    }
    return rc;
}

int ds_run_load_plan(const char *run_dir, ds_job *job, ds_plan *plan) {
    char path[1200];
    memset(plan, 0, sizeof *plan);
    snprintf(path, sizeof path, "%s/job.ini", run_dir);
    int rc = ds_job_parse(job, path);
    if (rc) return rc;
    ds_run_state st;
    if (!(rc = ds_run_state_read(run_dir, &st)) && !(rc = check_job_ini(run_dir, job, st.canonical)))
        rc = ds_plan_build(plan, job, st.train_n, st.test_n);
    ds_run_state_free(&st);
    if (rc) ds_job_free(job);
    return rc;
}

// run.txt's text `old` against this job's `state`: the header (the data) must be equal, the
// canonical jobs compare by ds_run_job_compare. DS_RUN_SAME, DS_RUN_EXTENDS (summary says what
// is added) or DS_EINVAL naming the first difference.
static int compare_state(const char *old, const char *state, char *summary, size_t cap) {
    static const char mark[] = "--- canonical job ---\n";
    const char *oc = strstr(old, mark), *nc = strstr(state, mark);
    if (!oc) return ds_fail(DS_EINVAL, "it is not a run state of distill_sweep (no canonical job)");
    char *oh = strndup(old, (size_t)(oc - old)), *nh = strndup(state, (size_t)(nc - state));
    int rc = oh && nh ? header_difference(oh, nh) : ds_fail(DS_ENOMEM, "out of memory");
    free(oh);
    free(nh);
    return rc ? rc : ds_run_job_compare(oc + strlen(mark), nc + strlen(mark), summary, cap);
}

// A resume of the same job: job.ini is written if missing, and put back if it is not this job
// (an extension interrupted after its job.ini and before its run.txt).
static int ensure_job_ini(const char *dir, const ds_job *job) {
    char path[1200];
    snprintf(path, sizeof path, "%s/job.ini", dir);
    ds_job ini;
    int agrees = 0;
    if (!ds_job_parse(&ini, path)) {
        char *a = ds_job_canonical(&ini), *b = ds_job_canonical(job);
        agrees = a && b && !strcmp(a, b);
        free(a);
        free(b);
        ds_job_free(&ini);
    }
    return agrees ? DS_OK : write_file_atomic(path, job->text);
}

// An extension, under the run's lock and after the comparison: job.ini, then run.txt, each put
// into place atomically (ds_atomic.h). Between the two renames the folder has a job.ini ahead of
// run.txt, which the reducer refuses and the next sweep repairs (ensure_job_ini, or this again).
static int extend_run(const char *dir, const ds_job *job, const char *state, const char *summary,
                      FILE *log) {
    char path[1200];
    snprintf(path, sizeof path, "%s/job.ini", dir);
    int rc = write_file_atomic(path, job->text);
    snprintf(path, sizeof path, "%s/run.txt", dir);
    if (!rc) rc = write_file_atomic(path, state);
    if (!rc && log) fprintf(log, "%s: extending the run: %s\n", dir, summary);
    return rc;
}

// Opens dir as the run: lock, compare state (and extend the run), write job.ini/run.txt on
// first use. Returns DS_OK, DS_EINVAL (a job that may not resume this run: *diff says why) or
// another error.
static int try_open(const ds_job *job, ds_run *run, const char *dir, char *diff, size_t cap,
                    FILE *log) {
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
        char summary[1024];
        rc = compare_state(old, state, summary, sizeof summary);
        free(old);
        if (rc == DS_EINVAL) snprintf(diff, cap, "%s", ds_errmsg());
        else if (rc == DS_RUN_SAME) rc = ensure_job_ini(dir, job);
        else if (rc == DS_RUN_EXTENDS) rc = extend_run(dir, job, state, summary, log);
    } else {
        // A new run (or one killed before run.txt existed): job.ini first, then run.txt.
        snprintf(path, sizeof path, "%s/job.ini", dir);
        rc = write_file_atomic(path, job->text);
        snprintf(path, sizeof path, "%s/run.txt", dir);
        if (!rc) rc = write_file_atomic(path, state);
    }
    free(state);
    if (rc) {
        ds_run_close(run);
        return rc;
    }
    snprintf(path, sizeof path, "%s/data.txt", dir);
    char data[700];
    snprintf(data, sizeof data, "dataset %s\ndata_dir %s\n", run->dataset, run->data_dir);
    write_file_atomic(path, data); // informative only
    snprintf(run->dir, sizeof run->dir, "%s", dir);
    return DS_OK;
}

int ds_run_open(const ds_job *job, ds_run *run, int new_run, FILE *log) {
    run->lock_fd = -1;
    char dir[600], diff[1024];
    ds_job_run_dir(job, dir, sizeof dir);
    int rc = try_open(job, run, dir, diff, sizeof diff, log);
    if (rc == DS_EINVAL) {
        if (!new_run)
            return ds_fail(DS_EINVAL, "%s/run.txt: %s: use a new run name (extending a run may "
                           "only add attack configurations or models to one), or pass --new-run "
                           "to start %s-2", dir, diff, dir);
        for (int k = 2; k < 1000 && rc == DS_EINVAL; k++) {
            char alt[620];
            snprintf(alt, sizeof alt, "%s-%d", dir, k);
            rc = try_open(job, run, alt, diff, sizeof diff, log);
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
