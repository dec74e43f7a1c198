// A split of MNIST or Fashion-MNIST in memory, where to find it, and batches as floats.
#include "ds_data.h"
#include "ds_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEBIAN_FASHION_DIR "/usr/share/datasets/fashion-mnist"
#define IDX_FILES "{train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz]"

// Writes <dir>/<base> or <dir>/<base>.gz, whichever exists (raw first), to out; 0 if found.
static int find_idx(const char *dir, const char *base, char *out, size_t cap) {
    static const char *const suffix[] = {"", ".gz"};
    for (int i = 0; i < 2; i++) {
        int len = snprintf(out, cap, "%s/%s%s", dir, base, suffix[i]);
        if (len < 0 || (size_t)len >= cap) return -1;
        if (access(out, R_OK) == 0) return 0;
    }
    return -1;
}

int ds_dataset_load(ds_dataset *d, const char *dir, const char *split) {
    char ipath[4096], lpath[4096], base[256];
    int nl, rc;
    memset(d, 0, sizeof *d);
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    if (find_idx(dir, base, ipath, sizeof ipath))
        return ds_fail(DS_EIO, "%s/%s[.gz]: not found", dir, base);
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    if (find_idx(dir, base, lpath, sizeof lpath))
        return ds_fail(DS_EIO, "%s/%s[.gz]: not found", dir, base);
    rc = ds_idx_read_images(ipath, &d->images, &d->n, &d->rows, &d->cols);
    if (rc) return rc;
    rc = ds_idx_read_labels(lpath, &d->labels, &nl);
    if (rc == DS_OK && nl != d->n)
        rc = ds_fail(DS_EFORMAT, "%s, %s: %d images but %d labels", ipath, lpath, d->n, nl);
    if (rc) ds_dataset_free(d);
    return rc;
}

void ds_dataset_free(ds_dataset *d) {
    free(d->images);
    free(d->labels);
    memset(d, 0, sizeof *d);
}

int ds_dataset_slice(ds_dataset *d, int first, int count) {
    if (first < 0 || count <= 0 || first > d->n || count > d->n - first)
        return ds_fail(DS_EINVAL, "dataset slice [%d, %d+%d): out of range for %d samples", first,
                       first, count, d->n);
    size_t D = (size_t)d->rows * d->cols;
    memmove(d->images, d->images + (size_t)first * D, (size_t)count * D);
    memmove(d->labels, d->labels + first, (size_t)count);
    // Give back the memory; a failed shrink keeps the larger, still valid, block.
    uint8_t *p = realloc(d->images, (size_t)count * D);
    if (p) d->images = p;
    p = realloc(d->labels, (size_t)count);
    if (p) d->labels = p;
    d->n = count;
    return DS_OK;
}

// 1 if dir holds both splits, images and labels, raw or gzip.
static int has_dataset(const char *dir) {
    static const char *const base[] = {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                                       "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"};
    char path[4096];
    for (int i = 0; i < 4; i++)
        if (find_idx(dir, base[i], path, sizeof path)) return 0;
    return 1;
}

static int put_dir(const char *dir, char *out, size_t cap) {
    int len = snprintf(out, cap, "%s", dir);
    if (len < 0 || (size_t)len >= cap) return ds_fail(DS_EINVAL, "%s: path too long", dir);
    return DS_OK;
}

// The advice for a folder that lacks the files: how to fill it.
static void fill_hint(char *hint, size_t cap, int mnist, const char *dir) {
    if (mnist) snprintf(hint, cap, "run scripts/get_mnist.sh %s", dir);
    else snprintf(hint, cap, "copy the files there, or run 'apt-get install dataset-fashion-mnist'");
}

int ds_data_locate(const char *name, const char *dir, char *out, size_t cap) {
    int mnist = strcmp(name, "mnist") == 0;
    if (!mnist && strcmp(name, "fashion-mnist") != 0)
        return ds_fail(DS_EINVAL, "unknown dataset '%s' (expected mnist or fashion-mnist)", name);
    const char *title = mnist ? "MNIST" : "Fashion-MNIST";
    const char *var = mnist ? "MNIST_DIR" : "FASHION_MNIST_DIR";
    char hint[4200];
    // A folder the user named is the only one tried: silently loading another would surprise.
    if (dir && *dir) {
        if (has_dataset(dir)) return put_dir(dir, out, cap);
        fill_hint(hint, sizeof hint, mnist, dir);
        return ds_fail(DS_EIO, "%s not found in %s (it needs " IDX_FILES "; %s)", title, dir, hint);
    }
    const char *env = getenv(var);
    if (env && *env) {
        if (has_dataset(env)) return put_dir(env, out, cap);
        fill_hint(hint, sizeof hint, mnist, env);
        return ds_fail(DS_EIO, "%s not found in %s=%s (it needs " IDX_FILES "; %s, or unset %s)",
                       title, var, env, hint, var);
    }
    char local[64];
    snprintf(local, sizeof local, "data/%s", name);
    if (has_dataset(local)) return put_dir(local, out, cap);
    if (!mnist && has_dataset(DEBIAN_FASHION_DIR)) return put_dir(DEBIAN_FASHION_DIR, out, cap);
    if (mnist)
        return ds_fail(DS_EIO, "MNIST not found in data/mnist (set MNIST_DIR, or run "
                       "scripts/get_mnist.sh data/mnist, or 'make data')");
    return ds_fail(DS_EIO, "Fashion-MNIST not found in data/fashion-mnist or " DEBIAN_FASHION_DIR
                   " (set FASHION_MNIST_DIR, or run 'apt-get install dataset-fashion-mnist')");
}

// Division, not a multiply by 1/255: the values are then exactly x/255.0f, like torchvision's.
static void to_floats(float *x, const uint8_t *p, size_t D) {
    for (size_t i = 0; i < D; i++) x[i] = (float)p[i] / 255.0f;
}

void ds_batch_pixels(float *x, const ds_dataset *d, const int32_t *idx, int count) {
    size_t D = (size_t)d->rows * d->cols;
    for (int b = 0; b < count; b++) to_floats(x + (size_t)b * D, d->images + (size_t)idx[b] * D, D);
}

void ds_range_pixels(float *x, const ds_dataset *d, int first, int count) {
    size_t D = (size_t)d->rows * d->cols;
    to_floats(x, d->images + (size_t)first * D, (size_t)count * D);
}
