// Atomic file replacement: the one way distill_sweep puts a file into place (HDF5 files through
// ds_h5_writer, tasks/done.log's rewrite, run.txt and job.ini, the reducer's outputs), so that
// a reader, or a resume after a crash, sees either the old file or the whole new one.
//
//   1. the content is written to a temporary in the same folder (<path>.tmp, or any name),
//   2. the temporary is fsync'ed and closed,
//   3. renamed to <path> (atomic on a POSIX file system),
//   4. and the folder is fsync'ed, so that the rename itself survives a crash (a file system
//      that cannot sync folders, EINVAL or ENOTSUP, is taken as making it as durable as it can).
//
// Ownership: the caller owns every path and buffer; nothing is kept after a call returns.
// Errors: DS_OK or a negative DS_E* code (ds_error.h) with a one-line message naming the file;
// ENOSPC and EDQUOT become DS_ENOSPC, other errno values DS_EIO, a path too long or no memory
// DS_ENOMEM. A failure before the rename removes the temporary and leaves <path> untouched; a
// failure of step 4 reports an error although <path> already holds the new file.
#ifndef DS_ATOMIC_H
#define DS_ATOMIC_H

#include <stddef.h>

// Steps 1-4: writes len bytes of data to <path>.tmp (created or truncated, mode 0644 before the
// umask) and puts it into place as path.
int ds_atomic_write(const char *path, const void *data, size_t len);

// Steps 2-4 for a temporary that is complete and closed (written by another library, such as
// HDF5, or staged earlier with ds_atomic_write_synced): fsync tmp, rename it to path, fsync the
// folder of path.
int ds_atomic_commit(const char *tmp, const char *path);

// Steps 1-2 only, for a caller that renames later (the reducer stages all its outputs, then
// commits them together): path is created or truncated, written, fsync'ed and closed. On
// failure path is removed.
int ds_atomic_write_synced(const char *path, const void *data, size_t len);

#endif
