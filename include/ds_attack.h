// Adversarial attacks on an abstract differentiable classifier: FGSM, PGD, JSMA, C&W L2,
// transfer, and the gradient-free Square Attack (forward passes only).
//
// The attacks see a classifier only through ds_classifier (forward to logits, then input
// gradients J^T v for the samples of that forward), so they are tested on hand-built toy models
// and run unchanged on the CNN (ds_classifier_from_model). The network is float32, like the
// deployed model: when softmax saturates at T=1 on a distilled network, the gradients here become
// exactly 0, as they did in the papers' code. How the attacks' own gradients are rounded is a
// setting of every attack (ds_numerics, below), named in its settings string.
//
// Attacked quantity ("space") F(x), z = logits:
//   DS_SPACE_SOFTMAX   F = softmax(z), the deployed model at T=1 (the paper's JSMA-F).
//                      FGSM loss: cross-entropy of softmax(z), dL/dz = softmax(z) - onehot(y).
//   DS_SPACE_LOGITS    F = z (JSMA-Z, as cleverhans and torchattacks do).
//                      FGSM loss: the margin max_{j!=y} z_j - z_y, dL/dz = onehot(j*) - onehot(y)
//                      (C&W's f6 objective: the cross-entropy would equal the softmax case).
//   DS_SPACE_LOGITS_T  F = softmax(z / T), T the model's training temperature (sees through
//                      distillation). FGSM loss: cross-entropy of softmax(z/T),
//                      dL/dz = (softmax(z/T) - onehot(y)) / T.
// The JSMA Jacobian of a softmax space is dF_i/dx = sum_j p_i (delta_ij - p_j) / T dz_j/dx.
// C&W always works on the logits Z.
//
// Records are written one per attempt: FGSM, PGD and Square one per (eps, sample), eps-major;
// JSMA and targeted C&W one per (sample, target), sample-major with targets in increasing order,
// skipping the true label; untargeted C&W one per sample.
//
// All functions return DS_OK or a negative DS_E* code with a one-line message (ds_error.h).
#ifndef DS_ATTACK_H
#define DS_ATTACK_H

#include <stddef.h>
#include <stdint.h>

#include "ds_nn.h"
#include "ds_store.h"

// ---- The classifier ----

typedef struct ds_classifier {
    int n_in, n_classes;  // 784, 10 for the CNN
    int max_batch;        // most samples per call
    float temperature;    // training temperature: the T of DS_SPACE_LOGITS_T (1 if unknown)
    void *ctx;
    // logits [n, n_classes] for x [n, n_in]; keeps what input_grad needs for these n samples
    int (*forward)(void *ctx, const float *x, int n, float *logits);
    // dx [n, n_in] = sum_k dlogits[i,k] dz_k/dx for the samples of the last forward (same n)
    int (*input_grad)(void *ctx, const float *dlogits, int n, float *dx);
    void (*free)(void *ctx); // releases ctx (NULL if the caller owns it)
} ds_classifier;

// Wraps model m (not copied: it must outlive c) in a ds_engine of max_batch samples and
// `threads` workers. temperature = m->temperature.
int ds_classifier_from_model(ds_classifier *c, const ds_model *m, int max_batch, int threads);
// Calls c->free(c->ctx) if set and clears c.
void ds_classifier_free(ds_classifier *c);

// ---- Settings ----

typedef enum { DS_SPACE_SOFTMAX, DS_SPACE_LOGITS, DS_SPACE_LOGITS_T } ds_space;
typedef enum { DS_LABELS_TRUE, DS_LABELS_PREDICTED } ds_label_mode;
typedef enum { DS_TARGETS_ALL, DS_TARGETS_NONE } ds_target_mode; // every class but the true one, or untargeted

