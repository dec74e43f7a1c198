// The network of Papernot et al. (2016) for MNIST, its layers, and the batched engine.
//
//   x [1,28,28] -> conv1 3x3x32 ReLU [32,26,26] -> conv2 3x3x32 ReLU [32,24,24] -> maxpool2 [32,12,12]
//   -> conv3 3x3x64 ReLU [64,10,10] -> conv4 3x3x64 ReLU [64,8,8] -> maxpool2 [64,4,4]
//   -> flatten (C,H,W order) 1024 -> fc1 200 ReLU dropout -> fc2 200 ReLU dropout -> fc3 10 = z
//   output softmax(z / T)
//
// Parameters use PyTorch's layout: conv weight [out,in,3,3], fc weight [out,in], bias [out].
// Inside the engine the convolution stack works on a group of G samples at a time: in C,N,H,W
// order ([channels][G][rows][cols]) so that one GEMM covers the whole group (engine kind gemm),
// or as oneDNN primitives made for G samples on oneDNN's channel-blocked layout (onednn).
#ifndef DS_NN_H
#define DS_NN_H

#include <stddef.h>
#include <stdint.h>

#include "ds_data.h"

#define DS_IMG 28            // input is DS_IMG x DS_IMG, one channel
#define DS_PIXELS (DS_IMG * DS_IMG)
#define DS_CLASSES 10
#ifndef DS_GROUP
#define DS_GROUP 4           // samples per convolution pass (im2col buffers stay in cache; the
                             // oneDNN primitives' fixed batch: 8 was no faster)
#endif
// A chunk: the unit of deterministic summation and of parallelism over threads and ranks. A
// batch of n samples is ceil(n/chunk) chunks of `chunk` consecutive samples (the last may be
// shorter); each chunk's weight gradient is computed alone, in groups of DS_GROUP, and the chunk
// gradients are added in chunk order (ds_grad_fold). The sum therefore depends only on the batch
// and the chunk size ([train] chunk, a multiple of DS_GROUP), never on which thread or rank
// computes a chunk. A gang of ranks (ds_gang.h) can use at most ceil(batch/chunk) ranks.
#define DS_CHUNK 32          // the default chunk size: 4 chunks per batch of 128

enum { DS_CONV1, DS_CONV2, DS_CONV3, DS_CONV4, DS_FC1, DS_FC2, DS_FC3, DS_NUM_LAYERS };

typedef struct {
    const char *name; // "conv1" ... "fc3": the HDF5 group name
    int out, in;      // output and input channels (conv) or units (fc)
    int k;            // kernel size: 3 for conv, 0 for fully connected
    int pool;         // 2: a 2x2 max pool follows the ReLU (conv2, conv4); 1: none
} ds_layer_shape;

extern const ds_layer_shape ds_layer_shapes[DS_NUM_LAYERS];

// One sample's geometry in every layer, derived from ds_layer_shapes and DS_IMG: conv layer l
// maps [in,h,w] to [out,oh,ow] (valid convolution: oh = h-k+1), its max pool to [out,ph,pw]
// (ph = oh/pool), and the next layer reads that pooled plane (fc1 flattened in C,H,W order). An
// fc layer works on 1x1 planes: h = w = oh = ow = ph = pw = 1.
typedef struct {
    int h, w;           // input plane: 28x28, 26x26, 12x12, 10x10, then 1x1
    int oh, ow;         // output plane: 26x26, 24x24, 10x10, 8x8, then 1x1
    int ph, pw;         // output plane after the max pool (oh, ow without one): conv2 12x12, conv4 4x4
    int col_rows;       // im2col rows in*k*k (conv: 9, 288, 288, 576); 0 (fc)
    size_t in_size;     // floats in: in*h*w (784 ... fc1 1024)
    size_t out_size;    // floats out: out*oh*ow
    size_t pooled_size; // floats after the pool: out*ph*pw, the next layer's in_size
} ds_layer_geom;

