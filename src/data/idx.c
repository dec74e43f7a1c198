// IDX files (LeCun's MNIST format), raw or gzip, read through zlib.
//
// Layout: a big-endian magic (0x00000800 | type << 8 | ndim; type 0x08 = unsigned byte), ndim
// big-endian uint32 dimensions, then the data. zlib's gzread passes raw files through unchanged,
// so gzip is detected from the content and a renamed file still loads.
#include "ds_data.h"
#include "ds_error.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_MAGIC_IMAGES 0x00000803u
#define IDX_MAGIC_LABELS 0x00000801u
#define IDX_MAX_N 10000000u // 10 M samples: MNIST has 70 k; anything larger is a corrupt header
#define IDX_MAX_SIDE 4096u
#define IDX_CHUNK (1u << 24) // bytes per gzread (gzread takes an unsigned int)

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

// zlib prefixes its messages with the path it was opened with; we add our own.
static const char *gz_reason(gzFile gz, const char *path, int *errnum) {
    const char *msg = gzerror(gz, errnum);
    size_t len = strlen(path);
    if (strncmp(msg, path, len) == 0 && msg[len] == ':' && msg[len + 1] == ' ') msg += len + 2;
    return msg;
}

// Turns a zlib error (after a short or failed read) into a DS code and message; DS_OK if none.
static int gz_check(gzFile gz, const char *path) {
    int err;
    const char *why = gz_reason(gz, path, &err);
    switch (err) {
    case Z_OK: return DS_OK;
    case Z_ERRNO: return ds_fail(ds_errno_code(errno), "%s: read error: %s", path, strerror(errno));
    case Z_MEM_ERROR: return ds_fail(DS_ENOMEM, "%s: out of memory in zlib", path);
    case Z_BUF_ERROR: return ds_fail(DS_EFORMAT, "%s: gzip data truncated (%s)", path, why);
    default: return ds_fail(DS_EFORMAT, "%s: gzip data corrupt (%s)", path, why);
    }
}

// Reads up to n bytes; *got says how many arrived (fewer only at the end of the data).
static int read_some(gzFile gz, const char *path, uint8_t *buf, size_t n, size_t *got) {
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < IDX_CHUNK ? n - *got : IDX_CHUNK;
        int r = gzread(gz, buf + *got, (unsigned)want);
        if (r < 0) {
            int rc = gz_check(gz, path);
            return rc ? rc : ds_fail(DS_EIO, "%s: read error", path);
        }
        if (r == 0) break;
        *got += (size_t)r;
    }
    return gz_check(gz, path); // a truncated gzip stream returns its data and flags Z_BUF_ERROR
}

// Reads exactly `total` bytes of data into a new buffer. The buffer grows with the data that
// actually arrives, so a corrupt header that promises terabytes costs nothing before the read
// comes up short.
static int read_body(gzFile gz, const char *path, size_t total, uint8_t **out, size_t *got) {
    size_t cap = total < IDX_CHUNK ? total : IDX_CHUNK;
    *got = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return ds_fail(DS_ENOMEM, "%s: out of memory (%zu bytes)", path, cap);
    for (;;) {
        size_t n;
        int rc = read_some(gz, path, buf + *got, cap - *got, &n);
        *got += n;
        if (rc || *got < cap || cap == total) {
            if (rc) free(buf);
            else *out = buf;
            return rc;
        }
        size_t grown = cap > total / 2 ? total : cap * 2;
        uint8_t *p = realloc(buf, grown);
        if (!p) {
            free(buf);
            return ds_fail(DS_ENOMEM, "%s: out of memory (%zu bytes)", path, grown);
        }
        buf = p;
        cap = grown;
    }
}

// Counts what is left after the declared data (0 for a well-formed file). Reaching the end also
// makes zlib check the gzip CRC and length, so corruption in the trailer shows up here.
static int count_trailing(gzFile gz, const char *path, size_t *extra) {
    uint8_t tmp[4096];
    size_t n;
    *extra = 0;
    do {
        int rc = read_some(gz, path, tmp, sizeof tmp, &n);
        if (rc) return rc;
        *extra += n;
    } while (n == sizeof tmp);
    return DS_OK;
}

