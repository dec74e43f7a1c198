// Datasets in the IDX format (MNIST, Fashion-MNIST), raw or gzip-compressed.
//
// Images stay as bytes in memory (47 MB for MNIST's training set as bytes, 4x that as floats);
// a batch is converted to floats in [0,1] when it is used.
#ifndef DS_DATA_H
#define DS_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int n;           // number of samples
    int rows, cols;  // image size (28 x 28 for MNIST)
    uint8_t *images; // [n, rows*cols] pixels, row-major, owned
    uint8_t *labels; // [n] class indices 0..9, owned
} ds_dataset;

// Reads an IDX file of unsigned bytes, gzip or raw (detected from the content, not the name).
// Images: magic 0x00000803, dims [n, rows, cols]. Labels: magic 0x00000801, dims [n], each < 10.
// Validates magic, dimensions and exact length; on failure returns DS_EIO (cannot read) or
// DS_EFORMAT (malformed), with a message naming the path. *out is malloc'ed, caller frees.
int ds_idx_read_images(const char *path, uint8_t **out, int *n, int *rows, int *cols);
int ds_idx_read_labels(const char *path, uint8_t **out, int *n);

// Loads split "train" or "t10k" from dir: <split>-images-idx3-ubyte[.gz] and
// <split>-labels-idx1-ubyte[.gz]. Image and label counts must agree.
int ds_dataset_load(ds_dataset *d, const char *dir, const char *split);
void ds_dataset_free(ds_dataset *d);
// Keeps the samples [first, first+count) of d, in place (e.g. the first 2,000 training samples).
// DS_EINVAL, d unchanged, unless 0 <= first and 1 <= count and first + count <= d->n.
int ds_dataset_slice(ds_dataset *d, int first, int count);

// Finds the folder of a dataset ("mnist" or "fashion-mnist"): an explicit dir if given (non-NULL
// and non-empty), else $MNIST_DIR (mnist) / $FASHION_MNIST_DIR (fashion-mnist), else data/<name>/
// under the current folder, else (fashion-mnist) the Debian package's folder. Writes the folder
// to out; DS_EIO with a message saying how to get the data when none holds the four files.
// A folder the user named (dir, or a non-empty variable) is the only one tried: if it lacks a
// file, that is the error, rather than silently loading data from somewhere else.
int ds_data_locate(const char *name, const char *dir, char *out, size_t cap);

// x[b, rows*cols] = images[idx[b]] / 255 for b < count.
void ds_batch_pixels(float *x, const ds_dataset *d, const int32_t *idx, int count);
// x[b, rows*cols] = images[first + b] / 255 for b < count.
void ds_range_pixels(float *x, const ds_dataset *d, int first, int count);

#endif
