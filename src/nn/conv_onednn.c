// The oneDNN convolution stack: conv1-4 of a group of G = DS_GROUP samples as oneDNN primitives
// (ReLU fused into the forward as a post-op), the max pools and the flatten as our own loops on
// oneDNN's channel-blocked layout [G][C/V][H][W][V].
//
// Determinism. Every primitive is created for exactly G samples and always runs on G: a partial
// group is padded with zero images (whose gradients are exactly zero, so they add nothing to a
// weight gradient). The primitives run single-threaded inside the engine's threads, so a
// sample's logits and input gradient are computed by the same instructions whatever group,
// batch, shard or thread holds it, and a group's weight gradient whatever thread runs it
// (tests/test_nn.c checks both). Primitives are created with one OpenMP thread so that their
// plans (how a weight gradient's reduction is split) never depend on the machine's core count.
//
// Weights stay in PyTorch's layout in the model; dnn_stack_prepare reorders them into the
// primitives' layouts once per engine call (about 65,000 floats: microseconds per batch), and a
// group's weight gradient is reordered back before it is added to the chunk's gradient.
#include "ds_error.h"
#include "engine_internal.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { G = DS_GROUP, NC = N_CONV };

// One primitive and the description the memory objects are made from.
typedef struct {
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
} prim;

// A thread's stream, scratchpad and memory objects (handles set before every execution).
typedef struct {
    dnnl_stream_t stream;
    void *scratch;
    dnnl_memory_t scratch_mem;
    dnnl_memory_t src[NC], dst[NC], wf[NC], wb[NC], b[NC], dw[NC], db[NC], dwp[NC];
    float *xpad;             // [G,784] a partial group's input, zero-padded
    float *dc1_plain;        // [32,26,26] one sample's conv1 output gradient, unblocked
    float *dw_blk, *dw_plain; // a layer's weight gradient in the primitive's layout, then PyTorch's
    float *db_buf;            // a layer's bias gradient
    const float *x_used;      // the input the last forward read (x or xpad)
    dnnl_memory_t x_bw;       // with x_to_bw: the images in conv1's weight-gradient layout
    float *x_bw_buf;
} dnn_thread;

struct dnn_stack {
    dnnl_engine_t eng;
    int threads, train, lanes;
    const engine_dims *d;
    dnnl_memory_desc_t src_md[NC], dst_md[NC], wplain_md[NC], b_md[NC];
    prim fwd[NC], bwd_data[NC], bwd_w[NC];
    prim to_wf[NC], to_wb[NC], from_dw[NC];       // reorders
    prim x_to_bw;                                 // images into conv1's weight-gradient layout (AVX2)
    float *wf_buf[NC], *wb_buf[NC];               // weights in the forward's and backward's layouts
    const float *bias[NC], *weights[NC];          // the last prepare's (PyTorch's layout)
    int wb_same[NC];                              // backward data reads the forward's layout
    dnnl_stream_t main_stream;
    void *main_scratch;
    dnnl_memory_t main_scratch_mem, m_wplain[NC], m_wf[NC], m_wb[NC];
    size_t scratch_bytes;
    dnn_thread *th;
    char describe[2048];
};

static int dnn_fail(dnnl_status_t st, const char *what) {
    return ds_fail(st == dnnl_out_of_memory ? DS_ENOMEM : DS_EINVAL, "engine onednn: %s failed (status %d)",
                   what, (int)st);
}

#define TRY(call, what)                                                                            \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) return dnn_fail(st_, what);                                      \
    } while (0)

static const dnnl_memory_desc_t *query(const prim *p, dnnl_query_t q) {
    return dnnl_primitive_desc_query_md(p->pd, q, 0);
}

static int prim_make(prim *p, const_dnnl_op_desc_t desc, const_dnnl_primitive_attr_t attr,
                     dnnl_engine_t eng, const_dnnl_primitive_desc_t hint, const char *what) {
    TRY(dnnl_primitive_desc_create(&p->pd, desc, attr, eng, hint), what);
    TRY(dnnl_primitive_create(&p->prim, p->pd), what);
    return DS_OK;
}