static int open_idx(const char *path, gzFile *gz) {
    errno = 0;
    *gz = gzopen(path, "rb");
    if (!*gz) {
        if (errno == 0) return ds_fail(DS_ENOMEM, "%s: out of memory opening the file", path);
        return ds_fail(DS_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    gzbuffer(*gz, 1u << 17);
    return DS_OK;
}

static const char *kind_name(uint32_t magic) {
    if (magic == IDX_MAGIC_IMAGES) return " (an IDX image file)";
    if (magic == IDX_MAGIC_LABELS) return " (an IDX label file)";
    return "";
}

// Reads the magic and ndim dimensions into dims; hdr_len = 4 + 4 * ndim.
static int read_header(gzFile gz, const char *path, uint32_t want_magic, uint32_t *dims, int ndim) {
    uint8_t hdr[16];
    size_t len = 4 + 4 * (size_t)ndim, got;
    int rc = read_some(gz, path, hdr, len, &got);
    if (rc) return rc;
    if (got == 0) return ds_fail(DS_EFORMAT, "%s: empty file", path);
    if (got >= 4 && be32(hdr) != want_magic)
        return ds_fail(DS_EFORMAT, "%s: wrong magic 0x%08x%s, expected 0x%08x (IDX %s)", path,
                       be32(hdr), kind_name(be32(hdr)), want_magic,
                       want_magic == IDX_MAGIC_IMAGES ? "images" : "labels");
    if (got < len)
        return ds_fail(DS_EFORMAT, "%s: truncated header (%zu of %zu bytes)", path, got, len);
    for (int i = 0; i < ndim; i++) dims[i] = be32(hdr + 4 + 4 * i);
    if (dims[0] == 0 || dims[0] > IDX_MAX_N)
        return ds_fail(DS_EFORMAT, "%s: implausible sample count %u in header (must be 1..%u)",
                       path, dims[0], IDX_MAX_N);
    for (int i = 1; i < ndim; i++)
        if (dims[i] == 0 || dims[i] > IDX_MAX_SIDE)
            return ds_fail(DS_EFORMAT,
                           "%s: implausible image size %ux%u in header (rows and cols must be "
                           "1..%u)",
                           path, dims[1], dims[2], IDX_MAX_SIDE);
    return DS_OK;
}

// Reads the body of `total` bytes and checks that nothing follows it.
static int read_exact_body(gzFile gz, const char *path, size_t total, const char *what,
                           uint8_t **out) {
    uint8_t *buf = NULL;
    size_t got = 0, extra = 0;
    int rc = read_body(gz, path, total, &buf, &got);
    if (rc) return rc;
    if (got < total) {
        free(buf);
        return ds_fail(DS_EFORMAT, "%s: truncated: header declares %s (%zu bytes of data), file "
                       "has %zu", path, what, total, got);
    }
    rc = count_trailing(gz, path, &extra);
    if (rc == DS_OK && extra)
        rc = ds_fail(DS_EFORMAT, "%s: %zu%s trailing bytes after the %s the header declares",
                     path, extra, extra >= 4096 ? "+" : "", what);
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return DS_OK;
}

int ds_idx_read_images(const char *path, uint8_t **out, int *n, int *rows, int *cols) {
    gzFile gz;
    uint32_t d[3];
    char what[96];
    int rc = open_idx(path, &gz);
    if (rc) return rc;
    rc = read_header(gz, path, IDX_MAGIC_IMAGES, d, 3);
    if (rc == DS_OK) {
        snprintf(what, sizeof what, "%u images of %ux%u", d[0], d[1], d[2]);
        rc = read_exact_body(gz, path, (size_t)d[0] * d[1] * d[2], what, out);
    }
    gzclose(gz);
    if (rc) return rc;
    *n = (int)d[0];
    *rows = (int)d[1];
    *cols = (int)d[2];
    return DS_OK;
}

int ds_idx_read_labels(const char *path, uint8_t **out, int *n) {
    gzFile gz;
    uint32_t d[1] = {0};
    char what[64];
    uint8_t *lab = NULL;
    int rc = open_idx(path, &gz);
    if (rc) return rc;
    rc = read_header(gz, path, IDX_MAGIC_LABELS, d, 1);
    if (rc == DS_OK) {
        snprintf(what, sizeof what, "%u labels", d[0]);
        rc = read_exact_body(gz, path, d[0], what, &lab);
    }
    gzclose(gz);
    if (rc) return rc;
    for (uint32_t i = 0; i < d[0]; i++)
        if (lab[i] >= 10) {
            unsigned bad = lab[i];
            free(lab);
            return ds_fail(DS_EFORMAT, "%s: label %u at index %u is not a class 0..9", path, bad,
                           i);
        }
    *out = lab;
    *n = (int)d[0];
    return DS_OK;
}