// How an attack computes its gradients (Figure 1 depends on it: on distilled students the
// softmax's small probabilities lie in float32's denormal range):
//   denormals  keep (default): the attack and every engine thread it calls keep float32
//              denormals, as PyTorch on CPUs does; flush: FTZ/DAZ, as TensorFlow's CPU pools and
//              many GPU kernels do (and as this engine's attacks did before the setting existed).
//   gradient   stable (default): dL/dz_y = -sum_{j!=y} p_j (and 1 - p_i as the sum of the other
//              p_j in JSMA's Jacobian): zero only when every other p_j underflows; framework:
//              p_y - 1 and p_i (1 - p_i), as autograd computes them: zero once p_y rounds to 1.
//   precision  float32 (default): the softmax and its derivatives in float32 from the logits;
//              float64: in double, in the log domain, from the float32 logits, then scaled by a
//              power of two into float32 range before the backward pass (per sample; in JSMA the
//              target's row and the other rows each by their own: the pair choice does not
//              change under such scaling). The exact evaluation of the same attack definition.
// gradient and precision matter only in the softmax spaces; C&W and transfer evaluation have
// only denormals.
typedef enum { DS_DENORMALS_KEEP, DS_DENORMALS_FLUSH } ds_denormals;
typedef enum { DS_GRADIENT_STABLE, DS_GRADIENT_FRAMEWORK } ds_gradient;
typedef enum { DS_PRECISION_FLOAT32, DS_PRECISION_FLOAT64 } ds_precision;
typedef struct {
    ds_denormals denormals;
    ds_gradient gradient;
    ds_precision precision;
} ds_numerics;

// "softmax", "logits", "logits_T" <-> enum; DS_EINVAL for an unknown name.
int ds_space_parse(const char *s, ds_space *out);
const char *ds_space_name(ds_space s);
int ds_label_mode_parse(const char *s, ds_label_mode *out);  // "true", "predicted"
const char *ds_label_mode_name(ds_label_mode m);
int ds_target_mode_parse(const char *s, ds_target_mode *out); // "all", "none"
const char *ds_target_mode_name(ds_target_mode m);
int ds_denormals_parse(const char *s, ds_denormals *out);    // "keep", "flush"
const char *ds_denormals_name(ds_denormals d);
int ds_gradient_parse(const char *s, ds_gradient *out);      // "stable", "framework"
const char *ds_gradient_name(ds_gradient g);
int ds_precision_parse(const char *s, ds_precision *out);    // "float32", "float64"
const char *ds_precision_name(ds_precision p);

// Gradient of the attacked quantity with respect to the logits z [n_classes] of one sample:
// FGSM's dL/dz (see the table above) for label y, computed as num says (float64: times a power
// of two, which leaves the sign of every input gradient as it is). T is used by DS_SPACE_LOGITS_T
// only.
void ds_space_loss_dz(ds_space s, const ds_numerics *num, const float *z, int C, int y, float T,
                      float *dz);
// PGD's loss = margin: the gradient of max_{j!=y} F_j - F_y with respect to z (j the largest other
// logit; the softmax is monotone, so the same j on F): onehot(j) - onehot(y) for DS_SPACE_LOGITS
// (FGSM's logits loss), else dF_j/dz - dF_y/dz from ds_space_output_dz rows in float32, or in
// float64 as every term's log magnitude, times a power of two (see ds_numerics).
void ds_space_margin_dz(ds_space s, const ds_numerics *num, const float *z, int C, int y, float T,
                        float *dz);
// Row i of dF/dz in float32: dFi_dz[j] = dF_i/dz_j, p = the softmax of the space (NULL for
// DS_SPACE_LOGITS); gradient as num->gradient says.
void ds_space_output_dz(ds_space s, ds_gradient g, const float *p, int C, int i, float T,
                        float *dFi_dz);
// JSMA's Jacobian of F with respect to the logits of one sample: J [C, C], row i = dF_i/dz.
// float32: ds_space_output_dz on the float32 softmax. float64: in double; row `target` and the
// other rows are each scaled by a power of two (see ds_numerics).
void ds_space_jacobian_dz(ds_space s, const ds_numerics *num, const float *z, int C, float T,
                          int target, float *J);

#define DS_FGSM_MAX_EPS 16

typedef struct {
    float eps[DS_FGSM_MAX_EPS]; // x' = clip(x + eps sign(g), 0, 1) for each eps
    int n_eps;                  // default 1 (eps 0.3)
    ds_space space;             // default DS_SPACE_SOFTMAX
    ds_label_mode labels;       // default DS_LABELS_TRUE
    float temperature;          // T of DS_SPACE_LOGITS_T; <= 0: the classifier's (default 0)
    ds_numerics num;            // default keep, stable, float32
} ds_fgsm_params;