static int reorder_make(prim *p, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                        dnnl_engine_t eng, const_dnnl_primitive_attr_t attr) {
    TRY(dnnl_reorder_primitive_desc_create(&p->pd, from, eng, to, eng, attr), "reorder");
    TRY(dnnl_primitive_create(&p->prim, p->pd), "reorder");
    return DS_OK;
}

static void prim_free(prim *p) {
    if (p->prim) dnnl_primitive_destroy(p->prim);
    if (p->pd) dnnl_primitive_desc_destroy(p->pd);
}

static size_t scratch_of(const prim *p) {
    return p->pd ? dnnl_memory_desc_get_size(query(p, dnnl_query_scratchpad_md)) : 0;
}

// The implementation oneDNN picked ("jit:avx512_core", "ref:any", ...).
static const char *impl_of(const prim *p) {
    const char *impl = NULL;
    dnnl_primitive_desc_query(p->pd, dnnl_query_impl_info_str, 0, &impl);
    return impl ? impl : "?";
}

static int is_ref(const prim *p) { return !strncmp(impl_of(p), "ref", 3); }

static void note_impl(dnn_stack *s, const prim *p, int l, const char *what) {
    const char *impl = impl_of(p);
    size_t len = strlen(s->describe);
    snprintf(s->describe + len, sizeof s->describe - len, "conv%d %s %s\n", l + 1, what, impl);
    // A reference implementation is correct but ~1000x slower (perf-notes): say so once.
    if (is_ref(p))
        fprintf(stderr, "engine onednn: warning: conv%d %s runs oneDNN's reference implementation (%s)\n",
                l + 1, what, impl);
}

static int md_tag(dnnl_memory_desc_t *md, int n, int c, int h, int w, dnnl_format_tag_t tag) {
    dnnl_dims_t dims = {n, c, h, w};
    TRY(dnnl_memory_desc_init_by_tag(md, 4, dims, dnnl_f32, tag), "memory descriptor");
    return DS_OK;
}

#define CHECK(call, what)                                                                          \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) { rc = dnn_fail(st_, what); goto out; }                          \
    } while (0)
#define CHECK_RC(call)                                                                             \
    do {                                                                                           \
        if ((rc = (call))) goto out;                                                               \
    } while (0)

static void layer_free(dnn_stack *s, int l) {
    prim *all[] = {&s->fwd[l], &s->bwd_data[l], &s->bwd_w[l], &s->to_wf[l], &s->to_wb[l], &s->from_dw[l]};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) prim_free(all[i]), *all[i] = (prim){0};
    if (l == 0) prim_free(&s->x_to_bw), s->x_to_bw = (prim){0};
}

