// The engine's inside, shared by its common part (engine.c: groups, chunks, the fully connected
// layers, the GEMM convolution stack) and the oneDNN convolution stack (conv_onednn.c).
//
// A group is DS_GROUP samples. The convolution stack of a group maps x [n,784] to h0 [n,1024]
// (pool2's output flattened in C,H,W order) and back; everything after h0 is the same code for
// both kinds. Activations keep their sizes whatever the layout: C,N,H,W for the GEMM stack
// ([C][G][H][W]), oneDNN's channel-blocked layout for the oneDNN stack ([G][C/V][H][W][V], V = 8
// or 16 lanes, DS_LANES_MAX at most), since every channel count is a multiple of V.
#ifndef DS_ENGINE_INTERNAL_H
#define DS_ENGINE_INTERNAL_H

#include "ds_nn.h"

// Activations of one group of G samples.
typedef struct {
    float *c1, *c2, *p1, *c3, *c4, *p2; // per sample [32,26,26] [32,24,24] [32,12,12] [64,10,10] [64,8,8] [64,4,4]
    float *h0, *f1, *f2, *z;            // [G,1024] [G,200] [G,200] [G,10]
    float *mask;                        // [G,400] dropout scales for f1 (first 200) and f2
    uint8_t *arg1, *arg2;               // max-pool winners, one per pooled value
    const float *x;                     // [G,784] input (not owned)
    int n;                              // samples in this group (<= DS_GROUP)
    int dropout;                        // masks applied in the last forward
} group_acts;

// Per-thread scratch: im2col matrices kept from forward to backward (GEMM stack), and activation
// gradients.
typedef struct {
    float *col1, *col2, *col3, *col4, *dcol;
    float *dc1, *dc2, *dp1, *dc3, *dc4, *dp2, *dh0, *df1, *df2, *dz;
} thread_scratch;

// The buffers of group_acts in memory order (A_C1 .. A_Z also have a gradient in thread_scratch),
// and the im2col matrices of thread_scratch: col[l] for conv layer l, then the one dcol.
enum { A_C1, A_C2, A_P1, A_C3, A_C4, A_P2, A_H0, A_F1, A_F2, A_Z, A_MASK, NUM_ACTS };
enum { N_CONV = DS_FC1, DCOL = N_CONV, NUM_COLS };

// Every size of the engine, from the layer table (llm.c's act_sizes): floats (bytes for arg) per
// sample, then per group of G samples or per thread.
typedef struct {
    ds_layer_geom L[DS_NUM_LAYERS];
    size_t act[NUM_ACTS]; // one activation of one sample
    size_t col[NUM_COLS]; // one im2col matrix [C*9, oh*ow] of one sample
    size_t act_floats, arg_bytes, scratch_floats; // a group's activations and winners, a thread's scratch
} engine_dims;

typedef struct dnn_stack dnn_stack;

struct ds_engine {
    ds_engine_kind kind;
    int max_batch, threads, n_groups, n_chunks, chunk;
    engine_dims dims;
    group_acts *groups;      // inference: one per group of max_batch; training: one per thread
    thread_scratch *scratch;
    float *act_mem, *scratch_mem, *chunk_grads;
    uint8_t *arg_mem;
    double *losses; // [max_batch]
    dnn_stack *dnn; // DS_ENGINE_ONEDNN only
};

// ---- The oneDNN convolution stack (conv_onednn.c) ----

// Primitives for groups of G samples, thread-private streams, memory objects and scratchpads for
// `threads` threads; train: also the weight-gradient primitives (else the input gradient's conv1).
int dnn_stack_create(dnn_stack **out, const engine_dims *d, int threads, int train);
void dnn_stack_free(dnn_stack *s);
// Weights into the layouts the primitives chose, once per engine call on the caller's thread
// (the model keeps PyTorch's layout: the optimizer, the gangs' fold and the files see only that).
int dnn_stack_prepare(dnn_stack *s, const ds_params *p);
// Thread t: x [n,784] -> a->c1 ... a->p2 and a->h0 [n,1024] (C,H,W order per sample).
void dnn_stack_forward(dnn_stack *s, int t, group_acts *a, const float *x, int n);
// Thread t: dh0 [n,1024] of a's last forward -> conv weight and bias gradients added into grad
// (if non-NULL; the forward must be the last one on this thread) and dx [n,784] (if non-NULL).
void dnn_stack_backward(dnn_stack *s, int t, const group_acts *a, thread_scratch *sc,
                        const float *dh0, ds_params *grad, float *dx);
// "conv1 fwd jit:avx512_core ..." : the implementation every primitive picked, one per line.
const char *dnn_stack_describe(const dnn_stack *s);

#endif
