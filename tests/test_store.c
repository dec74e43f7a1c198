// HDF5 storage: bit-exact round trips, layout validation with precise messages, atomic writes,
// provenance.
#define _GNU_SOURCE // unshare, for the small-disk test
#include "ds_error.h"
#include "ds_h5.h"
#include "ds_store.h"
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>

// ---- helpers ----

static uint64_t xs_state = 0x9E3779B97F4A7C15ull;
static uint64_t xs_next(void) { // xorshift64*
    xs_state ^= xs_state >> 12;
    xs_state ^= xs_state << 25;
    xs_state ^= xs_state >> 27;
    return xs_state * 2685821657736338717ull;
}

// Random finite bit patterns: every sign, exponent (subnormals included) and mantissa bit used.
static float random_finite(void) {
    for (;;) {
        uint32_t u = (uint32_t)(xs_next() >> 32);
        float f;
        memcpy(&f, &u, sizeof f);
        if (isfinite(f)) return f;
    }
}

static void make_model(ds_model *m, uint64_t salt) {
    ck_assert_int_eq(ds_model_alloc(m), DS_OK);
    xs_state ^= salt * 0xD1B54A32D192ED03ull + 1;
    for (size_t i = 0; i < ds_params_count(); i++) m->mem[i] = random_finite();
    m->temperature = 37.5f + (float)salt;
    snprintf(m->role, sizeof m->role, "student");
    m->epochs = 49;
    m->seed = 0xFEDCBA9876543210ull; // above INT64_MAX: must survive as uint64
    m->test_accuracy = 0.9876 - 0.001 * (double)salt;
}

static void assert_models_equal(const ds_model *a, const ds_model *b) {
    ck_assert(memcmp(a->mem, b->mem, ds_params_count() * sizeof(float)) == 0);
    ck_assert(a->temperature == b->temperature);
    ck_assert_str_eq(a->role, b->role);
    ck_assert_int_eq(a->epochs, b->epochs);
    ck_assert(a->seed == b->seed);
    ck_assert(a->test_accuracy == b->test_accuracy);
}

static char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)len + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_uint_eq(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static int exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

// Removes a flat test folder (files and empty sub-folders only).
static void rm_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    char p[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) rmdir(p);
    }
    closedir(d);
    rmdir(dir);
}

static void assert_no_open_hdf5(void) {
    ck_assert_int_eq((int)H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL), 0);
}

static const ds_provenance prov = {"[job]\nname = test\nseeds = 1\n", "test-1.0", 42, "T100/s3"};

static char dir[256], path[512];

static void setup(void) {
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/model.h5", dir);
}
static void teardown(void) { rm_dir(dir); }

// A saved random model; the caller frees it.
static void save_baseline(ds_model *m) {
    make_model(m, 1);
    ck_assert_int_eq(ds_store_save_model(path, "baseline", m, &prov), DS_OK);
}

// Opens path read-write with raw HDF5 calls (to corrupt it on purpose).
static hid_t raw_open(void) {
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    ck_assert(f >= 0);
    return f;
}

// Closes a file opened by raw_open and renews its checksum: the loader's own checks are tested.
static void raw_close(hid_t f) {
    ck_assert(H5Fclose(f) >= 0);
    ck_assert_int_eq(ds_h5_seal(path), DS_OK);
}

static void raw_replace(hid_t f, const char *name, hid_t type, int rank, const hsize_t *dims,
                        const void *data) {
    ck_assert(H5Ldelete(f, name, H5P_DEFAULT) >= 0);
    hid_t s = H5Screate_simple(rank, dims, NULL);
    hid_t d = H5Dcreate2(f, name, type, s, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(d >= 0);
    ck_assert(H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0);
    H5Dclose(d);
    H5Sclose(s);
}

// Loading path must fail with code and exactly the message "<path>: <tail>".
static void expect_load_error(int code, const char *tail) {
    ds_model m;
    char want[1024];
    snprintf(want, sizeof want, "%s: %s", path, tail);
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &m), code);
    ck_assert_str_eq(ds_errmsg(), want);
    ck_assert_ptr_null(m.mem);
    assert_no_open_hdf5();
}

// ---- round trips ----

START_TEST(test_model_roundtrip) {
    ds_model a, b;
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    save_baseline(&a);
    ck_assert(!exists(tmp));
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &b), DS_OK);
    assert_models_equal(&a, &b);
    assert_no_open_hdf5();
    // Saving again replaces the file.
    ds_model c;
    make_model(&c, 2);
    ck_assert_int_eq(ds_store_save_model(path, "baseline", &c, NULL), DS_OK);
    ds_model_free(&b);
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &b), DS_OK);
    assert_models_equal(&c, &b);
    ds_model_free(&a);
    ds_model_free(&b);
    ds_model_free(&c);
}
END_TEST

