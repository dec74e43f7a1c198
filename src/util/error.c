#include "ds_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];

// Messages are one line: control characters that came from user text (a job file's section
// name with a CR, an HDF5 attribute) become '?'.
static void one_line(char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) *s = '?';
}

int ds_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    one_line(last_message);
    return code;
}

const char *ds_errmsg(void) { return last_message; }

int ds_fail_context(int code, const char *prefix) {
    // Shift the old message right and write the prefix in front of it.
    size_t np = strlen(prefix) + 2, len = strlen(last_message);
    if (np >= sizeof last_message) np = sizeof last_message - 1;
    if (len > sizeof last_message - 1 - np) len = sizeof last_message - 1 - np;
    memmove(last_message + np, last_message, len);
    last_message[np + len] = '\0';
    memcpy(last_message, prefix, np - 2);
    memcpy(last_message + np - 2, ": ", 2);
    one_line(last_message);
    return code;
}

int ds_errno_code(int err) {
#ifdef EDQUOT
    if (err == EDQUOT) return DS_ENOSPC;
#endif
    return err == ENOSPC ? DS_ENOSPC : DS_EIO;
}
