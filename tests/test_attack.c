// Tests of the attacks on hand-built linear classifiers z = W x + b, whose gradients are known
// in closed form, and of the HDF5 result files.
#include "ds_attack.h"
#include "ds_error.h"
#include "ds_fpmode.h"
#include "testutil.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

// ---- A linear classifier implementing ds_classifier ----

typedef struct {
    int D, C;
    double W[8][64]; // W[class][input]
    double b[8];
    int forwards;    // forward calls so far
    // Optional log of every forward input (max_batch 1): log[k] is the k-th forward's x.
    float *log;
    int log_cap, log_n;
} linear;

static int lin_forward(void *ctx, const float *x, int n, float *z) {
    linear *m = ctx;
    m->forwards++;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < m->C; k++) {
            float acc = (float)m->b[k];
            for (int j = 0; j < m->D; j++) acc += (float)m->W[k][j] * x[i * m->D + j];
            z[i * m->C + k] = acc;
        }
    if (m->log)
        for (int i = 0; i < n && m->log_n < m->log_cap; i++, m->log_n++)
            memcpy(m->log + (size_t)m->log_n * m->D, x + i * m->D, sizeof(float) * m->D);
    return DS_OK;
}

static int lin_input_grad(void *ctx, const float *dz, int n, float *dx) {
    linear *m = ctx;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < m->D; j++) {
            float acc = 0.0f;
            for (int k = 0; k < m->C; k++) acc += dz[i * m->C + k] * (float)m->W[k][j];
            dx[i * m->D + j] = acc;
        }
    return DS_OK;
}

static ds_classifier lin_classifier(linear *m, int max_batch, float T) {
    ds_classifier c = {.n_in = m->D, .n_classes = m->C, .max_batch = max_batch, .temperature = T,
                       .ctx = m, .forward = lin_forward, .input_grad = lin_input_grad};
    return c;
}

// Deterministic pseudo-random numbers in [-1, 1) for the tests.
static double urand(uint64_t *s) {
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) / 9007199254740992.0 * 2.0 - 1.0;
}

static void lin_random(linear *m, int D, int C, uint64_t seed, double scale) {
    memset(m, 0, sizeof *m);
    m->D = D;
    m->C = C;
    for (int k = 0; k < C; k++) {
        for (int j = 0; j < D; j++) m->W[k][j] = scale * urand(&seed);
        m->b[k] = 0.1 * scale * urand(&seed);
    }
}

// ---- FGSM ----

// 4 inputs, 3 classes. Gradient of the cross-entropy for label 0 at x: W^T (p - e0); the test
// computes its sign in double.
static void fgsm_model(linear *m) {
    static const double W[3][4] = {{1.0, -2.0, 0.0, 0.5}, {-1.0, 1.0, 0.0, 2.0}, {0.5, 0.5, 0.0, -1.0}};
    memset(m, 0, sizeof *m);
    m->D = 4;
    m->C = 3;
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j++) m->W[k][j] = W[k][j];
}

static void softmax_d(const double *z, int C, double *p) {
    double mx = z[0], s = 0;
    for (int k = 1; k < C; k++) mx = fmax(mx, z[k]);
    for (int k = 0; k < C; k++) s += (p[k] = exp(z[k] - mx));
    for (int k = 0; k < C; k++) p[k] /= s;
}

START_TEST(fgsm_exact_linear) {
    linear m;
    fgsm_model(&m);
    ds_classifier c = lin_classifier(&m, 8, 1.0f);
    const float x[4] = {0.5f, 0.25f, 0.5f, 0.75f};
    const uint8_t y[1] = {0};
    // Independent gradient in double: g_j = sum_k W[k][j] (p_k - [k == y]).
    double z[3], p[3], g[4];
    for (int k = 0; k < 3; k++) {
        z[k] = 0;
        for (int j = 0; j < 4; j++) z[k] += m.W[k][j] * x[j];
    }
    softmax_d(z, 3, p);
    for (int j = 0; j < 4; j++) {
        g[j] = 0;
        for (int k = 0; k < 3; k++) g[j] += m.W[k][j] * (p[k] - (k == 0));
    }
    ck_assert(g[0] < 0 && g[1] > 0 && g[2] == 0 && g[3] > 0); // what the expectations rely on
    ds_fgsm_params fp;
    ds_fgsm_params_default(&fp);
    fp.eps[0] = 0.125f;
    ds_attack_record r;
    float xa[4];
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, 1, 7, &r, xa), DS_OK);
    const float want[4] = {0.375f, 0.375f, 0.5f, 0.875f}; // x + eps sign(g), pixel 2 untouched
    for (int j = 0; j < 4; j++) ck_assert_float_eq(xa[j], want[j]);
    ck_assert_int_eq(r.index, 7);
    ck_assert_int_eq(r.label, 0);
    ck_assert_int_eq(r.target, -1);
    ck_assert_int_eq(r.iterations, 1);
    ck_assert_int_eq(r.zero_grad, 0);
    ck_assert_float_eq(r.l0, 3.0f);
    ck_assert_float_eq_tol(r.linf, 0.125f, 1e-7);
    ck_assert_float_eq_tol(r.l2, 0.125f * sqrtf(3.0f), 1e-6);
    // Predictions: recomputed here.
    double za[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++)
        for (int j = 0; j < 4; j++) za[k] += m.W[k][j] * want[j];
    int pa = 0, pc = 0;
    for (int k = 1; k < 3; k++) {
        if (za[k] > za[pa]) pa = k;
        if (z[k] > z[pc]) pc = k;
    }
    ck_assert_int_eq(r.adv_pred, pa);
    ck_assert_int_eq(r.clean_pred, pc);
    ck_assert_int_eq(r.success, pa != 0);
}
END_TEST

START_TEST(fgsm_clips_and_keeps_zero_gradient_pixels) {
    linear m;
    fgsm_model(&m);
    ds_classifier c = lin_classifier(&m, 8, 1.0f);
    // Pixel 0 falls (g < 0) from 0.1 by 0.3: clipped at 0; pixel 3 rises from 0.9: clipped at 1;
    // pixel 2 has zero gradient: unchanged, even at eps 1.
    const float x[4] = {0.1f, 0.5f, 0.3f, 0.9f};
    const uint8_t y[1] = {0};
    ds_fgsm_params fp;
    ds_fgsm_params_default(&fp);
    fp.eps[0] = 0.3f;
    fp.eps[1] = 1.0f;
    fp.n_eps = 2;
    ck_assert_int_eq(ds_fgsm_count(&fp, 1), 2);
    ds_attack_record r[2];
    float xa[8];
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, 1, 0, r, xa), DS_OK);
    ck_assert_float_eq(xa[0], 0.0f);
    ck_assert_float_eq(xa[1], 0.5f + 0.3f);
    ck_assert_float_eq(xa[2], 0.3f);
    ck_assert_float_eq(xa[3], 1.0f);
    ck_assert_float_eq(xa[4 + 0], 0.0f);
    ck_assert_float_eq(xa[4 + 1], 1.0f);
    ck_assert_float_eq(xa[4 + 2], 0.3f);
    ck_assert_float_eq(xa[4 + 3], 1.0f);
    for (int k = 0; k < 8; k++) ck_assert(xa[k] >= 0.0f && xa[k] <= 1.0f);
    ck_assert_float_eq(r[1].l0, 3.0f);
    // One gradient served both eps: 1 clean forward + one per eps.
    ck_assert_int_eq(m.forwards, 3);
}
END_TEST

// Logits scaled by 100 saturate softmax in float32: the FGSM gradient is exactly zero in space
// softmax (x' == x), not in space logits_T with T = 100, nor in space logits.
START_TEST(fgsm_saturation_masks_gradient) {
    linear m;
    lin_random(&m, 16, 4, 11, 100.0);
    enum { N = 20 };
    float x[N * 16], xa[N * 16];
    uint8_t y[N];
    uint64_t s = 5;
    ds_classifier c = lin_classifier(&m, 8, 100.0f);
    // Samples whose top two logits are more than 110 apart (expf(-110) underflows to 0), labelled
    // with the model's prediction so that the saturated softmax equals the one-hot label.
    for (int i = 0, tries = 0; i < N; tries++) {
        ck_assert_int_lt(tries, 10000);
        float *xi = x + i * 16, z[4];
        for (int k = 0; k < 16; k++) xi[k] = (float)(0.5 + 0.5 * urand(&s));
        lin_forward(&m, xi, 1, z);
        int best = 0;
        for (int k = 1; k < 4; k++)
            if (z[k] > z[best]) best = k;
        float second = -FLT_MAX;
        for (int k = 0; k < 4; k++)
            if (k != best && z[k] > second) second = z[k];
        if (z[best] - second <= 110.0f) continue;
        y[i++] = (uint8_t)best;
    }
    m.forwards = 0;
    ds_fgsm_params fp;
    ds_fgsm_params_default(&fp);
    ds_attack_record r[N];
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, N, 0, r, xa), DS_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].zero_grad, 1);
        ck_assert_float_eq(r[i].l0, 0.0f);
        ck_assert_int_eq(r[i].success, 0);
    }
    ck_assert_int_eq(memcmp(x, xa, sizeof x), 0);
    // Predicted labels: the same.
    fp.labels = DS_LABELS_PREDICTED;
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, N, 0, r, xa), DS_OK);
    for (int i = 0; i < N; i++) ck_assert_int_eq(r[i].zero_grad, 1);
    // logits / T with T = 100 (the classifier's temperature): every gradient non-zero.
    fp.labels = DS_LABELS_TRUE;
    fp.space = DS_SPACE_LOGITS_T;
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, N, 0, r, xa), DS_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].zero_grad, 0);
        ck_assert(r[i].l0 > 0.0f);
    }
    ds_attack_rates rates;
    ds_attack_rates_compute(r, N, &rates);
    ck_assert_int_eq(rates.zero_grad, 0);
    fp.space = DS_SPACE_LOGITS;
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, N, 0, r, xa), DS_OK);
    for (int i = 0; i < N; i++) ck_assert_int_eq(r[i].zero_grad, 0);
}
END_TEST

// Samples are processed in batches of max_batch: the result must not depend on it.
START_TEST(fgsm_batching_invariant) {
    linear m;
    lin_random(&m, 12, 5, 3, 1.0);
    enum { N = 11 };
    float x[N * 12], xa1[2 * N * 12], xa2[2 * N * 12];
    uint8_t y[N];
    uint64_t s = 9;
    for (int k = 0; k < N * 12; k++) x[k] = (float)(0.5 + 0.5 * urand(&s));
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % 5);
    ds_fgsm_params fp;
    ds_fgsm_params_default(&fp);
    fp.eps[1] = 0.1f;
    fp.n_eps = 2;
    ds_attack_record r1[2 * N], r2[2 * N];
    memset(r1, 0, sizeof r1); // records are compared whole: padding too (valgrind)
    memset(r2, 0, sizeof r2);
    ds_classifier c1 = lin_classifier(&m, 1, 1.0f), c4 = lin_classifier(&m, 4, 1.0f);
    ck_assert_int_eq(ds_fgsm(&c1, &fp, x, y, N, 100, r1, xa1), DS_OK);
    ck_assert_int_eq(ds_fgsm(&c4, &fp, x, y, N, 100, r2, xa2), DS_OK);
    ck_assert_int_eq(memcmp(r1, r2, sizeof r1), 0);
    ck_assert_int_eq(memcmp(xa1, xa2, sizeof xa1), 0);
    for (int e = 0; e < 2; e++)
        for (int i = 0; i < N; i++) ck_assert_int_eq(r1[e * N + i].index, 100 + i);
}
END_TEST

// ---- PGD ----

// Two classes: z_1 - z_0 = d . x - gap with d = w_1 - w_0 = (1, -2, 0, 0.5). Over the eps ball
// (and the box) the loss of label 0 is largest at x + eps sign(d) (linf) or x + eps d/||d|| (l2).
static void pgd_model(linear *m, double gap) {
    static const double w0[4] = {0.5, 1.0, 0.25, -0.25}, d[4] = {1.0, -2.0, 0.0, 0.5};
    memset(m, 0, sizeof *m);
    m->D = 4;
    m->C = 2;
    for (int j = 0; j < 4; j++) {
        m->W[0][j] = w0[j];
        m->W[1][j] = w0[j] + d[j];
    }
    m->b[0] = gap;
}

static ds_pgd_params pgd_default(void) {
    ds_pgd_params p;
    ds_pgd_params_default(&p);
    return p;
}

