// The data layer: IDX files written here, raw and gzip, read back byte for byte; each kind of
// damage fails with its code and a one-line message naming the file; slicing, pixels as floats,
// finding the data; and the real Fashion-MNIST when Debian's package is installed.
#include "ds_data.h"
#include "ds_error.h"
#include "testutil.h"

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <zlib.h>

// ---------------------------------------------------------------------------------------------
// Helpers: build IDX bytes in memory, write them raw or gzip, clean up.

typedef struct {
    uint8_t *b;
    size_t n;
} buf;

static void put32(buf *o, uint32_t v) {
    uint8_t p[4] = {v >> 24, v >> 16, v >> 8, v};
    memcpy(o->b + o->n, p, 4);
    o->n += 4;
}

// Pixels of image k, pixel i: a pattern hitting 0 and 255 and everything in between.
static uint8_t pixel(size_t k) { return (uint8_t)(k * 37u + (k >> 8) * 11u); }

// An image file of n rows x cols images; `extra` spare bytes of capacity for tests to append.
static buf idx_images(uint32_t magic, uint32_t n, uint32_t rows, uint32_t cols, size_t extra) {
    size_t body = (size_t)n * rows * cols;
    buf o = {malloc(16 + body + extra), 0};
    ck_assert_ptr_nonnull(o.b);
    put32(&o, magic);
    put32(&o, n);
    put32(&o, rows);
    put32(&o, cols);
    for (size_t k = 0; k < body; k++) o.b[o.n++] = pixel(k);
    return o;
}

static uint8_t label(size_t k) { return (uint8_t)((k * 7 + 3) % 10); }

static buf idx_labels(uint32_t magic, uint32_t n, size_t extra) {
    buf o = {malloc(8 + n + extra), 0};
    ck_assert_ptr_nonnull(o.b);
    put32(&o, magic);
    put32(&o, n);
    for (uint32_t k = 0; k < n; k++) o.b[o.n++] = label(k);
    return o;
}

static void write_gz(const char *path, const void *data, size_t n) {
    gzFile gz = gzopen(path, "wb");
    ck_assert_ptr_nonnull(gz);
    if (n) ck_assert_int_eq(gzwrite(gz, data, (unsigned)n), (int)n);
    ck_assert_int_eq(gzclose(gz), Z_OK);
}

static void write_idx(const char *path, buf o, int gz) {
    if (gz) write_gz(path, o.b, o.n);
    else tu_write_file(path, o.b, o.n);
}

static void *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    rewind(f);
    void *p = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        char sub[4096];
        while (d && (e = readdir(d)))
            if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
                snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
                rm_tree(sub);
            }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

// Every failure: the expected code, one line, the path named, and the word that says why.
static void expect_fail(int rc, int code, const char *path, const char *why) {
    const char *m = ds_errmsg();
    ck_assert_msg(rc == code, "rc %d, expected %d (message: %s)", rc, code, m);
    ck_assert_msg(strchr(m, '\n') == NULL, "message has a newline: %s", m);
    ck_assert_msg(!path || strstr(m, path), "message '%s' does not name %s", m, path);
    ck_assert_msg(!why || strstr(m, why), "message '%s' lacks '%s'", m, why);
}

static char dir[256];
static char path[512];

static void setup(void) { tu_tempdir(dir, sizeof dir); }
static void teardown(void) { rm_tree(dir); }

