// HDF5 helpers (include/ds_h5.h): opening, atomic writing, error messages, attributes,
// generic datasets. The provenance attributes are in provenance.c.
#define _GNU_SOURCE // memfd_create
#include "ds_h5.h"
#include "ds_atomic.h"
#include "ds_error.h"
#include "ds_fault.h"
#include "ds_filecrc.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

// ---- Errors ----

// What the HDF5 error stack says: the innermost description and the errno it reports, if any.
typedef struct {
    char reason[256];
    int err;
    int lock; // a file-locking failure somewhere on the stack
} h5_stack;

static herr_t stack_walk(unsigned n, const H5E_error2_t *e, void *data) {
    (void)n;
    h5_stack *s = data;
    if (!e->desc || !*e->desc) return 0;
    // Walking downward, the last description seen is the innermost (the most specific).
    snprintf(s->reason, sizeof s->reason, "%s", e->desc);
    const char *p = strstr(e->desc, "errno = ");
    if (p) s->err = atoi(p + 8);
#ifdef H5E_CANTLOCKFILE
    if (e->min_num == H5E_CANTLOCKFILE) s->lock = 1;
#endif
    if (strstr(e->desc, "unable to lock")) s->lock = 1;
    return 0;
}

static void stack_capture(h5_stack *s) {
    memset(s, 0, sizeof *s);
    H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, stack_walk, s);
    if (s->err > 0) { // "file write failed: time = ..., errno = 28, ..." -> "file write failed: ..."
        size_t cut = strcspn(s->reason, ",:");
        snprintf(s->reason + cut, sizeof s->reason - cut, ": %s", strerror(s->err));
    }
    for (char *c = s->reason; *c; c++)
        if (*c == '\n' || *c == '\r') *c = ' ';
}

void ds_h5_where(hid_t loc, const char *name, char *out, size_t cap) {
    char file[1024] = "?", obj[1024] = "";
    if (H5Fget_name(loc, file, sizeof file) < 0) snprintf(file, sizeof file, "?");
    if (H5Iget_type(loc) != H5I_FILE && H5Iget_name(loc, obj, sizeof obj) < 0) obj[0] = '\0';
    const char *o = obj[0] == '/' ? obj + 1 : obj;
    if (name && name[0] == '/') name++;
    int has_name = name && *name;
    snprintf(out, cap, "%s%s%s%s%s", file, (*o || has_name) ? ": " : "", o,
             (*o && has_name) ? "/" : "", has_name ? name : "");
}

static int fail_with(int code, const h5_stack *s, hid_t loc, const char *name, const char *fmt,
                     va_list ap) {
    if (code == DS_EIO && s->err && ds_errno_code(s->err) == DS_ENOSPC) code = DS_ENOSPC;
    char what[512], where[1024] = "";
    vsnprintf(what, sizeof what, fmt, ap);
    if (loc >= 0) ds_h5_where(loc, name, where, sizeof where);
    int show = s->reason[0] && strcmp(s->reason, what) != 0;
    return ds_fail(code, "%s%s%s%s%s%s", where, *where ? ": " : "", what, show ? " (HDF5: " : "",
                   show ? s->reason : "", show ? ")" : "");
}

int ds_h5_fail(int code, hid_t loc, const char *name, const char *fmt, ...) {
    h5_stack s;
    stack_capture(&s);
    va_list ap;
    va_start(ap, fmt);
    code = fail_with(code, &s, loc, name, fmt, ap);
    va_end(ap);
    return code;
}

// ---- Opening ----

