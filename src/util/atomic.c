// Atomic file replacement (include/ds_atomic.h): temporary, fsync, rename, fsync the folder.
#include "ds_atomic.h"
#include "ds_error.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

// fsyncs a file or a folder (opened read-only). A folder that cannot be synced (EINVAL,
// ENOTSUP: some file systems) is not an error: the rename is as durable as they allow.
static int sync_path(const char *path, int is_dir) {
    int fd = open(path, (is_dir ? O_RDONLY | O_DIRECTORY : O_RDONLY) | O_CLOEXEC);
    if (fd < 0)
        return ds_fail(ds_errno_code(errno), "%s: cannot open to sync: %s", path, strerror(errno));
    int rc = fsync(fd), err = errno;
    close(fd);
    if (rc != 0 && !(is_dir && (err == EINVAL || err == ENOTSUP)))
        return ds_fail(ds_errno_code(err), "%s: fsync failed: %s", path, strerror(err));
    return DS_OK;
}

// Steps 3-4: the one rename into place of the code base, then the folder's fsync.
static int rename_into_place(const char *tmp, const char *path) {
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return ds_fail(ds_errno_code(err), "%s: cannot rename to %s: %s", tmp, path,
                       strerror(err));
    }
    const char *slash = strrchr(path, '/');
    if (!slash) return sync_path(".", 1);
    size_t n = slash == path ? 1 : (size_t)(slash - path); // "/x": the root
    char *dir = malloc(n + 1);
    if (!dir) return ds_fail(DS_ENOMEM, "%s: out of memory", path);
    memcpy(dir, path, n);
    dir[n] = '\0';
    int rc = sync_path(dir, 1);
    free(dir);
    return rc;
}

int ds_atomic_write_synced(const char *path, const void *data, size_t len) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return ds_fail(ds_errno_code(errno), "%s: cannot create: %s", path, strerror(errno));
    const char *p = data;
    int err = 0;
    const char *what = "write";
    while (len && !err) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) err = w < 0 ? errno : ENOSPC; // no progress: the disk is full
        else {
            p += w;
            len -= (size_t)w;
        }
    }
    if (!err && fsync(fd) != 0) err = errno, what = "fsync";
    if (close(fd) != 0 && !err) err = errno, what = "close";
    if (!err) return DS_OK;
    unlink(path);
    return ds_fail(ds_errno_code(err), "%s: %s failed: %s", path, what, strerror(err));
}

int ds_atomic_commit(const char *tmp, const char *path) {
    int rc = sync_path(tmp, 0);
    if (rc) {
        unlink(tmp);
        return rc;
    }
    return rename_into_place(tmp, path);
}

int ds_atomic_write(const char *path, const void *data, size_t len) {
    size_t n = strlen(path);
    char *tmp = malloc(n + sizeof ".tmp");
    if (!tmp) return ds_fail(DS_ENOMEM, "%s: out of memory", path);
    memcpy(tmp, path, n);
    memcpy(tmp + n, ".tmp", sizeof ".tmp");
    int rc = ds_atomic_write_synced(tmp, data, len);
    if (!rc) rc = rename_into_place(tmp, path);
    free(tmp);
    return rc;
}