typedef struct {
    ds_space space;       // default DS_SPACE_SOFTMAX (JSMA-F, the paper's)
    float gamma;          // share of pixels that may change, (0,1]; default 0.145
    float theta;          // change of a chosen pixel, [-1,1] \ {0}; default +1
    int max_iterations;   // >= 1, or 0 (default): floor(n_in * gamma / 2) = 56 for MNIST
    float temperature;    // T of DS_SPACE_LOGITS_T; <= 0: the classifier's
    int threads;          // OpenMP threads of the pair search (between engine calls); default 1
    ds_numerics num;      // default keep, stable, float32
} ds_jsma_params;

typedef struct {
    ds_target_mode targets; // default DS_TARGETS_ALL
    int steps;              // binary search steps over c, >= 1; default 6
    int max_iterations;     // Adam iterations per step, >= 1; default 200
    float c0;               // initial c > 0; default 1e-2
    // Adam learning rate > 0; default 0.1. Carlini's code uses 0.01 with up to 10,000
    // iterations; MNIST's black background starts at tanh^-1(-0.999999) = -7.25, which 0.01
    // cannot move in 200 iterations (5-11% success measured here), 0.1 can (94-100%).
    float lr;
    float kappa;            // confidence >= 0; default 0
    int abort_early;        // stop a step when the loss has not fallen by 0.01% over 10% of
                            // its iterations; default 1
    ds_denormals denormals; // default keep (C&W works on the logits: no softmax to round)
} ds_cw_params;

// Threat models of the iterative attacks: ||x' - x||_inf <= eps or ||x' - x||_2 <= eps.
typedef enum { DS_NORM_LINF, DS_NORM_L2 } ds_norm;
int ds_norm_parse(const char *s, ds_norm *out); // "linf", "l2"
const char *ds_norm_name(ds_norm n);
typedef enum { DS_LOSS_CE, DS_LOSS_MARGIN } ds_loss;
int ds_loss_parse(const char *s, ds_loss *out); // "ce", "margin"
const char *ds_loss_name(ds_loss l);

// PGD (Madry et al. 2018). Defaults as MadryLab/mnist_challenge: eps 0.3, 100 steps of 0.01,
// random start, one start. Records: one per (eps, sample), eps-major, like FGSM; with restarts
// the first successful start per sample, else the last one's final point (src/attack/pgd.c).
// loss ce: FGSM's loss of the space (ds_space_loss_dz: in DS_SPACE_LOGITS that is the margin
// too); margin: max_{j!=y} F_j - F_y on the space's output F (ds_space_margin_dz).
typedef struct {
    float eps[DS_FGSM_MAX_EPS]; // radius for each entry; n_eps >= 1
    int n_eps;
    ds_norm norm;               // default DS_NORM_LINF
    float step;                 // step size (absolute, in the norm's units); default 0.01
                                //   linf: x += step sign(g); l2: x += step g / ||g||_2
    int steps;                  // >= 1; default 100
    int random_start;           // default 1: uniform in the eps ball (clipped to [0,1])
    int restarts;               // starts per sample, >= 1; default 1
    ds_loss loss;               // default DS_LOSS_CE
    ds_space space;             // default DS_SPACE_SOFTMAX
    ds_label_mode labels;       // default DS_LABELS_TRUE
    float temperature;          // T of DS_SPACE_LOGITS_T; <= 0: the classifier's
    ds_numerics num;            // default keep, stable, float32
    uint64_t seed;              // random starts: stream (seed, DS_STREAM_ATTACK ^ pgd's salt,
                                //   sample index << 32 | restart);
                                //   set by the caller (the sweep: from the job seed and the
                                //   attack's name), not part of the settings string
} ds_pgd_params;