void ds_h5_init(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

hid_t ds_h5_fapl(void) {
    ds_h5_init();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return fapl;
    if (H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) goto fail;
#if H5_VERSION_GE(1, 10, 7)
    // HDF5 reads this variable itself since 1.10.7; setting the property as well documents it
    // and covers builds where the variable is ignored.
    const char *env = getenv("HDF5_USE_FILE_LOCKING");
    if (env && (!strcasecmp(env, "FALSE") || !strcmp(env, "0"))) {
        if (H5Pset_file_locking(fapl, 0, 1) < 0) goto fail;
    } else if (env && !strcasecmp(env, "BEST_EFFORT")) {
        if (H5Pset_file_locking(fapl, 1, 1) < 0) goto fail;
    }
#endif
    return fapl;
fail:
    H5Pclose(fapl);
    return H5I_INVALID_HID;
}

// ---- The whole-file checksum ----
// Every file written here starts with a 512-byte HDF5 user block (HDF5 skips it; h5dump and
// h5py read the file as usual) holding "distill_sweep-crc32 <size> <crc32 of bytes 512..size>".
// ds_h5_open checks it before libhdf5 parses anything: a damaged file of ours is refused with a
// clear message, never handed to a parser that can crash on damaged metadata
// (tests/fuzz/hdf5-bugs/).
#define USERBLOCK 512
static const char crc_magic[] = "distill_sweep-crc32 ";
static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

int ds_h5_seal(const char *path) {
    int fd = open(path, O_RDWR);
    if (fd < 0) return ds_fail(ds_errno_code(errno), "%s: cannot reopen: %s", path, strerror(errno));
    uint64_t n;
    uint32_t crc;
    int rc = ds_fd_crc32(fd, path, USERBLOCK, &n, &crc);
    if (!rc) {
        char block[USERBLOCK] = {0};
        snprintf(block, sizeof block, "%s%llu %08x\n", crc_magic, (unsigned long long)(n + USERBLOCK), crc);
        ssize_t put = pwrite(fd, block, sizeof block, 0);
        if (put != (ssize_t)sizeof block)
            rc = ds_fail(ds_errno_code(put < 0 ? errno : ENOSPC), "%s: cannot write the checksum: %s",
                         path, strerror(put < 0 ? errno : ENOSPC));
    }
    close(fd);
    return rc;
}

// DS_OK for an intact file of ours or a file without our user block (written by other tools);
// DS_EFORMAT for a file of ours whose size or checksum does not match.
static int verify_checksum(int fd, const char *path, uint64_t size) {
    char block[USERBLOCK + sizeof hdf5_signature];
    ssize_t got = pread(fd, block, sizeof block, 0);
    if (got < 0) return ds_fail(DS_EIO, "%s: read error: %s", path, strerror(errno));
    size_t m = sizeof crc_magic - 1;
    if ((size_t)got < m || memcmp(block, crc_magic, m)) {
        // No checksum: another tool's file, unless HDF5's signature sits right after a user block.
        if (got == (ssize_t)sizeof block && !memcmp(block + USERBLOCK, hdf5_signature, sizeof hdf5_signature))
            return ds_fail(DS_EFORMAT, "%s: damaged (its checksum header is unreadable)", path);
        return DS_OK;
    }
    unsigned long long want_size;
    unsigned want_crc;
    block[USERBLOCK - 1] = '\0';
    if (sscanf(block + m, "%llu %8x", &want_size, &want_crc) != 2)
        return ds_fail(DS_EFORMAT, "%s: damaged (its checksum header is unreadable)", path);
    if (want_size != size)
        return ds_fail(DS_EFORMAT, "%s: truncated or damaged (%llu bytes, %llu written)", path,
                       (unsigned long long)size, want_size);
    uint64_t n;
    uint32_t crc;
    int rc = ds_fd_crc32(fd, path, USERBLOCK, &n, &crc);
    if (rc) return rc;
    if (crc != want_crc)
        return ds_fail(DS_EFORMAT, "%s: damaged (checksum %08x, %08x written)", path, crc, want_crc);
    return DS_OK;
}

int ds_h5_open(const char *path, int writable, hid_t *file) {
    *file = H5I_INVALID_HID;
    ds_h5_init();
    // Ask the OS first: a clean errno message for missing or unreadable files.
    int fd = open(path, writable ? O_RDWR : O_RDONLY);
    if (fd < 0) return ds_fail(ds_errno_code(errno), "%s: %s", path, strerror(errno));
    struct stat st;
    int st_rc = fstat(fd, &st);
    if (st_rc == 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        return ds_fail(DS_EIO, "%s: is a folder", path);
    }
    if (st_rc == 0 && st.st_size == 0) {
        close(fd);
        return ds_fail(DS_EFORMAT, "%s: not a readable HDF5 file (empty)", path);
    }
    int rc = st_rc == 0 ? verify_checksum(fd, path, (uint64_t)st.st_size) : DS_OK;
    close(fd);
    if (rc) return rc;

    hid_t fapl = ds_h5_fapl();
    if (fapl < 0) return ds_h5_fail(DS_EIO, -1, NULL, "%s: cannot make file access list", path);
    hid_t f = H5Fopen(path, writable ? H5F_ACC_RDWR : H5F_ACC_RDONLY, fapl);
    h5_stack s;
    stack_capture(&s);
    H5Pclose(fapl);
    if (f < 0) {
        if (s.lock)
            return ds_fail(DS_EIO, "%s: cannot lock the file (HDF5: %s); on NFS or Lustre set "
                           "HDF5_USE_FILE_LOCKING=FALSE", path, s.reason);
        return ds_fail(DS_EFORMAT, "%s: not a readable HDF5 file%s%s%s", path,
                       s.reason[0] ? " (HDF5: " : "", s.reason, s.reason[0] ? ")" : "");
    }
    *file = f;
    return DS_OK;
}

// ---- Atomic writing ----

static char *dup_str(const char *s, const char *suffix) {
    size_t n = strlen(s), m = strlen(suffix);
    char *d = malloc(n + m + 1);
    if (d) {
        memcpy(d, s, n);
        memcpy(d + n, suffix, m + 1);
    }
    return d;
}

static void writer_release(ds_h5_writer *w) {
    free(w->path);
    free(w->tmp);
    w->path = w->tmp = NULL;
    w->file = H5I_INVALID_HID;
}

// The descriptor of a file opened with the sec2 driver (the default), or -1.
static int *sec2_fd(hid_t file) {
    hid_t fapl = H5Fget_access_plist(file);
    void *handle = NULL;
    if (fapl >= 0 && H5Pget_driver(fapl) == H5FD_SEC2 &&
        H5Fget_vfd_handle(file, fapl, &handle) < 0)
        handle = NULL;
    if (fapl >= 0) H5Pclose(fapl);
    H5Eclear2(H5E_DEFAULT);
    return handle;
}

// HDF5 1.10 does not survive a failed H5Fclose: when the final flush fails (a full disk), the
// file's ID stays registered over freed memory and the library crashes at exit (HDFGroup/hdf5
// issue 2257, h5py issue 914). So before closing a file that is being abandoned anyway, its
// descriptor is pointed at a scratch file in memory: the last flush succeeds and goes nowhere.
static void redirect_to_scratch(hid_t file) {
    int *fd = sec2_fd(file);
    if (!fd || *fd < 0) return;
    int scratch = memfd_create("ds_h5_abandoned", MFD_CLOEXEC);
    if (scratch < 0) {
        char name[] = "/dev/shm/ds_h5_abandoned_XXXXXX";
        scratch = mkstemp(name);
        if (scratch >= 0) unlink(name);
    }
    if (scratch < 0) return;
    dup2(scratch, *fd);
    close(scratch);
}

void ds_h5_abandon(ds_h5_writer *w) {
    if (w->file >= 0) {
        redirect_to_scratch(w->file);
        H5Fclose(w->file);
    }
    if (w->tmp) unlink(w->tmp);
    writer_release(w);
}

int ds_h5_begin(ds_h5_writer *w, const char *path, const ds_provenance *prov) {
    memset(w, 0, sizeof *w);
    w->file = H5I_INVALID_HID;
    ds_h5_init();
    if (!path || !*path) return ds_fail(DS_EINVAL, "HDF5 writer: empty file name");
    w->path = dup_str(path, "");
    w->tmp = dup_str(path, ".tmp");
    if (!w->path || !w->tmp) {
        writer_release(w);
        return ds_fail(DS_ENOMEM, "%s: out of memory", path);
    }
    // Create (or truncate a stale) .tmp ourselves, and write one block: a clear errno for a
    // missing folder, a parent that is a file, a read-only or an already full disk (where a
    // failing H5Fcreate would also leak memory inside HDF5). H5F_ACC_TRUNC removes the block.
    static const char block[4096];
    int fd = open(w->tmp, O_WRONLY | O_CREAT | O_TRUNC, 0666);
    int err = fd < 0 ? errno : 0;
    if (fd >= 0) {
        ssize_t n = write(fd, block, sizeof block);
        if (n < 0) err = errno;
        else if (n != (ssize_t)sizeof block) err = ENOSPC; // a short write: the disk is full
        close(fd);
        if (err) unlink(w->tmp);
    }
    if (err) {
        int rc = ds_fail(ds_errno_code(err), "%s: cannot create: %s", w->tmp, strerror(err));
        writer_release(w);
        return rc;
    }
    int rc;
    hid_t fapl = ds_h5_fapl();
    if (fapl < 0) {
        rc = ds_h5_fail(DS_EIO, -1, NULL, "%s: cannot make file access list", w->tmp);
        goto fail;
    }
    hid_t fcpl = H5Pcreate(H5P_FILE_CREATE);
    if (fcpl < 0 || H5Pset_userblock(fcpl, USERBLOCK) < 0) {
        rc = ds_h5_fail(DS_EIO, -1, NULL, "%s: cannot make file creation list", w->tmp);
        if (fcpl >= 0) H5Pclose(fcpl);
        H5Pclose(fapl);
        goto fail;
    }
    w->file = H5Fcreate(w->tmp, H5F_ACC_TRUNC, fcpl, fapl);
    H5Pclose(fcpl);
    H5Pclose(fapl);
    if (w->file < 0) {
        rc = ds_h5_fail(DS_EIO, -1, NULL, "%s: cannot create HDF5 file", w->tmp);
        goto fail;
    }
    rc = ds_h5_write_provenance(w->file, prov);
    if (rc) goto fail;
    return DS_OK;
fail:
    ds_h5_abandon(w);
    return rc;
}

int ds_h5_commit(ds_h5_writer *w) {
    int rc;
    if (!w->tmp || w->file < 0) return ds_fail(DS_EINVAL, "HDF5 writer: not open");
    if (ds_fault("h5-write", w->path)) {
        rc = ds_fail(DS_ENOSPC, "%s: cannot flush: %s", w->tmp, strerror(ENOSPC));
        goto fail;
    }
    if (H5Fflush(w->file, H5F_SCOPE_GLOBAL) < 0) {
        rc = ds_h5_fail(DS_EIO, -1, NULL, "%s: cannot flush", w->tmp);
        goto fail;
    }
    // Sync while the file is still open, so that a late failure (delayed allocation, NFS) can
    // still be handled by ds_h5_abandon. H5Fclose has (almost) nothing left to write after this.
    int *fd = sec2_fd(w->file);
    if (fd && *fd >= 0 && fsync(*fd) != 0) {
        rc = ds_fail(ds_errno_code(errno), "%s: fsync failed: %s", w->tmp, strerror(errno));
        goto fail;
    }
    herr_t closed = H5Fclose(w->file);
    w->file = H5I_INVALID_HID;
    if (closed < 0) {
        rc = ds_h5_fail(DS_EIO, -1, NULL, "%s: cannot close", w->tmp);
        goto fail;
    }
    // The checksum goes into the user block before the file is synced and renamed into place.
    rc = ds_h5_seal(w->tmp);
    if (rc) goto fail;
    rc = ds_atomic_commit(w->tmp, w->path); // removes the .tmp if it fails before the rename
    if (!rc) ds_fault("h5-commit", w->path);
    writer_release(w);
    return rc;
fail:
    ds_h5_abandon(w);
    return rc;
}

// ---- Groups ----

int ds_h5_exists(hid_t loc, const char *path) {
    char buf[1024];
    if (!path || snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf) return 0;
    const char *start = buf;
    if (*start == '/') {
        while (*start == '/') start++;
        if (!*start) return 1; // the root
    }
    // Check each prefix: H5Lexists fails (rather than saying no) when an intermediate is missing.
    for (char *p = buf + (start - buf);; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (p > start && p[-1] != '/') {
                htri_t ex = H5Lexists(loc, buf, H5P_DEFAULT);
                if (ex < 0) H5Eclear2(H5E_DEFAULT); // e.g. a path through a dataset: just "no"
                if (ex <= 0) return 0;
            }
            *p = c;
            if (!c) return 1;
        }
    }
}