static const char *in_dir(const char *name) {
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

// Reads an image file expecting failure; out must stay untouched.
static int read_images_rc(const char *p) {
    uint8_t *img = NULL;
    int n = -1, r = -1, c = -1;
    int rc = ds_idx_read_images(p, &img, &n, &r, &c);
    ck_assert_ptr_null(img);
    return rc;
}

static int read_labels_rc(const char *p) {
    uint8_t *lab = NULL;
    int n = -1;
    int rc = ds_idx_read_labels(p, &lab, &n);
    ck_assert_ptr_null(lab);
    return rc;
}

// ---------------------------------------------------------------------------------------------
// Round trips.

static void check_images_roundtrip(int gz) {
    buf o = idx_images(0x803, 3, 4, 5, 0);
    write_idx(in_dir("img"), o, gz);
    uint8_t *img = NULL;
    int n, r, c;
    ck_assert_int_eq(ds_idx_read_images(path, &img, &n, &r, &c), DS_OK);
    ck_assert_int_eq(n, 3);
    ck_assert_int_eq(r, 4);
    ck_assert_int_eq(c, 5);
    ck_assert_mem_eq(img, o.b + 16, 60);
    free(img);
    free(o.b);
}

START_TEST(images_roundtrip_raw) { check_images_roundtrip(0); }
END_TEST

START_TEST(images_roundtrip_gzip) { check_images_roundtrip(1); }
END_TEST

// Every byte value, and more than one read chunk of zlib's buffer.
START_TEST(images_roundtrip_large_gzip) {
    buf o = idx_images(0x803, 700, 28, 28, 0);
    write_idx(in_dir("img.gz"), o, 1);
    uint8_t *img = NULL;
    int n, r, c;
    ck_assert_int_eq(ds_idx_read_images(path, &img, &n, &r, &c), DS_OK);
    ck_assert_int_eq(n, 700);
    ck_assert_int_eq(r * c, 784);
    ck_assert_mem_eq(img, o.b + 16, 700 * 784);
    free(img);
    free(o.b);
}
END_TEST

static void check_labels_roundtrip(int gz) {
    buf o = idx_labels(0x801, 23, 0);
    write_idx(in_dir("lab"), o, gz);
    uint8_t *lab = NULL;
    int n;
    ck_assert_int_eq(ds_idx_read_labels(path, &lab, &n), DS_OK);
    ck_assert_int_eq(n, 23);
    for (int k = 0; k < 23; k++) ck_assert_uint_eq(lab[k], label(k));
    free(lab);
    free(o.b);
}

START_TEST(labels_roundtrip_raw) { check_labels_roundtrip(0); }
END_TEST

START_TEST(labels_roundtrip_gzip) { check_labels_roundtrip(1); }
END_TEST

// gzip is told by the content, not the name.
START_TEST(gzip_detected_from_content) {
    buf o = idx_labels(0x801, 5, 0);
    write_idx(in_dir("labels-without-suffix"), o, 1);
    write_idx(in_dir("raw.gz"), o, 0);
    uint8_t *lab = NULL;
    int n;
    ck_assert_int_eq(ds_idx_read_labels(in_dir("labels-without-suffix"), &lab, &n), DS_OK);
    ck_assert_int_eq(n, 5);
    free(lab);
    ck_assert_int_eq(ds_idx_read_labels(in_dir("raw.gz"), &lab, &n), DS_OK);
    ck_assert_int_eq(n, 5);
    free(lab);
    free(o.b);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// Malformed files.

START_TEST(missing_file) {
    expect_fail(read_images_rc(in_dir("nope")), DS_EIO, path, "No such file");
    expect_fail(read_labels_rc(in_dir("nope.gz")), DS_EIO, path, "No such file");
}
END_TEST

START_TEST(directory_is_not_a_file) {
    expect_fail(read_images_rc(dir), DS_EIO, dir, NULL);
}
END_TEST

START_TEST(wrong_magic) {
    buf lab = idx_labels(0x801, 4, 0), img = idx_images(0x803, 2, 3, 3, 0);
    write_idx(in_dir("labels"), lab, 0);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "magic 0x00000801");
    write_idx(in_dir("images.gz"), img, 1);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "magic 0x00000803");
    buf bad = idx_images(0x08030000, 2, 3, 3, 0); // little-endian magic
    write_idx(in_dir("le"), bad, 0);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "magic 0x08030000");
    free(lab.b);
    free(img.b);
    free(bad.b);
}
END_TEST