// Conv layer l's primitives (direct convolution) and their reorders.
static int create_layer(dnn_stack *s, int l, const_dnnl_primitive_attr_t attr,
                        const_dnnl_primitive_attr_t relu_attr) {
    const dnnl_alg_kind_t alg = dnnl_convolution_direct;
    const ds_layer_geom *L = s->d->L;
    dnnl_format_tag_t act = s->lanes == 16 ? dnnl_nChw16c : dnnl_nChw8c;
    int rc = DS_OK;
    const ds_layer_shape *sh = &ds_layer_shapes[l];
    // conv1 reads the images as they are (one channel, plain); every other tensor is blocked.
    CHECK_RC(md_tag(&s->src_md[l], G, sh->in, L[l].h, L[l].w, l == 0 ? dnnl_nchw : act));
    CHECK_RC(md_tag(&s->dst_md[l], G, sh->out, L[l].oh, L[l].ow, act));
    CHECK_RC(md_tag(&s->wplain_md[l], sh->out, sh->in, sh->k, sh->k, dnnl_oihw));
    dnnl_dims_t bd = {sh->out};
    CHECK(dnnl_memory_desc_init_by_tag(&s->b_md[l], 1, bd, dnnl_f32, dnnl_x), "memory descriptor");
    dnnl_memory_desc_t w_any;
    dnnl_dims_t wd = {sh->out, sh->in, sh->k, sh->k}, strides = {1, 1}, pad = {0, 0};
    CHECK(dnnl_memory_desc_init_by_tag(&w_any, 4, wd, dnnl_f32, dnnl_format_tag_any), "memory descriptor");
    dnnl_convolution_desc_t cd;
    CHECK(dnnl_convolution_forward_desc_init(&cd, dnnl_forward_training, alg,
                                             &s->src_md[l], &w_any, &s->b_md[l], &s->dst_md[l],
                                             strides, pad, pad),
          "convolution forward");
    CHECK_RC(prim_make(&s->fwd[l], &cd, relu_attr, s->eng, NULL, "convolution forward"));
    note_impl(s, &s->fwd[l], l, "forward");
    const dnnl_memory_desc_t *wf = query(&s->fwd[l], dnnl_query_weights_md);
    CHECK_RC(reorder_make(&s->to_wf[l], &s->wplain_md[l], wf, s->eng, attr));
    if (l > 0) { // conv1's input gradient is our own loop (ds_conv_backward_input_1ch)
        CHECK(dnnl_convolution_backward_data_desc_init(&cd, alg, &s->src_md[l],
                                                       &w_any, &s->dst_md[l], strides, pad, pad),
              "convolution backward data");
        CHECK_RC(prim_make(&s->bwd_data[l], &cd, attr, s->eng, s->fwd[l].pd, "convolution backward data"));
        note_impl(s, &s->bwd_data[l], l, "backward-data");
        const dnnl_memory_desc_t *wb = query(&s->bwd_data[l], dnnl_query_weights_md);
        s->wb_same[l] = dnnl_memory_desc_equal(wb, wf);
        if (!s->wb_same[l]) CHECK_RC(reorder_make(&s->to_wb[l], &s->wplain_md[l], wb, s->eng, attr));
    }
    if (s->train) {
        CHECK(dnnl_convolution_backward_weights_desc_init(&cd, alg, &s->src_md[l],
                                                          &w_any, &s->b_md[l], &s->dst_md[l], strides,
                                                          pad, pad),
              "convolution backward weights");
        CHECK_RC(prim_make(&s->bwd_w[l], &cd, attr, s->eng, s->fwd[l].pd, "convolution backward weights"));
        if (l == 0 && is_ref(&s->bwd_w[0])) {
            // Without AVX-512, conv1's weight gradient from plain images has only the reference
            // implementation: let it choose the images' layout and reorder each group into it.
            dnnl_memory_desc_t src_any;
            CHECK_RC(md_tag(&src_any, G, sh->in, L[l].h, L[l].w, dnnl_format_tag_any));
            prim_free(&s->bwd_w[0]);
            s->bwd_w[0] = (prim){0};
            CHECK(dnnl_convolution_backward_weights_desc_init(&cd, alg, &src_any, &w_any, &s->b_md[l],
                                                              &s->dst_md[l], strides, pad, pad),
                  "convolution backward weights");
            CHECK_RC(prim_make(&s->bwd_w[0], &cd, attr, s->eng, s->fwd[0].pd, "convolution backward weights"));
            CHECK_RC(reorder_make(&s->x_to_bw, &s->src_md[0], query(&s->bwd_w[0], dnnl_query_src_md), s->eng,
                                  attr));
        }
        note_impl(s, &s->bwd_w[l], l, "backward-weights");
        CHECK_RC(reorder_make(&s->from_dw[l], query(&s->bwd_w[l], dnnl_query_diff_weights_md),
                              &s->wplain_md[l], s->eng, attr));
    }
out:
    return rc;
}

// Every layer is a direct convolution. Winograd F(4x4,3x3) on conv2 (oneDNN has it on AVX-512)
// trained 8% and computed input gradients 14% faster here, but its transforms round the outputs
// of a constant image region unequally, which breaks the exact ties of the max pool after conv2
// (ties go to the first candidate) and so changes where gradients flow: FGSM at eps 0.3 on a
// 20-epoch baseline went from 88.34% (this engine direct, the GEMM engine and PyTorch alike) to
// 88.54%. A speed choice may not move an attack's result, so it is not used.
static int create_prims(dnn_stack *s) {
    dnnl_primitive_attr_t attr = NULL, relu_attr = NULL;
    dnnl_post_ops_t ops = NULL;
    int rc = DS_OK;
    CHECK(dnnl_primitive_attr_create(&attr), "attributes");
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attributes");
    CHECK(dnnl_primitive_attr_create(&relu_attr), "attributes");
    CHECK(dnnl_primitive_attr_set_scratchpad_mode(relu_attr, dnnl_scratchpad_mode_user), "attributes");
    CHECK(dnnl_post_ops_create(&ops), "post-ops");
    CHECK(dnnl_post_ops_append_eltwise(ops, 1.0f, dnnl_eltwise_relu, 0.0f, 0.0f), "post-ops");
    CHECK(dnnl_primitive_attr_set_post_ops(relu_attr, ops), "post-ops");
    for (int l = 0; l < NC; l++) CHECK_RC(create_layer(s, l, attr, relu_attr));
out:
    if (ops) dnnl_post_ops_destroy(ops);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (relu_attr) dnnl_primitive_attr_destroy(relu_attr);
    return rc;
}
#undef CHECK
#undef CHECK_RC

