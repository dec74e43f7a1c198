// The calling thread's floating-point mode (ds_fpmode.h).
#include "ds_fpmode.h"

#include <pthread.h>
#include <stdlib.h>
#ifdef __SSE__
#include <xmmintrin.h>
#endif

#define FTZ_DAZ 0x8040u // MXCSR bits: flush-to-zero (15) and denormals-are-zero (6)

ds_fpmode ds_fpmode_get(void) {
#ifdef __SSE__
    return (ds_fpmode){.csr = _mm_getcsr()};
#else
    return (ds_fpmode){0};
#endif
}

void ds_fpmode_restore(ds_fpmode m) {
#ifdef __SSE__
    _mm_setcsr(m.csr);
#else
    (void)m;
#endif
}

ds_fpmode ds_fpmode_set(int flush) {
    ds_fpmode old = ds_fpmode_get();
#ifdef __SSE__
    _mm_setcsr(flush ? old.csr | FTZ_DAZ : old.csr & ~FTZ_DAZ);
#else
    (void)flush;
#endif
    return old;
}

int ds_fpmode_flushes(void) {
    return (ds_fpmode_get().csr & FTZ_DAZ) == FTZ_DAZ;
}

static int train_flush = 1;
static void read_env(void) {
    const char *v = getenv("DS_NO_FTZ");
    train_flush = !(v && atoi(v) == 1);
}

int ds_fpmode_train_flush(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_env);
    return train_flush;
}