START_TEST(test_intermediate_groups) {
    ds_model t, s, b, x;
    make_model(&t, 3);
    make_model(&s, 4);
    make_model(&b, 5);
    snprintf(t.role, sizeof t.role, "teacher");
    ck_assert_int_eq(ds_store_save_model(path, "T100/teacher", &t, &prov), DS_OK);
    ck_assert_int_eq(ds_store_load_model(path, "T100/teacher", &x), DS_OK);
    assert_models_equal(&t, &x);
    ds_model_free(&x);
    ck_assert_int_eq(ds_store_load_model(path, "/T100/teacher", &x), DS_OK); // absolute path
    ds_model_free(&x);

    char want[1024];
    ck_assert_int_eq(ds_store_load_model(path, "T100/student", &x), DS_EFORMAT);
    snprintf(want, sizeof want, "%s: T100/student: no such group", path);
    ck_assert_str_eq(ds_errmsg(), want);
    ck_assert_int_eq(ds_store_load_model(path, "T20/teacher", &x), DS_EFORMAT);

    // Several models sharing an intermediate group, one of them given as an absolute path.
    const char *groups[] = {"baseline", "T100/teacher", "/T100/student"};
    const ds_model *models[] = {&b, &t, &s};
    ck_assert_int_eq(ds_store_save_models(path, 3, groups, models, &prov), DS_OK);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(ds_store_load_model(path, groups[i], &x), DS_OK);
        assert_models_equal(models[i], &x);
        ds_model_free(&x);
    }
    assert_no_open_hdf5();
    ds_model_free(&t);
    ds_model_free(&s);
    ds_model_free(&b);
}
END_TEST

START_TEST(test_copy_model) {
    // What the reducer does: per-task files merged into one weights.h5.
    char p1[600], p2[600], merged[600];
    snprintf(p1, sizeof p1, "%s/task1.h5", dir);
    snprintf(p2, sizeof p2, "%s/task2.h5", dir);
    snprintf(merged, sizeof merged, "%s/weights.h5", dir);
    ds_model a, b, x;
    make_model(&a, 6);
    make_model(&b, 7);
    ck_assert_int_eq(ds_store_save_model(p1, "baseline", &a, &prov), DS_OK);
    ck_assert_int_eq(ds_store_save_model(p2, "T100/student", &b, &prov), DS_OK);
    ds_h5_writer w;
    ck_assert_int_eq(ds_h5_begin(&w, merged, &prov), DS_OK);
    ck_assert_int_eq(ds_h5_copy_model(p1, "baseline", w.file, "/baseline"), DS_OK);
    ck_assert_int_eq(ds_h5_copy_model(p2, "T100/student", w.file, "T100/student"), DS_OK);
    // A bad source leaves a message naming it; the writer can still be abandoned cleanly.
    ck_assert_int_eq(ds_h5_copy_model(p2, "T100/teacher", w.file, "T100/teacher"), DS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "task2.h5: T100/teacher: no such group"));
    ck_assert_int_eq(ds_h5_commit(&w), DS_OK);
    ck_assert_int_eq(ds_store_load_model(merged, "baseline", &x), DS_OK);
    assert_models_equal(&a, &x);
    ds_model_free(&x);
    ck_assert_int_eq(ds_store_load_model(merged, "T100/student", &x), DS_OK);
    assert_models_equal(&b, &x);
    ds_model_free(&x);
    // The same group twice is refused.
    ck_assert_int_eq(ds_h5_begin(&w, merged, NULL), DS_OK);
    ck_assert_int_eq(ds_h5_copy_model(p1, "baseline", w.file, "baseline"), DS_OK);
    ck_assert_int_ne(ds_h5_copy_model(p1, "baseline", w.file, "baseline"), DS_OK);
    ds_h5_abandon(&w);
    assert_no_open_hdf5();
    ds_model_free(&a);
    ds_model_free(&b);
}
END_TEST

