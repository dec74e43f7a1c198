#include "ds_filecrc.h"
#include "ds_error.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

int ds_fd_crc32(int fd, const char *path, uint64_t from, uint64_t *bytes, uint32_t *crc) {
    static _Thread_local unsigned char buf[1 << 16];
    uLong c = crc32(0L, Z_NULL, 0);
    uint64_t n = 0;
    for (;;) {
        ssize_t got = pread(fd, buf, sizeof buf, (off_t)(from + n));
        if (got < 0) {
            if (errno == EINTR) continue;
            return ds_fail(DS_EIO, "%s: read error: %s", path, strerror(errno));
        }
        if (got == 0) break;
        c = crc32(c, buf, (uInt)got);
        n += (uint64_t)got;
    }
    *bytes = n;
    *crc = (uint32_t)c;
    return DS_OK;
}

int ds_file_crc32(const char *path, uint64_t *bytes, uint32_t *crc) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return ds_fail(DS_EIO, "%s: cannot open: %s", path, strerror(errno));
    int rc = ds_fd_crc32(fd, path, 0, bytes, crc);
    close(fd);
    return rc;
}
