// Error reporting for library code.
//
// Library functions never exit. They return DS_OK (0) or a negative DS_E* code and leave a
// one-line message of the form "<file or object>: <problem>" in a thread-local buffer; only main
// (or the MPI layer, through MPI_Abort) decides to end the process and prints ds_errmsg().
#ifndef DS_ERROR_H
#define DS_ERROR_H

enum {
    DS_OK = 0,
    DS_EIO = -1,      // read/write failure (file missing, unreadable, short write)
    DS_EFORMAT = -2,  // a file exists but its content is malformed or truncated
    DS_ENOMEM = -3,   // allocation failed
    DS_EINVAL = -4,   // impossible parameters from the caller or the user
    DS_ENOSPC = -5,   // disk full
    DS_ENUMERIC = -6, // NaN or Inf appeared in a computation
    DS_ESTOP = -7,    // a stop was requested (signal) before the work finished
    DS_EREGANG = -8,  // a gang training ended its segment at an epoch boundary (checkpoint
                      //   saved) so that the coordinator hands it out again on more ranks
};

// Formats the message, stores it for ds_errmsg() and returns code (so: return ds_fail(...)).
int ds_fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
// The last message set by ds_fail on this thread ("" if none).
const char *ds_errmsg(void);
// Prefixes the current message with "prefix: " (adds the context a lower layer did not know).
int ds_fail_context(int code, const char *prefix);
// errno-based code: DS_ENOSPC for ENOSPC/EDQUOT, DS_EIO otherwise.
int ds_errno_code(int err);

#endif
