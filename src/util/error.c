#include "ds_error.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_message[1024];

int ds_fail(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    return code;
}

const char *ds_errmsg(void) { return last_message; }

int ds_fail_context(int code, const char *prefix) {
    char old[sizeof last_message];
    memcpy(old, last_message, sizeof old);
    snprintf(last_message, sizeof last_message, "%s: %s", prefix, old);
    return code;
}

int ds_errno_code(int err) {
#ifdef EDQUOT
    if (err == EDQUOT) return DS_ENOSPC;
#endif
    return err == ENOSPC ? DS_ENOSPC : DS_EIO;
}