START_TEST(test_checkpoint_roundtrip) {
    ds_model a, b;
    make_model(&a, 8);
    a.epochs = 17;
    size_t n = ds_params_count();
    float *v = malloc(n * sizeof *v), *v2 = malloc(n * sizeof *v2);
    ck_assert(v && v2);
    for (size_t i = 0; i < n; i++) v[i] = random_finite();
    ck_assert_int_eq(ds_store_save_checkpoint(path, &a, v, &prov), DS_OK);
    ck_assert_int_eq(ds_store_load_checkpoint(path, &b, v2), DS_OK);
    assert_models_equal(&a, &b);
    ck_assert_int_eq(b.epochs, 17);
    ck_assert(memcmp(v, v2, n * sizeof *v) == 0);
    ds_model_free(&b);
    // The checkpoint's model is a normal model group.
    ck_assert_int_eq(ds_store_load_model(path, "model", &b), DS_OK);
    ds_model_free(&b);
    // A non-finite velocity is refused on save, and the old checkpoint stays.
    v[5] = INFINITY;
    ck_assert_int_eq(ds_store_save_checkpoint(path, &a, v, &prov), DS_ENUMERIC);
    ck_assert_int_eq(ds_store_load_checkpoint(path, &b, v2), DS_OK);
    ds_model_free(&b);
    // A wrong velocity length.
    hid_t f = raw_open();
    hsize_t d = 10;
    raw_replace(f, "velocity", H5T_NATIVE_FLOAT, 1, &d, v2);
    raw_close(f);
    ck_assert_int_eq(ds_store_load_checkpoint(path, &b, v2), DS_EFORMAT);
    char want[1024];
    snprintf(want, sizeof want, "%s: velocity: expected [%zu], found [10]", path, n);
    ck_assert_str_eq(ds_errmsg(), want);
    ck_assert_ptr_null(b.mem);
    assert_no_open_hdf5();
    free(v);
    free(v2);
    ds_model_free(&a);
}
END_TEST

START_TEST(test_matrix_roundtrip) {
    int rows = 3000, cols = 10, r2;
    float *a = malloc((size_t)rows * cols * sizeof *a), *b = NULL;
    ck_assert_ptr_nonnull(a);
    for (int i = 0; i < rows; i++) { // probability rows, like soft labels
        float s = 0;
        for (int k = 0; k < cols; k++) s += a[i * cols + k] = (float)(xs_next() % 1000) + 1;
        for (int k = 0; k < cols; k++) a[i * cols + k] /= s;
    }
    ck_assert_int_eq(ds_store_save_matrix(path, "soft_labels", a, rows, cols, &prov), DS_OK);
    ck_assert_int_eq(ds_store_load_matrix(path, "soft_labels", &b, &r2, cols), DS_OK);
    ck_assert_int_eq(r2, rows);
    ck_assert(memcmp(a, b, (size_t)rows * cols * sizeof *a) == 0);
    free(b);
    ck_assert_int_eq(ds_store_load_matrix(path, "soft_labels", &b, &r2, 0), DS_OK); // any cols
    ck_assert_int_eq(r2, rows);
    free(b);
    // Chunked, shuffled and deflated.
    hid_t f = raw_open();
    hid_t d = H5Dopen2(f, "soft_labels", H5P_DEFAULT), p = H5Dget_create_plist(d);
    ck_assert_int_eq(H5Pget_layout(p), H5D_CHUNKED);
    ck_assert_int_eq(H5Pget_nfilters(p), 2);
    H5Pclose(p);
    H5Dclose(d);
    raw_close(f);
    // Wrong column count, wrong name.
    char want[1024];
    ck_assert_int_eq(ds_store_load_matrix(path, "soft_labels", &b, &r2, 5), DS_EFORMAT);
    snprintf(want, sizeof want, "%s: soft_labels: expected [*,5], found [3000,10]", path);
    ck_assert_str_eq(ds_errmsg(), want);
    ck_assert_ptr_null(b);
    ck_assert_int_eq(ds_store_load_matrix(path, "labels", &b, &r2, 10), DS_EFORMAT);
    snprintf(want, sizeof want, "%s: labels: missing dataset", path);
    ck_assert_str_eq(ds_errmsg(), want);
    // An empty matrix round-trips too.
    ck_assert_int_eq(ds_store_save_matrix(path, "x", NULL, 0, 10, NULL), DS_OK);
    ck_assert_int_eq(ds_store_load_matrix(path, "x", &b, &r2, 10), DS_OK);
    ck_assert_int_eq(r2, 0);
    free(b);
    assert_no_open_hdf5();
    free(a);
}
END_TEST

// ---- rejection of bad files ----