int ds_h5_open_group(hid_t loc, const char *path, hid_t *group) {
    *group = H5I_INVALID_HID;
    if (!path || !*path) return ds_fail(DS_EINVAL, "HDF5: empty group name");
    if (!ds_h5_exists(loc, path)) return ds_h5_fail(DS_EFORMAT, loc, path, "no such group");
    hid_t g = H5Gopen2(loc, path, H5P_DEFAULT);
    if (g < 0) return ds_h5_fail(DS_EFORMAT, loc, path, "not a group");
    *group = g;
    return DS_OK;
}

int ds_h5_require_group(hid_t loc, const char *path, hid_t *group) {
    *group = H5I_INVALID_HID;
    if (!path || !*path) return ds_fail(DS_EINVAL, "HDF5: empty group name");
    if (ds_h5_exists(loc, path)) return ds_h5_open_group(loc, path, group);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    if (lcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        int rc = ds_h5_fail(DS_EIO, loc, path, "cannot make link creation list");
        if (lcpl >= 0) H5Pclose(lcpl);
        return rc;
    }
    hid_t g = H5Gcreate2(loc, path, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? ds_h5_fail(DS_EIO, loc, path, "cannot create group") : DS_OK;
    H5Pclose(lcpl);
    *group = g;
    return rc;
}

// ---- Attributes ----

static int attr_write(hid_t loc, const char *name, hid_t file_type, hid_t mem_type,
                      const void *value) {
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) return ds_h5_fail(DS_EIO, loc, NULL, "attribute %s: cannot check", name);
    if (ex > 0 && H5Adelete(loc, name) < 0)
        return ds_h5_fail(DS_EIO, loc, NULL, "attribute %s: cannot replace", name);
    hid_t space = H5Screate(H5S_SCALAR);
    if (space < 0) return ds_h5_fail(DS_EIO, loc, NULL, "attribute %s: no dataspace", name);
    int rc = DS_OK;
    hid_t a = H5Acreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT);
    if (a < 0) rc = ds_h5_fail(DS_EIO, loc, NULL, "attribute %s: cannot create", name);
    else if (H5Awrite(a, mem_type, value) < 0)
        rc = ds_h5_fail(DS_EIO, loc, NULL, "attribute %s: cannot write", name);
    if (a >= 0) H5Aclose(a);
    H5Sclose(space);
    return rc;
}