START_TEST(truncated_header) {
    buf o = idx_images(0x803, 2, 3, 3, 0);
    o.n = 10;
    write_idx(in_dir("short"), o, 0);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "truncated header (10 of 16 bytes)");
    write_idx(in_dir("short.gz"), o, 1);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "truncated header");
    o.n = 6;
    o.b[3] = 0x01; // the label magic
    write_idx(in_dir("short-labels"), o, 0);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "truncated header (6 of 8 bytes)");
    o.n = 0;
    write_idx(in_dir("empty"), o, 0);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "empty file");
    free(o.b);
}
END_TEST

START_TEST(truncated_body) {
    buf o = idx_images(0x803, 2, 3, 3, 0);
    o.n -= 1;
    write_idx(in_dir("short"), o, 0);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "truncated");
    write_idx(in_dir("short.gz"), o, 1); // a valid gzip of a short IDX file
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "file has 17");
    buf l = idx_labels(0x801, 5, 0);
    l.n -= 2;
    write_idx(in_dir("short-labels"), l, 0);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "file has 3");
    free(o.b);
    free(l.b);
}
END_TEST

START_TEST(trailing_bytes) {
    buf o = idx_images(0x803, 2, 3, 3, 1);
    o.b[o.n++] = 0;
    write_idx(in_dir("long"), o, 0);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "1 trailing bytes");
    write_idx(in_dir("long.gz"), o, 1);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "trailing");
    buf l = idx_labels(0x801, 5, 2);
    l.b[l.n++] = 1;
    l.b[l.n++] = 2;
    write_idx(in_dir("long-labels"), l, 0);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "2 trailing bytes");
    free(o.b);
    free(l.b);
}
END_TEST

// Each dimension out of range; and a plausible but enormous header over a tiny body fails as
// truncated without first allocating the size it promises (160 TB here).
START_TEST(implausible_dimensions) {
    static const uint32_t dims[][3] = {
        {0, 28, 28}, {10000001, 28, 28}, {0xffffffffu, 28, 28}, {5, 0, 28}, {5, 28, 0},
        {5, 4097, 28}, {5, 28, 0x80000000u}};
    for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
        buf o = idx_images(0x803, 0, 0, 0, 0);
        o.n = 4;
        for (int k = 0; k < 3; k++) put32(&o, dims[i][k]);
        write_idx(in_dir("dims"), o, 0);
        expect_fail(read_images_rc(path), DS_EFORMAT, path, "implausible");
        free(o.b);
    }
    buf l = idx_labels(0x801, 0, 0);
    write_idx(in_dir("zero-labels"), l, 0);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "implausible sample count 0");
    free(l.b);
    buf big = idx_images(0x803, 0, 0, 0, 100);
    big.n = 4;
    put32(&big, 10000000);
    put32(&big, 4096);
    put32(&big, 4096);
    memset(big.b + 16, 7, 100);
    big.n += 100;
    write_idx(in_dir("huge.gz"), big, 1);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "file has 100");
    free(big.b);
}
END_TEST

START_TEST(label_out_of_range) {
    buf l = idx_labels(0x801, 5, 0);
    l.b[8 + 3] = 10;
    write_idx(in_dir("labels.gz"), l, 1);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "label 10 at index 3");
    l.b[8 + 3] = 255;
    write_idx(in_dir("labels"), l, 0);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "label 255 at index 3");
    free(l.b);
}
END_TEST

// A valid gzip header (magic, deflate, no flags, OS unix) whose first deflate block has the
// reserved type 11: zlib's "invalid block type".
START_TEST(gzip_corrupt_deflate) {
    static const uint8_t bad[] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0xff, 0xff, 0x12, 0x34,
                                  0x56, 0x78, 0, 0, 0, 0, 0, 0, 0, 0};
    tu_write_file(in_dir("bad.gz"), bad, sizeof bad);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "gzip data corrupt");
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "invalid block type");
}
END_TEST