START_TEST(test_reject_wrong_dims) {
    ds_model m;
    save_baseline(&m);
    hid_t f = raw_open();
    hsize_t d[4] = {32, 32, 5, 5};
    float *w = calloc(32 * 32 * 25, sizeof *w);
    raw_replace(f, "baseline/conv2/weight", H5T_NATIVE_FLOAT, 4, d, w);
    raw_close(f);
    free(w);
    expect_load_error(DS_EFORMAT, "baseline/conv2/weight: expected [32,32,3,3], found [32,32,5,5]");
    // Wrong rank: a flat fc3 weight.
    f = raw_open();
    hsize_t flat = 2000;
    raw_replace(f, "baseline/conv2/weight", H5T_NATIVE_FLOAT, 4, (hsize_t[]){32, 32, 3, 3},
                m.p.w[1]);
    raw_replace(f, "baseline/fc3/weight", H5T_NATIVE_FLOAT, 1, &flat, m.p.w[DS_FC3]);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/fc3/weight: expected [10,200], found [2000]");
    ds_model_free(&m);
}
END_TEST

START_TEST(test_reject_missing_layer) {
    ds_model m;
    save_baseline(&m);
    hid_t f = raw_open();
    ck_assert(H5Ldelete(f, "baseline/conv3", H5P_DEFAULT) >= 0);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/conv3: missing layer");
    f = raw_open();
    ck_assert(H5Ldelete(f, "baseline/conv1/bias", H5P_DEFAULT) >= 0);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/conv1/bias: missing dataset");
    ds_model_free(&m);
}
END_TEST

START_TEST(test_reject_float64) {
    ds_model m;
    save_baseline(&m);
    double bias[200] = {0};
    hsize_t d = 200;
    hid_t f = raw_open();
    raw_replace(f, "baseline/fc1/bias", H5T_NATIVE_DOUBLE, 1, &d, bias);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/fc1/bias: expected float32, found float64");
    int ibias[200] = {0};
    f = raw_open();
    raw_replace(f, "baseline/fc1/bias", H5T_NATIVE_INT, 1, &d, ibias);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/fc1/bias: expected float32, found int32");
    ds_model_free(&m);
}
END_TEST

START_TEST(test_reject_nan) {
    ds_model m;
    save_baseline(&m);
    m.p.w[DS_FC2][7] = NAN;
    hsize_t d[2] = {200, 200};
    hid_t f = raw_open();
    raw_replace(f, "baseline/fc2/weight", H5T_NATIVE_FLOAT, 2, d, m.p.w[DS_FC2]);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/fc2/weight: non-finite value at [7]");
    ds_model_free(&m);
}
END_TEST

START_TEST(test_reject_attributes) {
    ds_model m;
    save_baseline(&m);
    hid_t f = raw_open();
    ck_assert(H5Adelete_by_name(f, "baseline", "seed", H5P_DEFAULT) >= 0);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline: missing attribute seed");
    f = raw_open();
    hid_t g = H5Gopen2(f, "baseline", H5P_DEFAULT);
    ck_assert_int_eq(ds_h5_attr_set_int64(g, "seed", -3), DS_OK);
    H5Gclose(g);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline: attribute seed: negative (-3)");
    f = raw_open();
    g = H5Gopen2(f, "baseline", H5P_DEFAULT);
    ck_assert_int_eq(ds_h5_attr_set_int64(g, "seed", 5), DS_OK);
    ck_assert_int_eq(ds_h5_attr_set_string(g, "temperature", "hot"), DS_OK);
    H5Gclose(g);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline: attribute temperature: expected a number");
    ds_model_free(&m);
}
END_TEST

// A group holding only the weights (what another tool exports): the defaults of an external
// model; its shapes and datasets are checked as strictly as ours.
START_TEST(test_external_model) {
    ds_model m, e;
    save_baseline(&m);
    hid_t f = raw_open();
    static const char *const attrs[] = {"temperature", "role", "epochs", "seed", "test_accuracy"};
    for (int i = 0; i < 5; i++) ck_assert(H5Adelete_by_name(f, "baseline", attrs[i], H5P_DEFAULT) >= 0);
    raw_close(f);
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &e), DS_OK);
    ck_assert(memcmp(e.mem, m.mem, ds_params_count() * sizeof(float)) == 0);
    ck_assert(e.temperature == 1.0f);
    ck_assert_str_eq(e.role, "external");
    ck_assert_int_eq(e.epochs, 0);
    ck_assert(e.seed == 0);
    ck_assert(e.test_accuracy == -1.0);
    ds_model_free(&e);
    assert_no_open_hdf5();
    f = raw_open();
    hsize_t d[2] = {200, 1000};
    raw_replace(f, "baseline/fc1/weight", H5T_NATIVE_FLOAT, 2, d, m.p.w[DS_FC1]);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/fc1/weight: expected [200,1024], found [200,1000]");
    f = raw_open();
    raw_replace(f, "baseline/fc1/weight", H5T_NATIVE_FLOAT, 2, (hsize_t[]){200, 1024}, m.p.w[DS_FC1]);
    ck_assert(H5Ldelete(f, "baseline/fc3/bias", H5P_DEFAULT) >= 0);
    raw_close(f);
    expect_load_error(DS_EFORMAT, "baseline/fc3/bias: missing dataset");
    ds_model_free(&m);
}
END_TEST