static int mem(dnnl_memory_t *m, const dnnl_memory_desc_t *md, dnnl_engine_t eng) {
    TRY(dnnl_memory_create(m, md, eng, DNNL_MEMORY_NONE), "memory object");
    return DS_OK;
}

// A 64-byte aligned buffer for a tensor of descriptor md (*buf NULL: DS_ENOMEM).
static int buffer_for(void **buf, const dnnl_memory_desc_t *md) {
    *buf = aligned_alloc(64, (dnnl_memory_desc_get_size(md) + 63) / 64 * 64);
    return *buf ? DS_OK : ds_fail(DS_ENOMEM, "engine onednn: out of memory");
}

// A scratchpad of the stack's largest size and its memory object (user scratchpad mode).
static int scratchpad(const dnn_stack *s, void **buf, dnnl_memory_t *m) {
    dnnl_memory_desc_t sp;
    dnnl_dims_t sd = {(dnnl_dim_t)(s->scratch_bytes ? s->scratch_bytes : 1)};
    TRY(dnnl_memory_desc_init_by_tag(&sp, 1, sd, dnnl_u8, dnnl_x), "scratchpad");
    int rc = buffer_for(buf, &sp);
    if (rc) return rc;
    TRY(dnnl_memory_create(m, &sp, s->eng, *buf), "scratchpad");
    return DS_OK;
}

static int thread_create(dnn_stack *s, dnn_thread *th) {
    int rc;
    TRY(dnnl_stream_create(&th->stream, s->eng, dnnl_stream_default_flags), "stream");
    if ((rc = scratchpad(s, &th->scratch, &th->scratch_mem))) return rc;
    size_t wmax = 0, bmax = 0;
    for (int l = 0; l < NC; l++) {
        if ((rc = mem(&th->src[l], &s->src_md[l], s->eng)) || (rc = mem(&th->dst[l], &s->dst_md[l], s->eng)) ||
            (rc = mem(&th->wf[l], query(&s->fwd[l], dnnl_query_weights_md), s->eng)) ||
            (rc = mem(&th->b[l], &s->b_md[l], s->eng)) || (rc = mem(&th->dwp[l], &s->wplain_md[l], s->eng)))
            return rc;
        if (s->bwd_data[l].pd && (rc = mem(&th->wb[l], query(&s->bwd_data[l], dnnl_query_weights_md), s->eng)))
            return rc;
        if (s->bwd_w[l].pd) {
            const dnnl_memory_desc_t *dw = query(&s->bwd_w[l], dnnl_query_diff_weights_md);
            if ((rc = mem(&th->dw[l], dw, s->eng)) || (rc = mem(&th->db[l], &s->b_md[l], s->eng))) return rc;
            size_t bytes = dnnl_memory_desc_get_size(dw);
            if (bytes > wmax) wmax = bytes;
            if ((size_t)ds_layer_shapes[l].out > bmax) bmax = (size_t)ds_layer_shapes[l].out;
        }
    }
    if (s->x_to_bw.pd) {
        const dnnl_memory_desc_t *md = query(&s->bwd_w[0], dnnl_query_src_md);
        if ((rc = mem(&th->x_bw, md, s->eng)) || (rc = buffer_for((void **)&th->x_bw_buf, md))) return rc;
    }
    size_t img = (size_t)G * DS_PIXELS * sizeof(float);
    th->xpad = calloc(1, img);
    th->dc1_plain = malloc(s->d->act[A_C1] * sizeof(float));
    th->dw_blk = malloc(wmax ? wmax : 1);
    th->dw_plain = malloc(wmax ? wmax : 1); // a plain layout is never larger than a padded one
    th->db_buf = malloc((bmax ? bmax : 1) * sizeof(float));
    if (!th->xpad || !th->dc1_plain || !th->dw_blk || !th->dw_plain || !th->db_buf)
        return ds_fail(DS_ENOMEM, "engine onednn: out of memory");
    return DS_OK;
}

