// HDF5 helpers shared by every module that reads or writes HDF5 (store, sweep, reducer, attacks).
//
// Conventions:
// - HDF5's automatic error printing is switched off (ds_h5_init, called by every opener here);
//   failures become one-line ds_fail messages "file: object: problem (HDF5: innermost reason)".
// - Files are opened with file locking off when HDF5_USE_FILE_LOCKING=FALSE (or 0), best effort
//   when it is BEST_EFFORT (H5Pset_file_locking, HDF5 >= 1.10.7), and with H5F_CLOSE_STRONG so
//   that H5Fclose really closes the file.
// - New files are written atomically through ds_h5_writer: <path>.tmp is created, filled,
//   flushed, closed, given a whole-file CRC-32 in a 512-byte HDF5 user block, fsync'ed and
//   renamed to <path>, then the folder is fsync'ed (the last three by ds_atomic_commit,
//   ds_atomic.h). On any failure
//   the .tmp is removed and an existing file at <path> is left untouched.
// - Every function returns DS_OK or a negative DS_E* code (ds_error.h); write failures caused by
//   a full disk end as DS_ENOSPC.
#ifndef DS_H5_H
#define DS_H5_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

#include "ds_nn.h"
#include "ds_store.h"

// Switches off HDF5's error printing for this thread (idempotent, cheap).
void ds_h5_init(void);
// A file access property list as described above; the caller closes it (H5Pclose). < 0 on error.
hid_t ds_h5_fapl(void);

// Opens an existing file. DS_EIO if it is missing or unreadable (or locked), DS_EFORMAT
// "<path>: not a readable HDF5 file (...)" if it is empty, truncated or not HDF5, and
// "<path>: damaged (...)" or "<path>: truncated or damaged (...)" if it is one of ours (written
// by ds_h5_writer) whose whole-file checksum does not match: checked before libhdf5 parses it.
// Files without our checksum (other tools') are parsed as they are. Close with H5Fclose; a
// file of ours opened writable and changed would no longer match its checksum (nothing does).
int ds_h5_open(const char *path, int writable, hid_t *file);

// ---- Atomic file writing ----
typedef struct {
    hid_t file; // the open <path>.tmp: write into it
    char *path; // final path (owned)
    char *tmp;  // <path>.tmp (owned)
} ds_h5_writer;

// Creates <path>.tmp (replacing a stale one) and writes the provenance attributes on its root
// group (prov may be NULL: then only host, code and library versions and time are meaningful).
int ds_h5_begin(ds_h5_writer *w, const char *path, const ds_provenance *prov);
// Flushes, closes, fsyncs and renames the file into place. On failure the .tmp is removed.
// Either way the writer is finished (no ds_h5_abandon needed).
int ds_h5_commit(ds_h5_writer *w);
// Closes and removes the .tmp without touching <path>. Keeps the current ds_errmsg().
// Safe on a writer that is already finished.
void ds_h5_abandon(ds_h5_writer *w);

// Writes the whole-file checksum into the user block of a closed file of ours again, after it
// was changed in place (the tests that edit files with raw HDF5 calls).
int ds_h5_seal(const char *path);

// ---- Errors ----
// Builds the message "<file of loc>: <object path of loc>/<name>: <fmt...> (HDF5: <reason>)" from
// the current HDF5 error stack (so call it right after the failing HDF5 call, before any other
// HDF5 call) and returns code, or DS_ENOSPC if code is DS_EIO and the stack reports ENOSPC/EDQUOT.
// loc < 0: the message is just fmt (plus the reason); name may be NULL.
int ds_h5_fail(int code, hid_t loc, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
// "<file>: <object path>[/<name>]" for messages (object path without the leading '/').
void ds_h5_where(hid_t loc, const char *name, char *out, size_t cap);

// ---- Groups ----
// 1 if every component of the relative or absolute path exists under loc, else 0.
int ds_h5_exists(hid_t loc, const char *path);
// Opens group path of loc (DS_EFORMAT "...: <path>: no such group" if missing). "/" is the root.
int ds_h5_open_group(hid_t loc, const char *path, hid_t *group);
// Opens group path, creating it and any missing intermediate groups.
int ds_h5_require_group(hid_t loc, const char *path, hid_t *group);

// ---- Attributes: scalars on any object (file id = root group). Setting replaces an old one. ----
// Strings are variable-length UTF-8 (h5py reads them as str); the reader also accepts fixed
// length strings (null-terminated, null- or space-padded).
int ds_h5_attr_set_string(hid_t loc, const char *name, const char *value);
int ds_h5_attr_set_double(hid_t loc, const char *name, double value);
int ds_h5_attr_set_int64(hid_t loc, const char *name, int64_t value);
int ds_h5_attr_set_uint64(hid_t loc, const char *name, uint64_t value);
// Getters: DS_EFORMAT if missing, not scalar, or of the wrong class. *value malloc'ed (string).
int ds_h5_attr_get_string(hid_t loc, const char *name, char **value);
int ds_h5_attr_get_double(hid_t loc, const char *name, double *value); // float or integer
int ds_h5_attr_get_int64(hid_t loc, const char *name, int64_t *value);
int ds_h5_attr_get_uint64(hid_t loc, const char *name, uint64_t *value); // rejects negatives

// Root attributes job_text, code_version, seed, task, host, library_versions, created_utc
// (ISO 8601 UTC). prov may be NULL; a NULL or empty code_version means ds_code_version().
// Defined in src/store/provenance.c.
int ds_h5_write_provenance(hid_t file, const ds_provenance *prov);

// ---- Datasets ----
// Writes dataset name (intermediate groups created) of `rank` dims from data, with `type` (a
// native type such as H5T_NATIVE_FLOAT) as both memory and file type. compress: chunked along
// the first dimension, shuffle + deflate (ignored for empty datasets).
int ds_h5_write_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                        const void *data, int compress);
// Reads dataset name, which must have rank `rank`, dims[i] elements where dims[i] > 0 (0: any;
// the actual sizes are written back) and elements of type's class, size and sign; otherwise
// DS_EFORMAT "file: obj/name: expected [32,1,3,3], found [32,1,5,5]" or "expected float32,
// found float64". *data: a buffer for all the elements (then every dims[i] must be given), or
// NULL to have one malloc'ed (at least 1 byte, also for an empty dataset).
int ds_h5_read_dataset(hid_t loc, const char *name, hid_t type, int rank, hsize_t *dims,
                       void **data);
// DS_EFORMAT "file: obj/name: non-finite value at [i]" if a value is NaN or infinite (or
// `code`, e.g. DS_ENUMERIC when refusing to write one).
int ds_h5_check_finite(int code, hid_t loc, const char *name, const float *x, size_t n);

// ---- Models (layout in ds_store.h) ----
// Writes model m as group `group` of loc (e.g. "baseline", "T100/teacher"; intermediate groups
// are created, an existing group is reused but its layers must not exist yet). Refuses
// non-finite weights with DS_ENUMERIC.
int ds_h5_write_model(hid_t loc, const char *group, const ds_model *m);
// Reads and validates group `group` of loc into m (allocated here, freed on failure).
int ds_h5_read_model(hid_t loc, const char *group, ds_model *m);
// Loads (validating) model src_group of file src_path and writes it as dst_group of dst: what
// the reducer uses to merge per-task files into one weights.h5.
int ds_h5_copy_model(const char *src_path, const char *src_group, hid_t dst,
                     const char *dst_group);

#endif