START_TEST(test_reject_unreadable_files) {
    ds_model m;
    save_baseline(&m);
    ds_model_free(&m);
    size_t n;
    char *bytes = read_all(path, &n);
    ck_assert_uint_gt(n, 1000000);
    tu_write_file(path, bytes, n / 2); // truncated: the checksum's size says so
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &m), DS_EFORMAT);
    char want[1024];
    snprintf(want, sizeof want, "%s: truncated or damaged (%zu bytes, %zu written)", path, n / 2, n);
    ck_assert_str_eq(ds_errmsg(), want);
    snprintf(want, sizeof want, "%s: not a readable HDF5 file", path);
    tu_write_file(path, bytes, 0); // empty
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &m), DS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), want));
    for (size_t i = 0; i < 4096; i++) bytes[i] = (char)xs_next(); // garbage
    tu_write_file(path, bytes, 4096);
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &m), DS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), want));
    float *x;
    int rows;
    ck_assert_int_eq(ds_store_load_matrix(path, "x", &x, &rows, 10), DS_EFORMAT);
    ck_assert_int_eq(ds_store_load_checkpoint(path, &m, (float *)bytes), DS_EFORMAT);
    free(bytes);
    unlink(path); // missing
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &m), DS_EIO);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    ck_assert_str_eq(ds_errmsg(), want);
    assert_no_open_hdf5();
}
END_TEST

// The whole-file checksum in the user block: every damage is caught before libhdf5 parses the
// file; a file written by other tools (no user block) is still read.
START_TEST(test_whole_file_checksum) {
    ds_model m, back;
    save_baseline(&m);
    size_t n;
    char *good = read_all(path, &n);
    char head[64];
    memcpy(head, good, sizeof head - 1);
    head[sizeof head - 1] = '\0';
    char want_head[64];
    snprintf(want_head, sizeof want_head, "distill_sweep-crc32 %zu ", n);
    ck_assert_ptr_eq(strstr(head, want_head), head);
    ck_assert_int_eq(memcmp(good + 512, "\x89HDF\r\n\x1a\n", 8), 0); // HDF5 after the block
    char want[1024];
    // One bit anywhere after the block: in the superblock, in metadata, in a weight.
    size_t offsets[] = {512 + 9, 2048, n / 2, n - 1};
    for (int i = 0; i < 4; i++) {
        good[offsets[i]] ^= 0x10;
        tu_write_file(path, good, n);
        good[offsets[i]] ^= 0x10;
        ck_assert_int_eq(ds_store_load_model(path, "baseline", &back), DS_EFORMAT);
        snprintf(want, sizeof want, "%s: damaged (checksum ", path);
        ck_assert_ptr_eq(strstr(ds_errmsg(), want), ds_errmsg());
        ck_assert_ptr_null(back.mem);
    }
    // The header itself damaged: refused too (HDF5's signature right after a user block).
    good[3] ^= 0x01;
    tu_write_file(path, good, n);
    good[3] ^= 0x01;
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &back), DS_EFORMAT);
    snprintf(want, sizeof want, "%s: damaged (its checksum header is unreadable)", path);
    ck_assert_str_eq(ds_errmsg(), want);
    // Intact again: loads, same weights.
    tu_write_file(path, good, n);
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &back), DS_OK);
    assert_models_equal(&m, &back);
    ds_model_free(&back);
    // A file without a user block (h5py, PyTorch exports): parsed as it is.
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(f >= 0);
    H5Fclose(f);
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    H5Fclose(f);
    free(good);
    ds_model_free(&m);
    assert_no_open_hdf5();
}
END_TEST

// ---- atomic writing ----

