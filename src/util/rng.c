#include "ds_rng.h"

// splitmix64's finaliser: a bijective mix with good avalanche, enough for dropout masks,
// shuffles and initialisation (not cryptography).
static uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

ds_rng ds_rng_stream(uint64_t seed, uint64_t a, uint64_t b) {
    uint64_t k = mix64(seed + 0x9e3779b97f4a7c15ULL);
    k = mix64(k ^ (a + 0x632be59bd9b4e019ULL));
    k = mix64(k ^ (b + 0x85157af5ULL));
    return (ds_rng){.key = k, .counter = 0};
}

uint64_t ds_rng_u64(ds_rng *r) {
    return mix64(r->key ^ mix64(++r->counter * 0x9e3779b97f4a7c15ULL));
}

float ds_rng_uniform(ds_rng *r) { return (float)(ds_rng_u64(r) >> 40) * (1.0f / 16777216.0f); }

uint32_t ds_rng_below(ds_rng *r, uint32_t n) {
    // Lemire's multiply-shift with rejection: unbiased for every n.
    uint64_t m = (uint64_t)(uint32_t)ds_rng_u64(r) * n;
    uint32_t low = (uint32_t)m;
    if (low < n) {
        uint32_t threshold = (uint32_t)(-n) % n;
        while (low < threshold) {
            m = (uint64_t)(uint32_t)ds_rng_u64(r) * n;
            low = (uint32_t)m;
        }
    }
    return (uint32_t)(m >> 32);
}

void ds_rng_shuffle(ds_rng *r, int32_t *idx, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = (int)ds_rng_below(r, (uint32_t)(i + 1));
        int32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}