// Square Attack (Andriushchenko et al. 2020), L-inf, score-based: sees only the outputs of the
// attacked space, never a gradient. Records: one per (eps, sample), eps-major.
// Defaults: eps 0.3, 1000 queries (the paper used 10,000 on MNIST), p_init 0.8 (the paper's
// MNIST value), space logits, labels true, denormals keep. src/attack/square.c has the algorithm.
typedef struct {
    float eps[DS_FGSM_MAX_EPS];
    int n_eps;
    int queries;                // forward passes per sample, >= 1, the initial one included
    float p_init;               // initial share of pixels in a square, (0, 1]
    ds_space space;             // which outputs the attacker sees: the margin F_y - max_{j!=y} F_j
    ds_label_mode labels;       // default DS_LABELS_TRUE
    float temperature;          // T of DS_SPACE_LOGITS_T; <= 0: the classifier's
    ds_denormals denormals;     // default keep
    uint64_t seed;              // as in ds_pgd_params (stream DS_STREAM_ATTACK ^ "SQUARE", sample
                                //   index; the same draws for every eps)
} ds_square_params;
// The share of pixels p of the square tried at iteration it (0-based, after the initial query)
// of a budget of `queries`: the reference's p_selection, p_init halved after 10, 50, 200, 500,
// 1000, 2000, 4000, 6000 and 8000 iterations of a 10,000 budget, rescaled to `queries`.
double ds_square_p(double p_init, int it, int queries);
// The side of that square on an h x h one-channel image: round(sqrt(p h^2)) (half to even, as
// Python's round) clamped to [1, h - 1].
int ds_square_side(double p, int h);

void ds_fgsm_params_default(ds_fgsm_params *p);
void ds_jsma_params_default(ds_jsma_params *p);
void ds_cw_params_default(ds_cw_params *p);
// DS_EINVAL with a message naming the parameter when p is impossible.
int ds_fgsm_params_check(const ds_fgsm_params *p);
int ds_jsma_params_check(const ds_jsma_params *p);
int ds_cw_params_check(const ds_cw_params *p);
void ds_pgd_params_default(ds_pgd_params *p);
int ds_pgd_params_check(const ds_pgd_params *p);
void ds_pgd_params_string(const ds_pgd_params *p, char *out, size_t cap);
void ds_square_params_default(ds_square_params *p);
int ds_square_params_check(const ds_square_params *p);
void ds_square_params_string(const ds_square_params *p, char *out, size_t cap);
// JSMA's iteration budget for n_in inputs: max_iterations, or floor(n_in * gamma / 2).
int ds_jsma_budget(const ds_jsma_params *p, int n_in);
// One-line description of the settings, e.g. "eps=0.3 space=softmax labels=true".
void ds_fgsm_params_string(const ds_fgsm_params *p, char *out, size_t cap);
void ds_jsma_params_string(const ds_jsma_params *p, int n_in, char *out, size_t cap);
void ds_cw_params_string(const ds_cw_params *p, char *out, size_t cap);

// ---- Results ----

typedef struct {
    int32_t index;       // test-sample index
    int32_t label;       // true label
    int32_t target;      // target class, -1 if untargeted
    int32_t clean_pred, adv_pred;
    uint8_t success;     // untargeted: adv_pred != label; targeted: adv_pred == target
    uint8_t zero_grad;   // the first input gradient was exactly zero everywhere (gradient masking;
                         //   PGD: the first restart's first, at its start point); 0 for Square,
                         //   which computes none
    int32_t iterations;  // JSMA iterations, C&W iterations; 1 for FGSM; PGD steps (all restarts);
                         //   Square: queries used
    float l0, l2, linf;  // distortion of x' - x (l0 counts changed pixels)
} ds_attack_record;

// Fills the distortion fields of r from x' - x (n values).
void ds_attack_distortion(ds_attack_record *r, const float *x, const float *x_adv, int n);

// Success rates, defined here once for every attack:
//   success_rate          successes / attempts (JSMA and C&W: over (sample, target) attempts;
//                         FGSM: over all samples)
//   success_rate_correct  the same over the attempts whose clean prediction was the true label
//                         (FGSM "over samples the model classified correctly")
//   zero_grad_share       attempts whose first input gradient was exactly zero / attempts
// Rates are 0 when their denominator is 0. Mean distortions are over successful attempts.
typedef struct {
    int attempts, successes;
    int correct, correct_successes;
    int zero_grad;
    double success_rate, success_rate_correct, zero_grad_share;
    double mean_l0, mean_l2, mean_linf, mean_iterations;
} ds_attack_rates;

