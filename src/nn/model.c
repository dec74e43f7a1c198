// The model's parameters: one arena, pointers into it, and their initialisations (PyTorch's
// default, Glorot-uniform).
#include "ds_error.h"
#include "ds_nn.h"
#include "ds_rng.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

const ds_layer_shape ds_layer_shapes[DS_NUM_LAYERS] = {
    {"conv1", 32, 1, 3, 1},   {"conv2", 32, 32, 3, 2}, {"conv3", 64, 32, 3, 1}, {"conv4", 64, 64, 3, 2},
    {"fc1", 200, 1024, 0, 1}, {"fc2", 200, 200, 0, 1}, {"fc3", 10, 200, 0, 1},
};

void ds_layer_geometry(ds_layer_geom geom[DS_NUM_LAYERS]) {
    int h = DS_IMG, w = DS_IMG; // the plane layer l reads
    for (int l = 0; l < DS_NUM_LAYERS; l++) {
        const ds_layer_shape *s = &ds_layer_shapes[l];
        ds_layer_geom *g = &geom[l];
        if (!s->k) h = w = 1; // fc: the previous output, flattened
        g->h = h, g->w = w;
        g->oh = s->k ? h - s->k + 1 : 1;
        g->ow = s->k ? w - s->k + 1 : 1;
        g->ph = g->oh / s->pool, g->pw = g->ow / s->pool;
        g->col_rows = s->in * s->k * s->k;
        g->in_size = (size_t)s->in * h * w;
        g->out_size = (size_t)s->out * g->oh * g->ow;
        g->pooled_size = (size_t)s->out * g->ph * g->pw;
        h = g->ph, w = g->pw;
    }
}

size_t ds_weight_count(int layer) {
    const ds_layer_shape *s = &ds_layer_shapes[layer];
    size_t k2 = s->k ? (size_t)s->k * s->k : 1;
    return (size_t)s->out * s->in * k2;
}

size_t ds_params_count(void) {
    size_t n = 0;
    for (int l = 0; l < DS_NUM_LAYERS; l++) n += ds_weight_count(l) + ds_layer_shapes[l].out;
    return n;
}

void ds_params_point(ds_params *p, float *mem) {
    for (int l = 0; l < DS_NUM_LAYERS; l++) {
        p->w[l] = mem;
        mem += ds_weight_count(l);
        p->b[l] = mem;
        mem += ds_layer_shapes[l].out;
    }
}

int ds_model_alloc(ds_model *m) {
    memset(m, 0, sizeof *m);
    m->mem = calloc(ds_params_count(), sizeof(float));
    if (!m->mem) return ds_fail(DS_ENOMEM, "model: out of memory");
    ds_params_point(&m->p, m->mem);
    m->temperature = 1.0f;
    strcpy(m->role, "baseline");
    m->test_accuracy = -1.0;
    return DS_OK;
}

int ds_init_parse(const char *s, ds_init *out) {
    if (s && !strcmp(s, "pytorch")) *out = DS_INIT_PYTORCH;
    else if (s && !strcmp(s, "glorot")) *out = DS_INIT_GLOROT;
    else return ds_fail(DS_EINVAL, "unknown init '%s' (expected one of: pytorch, glorot)", s ? s : "(null)");
    return DS_OK;
}

const char *ds_init_name(ds_init i) {
    return i == DS_INIT_PYTORCH ? "pytorch" : i == DS_INIT_GLOROT ? "glorot" : "?";
}

// Layer l's weights (and for PyTorch its biases) as U(-bound, bound) from stream
// (seed, DS_STREAM_INIT, l): weights first, then biases, so PyTorch's draws are today's.
//   pytorch: bound 1/sqrt(fan_in) for w and b
//   glorot:  bound sqrt(6/(fan_in + fan_out)) for w, b = 0; a conv's fans count its k*k window
//            (fan_in = in*k*k, fan_out = out*k*k, as Keras' glorot_uniform)
static void init_layer(ds_model *m, int l, uint64_t seed, ds_init init) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    int k2 = s->k ? s->k * s->k : 1;
    int fan_in = s->in * k2, fan_out = s->out * k2;
    float bound = init == DS_INIT_GLOROT ? sqrtf(6.0f / (float)(fan_in + fan_out))
                                         : 1.0f / sqrtf((float)fan_in);
    ds_rng r = ds_rng_stream(seed, DS_STREAM_INIT, (uint64_t)l);
    for (size_t i = 0; i < ds_weight_count(l); i++)
        m->p.w[l][i] = (2.0f * ds_rng_uniform(&r) - 1.0f) * bound;
    for (int i = 0; i < s->out; i++)
        m->p.b[l][i] = init == DS_INIT_GLOROT ? 0.0f : (2.0f * ds_rng_uniform(&r) - 1.0f) * bound;
}

int ds_model_init_as(ds_model *m, uint64_t seed, ds_init init) {
    if (init != DS_INIT_PYTORCH && init != DS_INIT_GLOROT)
        return ds_fail(DS_EINVAL, "model: unknown initialisation %d", (int)init);
    int rc = ds_model_alloc(m);
    if (rc) return rc;
    m->seed = seed;
    for (int l = 0; l < DS_NUM_LAYERS; l++) init_layer(m, l, seed, init);
    return DS_OK;
}

int ds_model_init(ds_model *m, uint64_t seed) { return ds_model_init_as(m, seed, DS_INIT_PYTORCH); }

int ds_model_copy(ds_model *dst, const ds_model *src) {
    float *mem = malloc(ds_params_count() * sizeof(float));
    if (!mem) return ds_fail(DS_ENOMEM, "model: out of memory");
    *dst = *src;
    dst->mem = mem;
    memcpy(mem, src->mem, ds_params_count() * sizeof(float));
    ds_params_point(&dst->p, mem);
    return DS_OK;
}

void ds_model_free(ds_model *m) {
    free(m->mem);
    m->mem = NULL;
}