// The data decompresses whole but the CRC-32 in the trailer is wrong.
START_TEST(gzip_bad_crc) {
    buf o = idx_labels(0x801, 50, 0);
    write_idx(in_dir("crc.gz"), o, 1);
    size_t n;
    uint8_t *gz = slurp(path, &n);
    gz[n - 8] ^= 0x55;
    tu_write_file(path, gz, n);
    expect_fail(read_labels_rc(path), DS_EFORMAT, path, "gzip data corrupt (incorrect data check)");
    free(gz);
    free(o.b);
}
END_TEST

// A .gz cut short (a download that stopped), in the deflate data and in the trailer.
START_TEST(gzip_truncated) {
    buf o = idx_images(0x803, 100, 28, 28, 0);
    write_idx(in_dir("cut.gz"), o, 1);
    size_t n;
    uint8_t *gz = slurp(path, &n);
    tu_write_file(path, gz, n / 2);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "gzip data truncated");
    tu_write_file(path, gz, n - 4);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "gzip data truncated");
    tu_write_file(path, gz, 12);
    expect_fail(read_images_rc(path), DS_EFORMAT, path, "gzip data truncated");
    free(gz);
    free(o.b);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// ds_dataset_load.

static void write_split(const char *split, uint32_t ni, uint32_t nl, int gz_images, int gz_labels) {
    char name[128];
    buf img = idx_images(0x803, ni, 28, 28, 0), lab = idx_labels(0x801, nl, 0);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", split, gz_images ? ".gz" : "");
    write_idx(in_dir(name), img, gz_images);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", split, gz_labels ? ".gz" : "");
    write_idx(in_dir(name), lab, gz_labels);
    free(img.b);
    free(lab.b);
}

START_TEST(dataset_load_mixed) {
    write_split("train", 12, 12, 0, 1);
    write_split("t10k", 7, 7, 1, 0);
    ds_dataset d;
    ck_assert_int_eq(ds_dataset_load(&d, dir, "train"), DS_OK);
    ck_assert_int_eq(d.n, 12);
    ck_assert_int_eq(d.rows, 28);
    ck_assert_int_eq(d.cols, 28);
    for (int k = 0; k < 12 * 784; k++) ck_assert_uint_eq(d.images[k], pixel(k));
    for (int k = 0; k < 12; k++) ck_assert_uint_eq(d.labels[k], label(k));
    ds_dataset_free(&d);
    ck_assert_ptr_null(d.images);
    ck_assert_int_eq(ds_dataset_load(&d, dir, "t10k"), DS_OK);
    ck_assert_int_eq(d.n, 7);
    ds_dataset_free(&d);
}
END_TEST

START_TEST(dataset_load_count_mismatch) {
    write_split("train", 12, 11, 1, 1);
    ds_dataset d;
    int rc = ds_dataset_load(&d, dir, "train");
    expect_fail(rc, DS_EFORMAT, in_dir("train-images-idx3-ubyte.gz"), "12 images but 11 labels");
    expect_fail(rc, DS_EFORMAT, in_dir("train-labels-idx1-ubyte.gz"), NULL);
    ck_assert_ptr_null(d.images);
    ck_assert_ptr_null(d.labels);
    ck_assert_int_eq(d.n, 0);
}
END_TEST