// Fills geom[l] for every layer l (the table is fixed: this cannot fail).
void ds_layer_geometry(ds_layer_geom geom[DS_NUM_LAYERS]);

// Pointers into one arena of floats: w[l] then b[l] for each layer l, in layer order.
typedef struct {
    float *w[DS_NUM_LAYERS];
    float *b[DS_NUM_LAYERS];
} ds_params;

size_t ds_weight_count(int layer); // out*in*k*k or out*in
size_t ds_params_count(void);      // all weights and biases: 312,202 floats
void ds_params_point(ds_params *p, float *mem);

typedef struct ds_model {
    float *mem;      // ds_params_count() floats, the only allocation
    ds_params p;     // pointers into mem
    // What the model is (stored as HDF5 attributes with the weights).
    float temperature;  // temperature it was trained at
    char role[16];      // "baseline", "teacher", "student", "warmstart"; "external": from a
                        // group without our attributes (exported by another tool)
    int epochs;         // epochs trained
    uint64_t seed;      // seed of its initialisation and training streams
    double test_accuracy; // at T=1 on the test set, or -1 if not measured
} ds_model;

// Allocates a zeroed model (attributes: T=1, role "baseline", epochs 0, accuracy -1).
int ds_model_alloc(ds_model *m);
// Allocates and initialises like PyTorch's default: w, b ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)).
int ds_model_init(ds_model *m, uint64_t seed);
// Initialisations ([train] init): DS_INIT_PYTORCH as ds_model_init; DS_INIT_GLOROT: Glorot-uniform
// weights U(-sqrt(6/(fan_in+fan_out)), +sqrt(6/(fan_in+fan_out))), zero biases (Keras' default).
typedef enum { DS_INIT_PYTORCH, DS_INIT_GLOROT } ds_init;
int ds_init_parse(const char *s, ds_init *out); // "pytorch", "glorot"
const char *ds_init_name(ds_init i);
int ds_model_init_as(ds_model *m, uint64_t seed, ds_init init);
int ds_model_copy(ds_model *dst, const ds_model *src); // dst allocated here
void ds_model_free(ds_model *m);

// ---- Layers: forward/backward pairs over caller-owned buffers. Backward accumulates (+=) into
// weight and bias gradients and overwrites input gradients. ----

// 3x3 valid convolution on a group, C,N,H,W order. in [C,G,H,W], out [OC,G,H-2,W-2],
// w [OC, C*9], col [C*9, G*(H-2)*(W-2)] scratch that backward reuses. relu: out = max(out, 0)
// in the same pass as the bias (the backward of that ReLU is the caller's: see ds_relu_backward
// and ds_maxpool_backward).
void ds_conv_forward(float *out, float *col, const float *in, const float *w, const float *b,
                     int G, int C, int H, int W, int OC, int relu);
// dw, db may be NULL (input gradient only); din may be NULL (weight gradients only).
// dcol [C*9, G*(H-2)*(W-2)] scratch. col must hold the forward's im2col when dw != NULL.
void ds_conv_backward(float *din, float *dw, float *db, float *dcol, const float *dout,
                      const float *col, const float *w, int G, int C, int H, int W, int OC);
void ds_relu_backward(float *dx, const float *y, size_t n); // dx *= (y > 0), y the ReLU output
// The input gradient of a 3x3 valid convolution of one input channel, for one sample: din [H,W] =
// sum over o, kh, kw (in that order) of dout[o][y-kh][x-kw] w[o][kh][kw]; dout [OC,H-2,W-2],
// w [OC,9]. The oneDNN engine's conv1 input gradient (oneDNN's own took 14% of an input-gradient
// pass for 1% of its multiplies).
void ds_conv_backward_input_1ch(float *din, const float *dout, const float *w, int OC, int H, int W);
// 2x2 max pool, stride 2, over planes of H x W (H, W even): in [P,H,W], out [P,H/2,W/2];
// arg [P,H/2,W/2] records the winner (0..3) for backward.
void ds_maxpool_forward(float *out, uint8_t *arg, const float *in, int P, int H, int W);
// Overwrites din [P,H,W]; also applies the backward of the ReLU that produced in (the gradient
// passes only where in > 0), saving a pass over the largest activations.
void ds_maxpool_backward(float *din, const float *dout, const uint8_t *arg, const float *in, int P,
                         int H, int W);