static void thread_free(dnn_thread *th) {
    dnnl_memory_t *all[] = {th->src, th->dst, th->wf, th->wb, th->b, th->dw, th->db, th->dwp};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        for (int l = 0; l < NC; l++)
            if (all[i][l]) dnnl_memory_destroy(all[i][l]);
    if (th->scratch_mem) dnnl_memory_destroy(th->scratch_mem);
    if (th->x_bw) dnnl_memory_destroy(th->x_bw);
    free(th->x_bw_buf);
    if (th->stream) dnnl_stream_destroy(th->stream);
    free(th->scratch);
    free(th->xpad);
    free(th->dc1_plain);
    free(th->dw_blk);
    free(th->dw_plain);
    free(th->db_buf);
}

int dnn_stack_create(dnn_stack **out, const engine_dims *d, int threads, int train) {
    dnn_stack *s = calloc(1, sizeof *s);
    if (!s) return ds_fail(DS_ENOMEM, "engine onednn: out of memory");
    s->d = d;
    s->threads = threads;
    s->train = train;
    s->lanes = dnnl_get_effective_cpu_isa() >= dnnl_cpu_isa_avx512_core ? 16 : 8;
    for (int l = 0; l < NC; l++)
        if (ds_layer_shapes[l].out % s->lanes || (l > 0 && ds_layer_shapes[l].in % s->lanes)) {
            dnn_stack_free(s);
            return ds_fail(DS_EINVAL, "engine onednn: channel counts are not multiples of %d", s->lanes);
        }
    // Plans made for one thread: the primitives run inside the engine's own threads.
    int saved = omp_get_max_threads();
    omp_set_num_threads(1);
    int rc = DS_OK;
    dnnl_status_t st = dnnl_engine_create(&s->eng, dnnl_cpu, 0);
    if (st != dnnl_success) rc = dnn_fail(st, "cpu engine");
    if (!rc) rc = create_prims(s);
    omp_set_num_threads(saved);
    if (!rc) {
        st = dnnl_stream_create(&s->main_stream, s->eng, dnnl_stream_default_flags);
        if (st != dnnl_success) rc = dnn_fail(st, "stream");
    }
    for (int l = 0; !rc && l < NC; l++) {
        prim *all[] = {&s->fwd[l], &s->bwd_data[l], &s->bwd_w[l], &s->to_wf[l], &s->to_wb[l], &s->from_dw[l]};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            if (scratch_of(all[i]) > s->scratch_bytes) s->scratch_bytes = scratch_of(all[i]);
        if (scratch_of(&s->x_to_bw) > s->scratch_bytes) s->scratch_bytes = scratch_of(&s->x_to_bw);
        const dnnl_memory_desc_t *wf = query(&s->fwd[l], dnnl_query_weights_md);
        rc = buffer_for((void **)&s->wf_buf[l], wf);
        if (!rc) rc = mem(&s->m_wplain[l], &s->wplain_md[l], s->eng);
        if (!rc) rc = mem(&s->m_wf[l], wf, s->eng);
        if (!rc && s->bwd_data[l].pd && !s->wb_same[l]) {
            const dnnl_memory_desc_t *wb = query(&s->bwd_data[l], dnnl_query_weights_md);
            rc = buffer_for((void **)&s->wb_buf[l], wb);
            if (!rc) rc = mem(&s->m_wb[l], wb, s->eng);
        }
    }
    if (!rc) rc = scratchpad(s, &s->main_scratch, &s->main_scratch_mem);
    if (!rc) {
        s->th = calloc((size_t)threads, sizeof *s->th);
        if (!s->th) rc = ds_fail(DS_ENOMEM, "engine onednn: out of memory");
        for (int t = 0; !rc && t < threads; t++) rc = thread_create(s, &s->th[t]);
    }
    if (rc) {
        dnn_stack_free(s);
        return rc;
    }
    *out = s;
    return DS_OK;
}