START_TEST(dataset_load_missing_and_bad) {
    ds_dataset d;
    expect_fail(ds_dataset_load(&d, dir, "train"), DS_EIO, in_dir("train-images-idx3-ubyte"),
                "not found");
    write_split("train", 3, 3, 0, 0);
    unlink(in_dir("train-labels-idx1-ubyte"));
    expect_fail(ds_dataset_load(&d, dir, "train"), DS_EIO, in_dir("train-labels-idx1-ubyte"),
                "not found");
    buf lab = idx_labels(0x801, 3, 0);
    lab.b[9] = 42;
    write_idx(in_dir("train-labels-idx1-ubyte"), lab, 0);
    expect_fail(ds_dataset_load(&d, dir, "train"), DS_EFORMAT, path, "label 42");
    ck_assert_ptr_null(d.images);
    free(lab.b);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// Slices and pixels (no files).

static ds_dataset toy(int n, int rows, int cols) {
    ds_dataset d = {n, rows, cols, malloc((size_t)n * rows * cols), malloc((size_t)n)};
    for (size_t k = 0; k < (size_t)n * rows * cols; k++) d.images[k] = pixel(k);
    for (int k = 0; k < n; k++) d.labels[k] = label(k);
    return d;
}

START_TEST(slice_keeps_range) {
    ds_dataset d = toy(6, 2, 3);
    ck_assert_int_eq(ds_dataset_slice(&d, 2, 3), DS_OK);
    ck_assert_int_eq(d.n, 3);
    for (int k = 0; k < 3 * 6; k++) ck_assert_uint_eq(d.images[k], pixel(2 * 6 + k));
    for (int k = 0; k < 3; k++) ck_assert_uint_eq(d.labels[k], label(2 + k));
    ck_assert_int_eq(ds_dataset_slice(&d, 0, 3), DS_OK); // the whole of it
    ck_assert_int_eq(ds_dataset_slice(&d, 2, 1), DS_OK); // the last one
    ck_assert_int_eq(d.n, 1);
    ck_assert_uint_eq(d.labels[0], label(4));
    ds_dataset_free(&d);
}
END_TEST

START_TEST(slice_bounds) {
    static const int bad[][2] = {{-1, 2}, {0, 0}, {0, -1}, {0, 7}, {6, 1},
                                 {5, 2}, {1, INT_MAX}, {INT_MAX, 1}, {INT_MIN, 3}};
    ds_dataset d = toy(6, 2, 3);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect_fail(ds_dataset_slice(&d, bad[i][0], bad[i][1]), DS_EINVAL, NULL, "out of range");
        ck_assert_int_eq(d.n, 6);
        ck_assert_uint_eq(d.labels[5], label(5));
    }
    ds_dataset_free(&d);
}
END_TEST

START_TEST(pixels_exact) {
    ds_dataset d = toy(256, 1, 1);
    for (int k = 0; k < 256; k++) d.images[k] = (uint8_t)k;
    float x[256];
    ds_range_pixels(x, &d, 0, 256);
    ck_assert(x[0] == 0.0f);
    ck_assert(x[255] == 1.0f);
    for (int k = 0; k < 256; k++) ck_assert(x[k] == (float)k / 255.0f);
    int32_t idx[4] = {255, 0, 128, 1};
    ds_batch_pixels(x, &d, idx, 4);
    ck_assert(x[0] == 1.0f);
    ck_assert(x[1] == 0.0f);
    ck_assert(x[2] == 128.0f / 255.0f);
    ck_assert(x[3] == 1.0f / 255.0f);
    ds_dataset_free(&d);
}
END_TEST