int ds_h5_attr_set_string(hid_t loc, const char *name, const char *value) {
    hid_t t = H5Tcopy(H5T_C_S1);
    if (t < 0 || H5Tset_size(t, H5T_VARIABLE) < 0 || H5Tset_cset(t, H5T_CSET_UTF8) < 0) {
        int rc = ds_h5_fail(DS_EIO, loc, NULL, "attribute %s: cannot make string type", name);
        if (t >= 0) H5Tclose(t);
        return rc;
    }
    const char *v = value ? value : "";
    int rc = attr_write(loc, name, t, t, &v);
    H5Tclose(t);
    return rc;
}

int ds_h5_attr_set_double(hid_t loc, const char *name, double value) {
    return attr_write(loc, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &value);
}

int ds_h5_attr_set_int64(hid_t loc, const char *name, int64_t value) {
    return attr_write(loc, name, H5T_STD_I64LE, H5T_NATIVE_INT64, &value);
}

int ds_h5_attr_set_uint64(hid_t loc, const char *name, uint64_t value) {
    return attr_write(loc, name, H5T_STD_U64LE, H5T_NATIVE_UINT64, &value);
}

// Opens scalar attribute name of loc and its type; checks the class is one of want1, want2.
static int attr_open(hid_t loc, const char *name, H5T_class_t want1, H5T_class_t want2,
                     const char *want, hid_t *attr, hid_t *type) {
    *attr = *type = H5I_INVALID_HID;
    htri_t ex = H5Aexists(loc, name);
    if (ex < 0) return ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: cannot check", name);
    if (ex == 0) return ds_h5_fail(DS_EFORMAT, loc, NULL, "missing attribute %s", name);
    hid_t a = H5Aopen(loc, name, H5P_DEFAULT);
    if (a < 0) return ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: cannot open", name);
    hid_t t = H5Aget_type(a), s = H5Aget_space(a);
    int rc = DS_OK;
    if (t < 0 || s < 0) {
        rc = ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: unreadable", name);
    } else if (H5Sget_simple_extent_npoints(s) != 1) {
        rc = ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: expected a scalar", name);
    } else {
        H5T_class_t c = H5Tget_class(t);
        if (c != want1 && c != want2)
            rc = ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: expected %s", name, want);
    }
    if (s >= 0) H5Sclose(s);
    if (rc) {
        if (t >= 0) H5Tclose(t);
        H5Aclose(a);
        return rc;
    }
    *attr = a;
    *type = t;
    return DS_OK;
}