// The linf optimum: every loss, space and precision moves along sign(d) to the corner, clipped to
// the box; the pixel with zero gradient stays (no random start) or keeps its random offset.
START_TEST(pgd_linf_optimum_linear) {
    linear m;
    pgd_model(&m, 6.0); // never fooled in the ball: z_1 - z_0 <= 1.25 - 6 at the corner
    ds_classifier c = lin_classifier(&m, 8, 2.0f);
    const float x[4] = {0.5f, 0.25f, 0.5f, 0.875f};
    const float corner[4] = {0.75f, 0.0f, 0.5f, 1.0f}; // 0.875 + 0.25 clipped to 1
    const uint8_t y[1] = {0};
    for (int v = 0; v < 12; v++) {
        ds_pgd_params p = pgd_default();
        p.eps[0] = 0.25f;
        p.random_start = 0;
        p.loss = v % 2 ? DS_LOSS_MARGIN : DS_LOSS_CE;
        p.space = (ds_space)(v / 2 % 3);
        p.num.precision = v / 6 ? DS_PRECISION_FLOAT64 : DS_PRECISION_FLOAT32;
        ds_attack_record r;
        float xa[4];
        ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 7, &r, xa), DS_OK);
        for (int j = 0; j < 4; j++) ck_assert_msg(xa[j] == corner[j], "variant %d pixel %d: %.9g", v, j, xa[j]);
        ck_assert_int_eq(r.index, 7);
        ck_assert_int_eq(r.target, -1);
        ck_assert_int_eq(r.clean_pred, 0);
        ck_assert_int_eq(r.adv_pred, 0);
        ck_assert_int_eq(r.success, 0);
        ck_assert_int_eq(r.iterations, 100); // not fooled: every step taken
        ck_assert_int_eq(r.zero_grad, 0);
        ck_assert_float_eq(r.linf, 0.25f);
        ck_assert_float_eq(r.l0, 3.0f);
    }
    // steps x step = eps reaches the corner exactly; one step less does not.
    ds_pgd_params p = pgd_default();
    p.eps[0] = 0.25f;
    p.random_start = 0;
    p.step = 0.125f;
    p.steps = 2;
    ds_attack_record r;
    float xa[4];
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
    for (int j = 0; j < 4; j++) ck_assert_float_eq(xa[j], corner[j]);
    p.steps = 1;
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
    const float half[4] = {0.625f, 0.125f, 0.5f, 1.0f};
    for (int j = 0; j < 4; j++) ck_assert_float_eq(xa[j], half[j]);
    ck_assert_int_eq(r.iterations, 1);
    // From a random start, steps x step >= 2 eps still reach the corner on every pixel that has
    // a gradient; the other keeps its start, inside the ball.
    p = pgd_default();
    p.eps[0] = 0.25f;
    p.seed = 3;
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
    for (int j = 0; j < 4; j++)
        if (j != 2) ck_assert_float_eq(xa[j], corner[j]);
    ck_assert(xa[2] != 0.5f && fabsf(xa[2] - 0.5f) <= 0.25f);
}
END_TEST

// The l2 optimum for an interior x: x + eps d/||d||, with a step larger than needed; the
// distortion never exceeds eps.
START_TEST(pgd_l2_optimum_linear) {
    linear m;
    pgd_model(&m, 6.0);
    ds_classifier c = lin_classifier(&m, 8, 1.0f);
    const float x[4] = {0.5f, 0.5f, 0.5f, 0.5f};
    const uint8_t y[1] = {0};
    const double d[4] = {1.0, -2.0, 0.0, 0.5}, nd = sqrt(5.25);
    for (int loss = 0; loss < 2; loss++) {
        ds_pgd_params p = pgd_default();
        p.norm = DS_NORM_L2;
        p.eps[0] = 0.5f;
        p.step = 0.05f;
        p.steps = 40;
        p.random_start = 0;
        p.loss = (ds_loss)loss;
        ds_attack_record r;
        float xa[4];
        ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
        for (int j = 0; j < 4; j++) ck_assert_double_eq_tol(xa[j], 0.5 + 0.5 * d[j] / nd, 1e-6);
        ck_assert_float_eq(xa[2], 0.5f);
        ck_assert(r.l2 <= 0.5f && r.l2 >= 0.5f - 1e-6f);
        ck_assert_int_eq(r.success, 0);
        ck_assert_int_eq(r.iterations, 40);
        // Fewer steps than the radius: steps x step along d/||d|| (no projection yet).
        p.steps = 4;
        ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
        for (int j = 0; j < 4; j++) ck_assert_double_eq_tol(xa[j], 0.5 + 0.2 * d[j] / nd, 1e-6);
    }
    // Near the box: one long step is put on the ball, then clipped (torchattacks' and ART's
    // order); clipping first would leave (0.97, 0.15, 0.5, 0.85).
    const float xe[4] = {0.9f, 0.5f, 0.5f, 0.5f};
    ds_pgd_params p = pgd_default();
    p.norm = DS_NORM_L2;
    p.eps[0] = 0.5f;
    p.step = 10.0f;
    p.steps = 1;
    p.random_start = 0;
    ds_attack_record r;
    float xa[4];
    ck_assert_int_eq(ds_pgd(&c, &p, xe, y, 1, 0, &r, xa), DS_OK);
    ck_assert_float_eq(xa[0], 1.0f);
    for (int j = 1; j < 4; j++) ck_assert_double_eq_tol(xa[j], 0.5 + 0.5 * d[j] / nd, 1e-6);
}
END_TEST

// A classifier with no gradient: class 1 iff x_0 > 0.7. PGD cannot move; only its random starts
// (x_0 = 0.5 +- 0.3, success with probability 1/6 each) find class 1.
static int step_forward(void *ctx, const float *x, int n, float *z) {
    int *forwards = ctx;
    ++*forwards;
    for (int i = 0; i < n; i++) {
        z[2 * i] = 0.0f;
        z[2 * i + 1] = x[3 * i] > 0.7f ? 1.0f : -1.0f;
    }
    return DS_OK;
}

static int step_grad(void *ctx, const float *dz, int n, float *dx) {
    (void)ctx;
    (void)dz;
    memset(dx, 0, sizeof(float) * 3 * n);
    return DS_OK;
}

START_TEST(pgd_restarts_keep_first_success) {
    enum { N = 32, STEPS = 5 };
    int forwards = 0;
    ds_classifier c = {.n_in = 3, .n_classes = 2, .max_batch = 6, .temperature = 1, .ctx = &forwards,
                       .forward = step_forward, .input_grad = step_grad};
    float x[N * 3], xa1[N * 3], xa8[N * 3], xb[N * 3];
    uint8_t y[N];
    for (int k = 0; k < N * 3; k++) x[k] = 0.5f;
    memset(y, 0, sizeof y);
    ds_pgd_params p = pgd_default();
    p.steps = STEPS;
    p.seed = 11;
    ds_attack_record r1[N], r8[N], rb[N];
    memset(r1, 0, sizeof r1);
    memset(r8, 0, sizeof r8);
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, N, 0, r1, xa1), DS_OK);
    p.restarts = 8;
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, N, 0, r8, xa8), DS_OK);
    int rescued = 0;
    for (int i = 0; i < N; i++) {
        const float *a1 = xa1 + 3 * i, *a8 = xa8 + 3 * i;
        for (int k = 0; k < 3; k++) ck_assert(fabsf(a8[k] - 0.5f) <= 0.3f);
        ck_assert_int_eq(r8[i].iterations % STEPS, 0); // failed restarts ran every step
        ck_assert_int_eq(r8[i].success, a8[0] > 0.7f);
        if (r1[i].success) { // restart 0 succeeded: the same record with more restarts
            ck_assert_int_eq(r1[i].iterations, 0);
            ck_assert_int_eq(r1[i].zero_grad, 0); // no gradient was taken
            ck_assert_int_eq(memcmp(&r1[i], &r8[i], sizeof r1[i]), 0);
            ck_assert_int_eq(memcmp(a1, a8, sizeof(float) * 3), 0);
            continue;
        }
        ck_assert_int_eq(r1[i].iterations, STEPS);
        ck_assert_int_eq(r1[i].zero_grad, 1);
        ck_assert_int_eq(r8[i].zero_grad, 1);
        if (!r8[i].success) {
            ck_assert_int_eq(r8[i].iterations, 8 * STEPS);
            continue;
        }
        // Rescued by restart k >= 1: k + 1 restarts give the same record, k restarts fail.
        int k = r8[i].iterations / STEPS;
        ck_assert_int_ge(k, 1);
        rescued++;
        p.restarts = k + 1;
        memset(rb, 0, sizeof rb);
        ck_assert_int_eq(ds_pgd(&c, &p, x + 3 * i, y + i, 1, i, rb, xb), DS_OK);
        ck_assert_int_eq(memcmp(&rb[0], &r8[i], sizeof rb[0]), 0);
        ck_assert_int_eq(memcmp(xb, a8, sizeof(float) * 3), 0);
        p.restarts = k;
        ck_assert_int_eq(ds_pgd(&c, &p, x + 3 * i, y + i, 1, i, rb, xb), DS_OK);
        ck_assert_int_eq(rb[0].success, 0);
        ck_assert_int_eq(rb[0].iterations, k * STEPS);
        p.restarts = 8;
    }
    ck_assert_int_ge(rescued, 3);
}
END_TEST

// Random starts depend on (seed, sample index, restart) only: one call of 8 samples, two calls
// of 4 with their first_index, and batches of 3 give the same records and images.
START_TEST(pgd_batching_invariant) {
    linear m;
    lin_random(&m, 12, 5, 3, 1.0);
    enum { N = 8, E = 2 };
    float x[N * 12], xa1[E * N * 12], xa2[E * N * 12], xa3[E * N * 12], half[E * 4 * 12];
    uint8_t y[N];
    uint64_t s = 9;
    for (int k = 0; k < N * 12; k++) x[k] = (float)(0.5 + 0.5 * urand(&s));
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % 5);
    for (int norm = 0; norm < 2; norm++) {
        ds_pgd_params p = pgd_default();
        p.norm = (ds_norm)norm;
        p.eps[0] = norm ? 0.3f : 0.05f;
        p.eps[1] = norm ? 1.5f : 0.3f;
        p.n_eps = E;
        p.step = norm ? 0.1f : 0.02f;
        p.steps = 10;
        p.restarts = 2;
        p.seed = 5;
        ds_attack_record r1[E * N], r2[E * N], r3[E * N], rh[E * 4];
        memset(r1, 0, sizeof r1);
        memset(r2, 0, sizeof r2);
        memset(r3, 0, sizeof r3);
        ds_classifier c8 = lin_classifier(&m, 8, 1.0f), c3 = lin_classifier(&m, 3, 1.0f);
        ck_assert_int_eq(ds_pgd(&c8, &p, x, y, N, 100, r1, xa1), DS_OK);
        ck_assert_int_eq(ds_pgd(&c3, &p, x, y, N, 100, r3, xa3), DS_OK);
        for (int h = 0; h < 2; h++) { // samples [4h, 4h + 4) as their own call
            memset(rh, 0, sizeof rh);
            ck_assert_int_eq(ds_pgd(&c8, &p, x + h * 4 * 12, y + h * 4, 4, 100 + 4 * h, rh, half), DS_OK);
            for (int e = 0; e < E; e++) {
                memcpy(&r2[e * N + 4 * h], &rh[e * 4], sizeof rh[0] * 4);
                memcpy(xa2 + (e * N + 4 * h) * 12, half + e * 4 * 12, sizeof(float) * 4 * 12);
            }
        }
        ck_assert_int_eq(memcmp(r1, r2, sizeof r1), 0);
        ck_assert_int_eq(memcmp(r1, r3, sizeof r1), 0);
        ck_assert_int_eq(memcmp(xa1, xa2, sizeof xa1), 0);
        ck_assert_int_eq(memcmp(xa1, xa3, sizeof xa1), 0);
        int stopped = 0, ran = 0;
        for (int a = 0; a < E * N; a++) {
            ck_assert_int_eq(r1[a].index, 100 + a % N);
            stopped += r1[a].success && r1[a].iterations < 20;
            ran += r1[a].iterations == 20;
        }
        ck_assert_msg(stopped > 0 && ran > 0, "norm %d: %d early stops, %d full runs", norm, stopped, ran);
        // Another seed, other starts.
        p.seed = 6;
        ck_assert_int_eq(ds_pgd(&c8, &p, x, y, N, 100, r2, xa2), DS_OK);
        ck_assert_int_ne(memcmp(xa1, xa2, sizeof xa1), 0);
    }
}
END_TEST

// Every x' lies in the eps ball around x and in [0, 1], measured in float32 as the records do.
START_TEST(pgd_stays_in_ball_and_box) {
    linear m;
    lin_random(&m, 16, 4, 21, 3.0);
    enum { N = 40, D = 16 };
    static float x[N * D], xa[4 * N * D];
    uint8_t y[N];
    uint64_t s = 4;
    for (int k = 0; k < N * D; k++) {
        double u = urand(&s);
        x[k] = u < -0.6 ? 0.0f : u > 0.6 ? 1.0f : (float)(0.5 + 0.8 * u); // edges of the box
    }
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % 4);
    ds_classifier c = lin_classifier(&m, 7, 1.0f);
    for (int norm = 0; norm < 2; norm++) {
        ds_pgd_params p = pgd_default();
        p.norm = (ds_norm)norm;
        const float eps[4] = {0.01f, 0.1f, 0.3f, norm ? 2.0f : 1.0f};
        memcpy(p.eps, eps, sizeof eps);
        p.n_eps = 4;
        p.step = norm ? 0.3f : 0.05f;
        p.steps = 20;
        p.restarts = 3;
        p.loss = norm ? DS_LOSS_MARGIN : DS_LOSS_CE;
        ds_attack_record r[4 * N];
        ck_assert_int_eq(ds_pgd(&c, &p, x, y, N, 0, r, xa), DS_OK);
        for (int e = 0; e < 4; e++)
            for (int i = 0; i < N; i++) {
                const float *a = xa + ((size_t)e * N + i) * D, *xi = x + (size_t)i * D;
                double l2 = 0.0;
                for (int k = 0; k < D; k++) {
                    ck_assert(a[k] >= 0.0f && a[k] <= 1.0f);
                    float d = a[k] - xi[k];
                    if (!norm) ck_assert_msg(fabsf(d) <= eps[e], "%.9g > %.9g", fabsf(d), eps[e]);
                    l2 += (double)d * d;
                }
                if (norm) ck_assert_msg(sqrt(l2) <= eps[e], "%.9g > %.9g", sqrt(l2), eps[e]);
                ck_assert(norm ? r[e * N + i].l2 <= eps[e] : r[e * N + i].linf <= eps[e]);
            }
    }
}
END_TEST

