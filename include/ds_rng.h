// Counter-based random streams.
//
// Every draw is a pure function of (key, counter). A stream is derived from the job seed and
// integers that name its purpose (task id, epoch, sample index), never from a rank or a thread,
// so a model depends only on (seed, configuration), whatever process trains it.
#ifndef DS_RNG_H
#define DS_RNG_H

#include <stdint.h>

typedef struct {
    uint64_t key;
    uint64_t counter;
} ds_rng;

// Purposes, so that streams derived from the same seed never collide.
enum { DS_STREAM_INIT = 1, DS_STREAM_SHUFFLE = 2, DS_STREAM_DROPOUT = 3, DS_STREAM_ATTACK = 4 };

// Stream for (seed, a, b): independent for every distinct triple.
ds_rng ds_rng_stream(uint64_t seed, uint64_t a, uint64_t b);
uint64_t ds_rng_u64(ds_rng *r);
float ds_rng_uniform(ds_rng *r);                   // [0, 1), 24 random bits
uint32_t ds_rng_below(ds_rng *r, uint32_t n);       // [0, n), unbiased
void ds_rng_shuffle(ds_rng *r, int32_t *idx, int n); // Fisher-Yates

#endif