// The same on planes of V-lane pixels (oneDNN's channel-blocked layout, P = samples * C/V):
// in [P,H,W,V], out and arg [P,H/2,W/2,V]. Same winners, same bits as V planes of one lane.
void ds_maxpool_forward_blocked(float *out, uint8_t *arg, const float *in, int P, int H, int W, int V);
void ds_maxpool_backward_blocked(float *din, const float *dout, const uint8_t *arg, const float *in,
                                 int P, int H, int W, int V);
// in [B,NI], w [NO,NI], out [B,NO].
void ds_fc_forward(float *out, const float *in, const float *w, const float *b, int B, int NI, int NO,
                   int relu);
void ds_fc_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int B, int NI, int NO);
// The same computed row by row in one fixed order (8-lane partial sums, then a fixed tree): a
// sample's outputs and input gradient have the same bits whatever the other rows are, and dw, db
// accumulate the rows in order. The oneDNN engine's fully connected layers.
void ds_fc_forward_rowwise(float *out, const float *in, const float *w, const float *b, int B, int NI,
                           int NO, int relu);
void ds_fc_backward_rowwise(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, int B, int NI, int NO);
// Inverted dropout: mask[i] = 0 with probability p, else 1/(1-p); x *= mask. Backward: dx *= mask.
void ds_dropout_mask(float *mask, size_t n, float p, uint64_t seed, uint64_t step, uint64_t sample);
void ds_mul_forward(float *x, const float *mask, size_t n);

// Index of the largest of z[0..C) (the first of equal maxima; NaN never wins): the prediction.
int ds_argmax(const float *z, int C);
// p = softmax(z / T) over C classes, computed stably.
void ds_softmax(float *p, const float *z, int C, float T);
// Cross-entropy of softmax(z/T) against target s (a probability vector) or, if s is NULL, the
// one-hot vector of label. Returns the loss (natural log, via log-sum-exp); writes
// dz = (softmax(z/T) - s) / T if dz is non-NULL.
double ds_softmax_xent(float *dz, const float *z, const float *s, int label, int C, float T);

// ---- The engine: the whole network over batches, threaded over groups of samples. ----

typedef struct ds_engine ds_engine;

// The engine's kind: how its convolutions are computed. A setting of the results ([run] engine,
// --engine): the two kinds round differently, so a model or an attack record is reproducible
// bit for bit only with the kind that made it.
//   DS_ENGINE_ONEDNN  oneDNN primitives, channel-blocked layouts, fully connected layers row by
//                     row: a sample's logits and input gradient do not depend on its group,
//                     batch, shard or thread (the default)
//   DS_ENGINE_GEMM    im2col + OpenBLAS sgemm on groups in C,N,H,W order: the engine of every run
//                     recorded before the oneDNN kind existed (their bits); a sample's logits
//                     depend on the group it is computed in (GEMM edge kernels)
typedef enum { DS_ENGINE_ONEDNN, DS_ENGINE_GEMM } ds_engine_kind;
int ds_engine_kind_parse(const char *s, ds_engine_kind *out); // "onednn", "gemm"; DS_EINVAL
const char *ds_engine_kind_name(ds_engine_kind k);
// The kind ds_engine_create uses in this process (DS_ENGINE_ONEDNN until set): main sets it from
// the job or the command line before any engine exists, like the floating-point mode.
void ds_engine_set_default_kind(ds_engine_kind k);
ds_engine_kind ds_engine_default_kind(void);