// Samples the model already misclassifies (true labels) are not attacked: x' = x; with labels
// predicted they are attacked away from their prediction.
START_TEST(pgd_misclassified_and_predicted_labels) {
    linear m;
    pgd_model(&m, -6.0); // class 1 everywhere in the ball
    ds_classifier c = lin_classifier(&m, 8, 1.0f);
    const float x[4] = {0.5f, 0.25f, 0.5f, 0.875f};
    const uint8_t y[1] = {0};
    ds_pgd_params p = pgd_default();
    ds_attack_record r;
    float xa[4];
    m.forwards = 0;
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
    ck_assert_int_eq(m.forwards, 1); // the clean forward only
    ck_assert_int_eq(memcmp(xa, x, sizeof x), 0);
    ck_assert_int_eq(r.success, 1);
    ck_assert_int_eq(r.iterations, 0);
    ck_assert_int_eq(r.clean_pred, 1);
    ck_assert_int_eq(r.adv_pred, 1);
    ck_assert_float_eq(r.l0, 0.0f);
    p.labels = DS_LABELS_PREDICTED; // pushes z_0 up: never reaches it (gap 6)
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
    ck_assert_int_eq(r.iterations, 100);
    ck_assert_int_eq(r.adv_pred, 1);
    ck_assert_int_eq(r.success, 1); // adv_pred != the true label, as every untargeted record
    const float away[4] = {0.25f, 0.5f, 0.5f, 0.625f}; // x - eps sign(d), clipped
    p.eps[0] = 0.25f;
    p.random_start = 0;
    ck_assert_int_eq(ds_pgd(&c, &p, x, y, 1, 0, &r, xa), DS_OK);
    for (int j = 0; j < 4; j++) ck_assert_float_eq(xa[j], away[j]);
}
END_TEST

// The margin's gradient with respect to z: float32 against finite differences in double, and
// float64 the same up to a power of two, also where float32 underflows.
static double margin_of(const double *z, int C, int y, double T) {
    double zt[8], p[8];
    for (int k = 0; k < C; k++) zt[k] = z[k] / T;
    softmax_d(zt, C, p);
    int j = -1;
    for (int k = 0; k < C; k++)
        if (k != y && (j < 0 || z[k] > z[j])) j = k;
    return p[j] - p[y];
}

START_TEST(pgd_margin_gradient) {
    const int C = 5, y = 2;
    const float T = 2.0f;
    const float z[5] = {0.3f, -1.2f, 0.9f, 1.4f, -0.1f};
    const ds_numerics f32 = {0}, f64 = {.precision = DS_PRECISION_FLOAT64};
    float dz[5], dz64[5];
    ds_space_margin_dz(DS_SPACE_LOGITS_T, &f32, z, C, y, T, dz);
    ds_space_margin_dz(DS_SPACE_LOGITS_T, &f64, z, C, y, T, dz64);
    double ratio = ldexp(1.0, (int)lround(log2(dz64[0] / dz[0]))); // float64's power of two
    for (int k = 0; k < C; k++) {
        double zp[5], zm[5], h = 1e-5;
        for (int j = 0; j < C; j++) zp[j] = zm[j] = z[j];
        zp[k] += h;
        zm[k] -= h;
        double fd = (margin_of(zp, C, y, T) - margin_of(zm, C, y, T)) / (2 * h);
        ck_assert_double_eq_tol(dz[k], fd, 1e-5);
        ck_assert_double_eq_tol(dz64[k] / ratio, fd, 1e-6);
    }
    // Logits: onehot(j) - onehot(y), j = 3.
    ds_space_margin_dz(DS_SPACE_LOGITS, &f32, z, C, y, T, dz);
    for (int k = 0; k < C; k++) ck_assert_float_eq(dz[k], k == 3 ? 1.0f : k == y ? -1.0f : 0.0f);
    // Saturated at T=1: float32 sees nothing, float64 the signs of the exact gradient.
    const float zs[5] = {0.0f, -1.0f, 300.0f, 1.0f, 0.5f};
    ds_space_margin_dz(DS_SPACE_SOFTMAX, &f32, zs, C, y, 1.0f, dz);
    for (int k = 0; k < C; k++) ck_assert_float_eq(dz[k], 0.0f);
    ds_space_margin_dz(DS_SPACE_SOFTMAX, &f64, zs, C, y, 1.0f, dz64);
    // p_y ~ 1: dz_j = p_j (1 - p_j + p_y) ~ 2 p_j, dz_k = p_k (p_y - p_j) ~ p_k, and
    // dz_y = -p_y (1 - p_y + p_j) ~ -(sum of the other p + p_j); p_k proportional to e^{z_k}.
    ck_assert(dz64[3] > 0 && dz64[y] < 0 && dz64[0] > 0 && dz64[1] > 0 && dz64[4] > 0);
    const double e = exp(1.0);
    ck_assert_double_eq_tol(dz64[0] / dz64[3], 1.0 / (2 * e), 1e-6);
    ck_assert_double_eq_tol(dz64[4] / dz64[3], exp(0.5) / (2 * e), 1e-6);
    ck_assert_double_eq_tol(dz64[y] / dz64[3], -(1 + 1 / e + 2 * e + exp(0.5)) / (2 * e), 1e-6);
}
END_TEST

// ---- JSMA ----

// The pair choice against brute force over random vectors, domains and lengths.
START_TEST(jsma_best_pair_matches_brute_force) {
    uint64_t s = 1234;
    float alpha[300], beta[300], tiny_a[300], tiny_b[300], scratch[5 * (300 + 8)];
    uint8_t dom[300];
    for (int trial = 0; trial < 500; trial++) {
        int m = 2 + trial % 97 + (trial % 3) * 100;
        int mode = trial % 5;
        for (int k = 0; k < m; k++) {
            alpha[k] = (float)urand(&s);
            // mode 1: beta ~ -alpha (softmax-like); mode 2: few valid pairs; mode 3: quantised
            // (ties); mode 4: as mode 0, passed scaled by 2^-90 and 2^-88
            beta[k] = mode == 1 ? -alpha[k] + 0.01f * (float)urand(&s) : (float)urand(&s);
            if (mode == 2) alpha[k] -= 0.9f;
            if (mode == 3) {
                alpha[k] = roundf(alpha[k] * 4.0f) / 4.0f;
                beta[k] = roundf(beta[k] * 4.0f) / 4.0f;
            }
            dom[k] = urand(&s) > -0.6;
        }
        int bp = -1, bq = -1;
        float best = 0.0f;
        for (int p = 0; p < m; p++)
            for (int q = p + 1; q < m; q++) {
                if (!dom[p] || !dom[q]) continue;
                float a = alpha[p] + alpha[q], b = beta[p] + beta[q];
                if (!(a > 0.0f && b < 0.0f)) continue;
                float sc = a * -b;
                if (sc > best) {
                    best = sc;
                    bp = p;
                    bq = q;
                }
            }
        int p = -1, q = -1;
        int found;
        if (mode == 4) {
            // Gradients around 1e-27 (exact power-of-two scaling): products would underflow in
            // float32, the choice must not change.
            for (int k = 0; k < m; k++) {
                tiny_a[k] = ldexpf(alpha[k], -90);
                tiny_b[k] = ldexpf(beta[k], -88);
            }
            found = ds_jsma_best_pair(tiny_a, tiny_b, dom, m, scratch, &p, &q);
        } else {
            found = ds_jsma_best_pair(alpha, beta, dom, m, scratch, &p, &q);
        }
        ck_assert_int_eq(found, bp >= 0);
        if (found) {
            ck_assert_msg(p == bp && q == bq, "trial %d m %d: got (%d,%d), brute force (%d,%d)", trial,
                          m, p, q, bp, bq);
        }
    }
}
END_TEST

// Jacobian of softmax outputs of a linear model, in double: J[i][j] = p_i sum_k (d_ik - p_k) W[k][j].
static void softmax_jacobian(const linear *m, const float *x, double J[8][64]) {
    double z[8], p[8];
    for (int k = 0; k < m->C; k++) {
        z[k] = m->b[k];
        for (int j = 0; j < m->D; j++) z[k] += m->W[k][j] * x[j];
    }
    softmax_d(z, m->C, p);
    for (int i = 0; i < m->C; i++)
        for (int j = 0; j < m->D; j++) {
            J[i][j] = 0;
            for (int k = 0; k < m->C; k++) J[i][j] += p[i] * ((i == k) - p[k]) * m->W[k][j];
        }
}

// On a 6-input, 3-class linear model, the first pair JSMA-F changes is the brute-force argmax of
// alpha * |beta| computed here in double from the closed-form Jacobian.
START_TEST(jsma_first_pair_brute_force) {
    linear m;
    lin_random(&m, 6, 3, 77, 2.0);
    const float x[6] = {0.0f, 0.2f, 0.4f, 0.1f, 0.0f, 0.3f};
    uint8_t y[1];
    float z[3];
    lin_forward(&m, x, 1, z);
    y[0] = (uint8_t)(z[0] >= z[1] && z[0] >= z[2] ? 0 : z[1] >= z[2] ? 1 : 2);
    ds_classifier c = lin_classifier(&m, 4, 1.0f);
    ds_jsma_params jp;
    ds_jsma_params_default(&jp);
    jp.max_iterations = 1;
    ds_attack_record r[2];
    float xa[2 * 6];
    ck_assert_int_eq(ds_jsma_count(&c, 1), 2);
    ck_assert_int_eq(ds_jsma(&c, &jp, x, y, 1, 0, r, xa), DS_OK);
    double J[8][64];
    softmax_jacobian(&m, x, J);
    int checked = 0;
    for (int a = 0; a < 2; a++) {
        int t = r[a].target;
        ck_assert(t != y[0] && t >= 0 && t < 3);
        ck_assert_int_eq(r[a].clean_pred, y[0]);
        int bp = -1, bq = -1;
        double best = 0;
        for (int p = 0; p < 6; p++)
            for (int q = p + 1; q < 6; q++) {
                double al = J[t][p] + J[t][q], be = 0;
                for (int k = 0; k < 3; k++)
                    if (k != t) be += J[k][p] + J[k][q];
                if (al > 0 && be < 0 && al * -be > best) {
                    best = al * -be;
                    bp = p;
                    bq = q;
                }
            }
        int changed[6], nc = 0;
        for (int j = 0; j < 6; j++)
            if (xa[a * 6 + j] != x[j]) changed[nc++] = j;
        if (bp < 0) {
            ck_assert_int_eq(nc, 0);
            ck_assert_int_eq(r[a].iterations, 0);
            continue;
        }
        ck_assert_int_eq(r[a].iterations, 1);
        ck_assert_int_eq(nc, 2);
        ck_assert_int_eq(changed[0], bp);
        ck_assert_int_eq(changed[1], bq);
        ck_assert_float_eq(xa[a * 6 + bp], 1.0f);
        ck_assert_float_eq(xa[a * 6 + bq], 1.0f);
        checked++;
    }
    ck_assert_int_gt(checked, 0);
}
END_TEST

// Budget and domain, observed through a classifier that logs every forward input: each iteration
// changes exactly two pixels, never one changed before, never one that started at 1, and never
// more than max_iterations iterations. The pixels at 1 have the largest gradients, so an
// implementation that searched them would pick them.
START_TEST(jsma_budget_and_domain) {
    enum { D = 40, C = 4 };
    linear m;
    lin_random(&m, D, C, 21, 0.3);
    float x[D];
    uint64_t s = 8;
    for (int j = 0; j < D; j++) x[j] = (float)(0.25 + 0.2 * urand(&s));
    for (int j = 0; j < 6; j++) {
        x[j] = 1.0f;
        for (int k = 0; k < C; k++) m.W[k][j] = (k == 1 ? 5.0 : -5.0);
    }
    float log[200 * D];
    m.log = log;
    m.log_cap = 200;
    ds_classifier c = lin_classifier(&m, 1, 1.0f);
    ds_jsma_params jp;
    ds_jsma_params_default(&jp);
    jp.max_iterations = 5;
    uint8_t y[1] = {0};
    ds_attack_record r[C - 1];
    float xa[(C - 1) * D];
    ck_assert_int_eq(ds_jsma(&c, &jp, x, y, 1, 0, r, xa), DS_OK);
    // With max_batch 1 the attempts run one after the other: split the log by attempt.
    int at = 0, total_iters = 0;
    for (int a = 0; a < C - 1; a++) {
        ck_assert_int_le(r[a].iterations, 5);
        ck_assert_float_eq(r[a].l0, 2.0f * r[a].iterations);
        ck_assert_int_eq(memcmp(log + (size_t)at * D, x, sizeof x), 0); // starts from x
        uint8_t changed[D] = {0};
        for (int it = 1; it <= r[a].iterations; it++) {
            const float *prev = log + (size_t)(at + it - 1) * D, *cur = log + (size_t)(at + it) * D;
            int nc = 0;
            for (int j = 0; j < D; j++)
                if (cur[j] != prev[j]) {
                    nc++;
                    ck_assert(!changed[j]);
                    ck_assert(x[j] < 1.0f);
                    ck_assert_float_eq(cur[j], 1.0f);
                    changed[j] = 1;
                }
            ck_assert_int_eq(nc, 2);
        }
        ck_assert_int_eq(memcmp(log + (size_t)(at + r[a].iterations) * D, xa + a * D, sizeof x), 0);
        at += r[a].iterations + 1;
        total_iters += r[a].iterations;
    }
    ck_assert_int_eq(m.log_n, at); // one forward per iteration, plus the first
    ck_assert_int_gt(total_iters, 0);
}
END_TEST