void dnn_stack_free(dnn_stack *s) {
    if (!s) return;
    if (s->th)
        for (int t = 0; t < s->threads; t++) thread_free(&s->th[t]);
    free(s->th);
    for (int l = 0; l < NC; l++) {
        layer_free(s, l);
        dnnl_memory_t ms[] = {s->m_wplain[l], s->m_wf[l], s->m_wb[l]};
        for (size_t i = 0; i < 3; i++)
            if (ms[i]) dnnl_memory_destroy(ms[i]);
        free(s->wf_buf[l]);
        free(s->wb_buf[l]);
    }
    if (s->main_scratch_mem) dnnl_memory_destroy(s->main_scratch_mem);
    if (s->main_stream) dnnl_stream_destroy(s->main_stream);
    free(s->main_scratch);
    if (s->eng) dnnl_engine_destroy(s->eng);
    free(s);
}

void ds_onednn_version(char *out, size_t cap) {
    const dnnl_version_t *v = dnnl_version();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    const char *name = isa == dnnl_cpu_isa_avx512_core_amx ? "avx512_core_amx"
                       : isa == dnnl_cpu_isa_avx512_core_bf16 ? "avx512_core_bf16"
                       : isa == dnnl_cpu_isa_avx512_core_vnni ? "avx512_core_vnni"
                       : isa == dnnl_cpu_isa_avx512_core ? "avx512_core"
                       : isa == dnnl_cpu_isa_avx2_vnni ? "avx2_vnni"
                       : isa == dnnl_cpu_isa_avx2 ? "avx2"
                       : isa == dnnl_cpu_isa_avx ? "avx"
                       : isa == dnnl_cpu_isa_sse41 ? "sse41" : "other";
    snprintf(out, cap, "oneDNN %d.%d.%d (%s)", v->major, v->minor, v->patch, name);
}
const char *dnn_stack_describe(const dnn_stack *s) { return s->describe; }

// One execution: (argument, memory object, data) triples, then the scratchpad.
typedef struct {
    int arg;
    dnnl_memory_t m;
    const void *data;
} xarg;

static dnnl_status_t run(const prim *p, dnnl_stream_t stream, dnnl_memory_t scratch, int n, const xarg *a) {
    dnnl_exec_arg_t args[8];
    for (int i = 0; i < n; i++) {
        dnnl_status_t st = dnnl_memory_set_data_handle(a[i].m, (void *)a[i].data);
        if (st != dnnl_success) return st;
        args[i] = (dnnl_exec_arg_t){a[i].arg, a[i].m};
    }
    args[n] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, scratch};
    dnnl_status_t st = dnnl_primitive_execute(p->prim, stream, n + 1, args);
    return st == dnnl_success ? dnnl_stream_wait(stream) : st;
}

int dnn_stack_prepare(dnn_stack *s, const ds_params *p) {
    for (int l = 0; l < NC; l++) {
        s->bias[l] = p->b[l];
        s->weights[l] = p->w[l];
        xarg a[2] = {{DNNL_ARG_FROM, s->m_wplain[l], p->w[l]}, {DNNL_ARG_TO, s->m_wf[l], s->wf_buf[l]}};
        TRY(run(&s->to_wf[l], s->main_stream, s->main_scratch_mem, 2, a), "weights reorder");
        if (s->wb_buf[l]) {
            xarg b[2] = {{DNNL_ARG_FROM, s->m_wplain[l], p->w[l]}, {DNNL_ARG_TO, s->m_wb[l], s->wb_buf[l]}};
            TRY(run(&s->to_wb[l], s->main_stream, s->main_scratch_mem, 2, b), "weights reorder");
        }
    }
    return DS_OK;
}

// An execution that failed (it cannot, once the primitives exist, short of memory corruption)
// poisons the output with NaN: the trainer's finiteness check and the attacks' see it.
static void run_or_poison(const prim *p, dnn_thread *th, int n, const xarg *a, float *out, size_t count,
                          const char *what) {
    dnnl_status_t st = run(p, th->stream, th->scratch_mem, n, a);
    if (st != dnnl_success) {
        dnn_fail(st, what);
        for (size_t i = 0; i < count; i++) out[i] = __builtin_nanf("");
    }
}

