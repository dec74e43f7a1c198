// Helpers shared by the attacks in src/attack/ (not part of the public API).
#ifndef DS_ATTACK_INTERNAL_H
#define DS_ATTACK_INTERNAL_H

#include "ds_attack.h"
#include "ds_fpmode.h"

#define DSA_MAX_CLASSES 64 // classes an attack handles (its per-sample scratch is on the stack)

// p = softmax(z / T) over C classes in float32, stably (max subtracted first). Saturates to
// exact 0 and 1 in float32 exactly as the deployed model's softmax does.
void dsa_softmax(float *p, const float *z, int C, float T);
// First index of the largest value among j != skip.
int dsa_argmax_except(const float *z, int C, int skip);
// T of a space: explicit (> 0) or the classifier's; 1 if neither is positive.
float dsa_temperature(const ds_classifier *c, float explicit_T);
// Enters the floating-point mode of an attack's denormals setting; ds_fpmode_restore leaves it.
static inline ds_fpmode dsa_enter(ds_denormals d) { return ds_fpmode_set(d == DS_DENORMALS_FLUSH); }
// DS_EINVAL unless c is usable and labels [n] are classes of c.
int dsa_check_inputs(const char *attack, const ds_classifier *c, const float *x,
                     const uint8_t *labels, int n, const ds_attack_record *rec);

// The batch of live attempts of JSMA and C&W: finished slots take the next attempt (load), or,
// when none is left, the last live slot moves into the gap (move). *na live slots, *next the
// next attempt to load, total attempts, at most max_batch slots.
void dsa_refill(void *run, int (*finished)(void *run, int slot),
                void (*load)(void *run, int slot, int attempt), void (*move)(void *run, int to, int from),
                int *na, int *next, int total, int max_batch);

#endif