// A target that a few pixels reach is reached; the record says so consistently.
START_TEST(jsma_reaches_reachable_target) {
    enum { D = 30, C = 3 };
    linear m;
    memset(&m, 0, sizeof m);
    m.D = D;
    m.C = C;
    // Class 0 wins on a blank image by 1; each lit pixel j < 10 adds 0.35 to class 1 (10..19: to
    // class 2) and takes 0.1 from class 0; pixels 20..29 add 0.1 to class 0.
    m.b[0] = 1.0;
    for (int j = 0; j < 10; j++) m.W[1][j] = 0.35;
    for (int j = 10; j < 20; j++) m.W[2][j] = 0.35;
    for (int j = 0; j < 20; j++) m.W[0][j] = -0.1;
    for (int j = 20; j < D; j++) m.W[0][j] = 0.1;
    float x[D] = {0};
    uint8_t y[1] = {0};
    ds_classifier c = lin_classifier(&m, 2, 1.0f);
    const ds_space spaces[] = {DS_SPACE_SOFTMAX, DS_SPACE_LOGITS, DS_SPACE_LOGITS_T};
    for (int sp = 0; sp < 3; sp++) {
        ds_jsma_params jp;
        ds_jsma_params_default(&jp);
        jp.space = spaces[sp];
        jp.gamma = 0.5f; // 7 iterations
        ck_assert_int_eq(ds_jsma_budget(&jp, D), 7);
        ds_attack_record r[2];
        float xa[2 * D];
        ck_assert_int_eq(ds_jsma(&c, &jp, x, y, 1, 3, r, xa), DS_OK);
        for (int a = 0; a < 2; a++) {
            ck_assert_int_eq(r[a].target, a + 1);
            ck_assert_int_eq(r[a].index, 3);
            ck_assert_int_eq(r[a].success, 1);
            ck_assert_int_eq(r[a].adv_pred, a + 1);
            ck_assert_int_eq(r[a].iterations, 2); // two pixels: 0.7 < 0.8, four: 1.4 > 0.6
            ck_assert_float_eq(r[a].l0, 4.0f);
            for (int j = 0; j < D; j++)
                if (xa[a * D + j] != 0.0f) ck_assert(j >= 10 * (a + 1) - 10 && j < 10 * (a + 1));
        }
    }
}
END_TEST

// Saturated softmax: the Jacobian is exactly zero, no pair qualifies, nothing changes.
START_TEST(jsma_saturation) {
    linear m;
    lin_random(&m, 16, 3, 4, 100.0);
    float x[16], z[3];
    uint8_t y[1];
    uint64_t s = 3;
    for (int tries = 0;; tries++) { // a sample whose top two logits are > 110 apart
        ck_assert_int_lt(tries, 10000);
        for (int j = 0; j < 16; j++) x[j] = (float)(0.3 + 0.2 * urand(&s));
        lin_forward(&m, x, 1, z);
        int b = z[0] >= z[1] && z[0] >= z[2] ? 0 : z[1] >= z[2] ? 1 : 2;
        int ok = 1;
        for (int k = 0; k < 3; k++) ok &= k == b || z[b] - z[k] > 110.0f;
        y[0] = (uint8_t)b;
        if (ok) break;
    }
    ds_classifier c = lin_classifier(&m, 4, 100.0f);
    ds_jsma_params jp;
    ds_jsma_params_default(&jp);
    jp.max_iterations = 4;
    ds_attack_record r[2];
    ck_assert_int_eq(ds_jsma(&c, &jp, x, y, 1, 0, r, NULL), DS_OK);
    for (int a = 0; a < 2; a++) {
        ck_assert_int_eq(r[a].zero_grad, 1);
        ck_assert_int_eq(r[a].iterations, 0);
        ck_assert_int_eq(r[a].success, 0);
    }
    jp.space = DS_SPACE_LOGITS;
    ck_assert_int_eq(ds_jsma(&c, &jp, x, y, 1, 0, r, NULL), DS_OK);
    for (int a = 0; a < 2; a++) {
        ck_assert_int_eq(r[a].zero_grad, 0);
        ck_assert_int_gt(r[a].iterations, 0);
    }
}
END_TEST

// Batches of attempts, refilled as attempts finish, give the same records as one at a time.
START_TEST(jsma_batching_invariant) {
    enum { D = 24, C = 4, N = 5 };
    linear m;
    lin_random(&m, D, C, 99, 1.0);
    float x[N * D];
    uint8_t y[N];
    uint64_t s = 17;
    for (int k = 0; k < N * D; k++) x[k] = (float)fmax(0.0, urand(&s));
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % C);
    ds_jsma_params jp;
    ds_jsma_params_default(&jp);
    jp.gamma = 0.5f;
    ds_attack_record r1[N * (C - 1)], r2[N * (C - 1)];
    memset(r1, 0, sizeof r1); // records are compared whole: padding too (valgrind)
    memset(r2, 0, sizeof r2);
    float xa1[N * (C - 1) * D], xa2[N * (C - 1) * D];
    ds_classifier c1 = lin_classifier(&m, 1, 1.0f), c5 = lin_classifier(&m, 5, 1.0f);
    ck_assert_int_eq(ds_jsma(&c1, &jp, x, y, N, 0, r1, xa1), DS_OK);
    jp.threads = 2;
    ck_assert_int_eq(ds_jsma(&c5, &jp, x, y, N, 0, r2, xa2), DS_OK);
    ck_assert_int_eq(memcmp(r1, r2, sizeof r1), 0);
    ck_assert_int_eq(memcmp(xa1, xa2, sizeof xa1), 0);
    int succ = 0;
    for (int a = 0; a < N * (C - 1); a++) {
        ck_assert_int_eq(r1[a].index, a / (C - 1));
        ck_assert_int_ne(r1[a].target, r1[a].label);
        succ += r1[a].success;
    }
    ck_assert_int_gt(succ, 0);
}
END_TEST

// ---- C&W ----

// On a 2-class linear model the smallest L2 perturbation is along w1 - w0. C&W gets closer to it
// than FGSM at the smallest eps that misclassifies.
START_TEST(cw_beats_fgsm_l2) {
    enum { D = 20 };
    linear m;
    memset(&m, 0, sizeof m);
    m.D = D;
    m.C = 2;
    uint64_t s = 42;
    for (int j = 0; j < D; j++) m.W[1][j] = urand(&s) * (j < 5 ? 3.0 : 0.3);
    float x[D];
    for (int j = 0; j < D; j++) x[j] = (float)(0.5 + 0.3 * urand(&s));
    double z1 = 0;
    for (int j = 0; j < D; j++) z1 += m.W[1][j] * x[j];
    m.b[1] = -z1 - 0.5; // class 0 wins by 0.5
    uint8_t y[1] = {0};
    ds_classifier c = lin_classifier(&m, 4, 1.0f);
    // FGSM at the smallest eps of a fine grid that misclassifies.
    ds_fgsm_params fp;
    ds_fgsm_params_default(&fp);
    fp.n_eps = 16;
    for (int e = 0; e < 16; e++) fp.eps[e] = 0.005f * (e + 1);
    ds_attack_record rf[16];
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, 1, 0, rf, NULL), DS_OK);
    int first = -1;
    for (int e = 0; e < 16 && first < 0; e++)
        if (rf[e].success) first = e;
    ck_assert_int_ge(first, 0);
    ds_cw_params cp;
    ds_cw_params_default(&cp);
    cp.targets = DS_TARGETS_NONE;
    cp.max_iterations = 500;
    cp.steps = 6;
    cp.c0 = 0.1f;
    ds_attack_record rc;
    float xa[D];
    ck_assert_int_eq(ds_cw_count(&c, &cp, 1), 1);
    ck_assert_int_eq(ds_cw_l2(&c, &cp, x, y, 1, 0, &rc, xa), DS_OK);
    ck_assert_int_eq(rc.success, 1);
    ck_assert_int_eq(rc.adv_pred, 1);
    ck_assert_int_eq(rf[first].adv_pred, 1);
    ck_assert_int_eq(rc.target, -1);
    ck_assert_float_lt(rc.l2, rf[first].l2);
    // The optimum: margin 0.5 over |w1 - w0|.
    double nw = 0;
    for (int j = 0; j < D; j++) nw += m.W[1][j] * m.W[1][j];
    ck_assert_double_ge(rc.l2, 0.5 / sqrt(nw) * 0.999);
    ck_assert_double_le(rc.l2, 0.5 / sqrt(nw) * 1.5);
    for (int j = 0; j < D; j++) ck_assert(xa[j] >= 0.0f && xa[j] <= 1.0f);
    ds_attack_record chk;
    ds_attack_distortion(&chk, x, xa, D);
    ck_assert_float_eq(chk.l2, rc.l2);
}
END_TEST

// Targeted C&W on a 3-class model: every target reached, batching does not change results, and
// an attempt that cannot succeed records x' = x.
START_TEST(cw_targeted_and_batching) {
    enum { D = 16, C = 3, N = 3 };
    linear m;
    lin_random(&m, D, C, 5, 1.0);
    float x[N * D];
    uint8_t y[N];
    uint64_t s = 23;
    for (int k = 0; k < N * D; k++) x[k] = (float)(0.5 + 0.4 * urand(&s));
    float z[N * C];
    lin_forward(&m, x, N, z);
    for (int i = 0; i < N; i++) {
        int b = 0;
        for (int k = 1; k < C; k++)
            if (z[i * C + k] > z[i * C + b]) b = k;
        y[i] = (uint8_t)b;
    }
    ds_cw_params cp;
    ds_cw_params_default(&cp);
    cp.c0 = 1.0f;
    cp.max_iterations = 300;
    ds_attack_record r1[N * (C - 1)], r2[N * (C - 1)];
    memset(r1, 0, sizeof r1); // records are compared whole: padding too (valgrind)
    memset(r2, 0, sizeof r2);
    float xa1[N * (C - 1) * D], xa2[N * (C - 1) * D];
    ds_classifier c1 = lin_classifier(&m, 1, 1.0f), c4 = lin_classifier(&m, 4, 1.0f);
    ck_assert_int_eq(ds_cw_l2(&c1, &cp, x, y, N, 0, r1, xa1), DS_OK);
    ck_assert_int_eq(ds_cw_l2(&c4, &cp, x, y, N, 0, r2, xa2), DS_OK);
    ck_assert_int_eq(memcmp(r1, r2, sizeof r1), 0);
    ck_assert_int_eq(memcmp(xa1, xa2, sizeof xa1), 0);
    for (int a = 0; a < N * (C - 1); a++) {
        ck_assert_int_eq(r1[a].success, 1);
        ck_assert_int_eq(r1[a].adv_pred, r1[a].target);
        ck_assert_int_eq(r1[a].zero_grad, 0);
        ck_assert_int_le(r1[a].iterations, cp.steps * cp.max_iterations);
        float za[C];
        lin_forward(&m, xa1 + a * D, 1, za);
        int b = 0;
        for (int k = 1; k < C; k++)
            if (za[k] > za[b]) b = k;
        ck_assert_int_eq(b, r1[a].target); // the stored image is what was evaluated
    }
    // Unreachable: the target's logit is constant and far below. x' = x, success 0.
    linear u;
    memset(&u, 0, sizeof u);
    u.D = 4;
    u.C = 2;
    u.b[0] = 100.0;
    ds_classifier cu = lin_classifier(&u, 2, 1.0f);
    float xu[4] = {0.1f, 0.2f, 0.3f, 0.4f}, xau[4];
    uint8_t yu[1] = {0};
    cp.steps = 2;
    cp.max_iterations = 20;
    ds_attack_record ru;
    ck_assert_int_eq(ds_cw_l2(&cu, &cp, xu, yu, 1, 0, &ru, xau), DS_OK);
    ck_assert_int_eq(ru.success, 0);
    ck_assert_int_eq(ru.zero_grad, 1);
    ck_assert_int_eq(memcmp(xu, xau, sizeof xu), 0);
    ck_assert_float_eq(ru.l2, 0.0f);
}
END_TEST

// ---- Transfer ----

START_TEST(transfer_evaluates_on_target_model) {
    enum { D = 10, C = 3, N = 6 };
    linear a, b;
    lin_random(&a, D, C, 1, 1.0);
    lin_random(&b, D, C, 2, 1.0);
    float x[N * D];
    uint8_t y[N];
    uint64_t s = 4;
    for (int k = 0; k < N * D; k++) x[k] = (float)(0.5 + 0.5 * urand(&s));
    for (int i = 0; i < N; i++) y[i] = (uint8_t)(i % C);
    ds_classifier ca = lin_classifier(&a, 4, 1.0f), cb = lin_classifier(&b, 4, 1.0f);
    ds_jsma_params jp;
    ds_jsma_params_default(&jp);
    jp.gamma = 0.6f;
    ds_attack_record src[N * (C - 1)], out[N * (C - 1)];
    float xa[N * (C - 1) * D], xc[N * (C - 1) * D];
    ck_assert_int_eq(ds_jsma(&ca, &jp, x, y, N, 0, src, xa), DS_OK);
    for (int r = 0; r < N * (C - 1); r++) memcpy(xc + r * D, x + src[r].index * D, sizeof(float) * D);
    for (int untargeted = 0; untargeted < 2; untargeted++) {
        ck_assert_int_eq(ds_attack_transfer(&cb, xc, xa, src, N * (C - 1), untargeted, DS_DENORMALS_KEEP, out), DS_OK);
        for (int r = 0; r < N * (C - 1); r++) {
            float z[C];
            lin_forward(&b, xa + r * D, 1, z);
            int p = 0;
            for (int k = 1; k < C; k++)
                if (z[k] > z[p]) p = k;
            ck_assert_int_eq(out[r].adv_pred, p);
            ck_assert_int_eq(out[r].index, src[r].index);
            ck_assert_int_eq(out[r].target, src[r].target);
            ck_assert_float_eq(out[r].l2, src[r].l2);
            ck_assert_int_eq(out[r].success, untargeted ? p != src[r].label : p == src[r].target);
        }
    }
}
END_TEST

// ---- Rates ----

START_TEST(rates_definition) {
    ds_attack_record r[5];
    memset(r, 0, sizeof r);
    // label, clean_pred, success, zero_grad, l2
    const int t[5][4] = {{1, 1, 1, 0}, {1, 1, 0, 1}, {2, 0, 1, 0}, {3, 3, 1, 1}, {4, 4, 0, 0}};
    for (int i = 0; i < 5; i++) {
        r[i].label = t[i][0];
        r[i].clean_pred = t[i][1];
        r[i].success = (uint8_t)t[i][2];
        r[i].zero_grad = (uint8_t)t[i][3];
        r[i].l2 = (float)(i + 1);
        r[i].iterations = 2 * i;
    }
    ds_attack_rates a;
    ds_attack_rates_compute(r, 5, &a);
    ck_assert_int_eq(a.attempts, 5);
    ck_assert_int_eq(a.successes, 3);
    ck_assert_int_eq(a.correct, 4);
    ck_assert_int_eq(a.correct_successes, 2);
    ck_assert_double_eq_tol(a.success_rate, 0.6, 1e-12);
    ck_assert_double_eq_tol(a.success_rate_correct, 0.5, 1e-12);
    ck_assert_double_eq_tol(a.zero_grad_share, 0.4, 1e-12);
    ck_assert_double_eq_tol(a.mean_l2, (1 + 3 + 4) / 3.0, 1e-12);
    ck_assert_double_eq_tol(a.mean_iterations, 4.0, 1e-12);
    ds_attack_rates_compute(r, 0, &a);
    ck_assert_int_eq(a.attempts, 0);
    ck_assert_double_eq(a.success_rate, 0.0);
}
END_TEST