// max_batch: the most samples one call handles; threads: worker threads (1 BLAS or oneDNN thread
// each); chunk: 0 for inference only, else the chunk size of training passes (a multiple of
// DS_GROUP, DS_EINVAL otherwise): allocates the per-chunk weight-gradient buffers. A training
// engine keeps the activations of one group per thread only: ds_engine_forward works on it, but
// ds_engine_input_grad needs an inference engine.
int ds_engine_create(ds_engine **e, int max_batch, int threads, int chunk);
int ds_engine_create_kind(ds_engine **e, int max_batch, int threads, int chunk, ds_engine_kind kind);
// One line per primitive of a oneDNN engine: the implementation oneDNN picked ("" for GEMM).
const char *ds_engine_describe(const ds_engine *e);
// "oneDNN 2.6.3 (avx512_core)": the library and the instruction set its kernels use here (the
// kernels, hence the bits, follow the instruction set; DNNL_MAX_CPU_ISA caps it).
void ds_onednn_version(char *out, size_t cap);
void ds_engine_free(ds_engine *e);
int ds_engine_threads(const ds_engine *e);

// logits [n,10] of x [n,784] (n <= max_batch), dropout off. Keeps the activations so that
// ds_engine_input_grad can follow, any number of times, for the same samples.
void ds_engine_forward(ds_engine *e, const ds_params *p, const float *x, int n, float *logits);
// dx [n,784] = sum_k dlogits[i,k] * dz_k/dx_i for each sample i of the last forward.
// p must be the parameters of that forward.
void ds_engine_input_grad(ds_engine *e, const ds_params *p, const float *dlogits, int n, float *dx);

// One training pass over a batch: forward with dropout p (masks drawn from (seed, step, i)),
// loss at temperature T against hard labels (soft == NULL) or soft targets soft [n,10], backward.
// grad (ds_params_count floats) receives the gradient of the mean loss. Returns the mean loss.
typedef struct {
    float temperature;
    float dropout;
    uint64_t seed;  // dropout stream
    uint64_t step;  // global step, so that masks differ between steps
} ds_train_pass;
// Every chunk of the batch, then ds_grad_fold over them: the same bits as ds_engine_chunk_grads
// over any split of [0, nc) followed by the fold, on any number of threads or ranks.
double ds_engine_train_grad(ds_engine *e, const ds_params *p, const float *x, const uint8_t *labels,
                           const float *soft, int n, const ds_train_pass *pass, float *grad);

// The batch's mean loss from its samples' losses [n]: summed in sample order, the one order the
// engine and a gang's trainer both use.
double ds_batch_mean_loss(const double *losses, int n);
// Chunks per batch of n: ceil(n / chunk).
int ds_chunk_count(int n, int chunk);
// The chunks [*c0, *c1) of a batch of nc chunks that member `member` of a gang of `size`
// computes: contiguous and balanced (member m: [m*nc/size, (m+1)*nc/size)); empty when nc < size.
void ds_chunk_range(int nc, int size, int member, int *c0, int *c1);
// The training pass of ds_engine_train_grad restricted to chunks [c0, c1) of the batch x [n,784]
// (the whole batch, so that sample indices, dropout masks and 1/n are the batch's): cg
// [(c1-c0), ds_params_count()] receives each chunk's gradient of the batch's mean loss (not
// summed), losses[i] the loss of sample i for every i in these chunks (other entries untouched).
void ds_engine_chunk_grads(ds_engine *e, const ds_params *p, const float *x, const uint8_t *labels,
                           const float *soft, int n, int c0, int c1, const ds_train_pass *pass,
                           float *cg, double *losses);
// grad[j] = (((c[0][j] + c[1][j]) + c[2][j]) + ... + c[nc-1][j]) for j in [j0, j1): the one
// summation order of chunk gradients (the engine, the gang's reduction). chunks[c] points at
// chunk c's ds_params_count() floats (only [j0, j1) is read).
void ds_grad_fold(float *grad, const float *const *chunks, int nc, size_t j0, size_t j1);