START_TEST(test_atomic_bad_folder) {
    ds_model m;
    make_model(&m, 9);
    char p[600], tmp[610];
    snprintf(p, sizeof p, "%s/no/such/folder/model.h5", dir);
    ck_assert_int_eq(ds_store_save_model(p, "baseline", &m, &prov), DS_EIO);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "No such file or directory"));
    // A parent that is a regular file.
    char file[600];
    snprintf(file, sizeof file, "%s/plain", dir);
    tu_write_file(file, "x", 1);
    snprintf(p, sizeof p, "%s/plain/model.h5", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    ck_assert_int_eq(ds_store_save_model(p, "baseline", &m, &prov), DS_EIO);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "Not a directory"));
    ck_assert_int_eq(ds_store_save_matrix(p, "x", m.mem, 10, 10, NULL), DS_EIO);
    ck_assert(!exists(tmp));
    assert_no_open_hdf5();
    ds_model_free(&m);
}
END_TEST

// A save that fails half-way (after the .tmp exists) leaves the old file byte-identical.
START_TEST(test_atomic_keeps_old_file) {
    ds_model m;
    save_baseline(&m);
    size_t n0, n1;
    char *before = read_all(path, &n0), tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    // Non-finite weight in the last layer: detected while writing.
    m.p.b[DS_FC3][9] = NAN;
    ck_assert_int_eq(ds_store_save_model(path, "baseline", &m, &prov), DS_ENUMERIC);
    char want[1024];
    snprintf(want, sizeof want, "%s: baseline/fc3: non-finite value at [9]", tmp);
    ck_assert_str_eq(ds_errmsg(), want);
    ck_assert(!exists(tmp));
    m.p.b[DS_FC3][9] = 0;
    // Two models with the same group.
    const char *groups[] = {"T100/teacher", "T100/teacher"};
    const ds_model *models[] = {&m, &m};
    ck_assert_int_ne(ds_store_save_models(path, 2, groups, models, &prov), DS_OK);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "T100/teacher/conv1: cannot create layer group"));
    ck_assert(!exists(tmp));
    // A stale .tmp from a crash is replaced, not trusted.
    tu_write_file(tmp, "junk", 4);
    ck_assert_int_ne(ds_store_save_models(path, 2, groups, models, &prov), DS_OK);
    ck_assert(!exists(tmp));
    char *after = read_all(path, &n1);
    ck_assert_uint_eq(n0, n1);
    ck_assert(memcmp(before, after, n0) == 0);
    assert_no_open_hdf5();
    free(before);
    free(after);
    ds_model_free(&m);
}
END_TEST

// Write failures are tested in a child process, which must also exit cleanly afterwards: HDF5
// 1.10 crashes at exit if an H5Fclose failed (ds_h5_abandon must prevent that). The child
// reports the first failed check by its exit status and message.
#define CHILD_CHECK(cond)                                                                          \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "child: line %d: %s failed (last error: %s)\n", __LINE__, #cond,        \
                    ds_errmsg());                                                                  \
            exit(__LINE__ % 200 + 1);                                                              \
        }                                                                                          \
    } while (0)

// Saves into path with the .tmp made to fail (setup_failure); expects code and msg_part.
static void failing_save_child(void (*setup_failure)(const char *tmp), int code,
                               const char *msg_part) {
    ds_model m;
    save_baseline(&m);
    size_t n0, n1;
    char *before = read_all(path, &n0), tmp[600], p2[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    snprintf(p2, sizeof p2, "%s/other.h5", dir);
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        setup_failure(tmp);
        float *v = calloc(ds_params_count(), sizeof *v);
        CHILD_CHECK(v);
        CHILD_CHECK(ds_store_save_model(path, "baseline", &m, &prov) == code);
        CHILD_CHECK(strstr(ds_errmsg(), msg_part) && !strchr(ds_errmsg(), '\n'));
        CHILD_CHECK(!exists(tmp));
        CHILD_CHECK(H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
        setup_failure(tmp);
        CHILD_CHECK(ds_store_save_checkpoint(path, &m, v, &prov) == code);
        CHILD_CHECK(!exists(tmp));
        setup_failure(tmp);
        CHILD_CHECK(ds_store_save_matrix(path, "x", v, (int)ds_params_count() / 10, 10, &prov) ==
                    code);
        CHILD_CHECK(!exists(tmp));
        free(v);
        ds_model_free(&m);
        exit(0); // HDF5's exit handlers run here
    }
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    // The old file is byte-identical and still loads; new files can be written.
    char *after = read_all(path, &n1);
    ck_assert_uint_eq(n0, n1);
    ck_assert(memcmp(before, after, n0) == 0);
    ds_model x;
    ck_assert_int_eq(ds_store_load_model(path, "baseline", &x), DS_OK);
    assert_models_equal(&m, &x);
    ck_assert_int_eq(ds_store_save_model(p2, "baseline", &m, &prov), DS_OK);
    ds_model_free(&x);
    ds_model_free(&m);
    free(before);
    free(after);
}

// A full disk from the start: <path>.tmp links to /dev/full, where every write fails (ENOSPC).
static void tmp_to_dev_full(const char *tmp) {
    CHILD_CHECK(symlink("/dev/full", tmp) == 0);
}

START_TEST(test_atomic_disk_full) {
    struct stat st;
    if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode)) return; // not available here
    failing_save_child(tmp_to_dev_full, DS_ENOSPC, "No space left on device");
}
END_TEST