// ---- Parameter validation ----

static void expect_einval(int rc, const char *needle) {
    ck_assert_int_eq(rc, DS_EINVAL);
    ck_assert_msg(strstr(ds_errmsg(), needle) != NULL, "message '%s' lacks '%s'", ds_errmsg(), needle);
}

START_TEST(malformed_parameters) {
    ds_fgsm_params fp;
    ds_jsma_params jp;
    ds_cw_params cp;
    ds_fgsm_params_default(&fp);
    ck_assert_int_eq(ds_fgsm_params_check(&fp), DS_OK);
    fp.eps[0] = -0.1f;
    expect_einval(ds_fgsm_params_check(&fp), "eps -0.1 outside [0, 1]");
    fp.eps[0] = 1.5f;
    expect_einval(ds_fgsm_params_check(&fp), "eps 1.5");
    fp.eps[0] = NAN;
    expect_einval(ds_fgsm_params_check(&fp), "eps");
    ds_fgsm_params_default(&fp);
    fp.n_eps = 0;
    expect_einval(ds_fgsm_params_check(&fp), "eps values");
    ds_fgsm_params_default(&fp);
    fp.space = (ds_space)7;
    expect_einval(ds_fgsm_params_check(&fp), "space");
    ds_fgsm_params_default(&fp);
    fp.labels = (ds_label_mode)5;
    expect_einval(ds_fgsm_params_check(&fp), "label mode");

    ds_jsma_params_default(&jp);
    ck_assert_int_eq(ds_jsma_params_check(&jp), DS_OK);
    ck_assert_int_eq(ds_jsma_budget(&jp, 784), 56);
    jp.gamma = 0.0f;
    expect_einval(ds_jsma_params_check(&jp), "gamma 0 outside (0, 1]");
    jp.gamma = 1.01f;
    expect_einval(ds_jsma_params_check(&jp), "gamma");
    ds_jsma_params_default(&jp);
    jp.theta = 0.0f;
    expect_einval(ds_jsma_params_check(&jp), "theta 0");
    jp.theta = 2.0f;
    expect_einval(ds_jsma_params_check(&jp), "theta 2");
    jp.theta = -1.5f;
    expect_einval(ds_jsma_params_check(&jp), "theta");
    ds_jsma_params_default(&jp);
    jp.max_iterations = -1;
    expect_einval(ds_jsma_params_check(&jp), "iterations");
    ds_jsma_params_default(&jp);
    jp.space = (ds_space)-1;
    expect_einval(ds_jsma_params_check(&jp), "space");

    ds_cw_params_default(&cp);
    ck_assert_int_eq(ds_cw_params_check(&cp), DS_OK);
    cp.max_iterations = 0;
    expect_einval(ds_cw_params_check(&cp), "iterations 0 < 1");
    ds_cw_params_default(&cp);
    cp.steps = 0;
    expect_einval(ds_cw_params_check(&cp), "steps");
    ds_cw_params_default(&cp);
    cp.targets = (ds_target_mode)3;
    expect_einval(ds_cw_params_check(&cp), "target mode");
    ds_cw_params_default(&cp);
    cp.c0 = 0.0f;
    expect_einval(ds_cw_params_check(&cp), "initial c");
    ds_cw_params_default(&cp);
    cp.kappa = -1.0f;
    expect_einval(ds_cw_params_check(&cp), "kappa");

    ds_pgd_params gp;
    ds_pgd_params_default(&gp);
    ck_assert_int_eq(ds_pgd_params_check(&gp), DS_OK);
    gp.eps[0] = 0.0f;
    expect_einval(ds_pgd_params_check(&gp), "pgd: eps 0 outside (0, 1]");
    gp.eps[0] = 1.5f;
    expect_einval(ds_pgd_params_check(&gp), "eps 1.5");
    gp.norm = DS_NORM_L2; // any positive radius
    ck_assert_int_eq(ds_pgd_params_check(&gp), DS_OK);
    gp.eps[0] = INFINITY;
    expect_einval(ds_pgd_params_check(&gp), "(0, inf)");
    ds_pgd_params_default(&gp);
    gp.n_eps = DS_FGSM_MAX_EPS + 1;
    expect_einval(ds_pgd_params_check(&gp), "eps values");
    ds_pgd_params_default(&gp);
    gp.step = 0.0f;
    expect_einval(ds_pgd_params_check(&gp), "step 0 must be positive");
    ds_pgd_params_default(&gp);
    gp.steps = 0;
    expect_einval(ds_pgd_params_check(&gp), "steps 0 < 1");
    ds_pgd_params_default(&gp);
    gp.restarts = 0;
    expect_einval(ds_pgd_params_check(&gp), "restarts 0 < 1");
    gp.restarts = 2;
    gp.random_start = 0;
    expect_einval(ds_pgd_params_check(&gp), "without random_start");
    ds_pgd_params_default(&gp);
    gp.steps = 100000;
    gp.restarts = 100000;
    expect_einval(ds_pgd_params_check(&gp), "more than 1e9");
    ds_pgd_params_default(&gp);
    gp.norm = (ds_norm)2;
    expect_einval(ds_pgd_params_check(&gp), "unknown norm");
    ds_pgd_params_default(&gp);
    gp.loss = (ds_loss)2;
    expect_einval(ds_pgd_params_check(&gp), "unknown loss");
    ds_pgd_params_default(&gp);
    gp.space = (ds_space)3;
    expect_einval(ds_pgd_params_check(&gp), "space");
    ds_norm nm;
    ds_loss ls;
    expect_einval(ds_norm_parse("linf2", &nm), "unknown norm 'linf2' (expected one of: linf, l2)");
    expect_einval(ds_loss_parse("hinge", &ls), "unknown loss 'hinge' (expected one of: ce, margin)");

    ds_space sp;
    ds_label_mode lm;
    ds_target_mode tm;
    expect_einval(ds_space_parse("probabilities", &sp), "unknown space 'probabilities'");
    expect_einval(ds_label_mode_parse("guess", &lm), "unknown label mode 'guess'");
    expect_einval(ds_target_mode_parse("some", &tm), "unknown target mode 'some'");
    ck_assert_int_eq(ds_space_parse("logits_T", &sp), DS_OK);
    ck_assert_int_eq(sp, DS_SPACE_LOGITS_T);
    ck_assert_int_eq(ds_label_mode_parse("predicted", &lm), DS_OK);
    ck_assert_int_eq(lm, DS_LABELS_PREDICTED);

    // The attacks check too, before touching anything; labels must be classes of the model.
    linear m;
    lin_random(&m, 6, 3, 1, 1.0);
    ds_classifier c = lin_classifier(&m, 2, 1.0f);
    float x[6] = {0};
    uint8_t y[1] = {3};
    ds_attack_record r[2];
    ds_fgsm_params_default(&fp);
    expect_einval(ds_fgsm(&c, &fp, x, y, 1, 0, r, NULL), "label 3");
    y[0] = 0;
    fp.eps[0] = 2.0f;
    expect_einval(ds_fgsm(&c, &fp, x, y, 1, 0, r, NULL), "eps 2");
    ds_jsma_params_default(&jp); // floor(6 * 0.145 / 2) = 0 iterations
    expect_einval(ds_jsma(&c, &jp, x, y, 1, 0, r, NULL), "allows no iteration");
    ds_cw_params_default(&cp);
    cp.lr = -1.0f;
    expect_einval(ds_cw_l2(&c, &cp, x, y, 1, 0, r, NULL), "learning rate");
    expect_einval(ds_fgsm(&c, &fp, x, y, -1, 0, r, NULL), "fgsm");
    ds_pgd_params_default(&gp);
    gp.steps = 0;
    expect_einval(ds_pgd(&c, &gp, x, y, 1, 0, r, NULL), "pgd: steps");
    y[0] = 3;
    ds_pgd_params_default(&gp);
    expect_einval(ds_pgd(&c, &gp, x, y, 1, 0, r, NULL), "pgd: label 3");
    ck_assert_int_eq(m.forwards, 0);
}
END_TEST

// ---- HDF5 round trip ----

START_TEST(results_round_trip) {
    char dir[512], path[600];
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/attack.h5", dir);
    enum { N = 37, D = 784 };
    ds_attack_record rec[N];
    float *img = malloc(sizeof(float) * N * D);
    uint64_t s = 3;
    for (int i = 0; i < N; i++) {
        ds_attack_record r = {.index = 1000 + i, .label = i % 10, .target = i % 3 ? i % 10 : -1,
                              .clean_pred = (i * 7) % 10, .adv_pred = (i * 3) % 10,
                              .success = (uint8_t)(i & 1), .zero_grad = (uint8_t)(i % 5 == 0),
                              .iterations = i * 11, .l0 = (float)i, .l2 = (float)urand(&s),
                              .linf = 1.0f / (i + 1)};
        rec[i] = r;
    }
    for (int k = 0; k < N * D; k++) img[k] = (float)fmax(0.0, urand(&s));
    ds_attack_set sets[2];
    memset(sets, 0, sizeof sets);
    snprintf(sets[0].group, sizeof sets[0].group, "fgsm/eps=0.3");
    snprintf(sets[0].attack, sizeof sets[0].attack, "fgsm");
    snprintf(sets[0].params, sizeof sets[0].params, "eps=0.3 space=softmax labels=true");
    snprintf(sets[0].model, sizeof sets[0].model, "models/baseline.h5:baseline");
    sets[0].first = 1000;
    sets[0].count = N;
    sets[0].n_records = N;
    sets[0].records = rec;
    sets[0].n_in = D;
    sets[0].images = img;
    sets[1] = sets[0];
    snprintf(sets[1].group, sizeof sets[1].group, "fgsm/eps=0.1");
    sets[1].images = NULL;
    sets[1].n_records = 5;
    ds_provenance prov = {.job_text = "", .code_version = "test", .seed = 9, .task = "t1"};
    ck_assert_int_eq(ds_attack_results_save(path, sets, 2, &prov), DS_OK);
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    ck_assert_int_ne(access(tmp, F_OK), 0);

    ds_attack_set in;
    ck_assert_int_eq(ds_attack_results_load(path, "fgsm/eps=0.3", &in), DS_OK);
    ck_assert_str_eq(in.attack, "fgsm");
    ck_assert_str_eq(in.params, "eps=0.3 space=softmax labels=true");
    ck_assert_str_eq(in.model, "models/baseline.h5:baseline");
    ck_assert_int_eq(in.first, 1000);
    ck_assert_int_eq(in.count, N);
    ck_assert_int_eq(in.n_records, N);
    ck_assert_int_eq(in.n_in, D);
    for (int i = 0; i < N; i++) {
        const ds_attack_record *a = &rec[i], *b = &in.records[i];
        ck_assert(a->index == b->index && a->label == b->label && a->target == b->target &&
                  a->clean_pred == b->clean_pred && a->adv_pred == b->adv_pred &&
                  a->success == b->success && a->zero_grad == b->zero_grad &&
                  a->iterations == b->iterations);
        ck_assert(memcmp(&a->l0, &b->l0, 3 * sizeof(float)) == 0);
    }
    ck_assert_int_eq(memcmp(in.images, img, sizeof(float) * N * D), 0);
    ds_attack_set_free(&in);
    // No group given: the first set by name ("fgsm/eps=0.1" < "fgsm/eps=0.3"), without images.
    ck_assert_int_eq(ds_attack_results_load(path, NULL, &in), DS_OK);
    ck_assert_str_eq(in.group, "fgsm/eps=0.1");
    ck_assert_int_eq(in.n_records, 5);
    ck_assert_ptr_null(in.images);
    ck_assert_int_eq(in.records[4].iterations, 44);
    ds_attack_set_free(&in);
    // A root set.
    snprintf(sets[1].group, sizeof sets[1].group, "/");
    ck_assert_int_eq(ds_attack_results_save(path, &sets[1], 1, NULL), DS_OK);
    ck_assert_int_eq(ds_attack_results_load(path, "", &in), DS_OK);
    ck_assert_int_eq(in.n_records, 5);
    ds_attack_set_free(&in);
    // Errors: missing group, missing file.
    ck_assert_int_eq(ds_attack_results_load(path, "nope", &in), DS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "nope"));
    char missing[700];
    snprintf(missing, sizeof missing, "%s/missing.h5", dir);
    ck_assert_int_eq(ds_attack_results_load(missing, NULL, &in), DS_EIO);
    remove(path);
    rmdir(dir);
    free(img);
}
END_TEST

// ---- The CNN behind ds_classifier ----