void ds_attack_rates_compute(const ds_attack_record *r, int n, ds_attack_rates *out);

// ---- The attacks ----
// x [n, n_in] clean inputs in [0,1], labels [n] true labels, records numbered first_index + i.
// rec: ds_*_count() records; x_adv: NULL or [ds_*_count(), n_in] adversarial images.

int ds_fgsm_count(const ds_fgsm_params *p, int n);
int ds_fgsm(const ds_classifier *c, const ds_fgsm_params *p, const float *x, const uint8_t *labels,
            int n, int32_t first_index, ds_attack_record *rec, float *x_adv);

// PGD (Madry et al. 2018), untargeted, L-inf or L2, one record per (eps, sample), eps-major.
// Per (eps, sample): restarts from random starts (seeded by p->seed, the sample's index
// first_index + i and the restart: the same for any batch, call split or rank), each of up to
// p->steps steps; stops at the first iterate the model misclassifies and keeps it, else keeps
// the last restart's final point. Samples the model already misclassifies (labels true) keep x.
// Batches of up to c->max_batch live attempts share one forward and one input_grad per step.
int ds_pgd_count(const ds_pgd_params *p, int n);
int ds_pgd(const ds_classifier *c, const ds_pgd_params *p, const float *x, const uint8_t *labels,
           int n, int32_t first_index, ds_attack_record *rec, float *x_adv);

// JSMA (Papernot et al. 2016) targeted at every class but the true one. Per iteration, a batch
// of up to c->max_batch active (sample, target) attempts gets one forward and one input_grad per
// class; each attempt then picks its pixel pair in O(n_in^2) time and O(n_in) memory.
int ds_jsma_count(const ds_classifier *c, int n);
int ds_jsma(const ds_classifier *c, const ds_jsma_params *p, const float *x, const uint8_t *labels,
            int n, int32_t first_index, ds_attack_record *rec, float *x_adv);

// The JSMA pair choice alone, over the domain dom[k] != 0 (k < m): the pair p < q maximising
// (a_p + a_q) * -(b_p + b_q) among those with a_p + a_q > 0 and b_p + b_q < 0, in float32 on a
// and b rescaled by powers of two (exact; so that products of tiny gradients do not underflow);
// ties go to the first (p, q) in lexicographic order. Returns 1 and *p, *q, or 0 when no pair
// qualifies. scratch: 5 * (m + 8) floats.
int ds_jsma_best_pair(const float *alpha, const float *beta, const uint8_t *dom, int m,
                      float *scratch, int *p, int *q);

// Carlini & Wagner L2 (2017): x' = (tanh(w)+1)/2, minimise ||x' - x||^2 + c f(x'), f the hinge
// on the logits, Adam, binary search over c; keeps the smallest-L2 successful x'. A failed
// attempt records x' = x.
int ds_cw_count(const ds_classifier *c, const ds_cw_params *p, int n);
int ds_cw_l2(const ds_classifier *c, const ds_cw_params *p, const float *x, const uint8_t *labels,
             int n, int32_t first_index, ds_attack_record *rec, float *x_adv);

// Square Attack on an image of n_in = h * h pixels (one channel; DS_EINVAL otherwise). Up to
// c->max_batch live (eps, sample) attempts share each forward; uses c->forward only.
int ds_square_count(const ds_square_params *p, int n);
int ds_square(const ds_classifier *c, const ds_square_params *p, const float *x,
              const uint8_t *labels, int n, int32_t first_index, ds_attack_record *rec,
              float *x_adv);

