// HDF5 storage of models, checkpoints and provenance.
//
// A model is an HDF5 group holding sub-groups conv1 conv2 conv3 conv4 fc1 fc2 fc3, each with
// float32 datasets "weight" (conv [out,in,3,3], fc [out,in]) and "bias" [out], and attributes on
// the model group: temperature (double), role (string), epochs (int), seed (uint64),
// test_accuracy (double). Readable with h5dump and h5py. A group with none of these attributes
// (a network exported by another tool, e.g. scripts/ds_torch.py) loads with temperature 1,
// role "external", epochs 0, seed 0, test_accuracy -1; one with some but not all is refused.
//
// Files are written atomically: <path>.tmp is written, flushed, closed, fsync'ed and renamed to
// <path>, then the folder is fsync'ed. A file at <path> is therefore always complete.
//
// Errors: DS_EIO (missing or unwritable file), DS_EFORMAT (not HDF5, truncated, wrong layout or
// non-finite values, with a message naming file, group, layer and dataset), DS_ENOSPC (disk
// full), DS_ENUMERIC (refusing to save a non-finite value), DS_EINVAL (bad arguments).
// Lower-level (hid_t) functions for other modules, e.g. to merge models into one file, are in
// ds_h5.h.
#ifndef DS_STORE_H
#define DS_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ds_nn.h"

// Provenance written as root attributes of every file the project writes.
typedef struct {
    const char *job_text;     // the job file's text ("" if none)
    const char *code_version; // git describe or the build's version string
    uint64_t seed;
    const char *task;         // task id ("" if none)
} ds_provenance;

// Writes a new file at path (atomically, replacing any old one) holding model m as group `group`
// (e.g. "baseline" or "T100/teacher"; intermediate groups are created).
int ds_store_save_model(const char *path, const char *group, const ds_model *m,
                        const ds_provenance *prov);
// Writes a new file at path (atomically) holding models[i] as group groups[i], i < n (e.g.
// "baseline", "T100/teacher", "T100/student"). Group names must differ.
int ds_store_save_models(const char *path, int n, const char *const *groups,
                         const ds_model *const *models, const ds_provenance *prov);
// Reads group `group` of path into m (allocated here). Rejects missing layers, wrong shapes,
// wrong types, non-finite weights and an incomplete set of attributes with DS_EFORMAT and a
// message naming file, group, layer and dataset or attribute.
int ds_store_load_model(const char *path, const char *group, ds_model *m);

// A training checkpoint: the model plus the momentum buffer (dataset "velocity", float32
// [ds_params_count]) and the number of completed epochs (the model's "epochs" attribute), with a
// root attribute "checksum" (CRC-32 of weights, velocity, epochs, seed and temperature): a
// checkpoint whose data was damaged does not load (DS_EFORMAT). (Checkpoints written before the
// checksum existed have none and load unchecked.)
int ds_store_save_checkpoint(const char *path, const ds_model *m, const float *velocity,
                             const ds_provenance *prov);
// velocity: ds_params_count floats, caller-owned.
int ds_store_load_checkpoint(const char *path, ds_model *m, float *velocity);

// Soft labels: float32 dataset `name` [n,10] in a new file at path (atomic).
int ds_store_save_matrix(const char *path, const char *name, const float *data, int rows, int cols,
                         const ds_provenance *prov);
// Reads it back; *data malloc'ed. Rejects a shape other than [*, cols] when cols > 0.
int ds_store_load_matrix(const char *path, const char *name, float **data, int *rows, int cols);

// The version string of the code (from the build) and "HDF5 x.y.z, OpenBLAS ..., Open MPI ..."
// (src/store/provenance.c; out is caller-owned, cap bytes, always terminated when cap > 0).
const char *ds_code_version(void);
void ds_library_versions(char *out, size_t cap);

#endif