static void conv_fwd(dnn_stack *s, dnn_thread *th, int l, float *dst, const float *src) {
    xarg a[4] = {{DNNL_ARG_SRC, th->src[l], src},
                 {DNNL_ARG_WEIGHTS, th->wf[l], s->wf_buf[l]},
                 {DNNL_ARG_BIAS, th->b[l], s->bias[l]},
                 {DNNL_ARG_DST, th->dst[l], dst}};
    run_or_poison(&s->fwd[l], th, 4, a, dst, G * s->d->L[l].out_size, "convolution forward");
}

static void conv_bwd_data(dnn_stack *s, dnn_thread *th, int l, float *dsrc, const float *ddst) {
    xarg a[3] = {{DNNL_ARG_DIFF_DST, th->dst[l], ddst},
                 {DNNL_ARG_WEIGHTS, th->wb[l], s->wb_same[l] ? s->wf_buf[l] : s->wb_buf[l]},
                 {DNNL_ARG_DIFF_SRC, th->src[l], dsrc}};
    run_or_poison(&s->bwd_data[l], th, 3, a, dsrc, G * s->d->L[l].in_size, "convolution backward data");
}

// The group's weight and bias gradients of layer l, added into grad's layer l.
static void conv_bwd_weights(dnn_stack *s, dnn_thread *th, int l, ds_params *grad, const float *src,
                             const float *ddst) {
    size_t nw = ds_weight_count(l), nb = (size_t)ds_layer_shapes[l].out;
    xarg a[4] = {{DNNL_ARG_SRC, th->src[l], src},
                 {DNNL_ARG_DIFF_DST, th->dst[l], ddst},
                 {DNNL_ARG_DIFF_WEIGHTS, th->dw[l], th->dw_blk},
                 {DNNL_ARG_DIFF_BIAS, th->db[l], th->db_buf}};
    xarg r[2] = {{DNNL_ARG_FROM, th->dw[l], th->dw_blk}, {DNNL_ARG_TO, th->dwp[l], th->dw_plain}};
    dnnl_status_t st = dnnl_success;
    if (l == 0 && s->x_to_bw.pd) {
        xarg x[2] = {{DNNL_ARG_FROM, th->src[0], src}, {DNNL_ARG_TO, th->x_bw, th->x_bw_buf}};
        st = run(&s->x_to_bw, th->stream, th->scratch_mem, 2, x);
        a[0] = (xarg){DNNL_ARG_SRC, th->x_bw, th->x_bw_buf};
    }
    if (st == dnnl_success) st = run(&s->bwd_w[l], th->stream, th->scratch_mem, 4, a);
    if (st == dnnl_success) st = run(&s->from_dw[l], th->stream, th->scratch_mem, 2, r);
    if (st != dnnl_success) {
        dnn_fail(st, "convolution backward weights");
        grad->w[l][0] = __builtin_nanf("");
        return;
    }
    float *restrict gw = grad->w[l], *restrict gb = grad->b[l];
    for (size_t i = 0; i < nw; i++) gw[i] += th->dw_plain[i];
    for (size_t i = 0; i < nb; i++) gb[i] += th->db_buf[i];
}

// One sample's tensor between the blocked layout [C/V][HW][V] and the plain one [C][HW] (C,H,W
// order): the flatten before fc1, its backward, and conv1's gradient for our input-gradient loop.
static void unblock(float *restrict plain, const float *restrict blk, int C, int HW, int V) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HW; i++) plain[(size_t)c * HW + i] = blk[((size_t)(c / V) * HW + i) * V + c % V];
}

static void block(float *restrict blk, const float *restrict plain, int C, int HW, int V) {
    for (int c = 0; c < C; c++)
        for (int i = 0; i < HW; i++) blk[((size_t)(c / V) * HW + i) * V + c % V] = plain[(size_t)c * HW + i];
}