// Transfer: adversarial images x_adv [n, n_in] with their source records src [n] (crafted on
// another model) and the clean images x [n, n_in], evaluated on c. out[i] keeps index, label,
// target, iterations and distortion of src[i]; clean_pred and adv_pred are c's; success is
// c's misclassification (untargeted sources, or any source when `untargeted`) or c's choice of
// src[i].target; zero_grad is 0.
// denormals: the floating-point mode of the evaluation.
int ds_attack_transfer(const ds_classifier *c, const float *x, const float *x_adv,
                       const ds_attack_record *src, int n, int untargeted, ds_denormals denormals,
                       ds_attack_record *out);

// ---- One crafting configuration: an attack's kind and its settings ----
// What a job's [attack NAME] section holds (parsed with the parsers above), what
// `distill_sweep attack` builds from its options, and the one place that names them.

typedef enum { DS_KIND_FGSM, DS_KIND_JSMA, DS_KIND_CW_L2, DS_KIND_TRANSFER, DS_KIND_PGD, DS_KIND_SQUARE } ds_attack_kind;
#define DS_NKINDS 6
// "fgsm", "jsma", "cw-l2", "transfer", "pgd", "square"
const char *ds_attack_kind_name(ds_attack_kind k);

typedef struct {
    ds_attack_kind kind; // any kind but DS_KIND_TRANSFER
    union {
        ds_fgsm_params fgsm;
        ds_jsma_params jsma;
        ds_cw_params cw;
        ds_pgd_params pgd;
        ds_square_params square;
    };
} ds_craft;

// The library's defaults for kind (DS_EINVAL for DS_KIND_TRANSFER or an unknown kind).
int ds_craft_default(ds_craft *c, ds_attack_kind kind);
int ds_craft_check(const ds_craft *c);
// The settings string (the summary's `params` column): ds_*_params_string of the kind.
void ds_craft_string(const ds_craft *c, int n_in, char *out, size_t cap);
ds_denormals ds_craft_denormals(const ds_craft *c);
// The rounding settings of an FGSM, JSMA or PGD configuration; NULL for C&W and Square
// (denormals only).
const ds_numerics *ds_craft_numerics(const ds_craft *c);
// The eps list of an FGSM, PGD or Square configuration: returns n_eps and sets *eps (if eps != NULL) to
// the list, whose records ds_craft_run writes eps-major; 0 and NULL for kinds without one.
int ds_craft_eps(const ds_craft *c, const float **eps);
// Keeps only eps[e] of c's list: the one-eps configuration (its settings string names one
// eps). Nothing for kinds without a list.
void ds_craft_select_eps(ds_craft *c, int e);
// Records ds_craft_run writes for n samples on classifier cl.
int ds_craft_count(const ds_classifier *cl, const ds_craft *c, int n);
// ds_fgsm, ds_jsma, ds_cw_l2, ds_pgd or ds_square with c's settings.
int ds_craft_run(const ds_classifier *cl, const ds_craft *c, const float *x, const uint8_t *labels,
                 int n, int32_t first_index, ds_attack_record *rec, float *x_adv);

// ---- HDF5 storage (src/store/attack_results.c) ----
//
// A file holds one or more sets, each an HDF5 group with a compound dataset "records" (fields
// named as in ds_attack_record), optionally "adversarial" float32 [n, n_in] (chunked, shuffle +
// deflate), and attributes attack, params, model, first, count. Written atomically.

typedef struct {
    char group[128];        // group name in the file ("fgsm_eps0.3", "jsma", ...); "/" for root
    char attack[16];        // "fgsm", "jsma", "cw-l2", "transfer"
    char params[256];       // ds_*_params_string
    char model[1024];       // path[:group] of the attacked model
    int32_t first, count;   // test samples [first, first+count)
    int n_records;
    ds_attack_record *records;
    int n_in;               // columns of images (0 when images == NULL)
    float *images;          // NULL or [n_records, n_in]
} ds_attack_set;

// Writes sets[0..n_sets) to a new file at path, atomically; prov may be NULL.
int ds_attack_results_save(const char *path, const ds_attack_set *sets, int n_sets,
                           const ds_provenance *prov);
// Reads the set in `group` (NULL or "": the first group holding "records", root first) into out;
// records and images are malloc'ed (ds_attack_set_free).
int ds_attack_results_load(const char *path, const char *group, ds_attack_set *out);
void ds_attack_set_free(ds_attack_set *s);

#endif
