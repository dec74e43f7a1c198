// Fuzz entry points (tests/fuzz/entry.h): bytes -> temporary file -> the library's loaders,
// with the error contract of ds_error.h checked after every call.
#include "entry.h"

#include "ds_attack.h"
#include "ds_data.h"
#include "ds_error.h"
#include "ds_h5.h"
#include "ds_job.h"
#include "ds_plan.h"
#include "ds_store.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char why[2048];
static char dir[512];

const char *fuzz_why(void) { return why; }

static int broken(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int broken(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return -1;
}

static void cleanup(void) {
    static const char *const exts[] = {".idx", ".job", ".h5", ".h5.tmp"};
    char path[600];
    for (size_t i = 0; i < sizeof exts / sizeof exts[0]; i++) {
        snprintf(path, sizeof path, "%s/input%s", dir, exts[i]);
        unlink(path);
    }
    rmdir(dir);
}

// A private folder for this process's temporary files, made once, removed at exit.
const char *fuzz_path(const char *ext) {
    static char path[600];
    if (!dir[0]) {
        const char *base = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/ds_fuzz_XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror(dir);
            abort();
        }
        atexit(cleanup);
    }
    snprintf(path, sizeof path, "%s/input%s", dir, ext);
    return path;
}

static int write_file(const char *path, const uint8_t *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return broken("%s: cannot create the temporary file", path);
    int bad = n && fwrite(data, 1, n, f) != n;
    bad |= fclose(f) != 0;
    return bad ? broken("%s: cannot write the temporary file", path) : 0;
}

// gzip-compresses data into a new buffer (deflate with a gzip wrapper).
static uint8_t *gzip_bytes(const uint8_t *data, size_t n, size_t *out_n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) return NULL;
    size_t cap = deflateBound(&z, (uLong)n) + 32;
    uint8_t *buf = malloc(cap);
    if (!buf) {
        deflateEnd(&z);
        return NULL;
    }
    z.next_in = (Bytef *)data;
    z.avail_in = (uInt)n;
    z.next_out = buf;
    z.avail_out = (uInt)cap;
    int st = deflate(&z, Z_FINISH);
    *out_n = z.total_out;
    deflateEnd(&z);
    if (st != Z_STREAM_END) {
        free(buf);
        return NULL;
    }
    return buf;
}

// The contract of one call: DS_OK, or a known DS_E* code with a non-empty one-line message
// naming the file.
static int check(const char *call, int rc, const char *path) {
    if (rc == DS_OK) return 0;
    const char *m = ds_errmsg();
    if (rc < DS_ESTOP || rc > 0) return broken("%s: unknown return code %d (%s)", call, rc, m);
    if (!m[0]) return broken("%s: error %d without a message", call, rc);
    if (strchr(m, '\n') || strchr(m, '\r'))
        return broken("%s: error %d with a message of several lines: %s", call, rc, m);
    if (!strstr(m, path))
        return broken("%s: error %d with a message that does not name %s: %s", call, rc, path, m);
    return 0;
}

// Both readers on the file at path; bits 0 (images) and 1 (labels) of the result.
static int idx_readers(const char *path) {
    int ok = 0;
    uint8_t *out = NULL;
    int cnt = -1, rows = -1, cols = -1;
    int rc = ds_idx_read_images(path, &out, &cnt, &rows, &cols);
    if (check("ds_idx_read_images", rc, path)) return -1;
    if (rc == DS_OK) {
        if (cnt < 1 || rows < 1 || cols < 1 || !out)
            return broken("ds_idx_read_images: success with n=%d rows=%d cols=%d", cnt, rows, cols);
        volatile uint8_t sink = out[(size_t)cnt * rows * cols - 1]; // the whole buffer exists
        (void)sink;
        free(out);
        ok |= 1;
    }
    out = NULL;
    rc = ds_idx_read_labels(path, &out, &cnt);
    if (check("ds_idx_read_labels", rc, path)) return -1;
    if (rc == DS_OK) {
        if (cnt < 1 || !out) return broken("ds_idx_read_labels: success with n=%d", cnt);
        for (int i = 0; i < cnt; i++)
            if (out[i] >= 10) return broken("ds_idx_read_labels: label %u accepted", out[i]);
        free(out);
        ok |= 2;
    }
    return ok;
}