void dnn_stack_forward(dnn_stack *s, int t, group_acts *a, const float *x, int n) {
    dnn_thread *th = &s->th[t];
    const engine_dims *d = s->d;
    const ds_layer_geom *L = d->L;
    int V = s->lanes;
    if (n < G) { // pad to G samples with zero images
        memcpy(th->xpad, x, (size_t)n * DS_PIXELS * sizeof(float));
        memset(th->xpad + (size_t)n * DS_PIXELS, 0, (size_t)(G - n) * DS_PIXELS * sizeof(float));
        x = th->xpad;
    }
    th->x_used = x;
    int c2 = ds_layer_shapes[DS_CONV2].out, c4 = ds_layer_shapes[DS_CONV4].out;
    conv_fwd(s, th, DS_CONV1, a->c1, x);     // [G,1,28,28] -> [G,32/V,26,26,V]
    conv_fwd(s, th, DS_CONV2, a->c2, a->c1); // -> [G,32/V,24,24,V]
    ds_maxpool_forward_blocked(a->p1, a->arg1, a->c2, G * c2 / V, L[DS_CONV2].oh, L[DS_CONV2].ow, V);
    conv_fwd(s, th, DS_CONV3, a->c3, a->p1); // -> [G,64/V,10,10,V]
    conv_fwd(s, th, DS_CONV4, a->c4, a->c3); // -> [G,64/V,8,8,V]
    ds_maxpool_forward_blocked(a->p2, a->arg2, a->c4, G * c4 / V, L[DS_CONV4].oh, L[DS_CONV4].ow, V);
    size_t flat = d->act[A_H0]; // -> [n,1024]
    for (int g = 0; g < n; g++) unblock(a->h0 + g * flat, a->p2 + g * flat, c4, L[DS_CONV4].ph * L[DS_CONV4].pw, V);
}

void dnn_stack_backward(dnn_stack *s, int t, const group_acts *a, thread_scratch *sc, const float *dh0,
                        ds_params *grad, float *dx) {
    dnn_thread *th = &s->th[t];
    const ds_layer_geom *L = s->d->L;
    const engine_dims *d = s->d;
    int V = s->lanes, n = a->n;
    int c2 = ds_layer_shapes[DS_CONV2].out, c4 = ds_layer_shapes[DS_CONV4].out;
    // The padding samples n..G-1 get a zero gradient, so that they add nothing to weight gradients.
    size_t flat = d->act[A_H0];
    for (int g = 0; g < n; g++) block(sc->dp2 + g * flat, dh0 + g * flat, c4, L[DS_CONV4].ph * L[DS_CONV4].pw, V);
    memset(sc->dp2 + n * flat, 0, (G - n) * flat * sizeof(float));
    ds_maxpool_backward_blocked(sc->dc4, sc->dp2, a->arg2, a->c4, G * c4 / V, L[DS_CONV4].oh, L[DS_CONV4].ow, V);
    if (grad) conv_bwd_weights(s, th, DS_CONV4, grad, a->c3, sc->dc4);
    conv_bwd_data(s, th, DS_CONV4, sc->dc3, sc->dc4);
    ds_relu_backward(sc->dc3, a->c3, G * d->act[A_C3]);
    if (grad) conv_bwd_weights(s, th, DS_CONV3, grad, a->p1, sc->dc3);
    conv_bwd_data(s, th, DS_CONV3, sc->dp1, sc->dc3);
    ds_maxpool_backward_blocked(sc->dc2, sc->dp1, a->arg1, a->c2, G * c2 / V, L[DS_CONV2].oh, L[DS_CONV2].ow, V);
    if (grad) conv_bwd_weights(s, th, DS_CONV2, grad, a->c1, sc->dc2);
    conv_bwd_data(s, th, DS_CONV2, sc->dc1, sc->dc2);
    ds_relu_backward(sc->dc1, a->c1, G * d->act[A_C1]);
    if (grad) conv_bwd_weights(s, th, DS_CONV1, grad, th->x_used, sc->dc1);
    if (dx) { // the n real samples only, each from its own gradient in PyTorch's layout
        int c1 = ds_layer_shapes[DS_CONV1].out, hw = L[DS_CONV1].oh * L[DS_CONV1].ow;
        for (int g = 0; g < n; g++) {
            unblock(th->dc1_plain, sc->dc1 + g * d->act[A_C1], c1, hw, V);
            ds_conv_backward_input_1ch(dx + (size_t)g * DS_PIXELS, th->dc1_plain, s->weights[DS_CONV1], c1,
                                       L[DS_CONV1].h, L[DS_CONV1].w);
        }
    }
}