int ds_h5_attr_get_string(hid_t loc, const char *name, char **value) {
    *value = NULL;
    hid_t a, t;
    int rc = attr_open(loc, name, H5T_STRING, H5T_STRING, "a string", &a, &t);
    if (rc) return rc;
    hid_t mt = H5Tcopy(t);
    if (mt < 0) {
        rc = ds_h5_fail(DS_EIO, loc, NULL, "attribute %s: cannot copy type", name);
        goto out;
    }
    if (H5Tis_variable_str(t) > 0) {
        char *v = NULL;
        if (H5Aread(a, mt, &v) < 0) {
            rc = ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: cannot read", name);
            goto out;
        }
        *value = dup_str(v ? v : "", "");
        H5free_memory(v);
    } else {
        size_t n = H5Tget_size(t);
        char *v = calloc(n + 1, 1);
        if (!v) {
            rc = ds_fail(DS_ENOMEM, "attribute %s: out of memory", name);
            goto out;
        }
        if (H5Aread(a, mt, v) < 0) {
            rc = ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: cannot read", name);
            free(v);
            goto out;
        }
        if (H5Tget_strpad(t) == H5T_STR_SPACEPAD)
            for (size_t i = strlen(v); i > 0 && v[i - 1] == ' '; i--) v[i - 1] = '\0';
        *value = v;
    }
    if (!*value) rc = ds_fail(DS_ENOMEM, "attribute %s: out of memory", name);
out:
    if (mt >= 0) H5Tclose(mt);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int ds_h5_attr_get_double(hid_t loc, const char *name, double *value) {
    hid_t a, t;
    int rc = attr_open(loc, name, H5T_FLOAT, H5T_INTEGER, "a number", &a, &t);
    if (rc) return rc;
    if (H5Aread(a, H5T_NATIVE_DOUBLE, value) < 0)
        rc = ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: cannot read", name);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

// Integers are read through the 64-bit type of their own sign, so that nothing is clamped.
static int attr_get_integer(hid_t loc, const char *name, int64_t *s, uint64_t *u, int *is_signed) {
    hid_t a, t;
    int rc = attr_open(loc, name, H5T_INTEGER, H5T_INTEGER, "an integer", &a, &t);
    if (rc) return rc;
    *is_signed = H5Tget_sign(t) == H5T_SGN_2;
    herr_t e = *is_signed ? H5Aread(a, H5T_NATIVE_INT64, s) : H5Aread(a, H5T_NATIVE_UINT64, u);
    if (e < 0) rc = ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: cannot read", name);
    H5Tclose(t);
    H5Aclose(a);
    return rc;
}

int ds_h5_attr_get_int64(hid_t loc, const char *name, int64_t *value) {
    int64_t s = 0;
    uint64_t u = 0;
    int is_signed;
    int rc = attr_get_integer(loc, name, &s, &u, &is_signed);
    if (rc) return rc;
    if (!is_signed && u > (uint64_t)INT64_MAX)
        return ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: %llu out of range", name,
                          (unsigned long long)u);
    *value = is_signed ? s : (int64_t)u;
    return DS_OK;
}

int ds_h5_attr_get_uint64(hid_t loc, const char *name, uint64_t *value) {
    int64_t s = 0;
    uint64_t u = 0;
    int is_signed;
    int rc = attr_get_integer(loc, name, &s, &u, &is_signed);
    if (rc) return rc;
    if (is_signed && s < 0)
        return ds_h5_fail(DS_EFORMAT, loc, NULL, "attribute %s: negative (%lld)", name,
                          (long long)s);
    *value = is_signed ? (uint64_t)s : u;
    return DS_OK;
}

// ---- Datasets ----

// "[32,1,3,3]"; with any_zero, sizes 0 mean "any" and show as '*': "[*,10]".
static void dims_str(char *out, size_t cap, int rank, const hsize_t *d, int any_zero) {
    size_t len = 0;
    out[0] = '\0';
    for (int i = 0; i < rank && len + 1 < cap; i++) {
        if (any_zero && d[i] == 0)
            len += (size_t)snprintf(out + len, cap - len, "%s*", i ? "," : "[");
        else
            len += (size_t)snprintf(out + len, cap - len, "%s%llu", i ? "," : "[",
                                    (unsigned long long)d[i]);
    }
    if (len + 1 < cap) snprintf(out + len, cap - len, rank ? "]" : "[]");
}

static void type_str(char *out, size_t cap, hid_t t) {
    size_t bits = H5Tget_size(t) * 8;
    switch (H5Tget_class(t)) {
    case H5T_FLOAT: snprintf(out, cap, "float%zu", bits); break;
    case H5T_INTEGER:
        snprintf(out, cap, "%sint%zu", H5Tget_sign(t) == H5T_SGN_NONE ? "u" : "", bits);
        break;
    case H5T_STRING: snprintf(out, cap, "string"); break;
    case H5T_COMPOUND: snprintf(out, cap, "compound"); break;
    default: snprintf(out, cap, "type class %d", (int)H5Tget_class(t)); break;
    }
}

int ds_h5_write_dataset(hid_t loc, const char *name, hid_t type, int rank, const hsize_t *dims,
                        const void *data, int compress) {
    if (rank < 1 || rank > 8) return ds_fail(DS_EINVAL, "%s: rank %d unsupported", name, rank);
    hsize_t total = 1;
    for (int i = 0; i < rank; i++) total *= dims[i];
    if (total > 0 && !data) return ds_fail(DS_EINVAL, "%s: no data", name);
    int rc = DS_OK;
    hid_t space = H5Screate_simple(rank, dims, NULL);
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = H5I_INVALID_HID;
    if (space < 0 || lcpl < 0 || dcpl < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0) {
        rc = ds_h5_fail(DS_EIO, loc, name, "cannot make dataspace or property lists");
        goto out;
    }
    if (compress && total > 0) {
        // Chunks of whole rows along the first dimension, about 256 KiB each.
        hsize_t chunk[8], row = H5Tget_size(type);
        for (int i = 1; i < rank; i++) row *= dims[i];
        chunk[0] = row ? (256 * 1024) / row : dims[0];
        if (chunk[0] < 1) chunk[0] = 1;
        if (chunk[0] > dims[0]) chunk[0] = dims[0];
        for (int i = 1; i < rank; i++) chunk[i] = dims[i];
        if (H5Pset_chunk(dcpl, rank, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 && H5Pset_deflate(dcpl, 4) < 0)) {
            rc = ds_h5_fail(DS_EIO, loc, name, "cannot set chunking and compression");
            goto out;
        }
    }
    d = H5Dcreate2(loc, name, type, space, lcpl, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = ds_h5_fail(DS_EIO, loc, name, "cannot create dataset");
        goto out;
    }
    if (total > 0 && H5Dwrite(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0)
        rc = ds_h5_fail(DS_EIO, loc, name, "cannot write dataset");
out:
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (space >= 0) H5Sclose(space);
    return rc;
}

int ds_h5_read_dataset(hid_t loc, const char *name, hid_t type, int rank, hsize_t *dims,
                       void **data) {
    if (rank < 1 || rank > 8) return ds_fail(DS_EINVAL, "%s: rank %d unsupported", name, rank);
    if (!ds_h5_exists(loc, name)) return ds_h5_fail(DS_EFORMAT, loc, name, "missing dataset");
    hid_t d = H5Dopen2(loc, name, H5P_DEFAULT);
    if (d < 0) return ds_h5_fail(DS_EFORMAT, loc, name, "not a dataset");
    hid_t ft = H5Dget_type(d), space = H5Dget_space(d);
    int rc = DS_OK, own = 0;
    if (ft < 0 || space < 0) {
        rc = ds_h5_fail(DS_EFORMAT, loc, name, "unreadable type or shape");
        goto out;
    }
    // Element type: same class, size and (for integers) sign as the memory type.
    H5T_class_t c = H5Tget_class(ft);
    if (c != H5Tget_class(type) || H5Tget_size(ft) != H5Tget_size(type) ||
        (c == H5T_INTEGER && H5Tget_sign(ft) != H5Tget_sign(type))) {
        char want[32], found[32];
        type_str(want, sizeof want, type);
        type_str(found, sizeof found, ft);
        char where[1024];
        ds_h5_where(loc, name, where, sizeof where);
        rc = ds_fail(DS_EFORMAT, "%s: expected %s, found %s", where, want, found);
        goto out;
    }
    // Shape.
    int r = H5Sget_simple_extent_ndims(space);
    hsize_t found[H5S_MAX_RANK];
    if (r < 0 || r > H5S_MAX_RANK || H5Sget_simple_extent_dims(space, found, NULL) < 0) {
        rc = ds_h5_fail(DS_EFORMAT, loc, name, "unreadable shape");
        goto out;
    }
    int same = r == rank;
    for (int i = 0; same && i < rank; i++) same = dims[i] == 0 || dims[i] == found[i];
    if (!same) {
        char want[128], got[128], where[1024];
        dims_str(want, sizeof want, rank, dims, 1);
        dims_str(got, sizeof got, r, found, 0);
        ds_h5_where(loc, name, where, sizeof where);
        rc = ds_fail(DS_EFORMAT, "%s: expected %s, found %s", where, want, got);
        goto out;
    }
    hsize_t total = 1;
    int all_given = 1, overflow = 0;
    for (int i = 0; i < rank; i++) {
        all_given &= dims[i] != 0;
        dims[i] = found[i];
        overflow |= __builtin_mul_overflow(total, found[i], &total);
    }
    size_t bytes = 0;
    overflow |= __builtin_mul_overflow((size_t)total, H5Tget_size(type), &bytes);
    // A shape the stored bytes cannot hold (a corrupt file can declare terabytes in a few bytes):
    // refused before allocating. Unwritten storage holds nothing, deflate expands < 1100:1.
    hsize_t stored = H5Dget_storage_size(d);
    if (overflow || (bytes > 65536 && bytes / 1100 > stored)) {
        char got[128], where[1024];
        dims_str(got, sizeof got, r, found, 0);
        ds_h5_where(loc, name, where, sizeof where);
        rc = ds_fail(DS_EFORMAT, "%s: shape %s does not fit the %llu bytes stored", where, got,
                     (unsigned long long)stored);
        goto out;
    }
    if (!*data) {
        *data = malloc(bytes ? bytes : 1);
        if (!*data) {
            char where[1024];
            ds_h5_where(loc, name, where, sizeof where);
            rc = ds_fail(DS_ENOMEM, "%s: out of memory (%zu bytes)", where, bytes);
            goto out;
        }
        own = 1;
    } else if (!all_given) {
        rc = ds_fail(DS_EINVAL, "%s: a caller buffer needs every dimension given", name);
        goto out;
    }
    if (total > 0 && H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, *data) < 0)
        rc = ds_h5_fail(DS_EFORMAT, loc, name, "cannot read");
out:
    if (rc && own) {
        free(*data);
        *data = NULL;
    }
    if (space >= 0) H5Sclose(space);
    if (ft >= 0) H5Tclose(ft);
    H5Dclose(d);
    return rc;
}

int ds_h5_check_finite(int code, hid_t loc, const char *name, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) {
            char where[1024];
            ds_h5_where(loc, name, where, sizeof where);
            return ds_fail(code, "%s: non-finite value at [%zu]", where, i);
        }
    return DS_OK;
}