// A disk that fills up half-way, for real: the child mounts a 2 MB tmpfs in a private mount
// namespace (as root, or in a user namespace), saves a good model (1.3 MB) there, then tries to
// replace it, which fails inside fc1's weights with ENOSPC. Skipped where namespaces are denied.
static int small_disk_child(void) {
    if (unshare(CLONE_NEWNS) != 0 && unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) return 77;
    if (mount("none", "/", "none", MS_REC | MS_PRIVATE, NULL) != 0) return 77;
    char small[600], p[700], tmp[710];
    snprintf(small, sizeof small, "%s/small", dir);
    CHILD_CHECK(mkdir(small, 0755) == 0);
    if (mount("tmpfs", small, "tmpfs", 0, "size=2000k") != 0) return 77;
    snprintf(p, sizeof p, "%s/model.h5", small);
    snprintf(tmp, sizeof tmp, "%s.tmp", p);
    ds_model a, b, x;
    make_model(&a, 10);
    make_model(&b, 11);
    CHILD_CHECK(ds_store_save_model(p, "baseline", &a, &prov) == DS_OK);
    size_t n0, n1;
    char *before = read_all(p, &n0);
    CHILD_CHECK(ds_store_save_model(p, "baseline", &b, &prov) == DS_ENOSPC);
    CHILD_CHECK(strstr(ds_errmsg(), "baseline/fc1/weight: cannot write dataset") &&
                strstr(ds_errmsg(), "No space left on device"));
    CHILD_CHECK(!exists(tmp));
    CHILD_CHECK(H5Fget_obj_count((hid_t)H5F_OBJ_ALL, H5F_OBJ_ALL) == 0);
    float *v = calloc(ds_params_count(), sizeof *v);
    CHILD_CHECK(v && ds_store_save_checkpoint(p, &b, v, &prov) == DS_ENOSPC);
    CHILD_CHECK(!exists(tmp));
    char *after = read_all(p, &n1);
    CHILD_CHECK(n0 == n1 && memcmp(before, after, n0) == 0);
    CHILD_CHECK(ds_store_load_model(p, "baseline", &x) == DS_OK);
    CHILD_CHECK(memcmp(a.mem, x.mem, ds_params_count() * sizeof(float)) == 0);
    free(v);
    free(before);
    free(after);
    ds_model_free(&a);
    ds_model_free(&b);
    ds_model_free(&x);
    return 0; // then HDF5's exit handlers run
}

START_TEST(test_atomic_disk_fills_midway) {
    fflush(NULL);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) exit(small_disk_child());
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
    if (WEXITSTATUS(status) == 77) {
        printf("test_atomic_disk_fills_midway: skipped (cannot mount a tmpfs here)\n");
        fflush(stdout);
        return;
    }
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

// ---- provenance and attributes ----

START_TEST(test_provenance) {
    ds_model m;
    save_baseline(&m);
    hid_t f;
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    char *s;
    uint64_t seed;
    ck_assert_int_eq(ds_h5_attr_get_string(f, "job_text", &s), DS_OK);
    ck_assert_str_eq(s, prov.job_text);
    free(s);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "code_version", &s), DS_OK);
    ck_assert_str_eq(s, "test-1.0");
    free(s);
    ck_assert_int_eq(ds_h5_attr_get_uint64(f, "seed", &seed), DS_OK);
    ck_assert(seed == 42);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "task", &s), DS_OK);
    ck_assert_str_eq(s, "T100/s3");
    free(s);
    char host[256] = "";
    gethostname(host, sizeof host);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "host", &s), DS_OK);
    ck_assert_str_eq(s, host);
    free(s);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "library_versions", &s), DS_OK);
    ck_assert_ptr_nonnull(strstr(s, "HDF5 1."));
    ck_assert_ptr_nonnull(strstr(s, "OpenBLAS"));
    ck_assert_ptr_null(strchr(s, '\n'));
    free(s);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "created_utc", &s), DS_OK);
    int y, mo, d, h, mi, sec;
    char z = 0;
    ck_assert_int_eq(strlen(s), 20);
    ck_assert_int_eq(sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%c", &y, &mo, &d, &h, &mi, &sec, &z), 7);
    ck_assert(y >= 2024 && z == 'Z');
    free(s);
    H5Fclose(f);
    // Without provenance: the build's version and empty job fields.
    ck_assert_int_eq(ds_store_save_matrix(path, "x", m.mem, 2, 10, NULL), DS_OK);
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "code_version", &s), DS_OK);
    ck_assert_str_eq(s, ds_code_version());
    free(s);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "task", &s), DS_OK);
    ck_assert_str_eq(s, "");
    free(s);
    H5Fclose(f);
    assert_no_open_hdf5();
    ds_model_free(&m);
}
END_TEST