// ds_classifier_from_model: input gradients agree with central differences of the logits along a
// random direction, repeat identically after one forward (JSMA takes ten), refuse a batch size
// that differs from the forward's; the attacks run on it.
START_TEST(cnn_classifier) {
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 5), DS_OK);
    m.temperature = 20.0f;
    ds_classifier c;
    ck_assert_int_eq(ds_classifier_from_model(&c, &m, 4, 2), DS_OK);
    ck_assert_int_eq(c.n_in, 784);
    ck_assert_int_eq(c.n_classes, 10);
    ck_assert_float_eq(c.temperature, 20.0f);
    enum { N = 3, D = 784 };
    static float x[N * D], xp[N * D], xm[N * D], v[N * D], dx[N * D], dx2[N * D];
    float z[N * 10], zp[N * 10], zm[N * 10], dz[N * 10];
    uint64_t s = 77;
    for (int k = 0; k < N * D; k++) {
        x[k] = (float)(0.5 + 0.4 * urand(&s));
        v[k] = (float)urand(&s);
    }
    for (int k = 0; k < N * 10; k++) dz[k] = (float)urand(&s);
    const float h = 1e-3f;
    for (int k = 0; k < N * D; k++) {
        xp[k] = x[k] + h * v[k];
        xm[k] = x[k] - h * v[k];
    }
    ck_assert_int_eq(c.forward(c.ctx, xp, N, zp), DS_OK);
    ck_assert_int_eq(c.forward(c.ctx, xm, N, zm), DS_OK);
    ck_assert_int_eq(c.forward(c.ctx, x, N, z), DS_OK);
    ck_assert_int_eq(c.input_grad(c.ctx, dz, N, dx), DS_OK);
    ck_assert_int_eq(c.input_grad(c.ctx, dz, N, dx2), DS_OK);
    ck_assert_int_eq(memcmp(dx, dx2, sizeof dx), 0);
    for (int i = 0; i < N; i++) {
        double fd = 0, an = 0, scale = 0;
        for (int k = 0; k < 10; k++) fd += dz[i * 10 + k] * ((double)zp[i * 10 + k] - zm[i * 10 + k]) / (2 * h);
        for (int k = 0; k < D; k++) {
            an += (double)dx[i * D + k] * v[i * D + k];
            scale += fabs((double)dx[i * D + k] * v[i * D + k]);
        }
        ck_assert_msg(fabs(fd - an) <= 0.02 * scale + 1e-4, "sample %d: finite difference %g, J^T v %g", i,
                      fd, an);
    }
    ck_assert_int_eq(c.input_grad(c.ctx, dz, N - 1, dx), DS_EINVAL);
    ck_assert_int_eq(c.forward(c.ctx, x, 5, z), DS_EINVAL);

    uint8_t y[1] = {3};
    ds_attack_record r[9];
    ds_fgsm_params fp;
    ds_fgsm_params_default(&fp);
    ck_assert_int_eq(ds_fgsm(&c, &fp, x, y, 1, 0, r, NULL), DS_OK);
    ck_assert_int_eq(r[0].zero_grad, 0);
    ck_assert(r[0].l0 > 0);
    ds_jsma_params jp;
    ds_jsma_params_default(&jp);
    jp.max_iterations = 2;
    ck_assert_int_eq(ds_jsma(&c, &jp, x, y, 1, 0, r, NULL), DS_OK);
    for (int a = 0; a < 9; a++) {
        ck_assert_int_le(r[a].iterations, 2);
        ck_assert(r[a].success || r[a].l0 > 0); // x > 0 everywhere: some pair qualifies
    }
    ds_cw_params cp;
    ds_cw_params_default(&cp);
    cp.targets = DS_TARGETS_NONE;
    cp.steps = 1;
    cp.max_iterations = 3;
    ck_assert_int_eq(ds_cw_l2(&c, &cp, x, y, 1, 0, r, NULL), DS_OK);
    ck_assert_int_eq(r[0].zero_grad, 0);
    ds_classifier_free(&c);
    ck_assert_ptr_null(c.ctx);
    ds_model_free(&m);
}
END_TEST

static void dsa_softmax_for_test(float *p, const float *z) {
    float m = z[0], sum = 0.0f;
    for (int j = 1; j < 10; j++) m = z[j] > m ? z[j] : m;
    for (int j = 0; j < 10; j++) sum += (p[j] = expf(z[j] - m));
    for (int j = 0; j < 10; j++) p[j] /= sum;
}

// A confident but not saturated model: p_y rounds to 1.0f while the other p_j are ~1e-11. The
// loss gradient must keep its -dz_y term (p_y - 1 computed as a difference would be 0), and the
// softmax Jacobian its diagonal; only when every other p_j underflows is the gradient zero.
START_TEST(space_gradients_survive_rounding_of_p_y) {
    const ds_numerics stable = {0}, framework = {.gradient = DS_GRADIENT_FRAMEWORK};
    float z[10] = {0}, dz[10], p[10], row[10];
    z[1] = 25.0f; // e^-25 = 1.39e-11 per other class
    ds_space_loss_dz(DS_SPACE_SOFTMAX, &stable, z, 10, 1, 1.0f, dz);
    double other = exp(-25.0) / (1.0 + 9.0 * exp(-25.0));
    for (int j = 0; j < 10; j++)
        if (j != 1) ck_assert_double_eq_tol(dz[j], other, 1e-3 * other);
    ck_assert_double_eq_tol(dz[1], -9.0 * other, 1e-3 * 9.0 * other);
    ds_space_loss_dz(DS_SPACE_LOGITS_T, &stable, z, 10, 1, 1.0f, dz); // T = 1: same as softmax
    ck_assert_double_eq_tol(dz[1], -9.0 * other, 1e-3 * 9.0 * other);
    dsa_softmax_for_test(p, z);
    ck_assert_float_eq(p[1], 1.0f); // the rounding this test is about
    ds_space_output_dz(DS_SPACE_SOFTMAX, DS_GRADIENT_STABLE, p, 10, 1, 1.0f, row);
    ck_assert_double_eq_tol(row[1], 9.0 * other, 1e-3 * 9.0 * other);
    ck_assert_double_eq_tol(row[0], -other, 1e-3 * other);
    // The frameworks' formulas lose exactly those terms: p_y - 1 = 0 and p_y (1 - p_y) = 0.
    ds_space_loss_dz(DS_SPACE_SOFTMAX, &framework, z, 10, 1, 1.0f, dz);
    ck_assert_float_eq(dz[1], 0.0f);
    ck_assert_double_eq_tol(dz[0], other, 1e-3 * other);
    ds_space_output_dz(DS_SPACE_SOFTMAX, DS_GRADIENT_FRAMEWORK, p, 10, 1, 1.0f, row);
    ck_assert_float_eq(row[1], 0.0f);
    ck_assert_double_eq_tol(row[0], -other, 1e-3 * other);
    z[1] = 200.0f; // e^-200 underflows: saturated, exactly zero
    ds_space_loss_dz(DS_SPACE_SOFTMAX, &stable, z, 10, 1, 1.0f, dz);
    for (int j = 0; j < 10; j++) ck_assert_float_eq(dz[j], 0.0f);
}
END_TEST

// float64: the same gradient in double, times a power of two that puts its largest magnitude in
// [0.5, 1). It survives where float32 underflows (margin 200) and even where double would
// (margin 2000: the log domain), with the ratios of the exact values.
START_TEST(space_gradients_float64) {
    const ds_numerics f64 = {.precision = DS_PRECISION_FLOAT64};
    const ds_numerics f64fw = {.precision = DS_PRECISION_FLOAT64, .gradient = DS_GRADIENT_FRAMEWORK};
    const float margins[] = {3.0f, 25.0f, 200.0f, 2000.0f};
    for (int m = 0; m < 4; m++) {
        float z[10] = {0}, dz[10];
        z[1] = margins[m];
        z[4] = 0.5f; // one class a little closer than the others
        ds_space_loss_dz(DS_SPACE_SOFTMAX, &f64, z, 10, 1, 1.0f, dz);
        double mx = 0;
        for (int j = 0; j < 10; j++) mx = fmax(mx, fabs(dz[j]));
        ck_assert_msg(mx >= 0.5 && mx < 1.0, "margin %g: largest |dz| %g", margins[m], mx);
        int e;
        ck_assert_double_eq(frexp(-dz[1] * 1.0, &e), -dz[1] * ldexp(1.0, -e)); // finite
        // dz_j / dz_y = -p_j / (1 - p_y) = -e^{z_j} / sum_{k != y} e^{z_k}
        double rest = 8.0 + exp(0.5);
        ck_assert_double_eq_tol(dz[0] / dz[1], -1.0 / rest, 1e-6);
        ck_assert_double_eq_tol(dz[4] / dz[1], -exp(0.5) / rest, 1e-6);
        // Framework formula in double: 1 - p_y is exact enough at margin 3, 0 from margin 25 on
        // only where double rounds p_y to 1 (e^-25 * 9.6 > 2^-53: still there) and at 200.
        ds_space_loss_dz(DS_SPACE_SOFTMAX, &f64fw, z, 10, 1, 1.0f, dz);
        if (margins[m] >= 200.0f) ck_assert_float_eq(dz[1], 0.0f);
        else ck_assert_double_eq_tol(dz[0] / dz[1], -1.0 / rest, 1e-6);
    }
    // logits_T at T = 10: proportional to the softmax of z/10 (the 1/T is in the scale).
    float z[10] = {0}, a[10], b[10], zt[10];
    z[1] = 60.0f;
    for (int j = 0; j < 10; j++) zt[j] = z[j] / 10.0f;
    ds_space_loss_dz(DS_SPACE_LOGITS_T, &f64, z, 10, 1, 10.0f, a);
    ds_space_loss_dz(DS_SPACE_SOFTMAX, &f64, zt, 10, 1, 1.0f, b);
    for (int j = 0; j < 10; j++) ck_assert_double_eq_tol(a[j] / a[1], b[j] / b[1], 1e-6);
}
END_TEST

// The JSMA Jacobian: float64 equals float32 where nothing underflows, up to one power of two for
// the target's row and one for the others; where float32 underflows it is still there.
START_TEST(space_jacobian_float64) {
    const ds_numerics f32 = {0}, f64 = {.precision = DS_PRECISION_FLOAT64};
    float z[10], J32[100], J64[100];
    uint64_t s = 5;
    for (int j = 0; j < 10; j++) z[j] = (float)(2.0 * urand(&s));
    const int target = 3;
    ds_space_jacobian_dz(DS_SPACE_SOFTMAX, &f32, z, 10, 1.0f, target, J32);
    ds_space_jacobian_dz(DS_SPACE_SOFTMAX, &f64, z, 10, 1.0f, target, J64);
    double rt = J64[target * 10] / J32[target * 10], ro = J64[0] / J32[0];
    int e;
    ck_assert_double_eq_tol(frexp(rt, &e), 0.5, 1e-5); // powers of two (and rounding)
    ck_assert_double_eq_tol(frexp(ro, &e), 0.5, 1e-5);
    for (int k = 0; k < 100; k++) {
        double r = k / 10 == target ? rt : ro;
        ck_assert_double_eq_tol(J64[k], r * J32[k], 1e-5 * fabs(r * J32[k]) + 1e-12);
    }
    // Saturated (margin 300): float32 gives exact zeros, float64 the target row and the others.
    for (int j = 0; j < 10; j++) z[j] = 0.0f;
    z[7] = 300.0f;
    ds_space_jacobian_dz(DS_SPACE_SOFTMAX, &f32, z, 10, 1.0f, target, J32);
    ds_space_jacobian_dz(DS_SPACE_SOFTMAX, &f64, z, 10, 1.0f, target, J64);
    for (int k = 0; k < 100; k++) ck_assert_float_eq(J32[k], 0.0f);
    ck_assert(J64[target * 10 + target] > 0.0f);  // dF_t/dz_t = p_t (1 - p_t) > 0
    ck_assert(J64[target * 10 + 7] < 0.0f);       // dF_t/dz_7 = -p_t p_7
    ck_assert(J64[7 * 10 + 7] > 0.0f);
    // logits space: the identity, whatever the precision
    ds_space_jacobian_dz(DS_SPACE_LOGITS, &f64, z, 10, 1.0f, target, J64);
    for (int k = 0; k < 100; k++) ck_assert_float_eq(J64[k], k / 10 == k % 10 ? 1.0f : 0.0f);
}
END_TEST

// The settings string names the rounding settings, once, for every kind.
START_TEST(settings_strings) {
    char b[256];
    ds_craft c;
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_FGSM), DS_OK);
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32");
    c.fgsm.space = DS_SPACE_LOGITS;
    c.fgsm.num.denormals = DS_DENORMALS_FLUSH;
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.3 space=logits labels=true denormals=flush");
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_JSMA), DS_OK);
    c.jsma.num.precision = DS_PRECISION_FLOAT64;
    c.jsma.num.gradient = DS_GRADIENT_FRAMEWORK;
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=framework precision=float64");
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_CW_L2), DS_OK);
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "targets=all steps=6 iterations=200 c0=0.01 lr=0.1 kappa=0 abort_early=1 denormals=keep");
    // An eps list: FGSM's one-eps string above is unchanged by it.
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_FGSM), DS_OK);
    c.fgsm.eps[1] = 0.05f;
    c.fgsm.eps[2] = 0.5f;
    c.fgsm.n_eps = 3;
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.3,0.05,0.5 space=softmax labels=true denormals=keep gradient=stable precision=float32");
    ck_assert_int_eq(ds_craft_count(NULL, &c, 10), 30);
    // PGD: MadryLab/mnist_challenge's defaults; lists, other settings, T.
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_PGD), DS_OK);
    ck_assert_int_eq(ds_craft_check(&c), DS_OK);
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.3 norm=linf step=0.01 steps=100 random_start=true restarts=1 loss=ce "
                        "space=softmax labels=true denormals=keep gradient=stable precision=float32");
    ck_assert_ptr_eq(ds_craft_numerics(&c), &c.pgd.num);
    const float eps[6] = {0.05f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
    memcpy(c.pgd.eps, eps, sizeof eps);
    c.pgd.n_eps = 6;
    c.pgd.norm = DS_NORM_L2;
    c.pgd.step = 0.1f;
    c.pgd.steps = 40;
    c.pgd.restarts = 10;
    c.pgd.loss = DS_LOSS_MARGIN;
    c.pgd.space = DS_SPACE_LOGITS_T;
    c.pgd.labels = DS_LABELS_PREDICTED;
    c.pgd.temperature = 100.0f;
    c.pgd.num.denormals = DS_DENORMALS_FLUSH;
    c.pgd.seed = 12345; // not a setting of the string: the caller's
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.05,0.1,0.2,0.3,0.4,0.5 norm=l2 step=0.1 steps=40 random_start=true "
                        "restarts=10 loss=margin space=logits_T labels=predicted T=100 denormals=flush "
                        "gradient=stable precision=float32");
    ck_assert_int_eq(ds_craft_count(NULL, &c, 10), 60);
    ck_assert_int_eq(ds_craft_denormals(&c), DS_DENORMALS_FLUSH);
    ds_craft_default(&c, DS_KIND_PGD);
    c.pgd.space = DS_SPACE_LOGITS;
    c.pgd.random_start = 0;
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.3 norm=linf step=0.01 steps=100 random_start=false restarts=1 loss=ce "
                        "space=logits labels=true denormals=keep");
    // Names of the norms and losses round-trip.
    for (int k = 0; k < 2; k++) {
        ds_norm nm;
        ds_loss ls;
        ck_assert_int_eq(ds_norm_parse(ds_norm_name((ds_norm)k), &nm), DS_OK);
        ck_assert_int_eq(nm, k);
        ck_assert_int_eq(ds_loss_parse(ds_loss_name((ds_loss)k), &ls), DS_OK);
        ck_assert_int_eq(ls, k);
    }
    ck_assert_str_eq(ds_norm_name(DS_NORM_L2), "l2");
    ck_assert_str_eq(ds_loss_name(DS_LOSS_MARGIN), "margin");
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_TRANSFER), DS_EINVAL);
    char small[12];
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_FGSM), DS_OK);
    ds_craft_string(&c, 784, small, sizeof small); // truncated, never overrun
    ck_assert_str_eq(small, "eps=0.3 spa");
    ds_denormals d;
    ck_assert_int_eq(ds_denormals_parse("sometimes", &d), DS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "keep, flush"));
    ds_precision pr;
    ck_assert_int_eq(ds_precision_parse("float64", &pr), DS_OK);
    ck_assert_int_eq(pr, DS_PRECISION_FLOAT64);
}
END_TEST

