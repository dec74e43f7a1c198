// The floating-point mode of the calling thread: whether float32 denormals are kept or flushed to
// zero (x86 FTZ and DAZ bits of MXCSR; elsewhere a no-op that always keeps them).
//
// The mode is per thread. Engine calls copy the caller's mode into every engine thread, so the
// caller decides: training, soft labels and evaluation flush (fastest; DS_NO_FTZ=1 keeps
// denormals there, for measurement), each attack sets its own `denormals` setting for its
// duration (ds_attack.h).
#ifndef DS_FPMODE_H
#define DS_FPMODE_H

typedef struct {
    unsigned csr; // the saved MXCSR (opaque)
} ds_fpmode;

// Sets the calling thread's mode (flush != 0: FTZ and DAZ on) and returns the previous one.
ds_fpmode ds_fpmode_set(int flush);
// The calling thread's mode, to hand to other threads (ds_fpmode_restore).
ds_fpmode ds_fpmode_get(void);
void ds_fpmode_restore(ds_fpmode m);
// 1 if the calling thread flushes denormals.
int ds_fpmode_flushes(void);
// The mode of training, soft labels and evaluation: flush, unless DS_NO_FTZ=1 (read once).
int ds_fpmode_train_flush(void);

#endif