START_TEST(test_attribute_helpers) {
    ds_h5_writer w;
    ck_assert_int_eq(ds_h5_begin(&w, path, NULL), DS_OK);
    hid_t f = w.file;
    // A fixed-length, space-padded string written with raw calls (as other tools might).
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 8);
    H5Tset_strpad(t, H5T_STR_SPACEPAD);
    hid_t sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "fixed", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    ck_assert(H5Awrite(a, t, "abc     ") >= 0);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    ck_assert_int_eq(ds_h5_attr_set_double(f, "d", -0.1), DS_OK);
    ck_assert_int_eq(ds_h5_attr_set_int64(f, "i", INT64_MIN), DS_OK);
    ck_assert_int_eq(ds_h5_attr_set_uint64(f, "u", UINT64_MAX), DS_OK);
    ck_assert_int_eq(ds_h5_attr_set_string(f, "s", "first"), DS_OK);
    ck_assert_int_eq(ds_h5_attr_set_string(f, "s", "température"), DS_OK); // replaces, UTF-8
    ck_assert_int_eq(ds_h5_commit(&w), DS_OK);

    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    char *s;
    double dv;
    int64_t iv;
    uint64_t uv;
    ck_assert_int_eq(ds_h5_attr_get_string(f, "fixed", &s), DS_OK);
    ck_assert_str_eq(s, "abc");
    free(s);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "s", &s), DS_OK);
    ck_assert_str_eq(s, "température");
    free(s);
    ck_assert_int_eq(ds_h5_attr_get_double(f, "d", &dv), DS_OK);
    ck_assert(dv == -0.1);
    ck_assert_int_eq(ds_h5_attr_get_int64(f, "i", &iv), DS_OK);
    ck_assert(iv == INT64_MIN);
    ck_assert_int_eq(ds_h5_attr_get_uint64(f, "u", &uv), DS_OK);
    ck_assert(uv == UINT64_MAX);
    ck_assert_int_eq(ds_h5_attr_get_int64(f, "u", &iv), DS_EFORMAT); // too large for int64
    ck_assert_int_eq(ds_h5_attr_get_double(f, "i", &dv), DS_OK);    // integers convert
    ck_assert_int_eq(ds_h5_attr_get_int64(f, "d", &iv), DS_EFORMAT);
    ck_assert_int_eq(ds_h5_attr_get_string(f, "nope", &s), DS_EFORMAT);
    char want[1024];
    snprintf(want, sizeof want, "%s: missing attribute nope", path);
    ck_assert_str_eq(ds_errmsg(), want);
    H5Fclose(f);
    assert_no_open_hdf5();
}
END_TEST

static Suite *store_suite(void) {
    Suite *s = suite_create("store");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_model_roundtrip);
    tcase_add_test(tc, test_intermediate_groups);
    tcase_add_test(tc, test_copy_model);
    tcase_add_test(tc, test_checkpoint_roundtrip);
    tcase_add_test(tc, test_matrix_roundtrip);
    tcase_add_test(tc, test_reject_wrong_dims);
    tcase_add_test(tc, test_reject_missing_layer);
    tcase_add_test(tc, test_reject_float64);
    tcase_add_test(tc, test_reject_nan);
    tcase_add_test(tc, test_reject_attributes);
    tcase_add_test(tc, test_external_model);
    tcase_add_test(tc, test_reject_unreadable_files);
    tcase_add_test(tc, test_whole_file_checksum);
    tcase_add_test(tc, test_atomic_bad_folder);
    tcase_add_test(tc, test_atomic_keeps_old_file);
    tcase_add_test(tc, test_atomic_disk_full);
    tcase_add_test(tc, test_atomic_disk_fills_midway);
    tcase_add_test(tc, test_provenance);
    tcase_add_test(tc, test_attribute_helpers);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(store_suite()); }