// How a gang member obtains the whole batch's gradient from its own chunks (ds_gang.h
// implements it over MPI). A trainer without one computes every chunk itself.
typedef struct {
    int member, size; // this process's index in the gang, and the gang's size
    // cg [(c1-c0), np]: this member's chunk gradients (ds_chunk_range(nc, size, member)); losses
    // [n]: its samples' losses filled in. Must fill grad [np] with ds_grad_fold over all nc chunks
    // and losses[0..n) with every sample's loss, identically on every member. DS_OK or DS_E*.
    int (*reduce)(void *user, const float *cg, int c0, int c1, int nc, size_t np, double *losses,
                  int n, float *grad);
    void *user;
} ds_grad_reducer;

// ---- Training, evaluation, distillation (train.c) ----

typedef struct {
    int epochs;         // 50 in the paper
    int batch;          // 128
    float lr;           // 0.1
    float lr_decay;     // lr is multiplied by this from epoch lr_decay_from on (1 = constant: the paper)
    int lr_decay_from;  // 0-based epoch where the decayed lr starts
    float momentum;     // 0.5
    float dropout;      // 0.5 on fc1 and fc2
    float temperature;  // training temperature (1 for the baseline)
    uint64_t seed;      // initialisation, shuffling and dropout streams
    int threads;        // engine threads
    int chunk;          // samples per chunk (DS_CHUNK; a multiple of DS_GROUP): fixes the
                        //   summation order, and ceil(batch/chunk) bounds a gang's size
} ds_train_config;

void ds_train_config_default(ds_train_config *c); // the paper's values, T=1, seed 1, 1 thread
int ds_train_config_check(const ds_train_config *c); // DS_EINVAL with a message if impossible
// The learning rate of 0-based epoch e: lr, or lr * lr_decay from epoch lr_decay_from on.
float ds_train_lr(const ds_train_config *c, int e);

typedef struct {
    ds_train_config cfg;
    ds_engine *engine;
    float *velocity;  // momentum buffer, ds_params_count floats
    float *grad;
    float *x;         // [batch, 784] staging
    uint8_t *labels;  // [batch] staging
    float *soft;      // [batch, 10] staging
    int32_t *order;   // [n] sample order of the current epoch
    int n;            // training set size
    int epoch;        // epochs completed
    const ds_grad_reducer *reducer; // NULL: alone; else this gang member computes only its chunks
    float *chunk_grads; // [chunks per batch, np] with a reducer: this member's chunk gradients
    double *losses;     // [batch] with a reducer
} ds_trainer;

// reducer: NULL, or the gang's (kept, caller-owned): the trained model is bit-identical either way.
int ds_trainer_init(ds_trainer *t, const ds_train_config *cfg, int n_train,
                    const ds_grad_reducer *reducer);
void ds_trainer_free(ds_trainer *t);
// Runs epoch t->epoch (0-based) of SGD with momentum: v = mu v + g; w -= lr v. soft [n,10] or
// NULL for hard labels. Shuffle and dropout streams depend on (seed, epoch, step) only, so a
// trainer restored from a checkpoint (weights, velocity, epoch) continues bit-identically.
// DS_ENUMERIC if the loss or a weight stops being finite.
int ds_trainer_epoch(ds_trainer *t, ds_model *m, const ds_dataset *train, const float *soft,
                     double *mean_loss);

// Fraction of d classified correctly (argmax of logits; T does not change the argmax).
int ds_evaluate(const ds_model *m, const ds_dataset *d, int threads, double *accuracy);
// out [n,10] = softmax(z(x)/T) for every sample of d, dropout off: the teacher's soft labels.
int ds_soft_labels(const ds_model *m, const ds_dataset *d, float T, int threads, float *out);
// logits [n,10] for samples [first, first+n) of d.
int ds_logits(const ds_model *m, const ds_dataset *d, int first, int n, int threads, float *out);

#endif