int fuzz_idx(const uint8_t *data, size_t n) {
    const char *path = fuzz_path(".idx");
    if (write_file(path, data, n)) return -1;
    int raw = idx_readers(path);
    if (raw < 0) return -1;
    size_t gz_n = 0;
    uint8_t *gz = gzip_bytes(data, n, &gz_n);
    if (!gz) return broken("fuzz_idx: cannot gzip %zu bytes", n);
    int rc = write_file(path, gz, gz_n);
    free(gz);
    if (rc) return -1;
    int packed = idx_readers(path);
    if (packed < 0) return -1;
    // gzip is transparent: a raw file and its gzip copy load alike (a file that is already
    // gzip may load raw but not gzipped twice, so only the other direction is checked).
    if (raw != 0 && n >= 2 && !(data[0] == 0x1f && data[1] == 0x8b) && packed != raw)
        return broken("fuzz_idx: raw file loads (%d) but its gzip copy does not (%d)", raw, packed);
    return raw | packed << 2;
}

static int plan_once(const ds_job *job, int train_n, int test_n, const char *path, int bit) {
    ds_plan plan;
    int rc = ds_plan_build(&plan, job, train_n, test_n);
    if (check("ds_plan_build", rc, path)) return -1;
    if (rc) return 0;
    int bad = 0;
    for (int i = 0; i < plan.ntasks && !bad; i++) {
        const ds_task *t = &plan.tasks[i];
        for (int k = 0; k < t->ndeps; k++)
            if (t->deps[k] < 0 || t->deps[k] >= i) bad = 1; // topological order
    }
    if (!bad && plan.ntasks > 0 && plan.tasks[plan.ntasks - 1].kind != DS_TASK_REDUCE) bad = 2;
    static FILE *null;
    if (!null) null = fopen("/dev/null", "w");
    if (null && !bad) ds_plan_print(&plan, null);
    ds_plan_free(&plan);
    if (bad) return broken("ds_plan_build: %s", bad == 1 ? "a dependency is not an earlier task"
                                                         : "the last task is not the reducer");
    return bit;
}

int fuzz_job(const uint8_t *data, size_t n) {
    const char *path = fuzz_path(".job");
    if (write_file(path, data, n)) return -1;
    ds_job job;
    int rc = ds_job_parse(&job, path);
    if (check("ds_job_parse", rc, path)) return -1;
    if (rc) return 0;
    int ok = 1;
    char *canon = ds_job_canonical(&job);
    if (!canon) {
        ds_job_free(&job);
        return broken("ds_job_canonical: NULL");
    }
    free(canon);
    char run[2048];
    ds_job_run_dir(&job, run, sizeof run);
    int r = plan_once(&job, 60000, 10000, path, 2); // MNIST
    if (r >= 0) ok |= r;
    int r2 = r < 0 ? -1 : plan_once(&job, 256, 128, path, 4); // the integration tests' data
    ds_job_free(&job);
    if (r2 < 0) return -1;
    return ok | r2;
}

int fuzz_h5(const uint8_t *data, size_t n) {
    const char *path = fuzz_path(".h5");
    if (write_file(path, data, n)) return -1;
    // A file of ours (whole-file checksum in its user block, ds_h5.h) whose block ends in a zero
    // byte gets a valid checksum, so the fuzzer reaches the HDF5 parsing behind it (it cannot
    // forge a CRC); with a non-zero last byte the checksum check itself is fuzzed.
    static const char magic[] = "distill_sweep-crc32 ";
    if (n >= 512 && !memcmp(data, magic, sizeof magic - 1) && data[511] == 0 && ds_h5_seal(path))
        return broken("ds_h5_seal: %s", ds_errmsg());
    int ok = 0, rc;
    ds_model m;
    rc = ds_store_load_model(path, "baseline", &m);
    if (check("ds_store_load_model", rc, path)) return -1;
    if (rc == DS_OK) {
        ds_model_free(&m);
        ok |= 1;
    }
    float *velocity = malloc(ds_params_count() * sizeof *velocity);
    if (!velocity) return broken("fuzz_h5: out of memory");
    rc = ds_store_load_checkpoint(path, &m, velocity);
    free(velocity);
    if (check("ds_store_load_checkpoint", rc, path)) return -1;
    if (rc == DS_OK) {
        ds_model_free(&m);
        ok |= 2;
    }
    float *mat = NULL;
    int rows = -1;
    rc = ds_store_load_matrix(path, "soft_labels", &mat, &rows, 10);
    if (check("ds_store_load_matrix", rc, path)) return -1;
    if (rc == DS_OK) {
        if (rows < 0 || !mat) return broken("ds_store_load_matrix: success with %d rows", rows);
        free(mat);
        ok |= 4;
    }
    ds_attack_set s;
    rc = ds_attack_results_load(path, NULL, &s);
    if (check("ds_attack_results_load", rc, path)) return -1;
    if (rc == DS_OK) {
        int bad = s.n_records < 0 || (s.n_records > 0 && !s.records) || (s.images && s.n_in < 1);
        ds_attack_set_free(&s);
        if (bad) return broken("ds_attack_results_load: inconsistent set");
        ok |= 8;
    }
    return ok;
}