// A CNN whose true-class margin puts the other probabilities in float32's denormal range
// (margin 90: p_j = e^-90 = 8e-40): with denormals kept (the default) its input gradient is not
// zero, in the attack's thread and in every engine thread; flushed (FTZ/DAZ) it is exactly zero.
// At margin 300 float32 underflows either way, and only precision = float64 sees the gradient.
static void set_margin(ds_model *m, const ds_classifier *c, const float *x, int y, float margin) {
    float z[10];
    ck_assert_int_eq(c->forward(c->ctx, x, 1, z), DS_OK);
    float best = -INFINITY;
    for (int j = 0; j < 10; j++)
        if (j != y && z[j] > best) best = z[j];
    m->p.b[DS_FC3][y] += best + margin - z[y];
    ck_assert_int_eq(c->forward(c->ctx, x, 1, z), DS_OK);
    for (int j = 0; j < 10; j++)
        if (j != y) ck_assert(z[y] - z[j] >= margin - 0.01f);
}

static int fgsm_zero_grad(const ds_classifier *c, const float *x, uint8_t y, ds_numerics num) {
    ds_fgsm_params fp;
    ds_fgsm_params_default(&fp);
    fp.num = num;
    ds_attack_record r;
    ck_assert_int_eq(ds_fgsm(c, &fp, x, &y, 1, 0, &r, NULL), DS_OK);
    return r.zero_grad;
}

START_TEST(cnn_denormal_gradients) {
    static float x[784];
    uint64_t s = 9;
    for (int k = 0; k < 784; k++) x[k] = (float)(0.5 + 0.5 * urand(&s));
    const uint8_t y = 3;
    const ds_numerics keep = {0}, flush = {.denormals = DS_DENORMALS_FLUSH},
                      f64 = {.precision = DS_PRECISION_FLOAT64};
    for (int threads = 1; threads <= 2; threads++) {
        ds_model m;
        ck_assert_int_eq(ds_model_init(&m, 5), DS_OK);
        ds_classifier c;
        ck_assert_int_eq(ds_classifier_from_model(&c, &m, 4, threads), DS_OK);
        ds_fpmode before = ds_fpmode_set(1); // a caller that flushes: the setting must win
        set_margin(&m, &c, x, y, 90.0f);
        ck_assert_int_eq(fgsm_zero_grad(&c, x, y, keep), 0);
        ck_assert_int_eq(fgsm_zero_grad(&c, x, y, flush), 1);
        ck_assert_int_eq(fgsm_zero_grad(&c, x, y, f64), 0);
        ck_assert_int_eq(ds_fpmode_flushes(), 1); // the caller's mode is restored
        ds_fpmode_set(0);
        ck_assert_int_eq(fgsm_zero_grad(&c, x, y, flush), 1);
        ck_assert_int_eq(fgsm_zero_grad(&c, x, y, keep), 0);
        ck_assert_int_eq(ds_fpmode_flushes(), 0);
        set_margin(&m, &c, x, y, 300.0f);
        ck_assert_int_eq(fgsm_zero_grad(&c, x, y, keep), 1);
        ck_assert_int_eq(fgsm_zero_grad(&c, x, y, f64), 0);
        // JSMA-F at margin 300: float32 sees no gradient, float64 does.
        ds_jsma_params jp;
        ds_jsma_params_default(&jp);
        jp.max_iterations = 1;
        ds_attack_record r[9];
        ck_assert_int_eq(ds_jsma(&c, &jp, x, &y, 1, 0, r, NULL), DS_OK);
        for (int a = 0; a < 9; a++) ck_assert_int_eq(r[a].zero_grad, 1);
        jp.num.precision = DS_PRECISION_FLOAT64;
        ck_assert_int_eq(ds_jsma(&c, &jp, x, &y, 1, 0, r, NULL), DS_OK);
        for (int a = 0; a < 9; a++) ck_assert_int_eq(r[a].zero_grad, 0);
        ds_fpmode_restore(before);
        ds_classifier_free(&c);
        ds_model_free(&m);
    }
}
END_TEST

// ---- Square Attack ----

// The p schedule and the square side at known points (the reference's p_selection and
// round(sqrt(p * 784)) clamped to [1, 27]).
START_TEST(square_schedule) {
    // A budget of 10,000: halvings after 10, 50, 200, 500, 1000, 2000, 4000, 6000, 8000.
    const int it[] = {0, 10, 11, 50, 51, 200, 201, 500, 501, 1000, 1001, 2000, 2001, 4000, 4001,
                      6000, 6001, 8000, 8001, 9998};
    const int halvings[] = {0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9};
    for (int i = 0; i < 20; i++)
        ck_assert_double_eq(ds_square_p(0.8, it[i], 10000), 0.8 / (1 << halvings[i]));
    // Rescaled to 1,000 queries: int(it / 1000 * 10000) = 10 it.
    ck_assert_double_eq(ds_square_p(0.8, 1, 1000), 0.8);   // 10: not past 10
    ck_assert_double_eq(ds_square_p(0.8, 2, 1000), 0.4);   // 20
    ck_assert_double_eq(ds_square_p(0.8, 5, 1000), 0.4);   // 50
    ck_assert_double_eq(ds_square_p(0.8, 6, 1000), 0.2);   // 60
    ck_assert_double_eq(ds_square_p(0.8, 801, 1000), 0.8 / 512);
    ck_assert_double_eq(ds_square_p(0.8, 998, 1000), 0.8 / 512);
    // 7 queries: int(3 / 7 * 10000) = 4285 (four halvings... and 4000 too: 7).
    ck_assert_double_eq(ds_square_p(0.5, 3, 7), 0.5 / 128);
    ck_assert_double_eq(ds_square_p(0.5, 20000, 10000), 0.5); // the reference's fall-through
    // Sides on 28 x 28: sqrt(0.8 * 784) = 25.04, sqrt(0.4 * 784) = 17.7, 12.5 -> 13 (12.52),
    // 8.85, 6.26, 4.43, 3.13, 2.21, 1.57, 1.11, and 1 * 784 -> 28 clamped to 27.
    const int sides[] = {25, 18, 13, 9, 6, 4, 3, 2, 2, 1};
    for (int k = 0; k < 10; k++) ck_assert_int_eq(ds_square_side(0.8 / (1 << k), 28), sides[k]);
    ck_assert_int_eq(ds_square_side(1.0, 28), 27);
    ck_assert_int_eq(ds_square_side(1e-6, 28), 1);
    ck_assert_int_eq(ds_square_side(0.25, 2), 1); // h = 2: always 1
    // Half to even, as Python's round: p = 6.25/64 gives sqrt = 2.5 exactly -> 2; 12.25/64 -> 3.5 -> 4.
    ck_assert_int_eq(ds_square_side(6.25 / 64, 8), 2);
    ck_assert_int_eq(ds_square_side(12.25 / 64, 8), 4);
}
END_TEST

// A classifier that forwards through a linear model, counts the samples it was shown and
// refuses to give gradients (Square must never ask).
typedef struct {
    linear *m;
    long samples;
} counting;

static int cnt_forward(void *ctx, const float *x, int n, float *z) {
    counting *c = ctx;
    c->samples += n;
    return lin_forward(c->m, x, n, z);
}

static int no_grad(void *ctx, const float *dz, int n, float *dx) {
    (void)ctx, (void)dz, (void)n, (void)dx;
    return ds_fail(DS_EINVAL, "input_grad called by a gradient-free attack");
}

static ds_classifier counting_classifier(counting *k, linear *m, int max_batch, float T) {
    k->m = m;
    k->samples = 0;
    ds_classifier c = {.n_in = m->D, .n_classes = m->C, .max_batch = max_batch, .temperature = T,
                       .ctx = k, .forward = cnt_forward, .input_grad = no_grad};
    return c;
}

// 8 x 8 images, 2 classes: z1 - z0 = scale * (sum of the 3 x 3 block at rows/columns 2-4 - 7),
// so with the block at 0.5 the clean class is 0 (-2.5 scale), and at eps 0.3 only x + eps on
// all nine block pixels (+2.7: 0.2 scale) reaches class 1; eight up and one down give +2.1.
// The block lies where squares reach (their corners are drawn from [0, h - s)).
enum { SQ_H = 8, SQ_D = 64 };
static int in_block(int k) {
    int r = k / SQ_H, c = k % SQ_H;
    return r >= 2 && r <= 4 && c >= 2 && c <= 4;
}

static void block_model(linear *m, double scale) {
    memset(m, 0, sizeof *m);
    m->D = SQ_D;
    m->C = 2;
    for (int k = 0; k < SQ_D; k++) m->W[1][k] = in_block(k) ? scale : 0.0;
    m->b[1] = -7.0 * scale;
}

// n images: random pixels (some exactly 0 and 1, as MNIST's), the block at 0.5.
static void block_inputs(float *x, uint8_t *y, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) {
        y[i] = 0;
        for (int k = 0; k < SQ_D; k++) {
            double u = urand(&seed);
            float v = u < -0.6 ? 0.0f : u > 0.6 ? 1.0f : (float)(0.5 + 0.5 * u);
            x[i * SQ_D + k] = in_block(k) ? 0.5f : v;
        }
    }
}

// Every record's image stays in [0, 1] and within eps of x (up to float32's rounding of x + eps),
// and its distortion fields describe it.
static void check_box(const float *x, const float *xa, const ds_attack_record *r, int n, int D,
                      float eps) {
    for (int i = 0; i < n; i++) {
        float linf = 0.0f;
        for (int k = 0; k < D; k++) {
            float v = xa[(size_t)i * D + k], d = fabsf(v - x[(size_t)i * D + k]);
            ck_assert(v >= 0.0f && v <= 1.0f);
            ck_assert_msg(d <= eps + 6e-8f, "pixel %d of record %d moved %g > eps %g", k, i, d, eps);
            linf = fmaxf(linf, d);
        }
        ck_assert_float_eq(r[i].linf, linf);
        ck_assert_float_le(r[i].l0, (float)D);
    }
}

START_TEST(square_finds_block) {
    enum { N = 6 };
    linear m;
    block_model(&m, 1.0);
    float x[N * SQ_D], xa[N * SQ_D];
    uint8_t y[N];
    block_inputs(x, y, N, 5);
    // The adversarial example exists: x + eps on the block.
    float z[2], xe[SQ_D];
    for (int k = 0; k < SQ_D; k++) xe[k] = x[k] + (in_block(k) ? 0.3f : 0.0f);
    lin_forward(&m, xe, 1, z);
    ck_assert(z[1] > z[0]);
    counting k;
    ds_classifier c = counting_classifier(&k, &m, 4, 1.0f);
    ds_square_params p;
    ds_square_params_default(&p);
    p.p_init = 0.05f; // 2 x 2 squares, then 1 x 1: the block is found piece by piece
    p.seed = 11;
    ds_attack_record r[N];
    ck_assert_int_eq(ds_square(&c, &p, x, y, N, 0, r, xa), DS_OK);
    long queries = 0;
    int searched = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].success, 1);
        ck_assert_int_eq(r[i].adv_pred, 1);
        ck_assert_int_eq(r[i].clean_pred, 0);
        ck_assert_int_eq(r[i].target, -1);
        ck_assert_int_eq(r[i].zero_grad, 0);
        ck_assert_int_eq(r[i].index, i);
        ck_assert(r[i].iterations >= 1 && r[i].iterations <= p.queries);
        for (int q = 0; q < SQ_D; q++)
            if (in_block(q)) ck_assert_float_eq(xa[i * SQ_D + q], 0.8f); // all nine at +eps
        queries += r[i].iterations;
        searched += r[i].iterations > 10;
    }
    ck_assert_int_gt(searched, 0); // not only lucky stripes (seed 11: 1 to 279 queries)
    ck_assert_int_eq(k.samples, N + queries); // the clean forwards, then exactly the queries
    check_box(x, xa, r, N, SQ_D, 0.3f);
    // A budget of 1 is the stripes alone; nothing beyond it is asked for.
    p.queries = 1;
    k.samples = 0;
    ck_assert_int_eq(ds_square(&c, &p, x, y, N, 0, r, xa), DS_OK);
    for (int i = 0; i < N; i++) ck_assert_int_eq(r[i].iterations, 1);
    ck_assert_int_eq(k.samples, 2 * N);
    // eps 0: no square can change the image; one query, x' = x.
    p.queries = 100;
    p.eps[0] = 0.0f;
    ck_assert_int_eq(ds_square(&c, &p, x, y, N, 0, r, xa), DS_OK);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].iterations, 1);
        ck_assert_int_eq(r[i].success, 0);
        ck_assert_float_eq(r[i].l0, 0.0f);
    }
}
END_TEST