START_TEST(pixels_rows) {
    ds_dataset d = toy(5, 3, 4);
    float x[2 * 12], y[2 * 12];
    int32_t idx[2] = {4, 1};
    ds_batch_pixels(x, &d, idx, 2);
    for (int k = 0; k < 12; k++) {
        ck_assert(x[k] == (float)d.images[4 * 12 + k] / 255.0f);
        ck_assert(x[12 + k] == (float)d.images[12 + k] / 255.0f);
    }
    ds_range_pixels(y, &d, 3, 2);
    for (int k = 0; k < 24; k++) ck_assert(y[k] == (float)d.images[3 * 12 + k] / 255.0f);
    ds_dataset_free(&d);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// ds_data_locate: each test works in its own temp folder as the current folder.

static char old_cwd[4096];

static void locate_setup(void) {
    setup();
    ck_assert_ptr_nonnull(getcwd(old_cwd, sizeof old_cwd));
    ck_assert_int_eq(chdir(dir), 0);
    unsetenv("MNIST_DIR");
    unsetenv("FASHION_MNIST_DIR");
}

static void locate_teardown(void) {
    ck_assert_int_eq(chdir(old_cwd), 0);
    teardown();
}

// Empty files are enough: locate only looks for them.
static void touch_four(const char *sub, int gz) {
    static const char *const base[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char p[1024];
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s%s", sub, base[i], gz ? ".gz" : "");
        tu_write_file(p, "", 0);
    }
}

START_TEST(locate_env) {
    char out[512], sub[512];
    snprintf(sub, sizeof sub, "%s/mine", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    touch_four(sub, 1);
    setenv("MNIST_DIR", sub, 1);
    ck_assert_int_eq(ds_data_locate("mnist", NULL, out, sizeof out), DS_OK);
    ck_assert_str_eq(out, sub);
    ck_assert_int_eq(ds_data_locate("mnist", "", out, sizeof out), DS_OK);
    ck_assert_str_eq(out, sub);
    // The variable is set but the folder lacks a file: that is the error, naming the variable.
    unlink(in_dir("mine/t10k-labels-idx1-ubyte.gz"));
    expect_fail(ds_data_locate("mnist", NULL, out, sizeof out), DS_EIO, sub, "MNIST_DIR=");
    expect_fail(ds_data_locate("mnist", NULL, out, sizeof out), DS_EIO, NULL, "get_mnist.sh");
    // Fashion-MNIST has its own variable.
    touch_four(sub, 0);
    setenv("FASHION_MNIST_DIR", sub, 1);
    ck_assert_int_eq(ds_data_locate("fashion-mnist", NULL, out, sizeof out), DS_OK);
    ck_assert_str_eq(out, sub);
    ck_assert_int_eq(ds_data_locate("fashion-mnist", NULL, out, 4), DS_EINVAL); // out too small
}
END_TEST

START_TEST(locate_explicit_dir_first) {
    char out[512], sub[512];
    snprintf(sub, sizeof sub, "%s/explicit", dir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    touch_four(sub, 0);
    setenv("MNIST_DIR", "/nonexistent/mnist", 1);
    ck_assert_int_eq(ds_data_locate("mnist", sub, out, sizeof out), DS_OK);
    ck_assert_str_eq(out, sub);
    expect_fail(ds_data_locate("mnist", "/nonexistent/x", out, sizeof out), DS_EIO,
                "/nonexistent/x", "get_mnist.sh /nonexistent/x");
}
END_TEST

START_TEST(locate_data_subfolder) {
    char out[512];
    ck_assert_int_eq(mkdir("data", 0755), 0);
    ck_assert_int_eq(mkdir("data/mnist", 0755), 0);
    touch_four("data/mnist", 1);
    ck_assert_int_eq(ds_data_locate("mnist", NULL, out, sizeof out), DS_OK);
    ck_assert_str_eq(out, "data/mnist");
}
END_TEST

START_TEST(locate_nothing_found) {
    char out[512];
    expect_fail(ds_data_locate("mnist", NULL, out, sizeof out), DS_EIO, "data/mnist",
                "scripts/get_mnist.sh data/mnist");
    ck_assert(strstr(ds_errmsg(), "MNIST_DIR"));
    int rc = ds_data_locate("fashion-mnist", NULL, out, sizeof out);
    if (access("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz", R_OK) == 0) {
        ck_assert_int_eq(rc, DS_OK);
        ck_assert_str_eq(out, "/usr/share/datasets/fashion-mnist");
    } else {
        expect_fail(rc, DS_EIO, "data/fashion-mnist", "apt-get install dataset-fashion-mnist");
    }
    expect_fail(ds_data_locate("cifar10", NULL, out, sizeof out), DS_EINVAL, "cifar10", NULL);
}
END_TEST

// ---------------------------------------------------------------------------------------------
// The real Fashion-MNIST from Debian's dataset-fashion-mnist, when installed: 6,000 of each class
// in train and 1,000 in t10k, as published.

static void check_fashion_split(const char *fdir, const char *split, int n) {
    ds_dataset d;
    int rc = ds_dataset_load(&d, fdir, split);
    ck_assert_msg(rc == DS_OK, "%s", ds_errmsg());
    ck_assert_int_eq(d.n, n);
    ck_assert_int_eq(d.rows, 28);
    ck_assert_int_eq(d.cols, 28);
    int count[10] = {0};
    for (int k = 0; k < n; k++) count[d.labels[k]]++;
    for (int c = 0; c < 10; c++) ck_assert_int_eq(count[c], n / 10);
    long nonzero = 0;
    for (size_t k = 0; k < (size_t)n * 784; k++) nonzero += d.images[k] != 0;
    ck_assert(nonzero > (long)n * 784 / 4); // images, not a file of zeros
    ds_dataset_free(&d);
}

START_TEST(fashion_mnist_package) {
    const char *fdir = "/usr/share/datasets/fashion-mnist";
    if (access(fdir, R_OK) != 0) {
        printf("note: %s absent (apt-get install dataset-fashion-mnist); test skipped\n", fdir);
        fflush(stdout);
        return;
    }
    check_fashion_split(fdir, "t10k", 10000);
    check_fashion_split(fdir, "train", 60000);
}
END_TEST

static Suite *idx_suite(void) {
    Suite *s = suite_create("data");
    TCase *t = tcase_create("idx");
    tcase_add_checked_fixture(t, setup, teardown);
    tcase_add_test(t, images_roundtrip_raw);
    tcase_add_test(t, images_roundtrip_gzip);
    tcase_add_test(t, images_roundtrip_large_gzip);
    tcase_add_test(t, labels_roundtrip_raw);
    tcase_add_test(t, labels_roundtrip_gzip);
    tcase_add_test(t, gzip_detected_from_content);
    tcase_add_test(t, missing_file);
    tcase_add_test(t, directory_is_not_a_file);
    tcase_add_test(t, wrong_magic);
    tcase_add_test(t, truncated_header);
    tcase_add_test(t, truncated_body);
    tcase_add_test(t, trailing_bytes);
    tcase_add_test(t, implausible_dimensions);
    tcase_add_test(t, label_out_of_range);
    tcase_add_test(t, gzip_corrupt_deflate);
    tcase_add_test(t, gzip_bad_crc);
    tcase_add_test(t, gzip_truncated);
    tcase_add_test(t, dataset_load_mixed);
    tcase_add_test(t, dataset_load_count_mismatch);
    tcase_add_test(t, dataset_load_missing_and_bad);
    suite_add_tcase(s, t);

    t = tcase_create("memory");
    tcase_add_test(t, slice_keeps_range);
    tcase_add_test(t, slice_bounds);
    tcase_add_test(t, pixels_exact);
    tcase_add_test(t, pixels_rows);
    suite_add_tcase(s, t);

    t = tcase_create("locate");
    tcase_add_checked_fixture(t, locate_setup, locate_teardown);
    tcase_add_test(t, locate_env);
    tcase_add_test(t, locate_explicit_dir_first);
    tcase_add_test(t, locate_data_subfolder);
    tcase_add_test(t, locate_nothing_found);
    suite_add_tcase(s, t);

    t = tcase_create("fashion_mnist");
    tcase_set_timeout(t, 120); // 30 MB of gzip; slow under sanitizers and valgrind
    tcase_add_test(t, fashion_mnist_package);
    suite_add_tcase(s, t);
    return s;
}

int main(void) { return tu_run(idx_suite()); }
