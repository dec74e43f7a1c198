// CRC-32 (zlib's) of files: the journal's record of a task file, and the whole-file checksum
// every HDF5 file written by distill_sweep carries in its user block (ds_h5.h).
#ifndef DS_FILECRC_H
#define DS_FILECRC_H

#include <stdint.h>

// CRC-32 and size of a whole file. DS_EIO if it cannot be read.
int ds_file_crc32(const char *path, uint64_t *bytes, uint32_t *crc);
// CRC-32 of an open file's bytes from offset `from` to its end, and how many there were
// (path is for messages). DS_EIO on a read error.
int ds_fd_crc32(int fd, const char *path, uint64_t from, uint64_t *bytes, uint32_t *crc);

#endif