// Scores that saturate: the same block model with logits 1000x larger. In the softmax space the
// margin is exactly 1 - 0 = 1 at every query until the model is fooled, so no square is ever
// accepted: x' stays the stripes (one +-eps per column) and only the initial query can fool it.
// The logits, and softmax(z / T) at the model's T = 1000, see the way and succeed.
START_TEST(square_saturated_scores) {
    enum { N = 8 };
    linear m;
    block_model(&m, 1000.0);
    float x[N * SQ_D], xa[N * SQ_D];
    uint8_t y[N];
    block_inputs(x, y, N, 8);
    counting k;
    ds_classifier c = counting_classifier(&k, &m, 3, 1000.0f);
    ds_square_params p;
    ds_square_params_default(&p);
    p.p_init = 0.05f;
    p.queries = 300;
    p.space = DS_SPACE_SOFTMAX;
    ds_attack_record r[N];
    ck_assert_int_eq(ds_square(&c, &p, x, y, N, 0, r, xa), DS_OK);
    int failed = 0;
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(r[i].iterations, r[i].success ? 1 : p.queries);
        failed += !r[i].success;
        for (int col = 0; col < SQ_H; col++) {
            int sign = 0; // the column's stripe: every pixel is clip(x + s eps) with one s
            for (int row = 0; row < SQ_H; row++) {
                int q = row * SQ_H + col;
                float up = fminf(x[i * SQ_D + q] + 0.3f, 1.0f), down = fmaxf(x[i * SQ_D + q] - 0.3f, 0.0f);
                float v = xa[i * SQ_D + q];
                ck_assert(v == up || v == down);
                int s = up == down ? 0 : v == up ? 1 : -1;
                if (s && sign) ck_assert_int_eq(s, sign);
                if (s) sign = s;
            }
        }
    }
    ck_assert_int_ge(failed, N / 2); // 1 in 8 stripe patterns fools it
    check_box(x, xa, r, N, SQ_D, 0.3f);
    const ds_space seeing[] = {DS_SPACE_LOGITS, DS_SPACE_LOGITS_T};
    for (int s = 0; s < 2; s++) {
        p.space = seeing[s];
        p.queries = 1000;
        ck_assert_int_eq(ds_square(&c, &p, x, y, N, 0, r, xa), DS_OK);
        for (int i = 0; i < N; i++) ck_assert_msg(r[i].success, "space %d sample %d", s, i);
        check_box(x, xa, r, N, SQ_D, 0.3f);
    }
}
END_TEST

// A sample's run depends on (seed, index) only: one call, two calls with first_index offsets
// and any max_batch give the same records and images, byte for byte.
START_TEST(square_batching_invariant) {
    enum { N = 10, E = 2, D = SQ_D };
    linear m;
    lin_random(&m, D, 4, 21, 1.0);
    float x[N * D];
    uint8_t y[N];
    uint64_t s = 3;
    for (int k = 0; k < N * D; k++) x[k] = (float)(0.5 + 0.5 * urand(&s));
    float z[4];
    for (int i = 0; i < N; i++) {
        lin_forward(&m, x + i * D, 1, z);
        y[i] = (uint8_t)ds_argmax(z, 4); // correctly classified: the attack has work to do
    }
    ds_square_params p;
    ds_square_params_default(&p);
    p.eps[0] = 0.02f;
    p.eps[1] = 0.05f;
    p.n_eps = E;
    p.queries = 60;
    p.seed = 77;
    static ds_attack_record r1[E * N], r2[E * N], r3[E * N];
    static float a1[E * N * D], a2[E * N * D], a3[E * N * D];
    memset(r1, 0, sizeof r1); // records are compared whole: padding too
    memset(r2, 0, sizeof r2);
    counting k;
    ds_classifier c = counting_classifier(&k, &m, 64, 1.0f);
    ck_assert_int_eq(ds_square_count(&p, N), E * N);
    ck_assert_int_eq(ds_square(&c, &p, x, y, N, 200, r1, a1), DS_OK);
    long queries = 0;
    int fooled_late = 0, spent = 0;
    for (int a = 0; a < E * N; a++) {
        ck_assert_int_eq(r1[a].index, 200 + a % N);
        ck_assert(r1[a].iterations >= 1 && r1[a].iterations <= p.queries);
        queries += r1[a].iterations;
        fooled_late += r1[a].success && r1[a].iterations > 1;
        spent += !r1[a].success && r1[a].iterations == p.queries;
    }
    ck_assert_int_eq(k.samples, N + queries);
    ck_assert_int_gt(fooled_late, 0); // both outcomes occur: the comparison means something
    ck_assert_int_gt(spent, 0);
    for (int e = 0; e < E; e++) check_box(x, a1 + e * N * D, r1 + e * N, N, D, p.eps[e]);
    // Two calls: samples [0, 4) and [4, 10), numbered 200.. and 204.. .
    const int cut = 4;
    for (int part = 0; part < 2; part++) {
        int first = part ? cut : 0, n = part ? N - cut : cut;
        ds_attack_record rp[E * N];
        static float ap[E * N * D];
        memset(rp, 0, sizeof rp);
        ck_assert_int_eq(ds_square(&c, &p, x + first * D, y + first, n, 200 + first, rp, ap), DS_OK);
        for (int e = 0; e < E; e++) {
            memcpy(r2 + e * N + first, rp + e * n, sizeof *rp * n);
            memcpy(a2 + ((size_t)e * N + first) * D, ap + (size_t)e * n * D, sizeof(float) * n * D);
        }
    }
    ck_assert_int_eq(memcmp(r1, r2, sizeof r1), 0);
    ck_assert_int_eq(memcmp(a1, a2, sizeof a1), 0);
    const int batches[] = {1, 3, 7};
    for (int b = 0; b < 3; b++) {
        memset(r3, 0, sizeof r3);
        ds_classifier cb = counting_classifier(&k, &m, batches[b], 1.0f);
        ck_assert_int_eq(ds_square(&cb, &p, x, y, N, 200, r3, a3), DS_OK);
        ck_assert_int_eq(memcmp(r1, r3, sizeof r1), 0);
        ck_assert_int_eq(memcmp(a1, a3, sizeof a1), 0);
    }
    // Another seed, other draws.
    p.seed = 78;
    ck_assert_int_eq(ds_square(&c, &p, x, y, N, 200, r3, a3), DS_OK);
    ck_assert_int_ne(memcmp(a1, a3, sizeof a1), 0);
}
END_TEST

START_TEST(square_settings) {
    char b[256];
    ds_craft c;
    ck_assert_int_eq(ds_craft_default(&c, DS_KIND_SQUARE), DS_OK);
    ck_assert_int_eq(ds_craft_check(&c), DS_OK);
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.3 queries=1000 p_init=0.8 space=logits labels=true denormals=keep");
    ck_assert_ptr_null(ds_craft_numerics(&c));
    c.square.denormals = DS_DENORMALS_FLUSH;
    ck_assert_int_eq(ds_craft_denormals(&c), DS_DENORMALS_FLUSH);
    c.square.eps[1] = 0.1f;
    c.square.n_eps = 2;
    c.square.queries = 50;
    c.square.p_init = 0.05f;
    c.square.space = DS_SPACE_LOGITS_T;
    c.square.labels = DS_LABELS_PREDICTED;
    c.square.temperature = 100.0f;
    ds_craft_string(&c, 784, b, sizeof b);
    ck_assert_str_eq(b, "eps=0.3,0.1 queries=50 p_init=0.05 space=logits_T labels=predicted T=100 "
                        "denormals=flush");
    ds_classifier cl = {.n_classes = 10};
    ck_assert_int_eq(ds_craft_count(&cl, &c, 7), 14);
    // ds_craft_run is ds_square.
    linear m;
    block_model(&m, 1.0);
    float x[2 * SQ_D], xa1[2 * SQ_D], xa2[2 * SQ_D];
    uint8_t y[2];
    block_inputs(x, y, 2, 4);
    counting k;
    ds_classifier lc = counting_classifier(&k, &m, 2, 1.0f);
    ds_square_params_default(&c.square);
    c.square.queries = 20;
    ds_attack_record r1[2], r2[2];
    memset(r1, 0, sizeof r1);
    memset(r2, 0, sizeof r2);
    ck_assert_int_eq(ds_craft_run(&lc, &c, x, y, 2, 0, r1, xa1), DS_OK);
    ck_assert_int_eq(ds_square(&lc, &c.square, x, y, 2, 0, r2, xa2), DS_OK);
    ck_assert_int_eq(memcmp(r1, r2, sizeof r1), 0);
    ck_assert_int_eq(memcmp(xa1, xa2, sizeof xa1), 0);
    // The caller's floating-point mode comes back.
    ds_fpmode before = ds_fpmode_set(0);
    c.square.denormals = DS_DENORMALS_FLUSH;
    ck_assert_int_eq(ds_craft_run(&lc, &c, x, y, 2, 0, r1, NULL), DS_OK);
    ck_assert_int_eq(ds_fpmode_flushes(), 0);
    ds_fpmode_restore(before);

    ds_square_params p;
    ds_square_params_default(&p);
    p.queries = 0;
    expect_einval(ds_square_params_check(&p), "queries 0 < 1");
    ds_square_params_default(&p);
    p.p_init = 0.0f;
    expect_einval(ds_square_params_check(&p), "p_init 0 outside (0, 1]");
    p.p_init = 1.5f;
    expect_einval(ds_square_params_check(&p), "p_init 1.5");
    ds_square_params_default(&p);
    p.n_eps = 0;
    expect_einval(ds_square_params_check(&p), "eps values");
    ds_square_params_default(&p);
    p.eps[0] = 2.0f;
    expect_einval(ds_square_params_check(&p), "eps 2 outside [0, 1]");
    ds_square_params_default(&p);
    p.space = (ds_space)9;
    expect_einval(ds_square_params_check(&p), "space");
    ds_square_params_default(&p);
    p.denormals = (ds_denormals)4;
    expect_einval(ds_square_params_check(&p), "denormals");
    // Only square images: 10 inputs are not one.
    linear m10;
    lin_random(&m10, 10, 3, 1, 1.0);
    ds_classifier c10 = counting_classifier(&k, &m10, 2, 1.0f);
    ds_square_params_default(&p);
    ds_attack_record r;
    expect_einval(ds_square(&c10, &p, x, y, 1, 0, &r, NULL), "10 inputs are not a square image");
}
END_TEST

static Suite *attack_suite(void) {
    Suite *s = suite_create("attack");
    TCase *f = tcase_create("fgsm");
    tcase_add_test(f, fgsm_exact_linear);
    tcase_add_test(f, fgsm_clips_and_keeps_zero_gradient_pixels);
    tcase_add_test(f, fgsm_saturation_masks_gradient);
    tcase_add_test(f, space_gradients_survive_rounding_of_p_y);
    tcase_add_test(f, space_gradients_float64);
    tcase_add_test(f, space_jacobian_float64);
    tcase_add_test(f, settings_strings);
    tcase_add_test(f, fgsm_batching_invariant);
    suite_add_tcase(s, f);
    TCase *g = tcase_create("pgd");
    tcase_add_test(g, pgd_linf_optimum_linear);
    tcase_add_test(g, pgd_l2_optimum_linear);
    tcase_add_test(g, pgd_restarts_keep_first_success);
    tcase_add_test(g, pgd_batching_invariant);
    tcase_add_test(g, pgd_stays_in_ball_and_box);
    tcase_add_test(g, pgd_misclassified_and_predicted_labels);
    tcase_add_test(g, pgd_margin_gradient);
    suite_add_tcase(s, g);
    TCase *j = tcase_create("jsma");
    tcase_add_test(j, jsma_best_pair_matches_brute_force);
    tcase_add_test(j, jsma_first_pair_brute_force);
    tcase_add_test(j, jsma_budget_and_domain);
    tcase_add_test(j, jsma_reaches_reachable_target);
    tcase_add_test(j, jsma_saturation);
    tcase_add_test(j, jsma_batching_invariant);
    suite_add_tcase(s, j);
    TCase *c = tcase_create("cw");
    tcase_set_timeout(c, 60);
    tcase_add_test(c, cw_beats_fgsm_l2);
    tcase_add_test(c, cw_targeted_and_batching);
    suite_add_tcase(s, c);
    TCase *q = tcase_create("square");
    tcase_add_test(q, square_schedule);
    tcase_add_test(q, square_finds_block);
    tcase_add_test(q, square_saturated_scores);
    tcase_add_test(q, square_batching_invariant);
    tcase_add_test(q, square_settings);
    suite_add_tcase(s, q);
    TCase *o = tcase_create("other");
    tcase_add_test(o, transfer_evaluates_on_target_model);
    tcase_add_test(o, rates_definition);
    tcase_add_test(o, malformed_parameters);
    tcase_add_test(o, results_round_trip);
    suite_add_tcase(s, o);
    TCase *n = tcase_create("cnn");
    tcase_set_timeout(n, 120);
    tcase_add_test(n, cnn_classifier);
    tcase_add_test(n, cnn_denormal_gradients);
    suite_add_tcase(s, n);
    return s;
}

int main(void) {
    return tu_run(attack_suite());
}
