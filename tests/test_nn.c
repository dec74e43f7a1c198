// The network engine against independent truths: finite differences for every layer and for the
// whole network (T=1 and T=100, hard and soft labels, with dropout), hand-computed softmax and
// cross-entropy values, a naive direct-convolution reference of the forward pass, learning on a
// synthetic task, and bit-identical determinism (same seed, any thread count, resume).
#include "ds_error.h"
#include "ds_nn.h"
#include "ds_rng.h"
#include "testutil.h"

#include <math.h>
#include <zlib.h>

static void fill(float *x, size_t n, uint64_t seed, float lo, float hi) {
    ds_rng r = ds_rng_stream(seed, 99, 0);
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * ds_rng_uniform(&r);
}

static double dot(const float *a, const float *b, size_t n) {
    double s = 0.0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// Relative agreement of an analytic and a numerical directional derivative.
static void assert_close(double analytic, double numeric, double tol, const char *what) {
    double scale = fmax(fabs(analytic), fabs(numeric));
    ck_assert_msg(scale > 1e-9, "%s: gradient is zero, the check would be vacuous", what);
    ck_assert_msg(fabs(analytic - numeric) <= tol * scale, "%s: analytic %.8g vs numeric %.8g", what,
                  analytic, numeric);
}

// The network is float32 and piecewise linear: a large step crosses ReLU and max-pool kinks, a
// small one drowns in rounding. Central differences over a ladder of steps; the best must agree.
typedef double (*loss_at)(void *ctx, double h); // loss at parameters + h * direction
static double best_numeric(loss_at f, void *ctx, double h0, double analytic) {
    double best = NAN;
    for (double h = h0; h > h0 * 1e-3; h /= 3) {
        double num = (f(ctx, h) - f(ctx, -h)) / (2 * h);
        if (isnan(best) || fabs(num - analytic) < fabs(best - analytic)) best = num;
    }
    return best;
}

// ---- layers ----

// L(in, w, b) = sum(out * r) for a conv layer; checks d/din, d/dw, d/db along random directions.
START_TEST(test_conv_gradients) {
    enum { Gs = 3, C = 2, H = 6, W = 7, OC = 4, K = C * 9, HO = H - 2, WO = W - 2 };
    size_t nin = Gs * C * H * W, nout = OC * Gs * HO * WO, nw = OC * K, ncol = (size_t)K * Gs * HO * WO;
    float in[Gs * C * H * W], w[OC * K], b[OC], out[OC * Gs * HO * WO], r[OC * Gs * HO * WO];
    float col[K * Gs * HO * WO], dcol[K * Gs * HO * WO];
    float din[Gs * C * H * W], dw[OC * K] = {0}, db[OC] = {0};
    float v_in[Gs * C * H * W], v_w[OC * K], v_b[OC], t_in[Gs * C * H * W], t_w[OC * K], t_b[OC];
    fill(in, nin, 1, -1, 1), fill(w, nw, 2, -1, 1), fill(b, OC, 3, -1, 1), fill(r, nout, 4, -1, 1);
    fill(v_in, nin, 5, -1, 1), fill(v_w, nw, 6, -1, 1), fill(v_b, OC, 7, -1, 1);
    ds_conv_forward(out, col, in, w, b, Gs, C, H, W, OC, 0);
    ds_conv_backward(din, dw, db, dcol, r, col, w, Gs, C, H, W, OC);
    (void)ncol;
    const double h = 1e-2; // the layer is linear in each argument: any h is exact up to rounding
    float *args[3] = {in, w, b}, *dirs[3] = {v_in, v_w, v_b}, *tmp[3] = {t_in, t_w, t_b}, *grads[3] = {din, dw, db};
    size_t sizes[3] = {nin, nw, OC};
    const char *names[3] = {"conv din", "conv dw", "conv db"};
    for (int a = 0; a < 3; a++) {
        double l[2];
        for (int s = 0; s < 2; s++) {
            float *x[3] = {in, w, b};
            for (size_t i = 0; i < sizes[a]; i++) tmp[a][i] = args[a][i] + (float)((s ? -h : h) * dirs[a][i]);
            x[a] = tmp[a];
            ds_conv_forward(out, col, x[0], x[1], x[2], Gs, C, H, W, OC, 0);
            l[s] = dot(out, r, nout);
        }
        assert_close(dot(grads[a], dirs[a], sizes[a]), (l[0] - l[1]) / (2 * h), 1e-3, names[a]);
    }
}
END_TEST

// Known answer for a single 3x3 convolution: a kernel with one 1 picks a shifted input.
START_TEST(test_conv_known_answer) {
    float in[16], w[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0}, b[1] = {0.5f}, out[4], col[36];
    for (int i = 0; i < 16; i++) in[i] = (float)i;
    ds_conv_forward(out, col, in, w, b, 1, 1, 4, 4, 1, 0);
    // out[oh][ow] = in[oh+1][ow+2] + 0.5
    float want[4] = {6.5f, 7.5f, 10.5f, 11.5f};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(out[i], want[i]);
    // The fused ReLU clips what the bias makes negative.
    b[0] = -7.0f;
    ds_conv_forward(out, col, in, w, b, 1, 1, 4, 4, 1, 1);
    float want_relu[4] = {0.0f, 0.0f, 3.0f, 4.0f};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(out[i], want_relu[i]);
}
END_TEST

START_TEST(test_fc_gradients) {
    enum { B = 3, NI = 7, NO = 5 };
    float in[B * NI], w[NO * NI], b[NO], out[B * NO], r[B * NO], din[B * NI], dw[NO * NI] = {0}, db[NO] = {0};
    float v[NO * NI], t[NO * NI];
    fill(in, B * NI, 11, -1, 1), fill(w, NO * NI, 12, -1, 1), fill(b, NO, 13, -1, 1), fill(r, B * NO, 14, -1, 1);
    ds_fc_forward(out, in, w, b, B, NI, NO, 0);
    // out[0][0] by hand
    double o00 = b[0];
    for (int i = 0; i < NI; i++) o00 += (double)in[i] * w[i];
    ck_assert_double_eq_tol(out[0], o00, 1e-5);
    ds_fc_backward(din, dw, db, r, in, w, B, NI, NO);
    const double h = 1e-2;
    fill(v, NO * NI, 15, -1, 1);
    double l[2];
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < NO * NI; i++) t[i] = w[i] + (float)((s ? -h : h) * v[i]);
        ds_fc_forward(out, in, t, b, B, NI, NO, 0);
        l[s] = dot(out, r, B * NO);
    }
    assert_close(dot(dw, v, NO * NI), (l[0] - l[1]) / (2 * h), 1e-3, "fc dw");
    fill(v, B * NI, 16, -1, 1);
    for (int s = 0; s < 2; s++) {
        for (int i = 0; i < B * NI; i++) t[i] = in[i] + (float)((s ? -h : h) * v[i]);
        ds_fc_forward(out, t, w, b, B, NI, NO, 0);
        l[s] = dot(out, r, B * NO);
    }
    assert_close(dot(din, v, B * NI), (l[0] - l[1]) / (2 * h), 1e-3, "fc din");
    double sb = 0;
    for (int i = 0; i < B; i++) sb += r[i * NO + 2];
    ck_assert_double_eq_tol(db[2], sb, 1e-5);
}
END_TEST

START_TEST(test_maxpool_and_relu) {
    // One 4x4 plane: pooling picks the max of each 2x2 block; backward routes to the winner, and
    // only where the winner (a ReLU output) is positive.
    float in[16] = {1, 5, 2, 0, 3, 4, 8, 8, -1, -2, -3, -4, -5, 0.5f, -6, -7};
    float out[4], dout[4] = {10, 20, 30, 40}, din[16];
    uint8_t arg[4];
    ds_maxpool_forward(out, arg, in, 1, 4, 4);
    float want[4] = {5, 8, 0.5f, -3};
    for (int i = 0; i < 4; i++) ck_assert_float_eq(out[i], want[i]);
    for (int i = 0; i < 16; i++) din[i] = 99.0f; // backward must overwrite every entry
    ds_maxpool_backward(din, dout, arg, in, 1, 4, 4);
    float dwant[16] = {0, 10, 0, 0, 0, 0, 20, 0, 0, 0, 0, 0, 0, 30, 0, 0}; // ties: first 8; -3 blocked
    for (int i = 0; i < 16; i++) ck_assert_float_eq(din[i], dwant[i]);
    float y[4] = {0, 0, 2, 3}, dx[4] = {1, 1, 1, 1};
    ds_relu_backward(dx, y, 4);
    ck_assert_float_eq(dx[0], 0); ck_assert_float_eq(dx[1], 0); ck_assert_float_eq(dx[2], 1);
}
END_TEST

// The blocked pools (oneDNN's layout [P][H][W][V]) against the plain ones on the same values
// rearranged: the same maxima, winners and gradients bit for bit, ties and signs included.
START_TEST(test_maxpool_blocked_matches_plain) {
    enum { H = 6, W = 8, CMAX = 32 };
    static float in[CMAX * H * W], blk[CMAX * H * W], out[CMAX * H * W / 4], bout[CMAX * H * W / 4];
    static float dout[CMAX * H * W / 4], bdout[CMAX * H * W / 4], din[CMAX * H * W], bdin[CMAX * H * W];
    static uint8_t arg[CMAX * H * W / 4], barg[CMAX * H * W / 4];
    fill(in, CMAX * H * W, 7, -2, 2);
    for (int i = 0; i < CMAX * H * W; i++) in[i] = roundf(in[i] * 2) / 2; // many ties, zeros, negatives
    fill(dout, CMAX * H * W / 4, 8, -1, 1);
    const int lanes[2] = {8, 16};
    for (int li = 0; li < 2; li++) {
        int V = lanes[li], P = CMAX / V;
        // plain channel c, pixel (h, w) -> block c / V, lane c % V
        for (int c = 0; c < CMAX; c++)
            for (int i = 0; i < H * W; i++) blk[((c / V) * H * W + i) * V + c % V] = in[c * H * W + i];
        for (int c = 0; c < CMAX; c++)
            for (int i = 0; i < H * W / 4; i++) bdout[((c / V) * H * W / 4 + i) * V + c % V] = dout[c * H * W / 4 + i];
        ds_maxpool_forward(out, arg, in, CMAX, H, W);
        ds_maxpool_forward_blocked(bout, barg, blk, P, H, W, V);
        ds_maxpool_backward(din, dout, arg, in, CMAX, H, W);
        for (int i = 0; i < CMAX * H * W; i++) bdin[i] = 99.0f; // every entry is written
        ds_maxpool_backward_blocked(bdin, bdout, barg, blk, P, H, W, V);
        for (int c = 0; c < CMAX; c++) {
            for (int i = 0; i < H * W / 4; i++) {
                size_t b = ((size_t)(c / V) * H * W / 4 + i) * V + c % V;
                ck_assert_msg(memcmp(&out[c * H * W / 4 + i], &bout[b], sizeof(float)) == 0 && arg[c * H * W / 4 + i] == barg[b],
                              "V %d channel %d pooled %d", V, c, i);
            }
            for (int i = 0; i < H * W; i++)
                ck_assert_msg(memcmp(&din[c * H * W + i], &bdin[((c / V) * H * W + i) * V + c % V], sizeof(float)) == 0,
                              "V %d channel %d gradient %d", V, c, i);
        }
    }
}
END_TEST

// The row-by-row fully connected layers: equal to OpenBLAS's to float rounding, and each row's
// output and input gradient the same bits alone as among 7 rows; dw accumulates rows in order.
START_TEST(test_fc_rowwise) {
    enum { B = 7, NI = 200, NO = 37 };
    static float in[B * NI], w[NO * NI], b[NO], out[B * NO], ref[B * NO], one[NO], dout[B * NO];
    static float din[B * NI], dref[B * NI], done[NI], dw[NO * NI], dwr[NO * NI], dws[NO * NI];
    float db[NO] = {0}, dbr[NO] = {0}, dbs[NO] = {0};
    fill(in, B * NI, 1, -1, 1), fill(w, NO * NI, 2, -0.2f, 0.2f), fill(b, NO, 3, -0.5f, 0.5f);
    fill(dout, B * NO, 4, -1, 1);
    ds_fc_forward_rowwise(out, in, w, b, B, NI, NO, 1);
    ds_fc_forward(ref, in, w, b, B, NI, NO, 1);
    for (int i = 0; i < B * NO; i++) ck_assert_float_eq_tol(out[i], ref[i], 1e-5f);
    memset(dw, 0, sizeof dw), memset(dwr, 0, sizeof dwr), memset(dws, 0, sizeof dws);
    ds_fc_backward_rowwise(din, dw, db, dout, in, w, B, NI, NO);
    ds_fc_backward(dref, dwr, dbr, dout, in, w, B, NI, NO);
    for (int i = 0; i < B * NI; i++) ck_assert_float_eq_tol(din[i], dref[i], 1e-5f);
    for (int i = 0; i < NO * NI; i++) ck_assert_float_eq_tol(dw[i], dwr[i], 1e-5f);
    for (int o = 0; o < NO; o++) ck_assert_float_eq_tol(db[o], dbr[o], 1e-5f);
    for (int i = 0; i < B; i++) {
        ds_fc_forward_rowwise(one, in + i * NI, w, b, 1, NI, NO, 1);
        ck_assert_msg(memcmp(one, out + i * NO, sizeof one) == 0, "row %d forward alone differs", i);
        ds_fc_backward_rowwise(done, dws, dbs, dout + i * NO, in + i * NI, w, 1, NI, NO);
        ck_assert_msg(memcmp(done, din + i * NI, sizeof done) == 0, "row %d input gradient alone differs", i);
    }
    ck_assert(memcmp(dws, dw, sizeof dw) == 0 && memcmp(dbs, db, sizeof db) == 0); // rows added one by one
}
END_TEST

START_TEST(test_dropout_mask) {
    enum { N = 20000 };
    static float m[N], m2[N];
    ds_dropout_mask(m, N, 0.5f, 7, 3, 11);
    ds_dropout_mask(m2, N, 0.5f, 7, 3, 11);
    ck_assert_mem_eq(m, m2, sizeof m);
    int zeros = 0;
    for (int i = 0; i < N; i++) {
        ck_assert(m[i] == 0.0f || m[i] == 2.0f);
        zeros += m[i] == 0.0f;
    }
    ck_assert_int_gt(zeros, N / 2 - 400); ck_assert_int_lt(zeros, N / 2 + 400);
    ds_dropout_mask(m2, N, 0.5f, 7, 3, 12); // another sample: another mask
    ck_assert(memcmp(m, m2, sizeof m) != 0);
}
END_TEST

// ---- softmax with temperature and cross-entropy, by hand ----

START_TEST(test_softmax_xent_known) {
    float z[3] = {1, 2, 3}, p[3], dz[3];
    ds_softmax(p, z, 3, 2.0f);
    ck_assert_float_eq_tol(p[0], 0.18632372f, 1e-6); ck_assert_float_eq_tol(p[1], 0.30719589f, 1e-6);
    ck_assert_float_eq_tol(p[2], 0.50648039f, 1e-6);
    ck_assert_double_eq_tol(ds_softmax_xent(dz, z, NULL, 2, 3, 2.0f), 0.68026967, 1e-6);
    // dz = (softmax(z/T) - onehot) / T
    ck_assert_float_eq_tol(dz[0], 0.09316186f, 1e-6); ck_assert_float_eq_tol(dz[1], 0.15359794f, 1e-6);
    ck_assert_float_eq_tol(dz[2], -0.24675980f, 1e-6);
    float s[3] = {0.2f, 0.3f, 0.5f};
    ck_assert_double_eq_tol(ds_softmax_xent(dz, z, s, 0, 3, 2.0f), 1.03026967, 1e-6);
    ck_assert_float_eq_tol(dz[0], -0.00683814f, 1e-6); ck_assert_float_eq_tol(dz[1], 0.00359794f, 1e-6);
    ck_assert_float_eq_tol(dz[2], 0.00324020f, 1e-6);
}
END_TEST

START_TEST(test_softmax_xent_stable) {
    // Huge logits (a distilled network deployed at T=1): no overflow, no NaN, exact saturation.
    float z[2] = {0.0f, 2000.0f}, p[2], dz[2];
    ds_softmax(p, z, 2, 1.0f);
    ck_assert_float_eq(p[0], 0.0f); ck_assert_float_eq(p[1], 1.0f);
    ck_assert_double_eq_tol(ds_softmax_xent(dz, z, NULL, 0, 2, 1.0f), 2000.0, 1e-3);
    ck_assert_double_eq_tol(ds_softmax_xent(dz, z, NULL, 1, 2, 1.0f), 0.0, 1e-9);
    ck_assert_float_eq(dz[0], 0.0f); ck_assert_float_eq(dz[1], 0.0f);
}
END_TEST

// ---- the whole network ----

// A direct (no im2col, no BLAS) forward pass of one sample in N,C,H,W order: an independent
// implementation to compare the engine's logits with.
static void naive_conv(float *out, const float *in, const float *w, const float *b, int C, int H, int W, int OC) {
    for (int o = 0; o < OC; o++)
        for (int y = 0; y < H - 2; y++)
            for (int x = 0; x < W - 2; x++) {
                double s = b[o];
                for (int c = 0; c < C; c++)
                    for (int i = 0; i < 3; i++)
                        for (int j = 0; j < 3; j++)
                            s += (double)w[((o * C + c) * 3 + i) * 3 + j] * in[(c * H + y + i) * W + x + j];
                out[(o * (H - 2) + y) * (W - 2) + x] = s > 0 ? (float)s : 0.0f;
            }
}

static void naive_pool(float *out, const float *in, int C, int H, int W) {
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H / 2; y++)
            for (int x = 0; x < W / 2; x++) {
                const float *a = in + (c * H + 2 * y) * W + 2 * x;
                out[(c * (H / 2) + y) * (W / 2) + x] = fmaxf(fmaxf(a[0], a[1]), fmaxf(a[W], a[W + 1]));
            }
}

static void naive_fc(float *out, const float *in, const float *w, const float *b, int NI, int NO, int relu) {
    for (int o = 0; o < NO; o++) {
        double s = b[o];
        for (int i = 0; i < NI; i++) s += (double)w[o * NI + i] * in[i];
        out[o] = relu && s < 0 ? 0.0f : (float)s;
    }
}

static void naive_forward(float *z, const ds_params *p, const float *x) {
    static float c1[32 * 26 * 26], c2[32 * 24 * 24], p1[32 * 144], c3[64 * 100], c4[64 * 64], p2[1024], f1[200], f2[200];
    naive_conv(c1, x, p->w[0], p->b[0], 1, 28, 28, 32);
    naive_conv(c2, c1, p->w[1], p->b[1], 32, 26, 26, 32);
    naive_pool(p1, c2, 32, 24, 24);
    naive_conv(c3, p1, p->w[2], p->b[2], 32, 12, 12, 64);
    naive_conv(c4, c3, p->w[3], p->b[3], 64, 10, 10, 64);
    naive_pool(p2, c4, 64, 8, 8);
    naive_fc(f1, p2, p->w[4], p->b[4], 1024, 200, 1);
    naive_fc(f2, f1, p->w[5], p->b[5], 200, 200, 1);
    naive_fc(z, f2, p->w[6], p->b[6], 200, 10, 0);
}

START_TEST(test_forward_matches_naive) {
    enum { N = 7 }; // not a multiple of DS_GROUP: exercises a partial group
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 42), 0);
    static float x[N * DS_PIXELS], z[N * 10], zr[10];
    fill(x, N * DS_PIXELS, 5, 0, 1);
    ds_engine *e;
    ck_assert_int_eq(ds_engine_create(&e, N, 2, 0), 0);
    ds_engine_forward(e, &m.p, x, N, z);
    for (int i = 0; i < N; i++) {
        naive_forward(zr, &m.p, x + i * DS_PIXELS);
        for (int k = 0; k < 10; k++)
            ck_assert_msg(fabsf(z[i * 10 + k] - zr[k]) < 1e-4f, "sample %d logit %d: %g vs naive %g", i, k, z[i * 10 + k], zr[k]);
    }
    ds_engine_free(e);
    ds_model_free(&m);
}
END_TEST

// Mean cross-entropy over a batch, in double, from the engine's logits (dropout off).
static double net_loss(ds_engine *e, const ds_params *p, const float *x, const uint8_t *y,
                       const float *soft, int n, float T) {
    float z[16 * 10];
    ds_engine_forward(e, p, x, n, z);
    double l = 0;
    for (int i = 0; i < n; i++) l += ds_softmax_xent(NULL, z + i * 10, soft ? soft + i * 10 : NULL, y[i], 10, T);
    return l / n;
}

typedef struct {
    ds_engine *e;
    ds_model *m;
    const float *x, *soft;
    const uint8_t *y;
    float *a, *g2; // a: the parameter probed
    int N;
    const ds_train_pass *pass;
} param_probe;

// Mean loss with one parameter moved by h (same dropout masks as the analytic pass).
static double param_loss(void *ctx, double h) {
    param_probe *q = ctx;
    float saved = *q->a;
    *q->a = saved + (float)h;
    double l = ds_engine_train_grad(q->e, &q->m->p, q->x, q->y, q->soft, q->N, q->pass, q->g2);
    *q->a = saved;
    return l;
}

// Finite differences of the mean loss for the largest-gradient entries of every tensor.
static void check_network_gradient(float T, int use_soft, float dropout) {
    enum { N = 6 };
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 7), 0);
    size_t np = ds_params_count();
    static float x[N * DS_PIXELS], soft[N * 10];
    uint8_t y[N] = {3, 1, 4, 1, 5, 9};
    fill(x, N * DS_PIXELS, 8, 0, 1);
    fill(soft, N * 10, 9, 0, 1);
    for (int i = 0; i < N; i++) { // rows sum to 1
        double s = 0;
        for (int k = 0; k < 10; k++) s += soft[i * 10 + k];
        for (int k = 0; k < 10; k++) soft[i * 10 + k] /= (float)s;
    }
    // PyTorch's initialisation shrinks the signal at every layer, so conv1's gradient of a fresh
    // network sits at the level of float32 rounding of the loss: scale the weights up (He-like)
    // so that finite differences can see it. At T=100 also scale the last layer so that z/T
    // spans a useful range.
    for (int l = 0; l < DS_NUM_LAYERS; l++)
        for (size_t i = 0; i < ds_weight_count(l); i++) m.p.w[l][i] *= 1.6f;
    if (T > 1)
        for (size_t i = 0; i < ds_weight_count(DS_FC3); i++) m.p.w[DS_FC3][i] *= T / 4;
    float *grad = malloc(np * sizeof(float));
    static float g2[400000];
    ds_engine *e;
    ck_assert_int_eq(ds_engine_create(&e, N, 2, DS_CHUNK), 0);
    ds_train_pass pass = {.temperature = T, .dropout = dropout, .seed = 5, .step = 2};
    const float *s = use_soft ? soft : NULL;
    double loss = ds_engine_train_grad(e, &m.p, x, y, s, N, &pass, grad);
    if (dropout == 0.0f) ck_assert_double_eq_tol(loss, net_loss(e, &m.p, x, y, s, N, T), 1e-6 * fabs(loss));
    // Per tensor, the three entries with the largest gradient (the best signal over float32
    // rounding), each against central differences.
    for (int l = 0; l < DS_NUM_LAYERS; l++)
        for (int part = 0; part < 2; part++) {
            float *a = part ? m.p.b[l] : m.p.w[l];
            size_t n = part ? (size_t)ds_layer_shapes[l].out : ds_weight_count(l), off = (size_t)(a - m.mem);
            for (int k = 0; k < 3; k++) {
                size_t best = 0;
                for (size_t i = 1; i < n; i++)
                    if (fabsf(grad[off + i]) > fabsf(grad[off + best])) best = i;
                double analytic = grad[off + best];
                param_probe q = {e, &m, x, s, y, a + best, g2, N, &pass};
                char what[80];
                snprintf(what, sizeof what, "T=%g soft=%d dropout=%g %s.%s[%zu]", T, use_soft, dropout,
                         ds_layer_shapes[l].name, part ? "bias" : "weight", best);
                assert_close(analytic, best_numeric(param_loss, &q, 1e-2, analytic), 2e-2, what);
                grad[off + best] = 0.0f; // next largest
            }
        }
    ds_engine_free(e);
    free(grad);
    ds_model_free(&m);
}

START_TEST(test_network_gradient_T1_hard) { check_network_gradient(1.0f, 0, 0.0f); }
END_TEST
START_TEST(test_network_gradient_T1_soft_dropout) { check_network_gradient(1.0f, 1, 0.5f); }
END_TEST
START_TEST(test_network_gradient_T100_hard) { check_network_gradient(100.0f, 0, 0.0f); }
END_TEST
START_TEST(test_network_gradient_T100_soft_dropout) { check_network_gradient(100.0f, 1, 0.5f); }
END_TEST

typedef struct {
    ds_engine *e;
    const ds_params *p;
    const float *x, *v, *r;
    float *t;
    int N;
} input_probe;

static double input_loss(void *ctx, double h) {
    input_probe *q = ctx;
    float z[16 * 10];
    for (int i = 0; i < q->N * DS_PIXELS; i++) q->t[i] = q->x[i] + (float)(h * q->v[i]);
    ds_engine_forward(q->e, q->p, q->t, q->N, z);
    return dot(z, q->r, (size_t)q->N * 10);
}

// Input gradient: dx of sum(z * r) along a direction of the input. A random direction's
// derivative is a sum of 3,920 terms of both signs that mostly cancel, leaving a value at the
// level of float32 rounding of z (it failed on an AVX-512 machine whose OpenBLAS kernels round
// differently). The direction v_i = sign(dx_i) u_i, u_i random in [0.5, 1], adds them all up
// instead; a wrong sign or magnitude anywhere in dx still changes one side and not the other.
START_TEST(test_input_gradient) {
    enum { N = 5 };
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 3), 0);
    static float x[N * DS_PIXELS], v[N * DS_PIXELS], t[N * DS_PIXELS], dx[N * DS_PIXELS], dx2[N * DS_PIXELS];
    float r[N * 10], z[N * 10];
    fill(x, N * DS_PIXELS, 1, 0.1f, 0.9f); fill(v, N * DS_PIXELS, 2, 0.5f, 1); fill(r, N * 10, 3, -1, 1);
    ds_engine *e;
    ck_assert_int_eq(ds_engine_create(&e, N, 2, 0), 0);
    ds_engine_forward(e, &m.p, x, N, z);
    ds_engine_input_grad(e, &m.p, r, N, dx);
    // A second input_grad after the same forward gives the same answer (attacks rely on it).
    ds_engine_input_grad(e, &m.p, r, N, dx2);
    ck_assert_mem_eq(dx, dx2, sizeof dx);
    for (int i = 0; i < N * DS_PIXELS; i++) v[i] = dx[i] < 0 ? -v[i] : v[i];
    double analytic = dot(dx, v, N * DS_PIXELS);
    input_probe q = {e, &m.p, x, v, r, t, N};
    assert_close(analytic, best_numeric(input_loss, &q, 3e-2, analytic), 1e-2, "input gradient");
    // Independently of the directions: the gradient of sample 0 does not depend on sample 1.
    ds_engine_forward(e, &m.p, x, 1, z);
    ds_engine_input_grad(e, &m.p, r, 1, dx2);
    for (int i = 0; i < DS_PIXELS; i++) ck_assert_float_eq_tol(dx2[i], dx[i], 1e-6f);
    ds_engine_free(e);
    ds_model_free(&m);
}
END_TEST

// The oneDNN engine: a sample's logits and input gradient are the same bits whatever batch,
// group, position, shard or thread count computes them (the GEMM engine's depend on the group's
// composition). 23 samples on 2 threads, then each alone on 1 thread, the last 18 as a batch on 3
// threads (other groups, other positions), and all in reverse order on an engine of 64.
START_TEST(test_sample_bits_any_group) {
    enum { N = 23 };
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 9), 0);
    static float x[N * DS_PIXELS], xr[N * DS_PIXELS], dx[N * DS_PIXELS], dx2[N * DS_PIXELS];
    static float r[N * 10], rr[N * 10], z[N * 10], z2[N * 10];
    fill(x, N * DS_PIXELS, 11, 0, 1), fill(r, N * 10, 12, -1, 1);
    ds_engine *e;
    ck_assert_int_eq(ds_engine_create_kind(&e, N, 2, 0, DS_ENGINE_ONEDNN), DS_OK);
    ds_engine_forward(e, &m.p, x, N, z);
    ds_engine_input_grad(e, &m.p, r, N, dx);
    ds_engine_free(e);
    ck_assert_int_eq(ds_engine_create_kind(&e, 1, 1, 0, DS_ENGINE_ONEDNN), DS_OK);
    for (int i = 0; i < N; i++) {
        ds_engine_forward(e, &m.p, x + i * DS_PIXELS, 1, z2);
        ds_engine_input_grad(e, &m.p, r + i * 10, 1, dx2);
        ck_assert_msg(memcmp(z2, z + i * 10, 10 * sizeof(float)) == 0, "sample %d alone: logits differ", i);
        ck_assert_msg(memcmp(dx2, dx + i * DS_PIXELS, DS_PIXELS * sizeof(float)) == 0, "sample %d alone: input gradient differs", i);
    }
    ds_engine_free(e);
    ck_assert_int_eq(ds_engine_create_kind(&e, N, 3, 0, DS_ENGINE_ONEDNN), DS_OK);
    ds_engine_forward(e, &m.p, x + 5 * DS_PIXELS, N - 5, z2);
    ds_engine_input_grad(e, &m.p, r + 5 * 10, N - 5, dx2);
    ck_assert(memcmp(z2, z + 5 * 10, (N - 5) * 10 * sizeof(float)) == 0);
    ck_assert(memcmp(dx2, dx + 5 * DS_PIXELS, (N - 5) * DS_PIXELS * sizeof(float)) == 0);
    ds_engine_free(e);
    for (int i = 0; i < N; i++) {
        memcpy(xr + i * DS_PIXELS, x + (N - 1 - i) * DS_PIXELS, DS_PIXELS * sizeof(float));
        memcpy(rr + i * 10, r + (N - 1 - i) * 10, 10 * sizeof(float));
    }
    ck_assert_int_eq(ds_engine_create_kind(&e, 64, 2, 0, DS_ENGINE_ONEDNN), DS_OK);
    ds_engine_forward(e, &m.p, xr, N, z2);
    ds_engine_input_grad(e, &m.p, rr, N, dx2);
    for (int i = 0; i < N; i++) {
        ck_assert_msg(memcmp(z2 + i * 10, z + (N - 1 - i) * 10, 10 * sizeof(float)) == 0, "reversed %d: logits", i);
        ck_assert_msg(memcmp(dx2 + i * DS_PIXELS, dx + (N - 1 - i) * DS_PIXELS, DS_PIXELS * sizeof(float)) == 0,
                      "reversed %d: input gradient", i);
    }
    ds_engine_free(e);
    ds_model_free(&m);
}
END_TEST

// ---- training ----

// Synthetic task: class k is a bright 6x6 square at one of 10 positions, on faint noise.
static void make_synthetic(ds_dataset *d, int n, uint64_t seed) {
    d->n = n, d->rows = 28, d->cols = 28;
    d->images = calloc((size_t)n * DS_PIXELS, 1);
    d->labels = malloc((size_t)n);
    ds_rng r = ds_rng_stream(seed, 1, 2);
    for (int i = 0; i < n; i++) {
        int k = (int)ds_rng_below(&r, 10);
        d->labels[i] = (uint8_t)k;
        uint8_t *img = d->images + (size_t)i * DS_PIXELS;
        for (int p = 0; p < DS_PIXELS; p++) img[p] = (uint8_t)ds_rng_below(&r, 60);
        int y0 = 2 + (k / 5) * 12 + (int)ds_rng_below(&r, 3), x0 = 1 + (k % 5) * 5 + (int)ds_rng_below(&r, 2);
        for (int y = y0; y < y0 + 6; y++)
            for (int x = x0; x < x0 + 4 && x < 28; x++) img[y * 28 + x] = 255;
    }
}

static void train_model(ds_model *m, const ds_dataset *d, int epochs, int threads, uint64_t seed, float T) {
    ds_train_config c;
    ds_train_config_default(&c);
    c.epochs = epochs, c.batch = 32, c.threads = threads, c.seed = seed, c.temperature = T;
    ck_assert_int_eq(ds_model_init(m, seed), 0);
    ds_trainer t;
    ck_assert_int_eq(ds_trainer_init(&t, &c, d->n, NULL), 0);
    for (int ep = 0; ep < epochs; ep++) ck_assert_int_eq(ds_trainer_epoch(&t, m, d, NULL, NULL), 0);
    ds_trainer_free(&t);
}

START_TEST(test_learns_synthetic) {
    ds_dataset tr, te;
    make_synthetic(&tr, 1024, 1);
    make_synthetic(&te, 300, 2);
    ds_model m;
    train_model(&m, &tr, 5, 2, 11, 1.0f);
    double acc;
    ck_assert_int_eq(ds_evaluate(&m, &te, 2, &acc), 0);
    ck_assert_msg(acc >= 0.95, "synthetic task: accuracy %.3f after 5 epochs, expected >= 0.95", acc);
    ck_assert_int_eq(m.epochs, 5);
    ds_model_free(&m);
    ds_dataset_free(&tr), ds_dataset_free(&te);
}
END_TEST

START_TEST(test_deterministic_any_threads) {
    ds_dataset tr;
    make_synthetic(&tr, 200, 3);
    ds_model a, b, c;
    train_model(&a, &tr, 1, 1, 5, 1.0f);
    train_model(&b, &tr, 1, 2, 5, 1.0f);
    train_model(&c, &tr, 1, 3, 6, 1.0f);
    ck_assert_mem_eq(a.mem, b.mem, ds_params_count() * sizeof(float)); // 1 vs 2 threads: identical
    ck_assert(memcmp(a.mem, c.mem, ds_params_count() * sizeof(float)) != 0); // another seed
    ds_model_free(&a), ds_model_free(&b), ds_model_free(&c);
    ds_dataset_free(&tr);
}
END_TEST

// Two epochs in one go equal one epoch, a "checkpoint" (weights, velocity, epoch), one more.
START_TEST(test_resume_bit_identical) {
    ds_dataset tr;
    make_synthetic(&tr, 200, 4);
    ds_model a, b;
    train_model(&a, &tr, 2, 2, 9, 1.0f);
    ds_train_config c;
    ds_train_config_default(&c);
    c.batch = 32, c.threads = 1, c.seed = 9;
    ck_assert_int_eq(ds_model_init(&b, 9), 0);
    ds_trainer t1, t2;
    ck_assert_int_eq(ds_trainer_init(&t1, &c, tr.n, NULL), 0);
    ck_assert_int_eq(ds_trainer_epoch(&t1, &b, &tr, NULL, NULL), 0);
    ck_assert_int_eq(ds_trainer_init(&t2, &c, tr.n, NULL), 0);
    memcpy(t2.velocity, t1.velocity, ds_params_count() * sizeof(float));
    t2.epoch = 1;
    ds_trainer_free(&t1);
    ck_assert_int_eq(ds_trainer_epoch(&t2, &b, &tr, NULL, NULL), 0);
    ck_assert_mem_eq(a.mem, b.mem, ds_params_count() * sizeof(float));
    ds_trainer_free(&t2);
    ds_model_free(&a), ds_model_free(&b);
    ds_dataset_free(&tr);
}
END_TEST

// Distillation on the synthetic task, with the warm start of carlini/nn_robust_attacks: a model
// trained at T=1 is the starting point of a teacher at T=10; the teacher's soft labels at T=10
// train a student (from the same start) at T=10, which, deployed at T=1, classifies as well and
// has much larger logits than the teacher's at T=1.
START_TEST(test_distillation_synthetic) {
    ds_dataset tr, te;
    make_synthetic(&tr, 1024, 5);
    make_synthetic(&te, 300, 6);
    ds_model start, teacher, student;
    train_model(&start, &tr, 4, 2, 21, 1.0f);
    ds_train_config c;
    ds_train_config_default(&c);
    c.batch = 32, c.threads = 2, c.seed = 22, c.temperature = 10.0f;
    ck_assert_int_eq(ds_model_copy(&teacher, &start), 0);
    ck_assert_int_eq(ds_model_copy(&student, &start), 0);
    ds_trainer t;
    ck_assert_int_eq(ds_trainer_init(&t, &c, tr.n, NULL), 0);
    for (int ep = 0; ep < 2; ep++) ck_assert_int_eq(ds_trainer_epoch(&t, &teacher, &tr, NULL, NULL), 0);
    ds_trainer_free(&t);
    // Soft labels are softmax(z/T) of the teacher's logits (dropout off), and softer than at T=1.
    float *soft = malloc((size_t)tr.n * 10 * sizeof(float)), *hard = malloc((size_t)tr.n * 10 * sizeof(float));
    float *z = malloc((size_t)tr.n * 10 * sizeof(float));
    ck_assert_int_eq(ds_soft_labels(&teacher, &tr, 10.0f, 2, soft), 0);
    ck_assert_int_eq(ds_soft_labels(&teacher, &tr, 1.0f, 2, hard), 0);
    ck_assert_int_eq(ds_logits(&teacher, &tr, 0, tr.n, 2, z), 0);
    double max_soft = 0, max_hard = 0;
    for (int i = 0; i < tr.n; i++) {
        double row = 0, ms = 0, mh = 0, zmax = z[i * 10];
        for (int k = 1; k < 10; k++) zmax = fmax(zmax, z[i * 10 + k]);
        double sum = 0;
        for (int k = 0; k < 10; k++) sum += exp((z[i * 10 + k] - zmax) / 10.0);
        for (int k = 0; k < 10; k++) {
            double want = exp((z[i * 10 + k] - zmax) / 10.0) / sum;
            ck_assert_msg(fabs(soft[i * 10 + k] - want) < 1e-5, "soft label [%d,%d] %g, softmax(z/T) %g", i, k, soft[i * 10 + k], want);
            row += soft[i * 10 + k];
            ms = fmax(ms, soft[i * 10 + k]);
            mh = fmax(mh, hard[i * 10 + k]);
        }
        ck_assert_double_eq_tol(row, 1.0, 1e-5);
        max_soft += ms / tr.n;
        max_hard += mh / tr.n;
    }
    ck_assert_msg(max_soft < max_hard, "mean top probability %g at T=10, %g at T=1", max_soft, max_hard);
    free(hard);
    free(z);
    ck_assert_int_eq(ds_trainer_init(&t, &c, tr.n, NULL), 0);
    for (int ep = 0; ep < 2; ep++) ck_assert_int_eq(ds_trainer_epoch(&t, &student, &tr, soft, NULL), 0);
    ds_trainer_free(&t);
    double acc_t, acc_s;
    ck_assert_int_eq(ds_evaluate(&teacher, &te, 2, &acc_t), 0);
    ck_assert_int_eq(ds_evaluate(&student, &te, 2, &acc_s), 0);
    ck_assert_msg(acc_t > 0.9 && acc_s > 0.9, "teacher %.3f student %.3f", acc_t, acc_s);
    ck_assert(student.temperature == 10.0f);
    free(soft);
    ds_model_free(&start);
    ds_model_free(&teacher);
    ds_model_free(&student);
    ds_dataset_free(&tr);
    ds_dataset_free(&te);
}
END_TEST

// Step decay: epochs before lr_decay_from run at lr, later ones at lr * lr_decay. Training with
// lr 0.1 decayed by 0.5 from epoch 1 equals one epoch at 0.1 then one at 0.05 (0.1f * 0.5f is
// 0.05f exactly), and differs from two constant epochs.
START_TEST(test_lr_step_decay) {
    ds_train_config c;
    ds_train_config_default(&c);
    ck_assert(ds_train_lr(&c, 0) == 0.1f && ds_train_lr(&c, 49) == 0.1f); // default: constant
    c.lr_decay = 0.5f, c.lr_decay_from = 1;
    ck_assert(ds_train_lr(&c, 0) == 0.1f);
    ck_assert(ds_train_lr(&c, 1) == 0.05f && ds_train_lr(&c, 7) == 0.05f);

    ds_dataset tr;
    make_synthetic(&tr, 200, 8);
    ds_model decayed, stepped, constant;
    ds_train_config cd = c;
    cd.batch = 32, cd.threads = 1, cd.seed = 4;
    ck_assert_int_eq(ds_model_init(&decayed, 4), 0);
    ds_trainer t;
    ck_assert_int_eq(ds_trainer_init(&t, &cd, tr.n, NULL), 0);
    for (int ep = 0; ep < 2; ep++) ck_assert_int_eq(ds_trainer_epoch(&t, &decayed, &tr, NULL, NULL), 0);
    ds_trainer_free(&t);
    // By hand: epoch 0 at lr 0.1, then a trainer at lr 0.05 continuing with the same velocity.
    ds_train_config cs = cd;
    cs.lr_decay = 1.0f;
    ck_assert_int_eq(ds_model_init(&stepped, 4), 0);
    ds_trainer t1, t2;
    ck_assert_int_eq(ds_trainer_init(&t1, &cs, tr.n, NULL), 0);
    ck_assert_int_eq(ds_trainer_epoch(&t1, &stepped, &tr, NULL, NULL), 0);
    cs.lr = 0.05f;
    ck_assert_int_eq(ds_trainer_init(&t2, &cs, tr.n, NULL), 0);
    memcpy(t2.velocity, t1.velocity, ds_params_count() * sizeof(float));
    t2.epoch = 1;
    ds_trainer_free(&t1);
    ck_assert_int_eq(ds_trainer_epoch(&t2, &stepped, &tr, NULL, NULL), 0);
    ds_trainer_free(&t2);
    ck_assert_mem_eq(decayed.mem, stepped.mem, ds_params_count() * sizeof(float));
    train_model(&constant, &tr, 2, 1, 4, 1.0f);
    ck_assert(memcmp(decayed.mem, constant.mem, ds_params_count() * sizeof(float)) != 0);
    ds_model_free(&decayed), ds_model_free(&stepped), ds_model_free(&constant);
    ds_dataset_free(&tr);
}
END_TEST

START_TEST(test_config_errors) {
    ds_train_config c;
    ds_train_config_default(&c);
    ck_assert_int_eq(ds_train_config_check(&c), 0);
    c.lr = -1;
    ck_assert_int_eq(ds_train_config_check(&c), DS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "learning rate"));
    ds_train_config_default(&c), c.temperature = 0;
    ck_assert_int_eq(ds_train_config_check(&c), DS_EINVAL);
    ds_train_config_default(&c), c.dropout = 1.0f;
    ck_assert_int_eq(ds_train_config_check(&c), DS_EINVAL);
    ds_train_config_default(&c), c.batch = 0;
    ck_assert_int_eq(ds_train_config_check(&c), DS_EINVAL);
    ds_train_config_default(&c), c.lr_decay = 0;
    ck_assert_int_eq(ds_train_config_check(&c), DS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "decay"));
    ds_train_config_default(&c), c.lr_decay = 1.5f;
    ck_assert_int_eq(ds_train_config_check(&c), DS_EINVAL);
    ds_train_config_default(&c), c.lr_decay_from = -1;
    ck_assert_int_eq(ds_train_config_check(&c), DS_EINVAL);
}
END_TEST

START_TEST(test_divergence_detected) {
    ds_dataset tr;
    make_synthetic(&tr, 128, 7);
    ds_train_config c;
    ds_train_config_default(&c);
    c.batch = 64, c.lr = 1e6f; // diverges at once
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 1), 0);
    ds_trainer t;
    ck_assert_int_eq(ds_trainer_init(&t, &c, tr.n, NULL), 0);
    int rc = 0;
    for (int ep = 0; ep < 3 && !rc; ep++) rc = ds_trainer_epoch(&t, &m, &tr, NULL, NULL);
    ck_assert_int_eq(rc, DS_ENUMERIC);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "diverged"));
    ds_trainer_free(&t);
    ds_model_free(&m);
    ds_dataset_free(&tr);
}
END_TEST

// ---- Initialisations ----

// PyTorch's default as before [train] init existed: CRC-32 of the whole parameter arena and two
// values, recorded with ds_model_init at commit ff3f740.
START_TEST(test_init_pytorch_unchanged) {
    const struct { uint64_t seed; uint32_t crc; float w0, b_last; } known[] = {
        {42, 0xfc8ea4d9u, 0x1.6cda0cp-3f, -0x1.eed7c6p-6f},
        {1, 0xd51d7c3bu, -0x1.b240cp-4f, -0x1.3bd8f6p-7f},
        {0xFEDCBA9876543210ull, 0x2698cf1cu, -0x1.0b98p-6f, -0x1.7ed8aep-6f},
    };
    size_t bytes = ds_params_count() * sizeof(float);
    for (int i = 0; i < 3; i++) {
        ds_model a, b;
        ck_assert_int_eq(ds_model_init_as(&a, known[i].seed, DS_INIT_PYTORCH), DS_OK);
        ck_assert_int_eq(ds_model_init(&b, known[i].seed), DS_OK);
        ck_assert_int_eq(memcmp(a.mem, b.mem, bytes), 0);
        ck_assert_uint_eq(crc32(0, (const Bytef *)a.mem, (uInt)bytes), known[i].crc);
        ck_assert(a.p.w[0][0] == known[i].w0);
        ck_assert(a.p.b[6][9] == known[i].b_last);
        ck_assert_uint_eq(a.seed, known[i].seed);
        ds_model_free(&a);
        ds_model_free(&b);
    }
}
END_TEST

// Glorot-uniform (Keras' glorot_uniform): w ~ U(-a, a), a = sqrt(6 / (fan_in + fan_out)), a
// convolution's fans counting its 3x3 window; biases 0. Per layer: every weight inside [-a, a],
// the largest close to a, the mean within 4 standard errors of 0 and the variance within 4
// standard errors of a^2/3 (the sample variance of n uniform draws has relative standard error
// sqrt(0.8 / n)).
START_TEST(test_init_glorot) {
    const int fan_in[DS_NUM_LAYERS] = {9, 288, 288, 576, 1024, 200, 200};
    const int fan_out[DS_NUM_LAYERS] = {288, 288, 576, 576, 200, 200, 10};
    const uint64_t seeds[] = {3, 7};
    for (int si = 0; si < 2; si++) {
        ds_model m, p;
        ck_assert_int_eq(ds_model_init_as(&m, seeds[si], DS_INIT_GLOROT), DS_OK);
        ck_assert_int_eq(ds_model_init_as(&p, seeds[si], DS_INIT_PYTORCH), DS_OK);
        ck_assert_uint_eq(m.seed, seeds[si]);
        for (int l = 0; l < DS_NUM_LAYERS; l++) {
            const char *name = ds_layer_shapes[l].name;
            double a = sqrt(6.0 / (fan_in[l] + fan_out[l]));
            size_t n = ds_weight_count(l);
            double sum = 0, sq = 0, maxabs = 0;
            for (size_t i = 0; i < n; i++) {
                double w = m.p.w[l][i];
                ck_assert_msg(fabs(w) <= a * (1 + 1e-6), "%s[%zu] = %g outside +-%g", name, i, w, a);
                sum += w, sq += w * w;
                maxabs = fmax(maxabs, fabs(w));
            }
            double mean = sum / n, var = sq / n - mean * mean, se = a / sqrt(3.0 * n);
            double rel = 4 * sqrt(0.8 / n);
            ck_assert_msg(fabs(mean) < 4 * se, "%s: mean %g, standard error %g", name, mean, se);
            ck_assert_msg(fabs(var / (a * a / 3) - 1) < rel, "%s: variance %g, expected %g +- %.1f%%",
                          name, var, a * a / 3, 100 * rel);
            ck_assert_msg(maxabs > a * (1 - 20.0 / n), "%s: largest |w| %g of a = %g", name, maxabs, a);
            for (int i = 0; i < ds_layer_shapes[l].out; i++)
                ck_assert_msg(m.p.b[l][i] == 0.0f, "%s: bias %d = %g", name, i, m.p.b[l][i]);
            // The same uniform draws as PyTorch's default, scaled by the other bound.
            double ratio = a * sqrt((double)fan_in[l]);
            for (size_t i = 0; i < n; i += n / 7 + 1)
                ck_assert_msg(fabs(m.p.w[l][i] - ratio * p.p.w[l][i]) <= 1e-6 * a, "%s[%zu]", name, i);
        }
        ds_model_free(&m);
        ds_model_free(&p);
    }
    ds_init k;
    ck_assert_int_eq(ds_init_parse("glorot", &k), DS_OK);
    ck_assert_int_eq(k, DS_INIT_GLOROT);
    ck_assert_int_eq(ds_init_parse("pytorch", &k), DS_OK);
    ck_assert_int_eq(k, DS_INIT_PYTORCH);
    ck_assert_str_eq(ds_init_name(DS_INIT_GLOROT), "glorot");
    ck_assert_str_eq(ds_init_name(DS_INIT_PYTORCH), "pytorch");
    ck_assert_int_eq(ds_init_parse("Glorot", &k), DS_EINVAL);
    ck_assert_str_eq(ds_errmsg(), "unknown init 'Glorot' (expected one of: pytorch, glorot)");
    ds_model x;
    ck_assert_int_eq(ds_model_init_as(&x, 1, (ds_init)7), DS_EINVAL);
}
END_TEST

START_TEST(test_param_count) {
    // 320 + 9248 + 18496 + 36928 + 205000 + 40200 + 2010
    ck_assert_uint_eq(ds_params_count(), 312202);
}
END_TEST

// The geometry the engine sizes its buffers from, against the hand-known planes of the network:
// 28 -> 26 -> 24 -> pool 12 -> 10 -> 8 -> pool 4, 64*4*4 = 1024 into fc1, 10 classes out.
START_TEST(test_layer_geometry) {
    ds_layer_geom g[DS_NUM_LAYERS];
    ds_layer_geometry(g);
    const int h[DS_NUM_LAYERS] = {28, 26, 12, 10, 1, 1, 1}, oh[DS_NUM_LAYERS] = {26, 24, 10, 8, 1, 1, 1};
    const int ph[DS_NUM_LAYERS] = {26, 12, 10, 4, 1, 1, 1}, rows[DS_NUM_LAYERS] = {9, 288, 288, 576, 0, 0, 0};
    const size_t in[DS_NUM_LAYERS] = {784, 32 * 676, 32 * 144, 64 * 100, 1024, 200, 200};
    const size_t out[DS_NUM_LAYERS] = {32 * 676, 32 * 576, 64 * 100, 64 * 64, 200, 200, 10};
    const size_t pooled[DS_NUM_LAYERS] = {32 * 676, 32 * 144, 64 * 100, 64 * 16, 200, 200, 10};
    for (int l = 0; l < DS_NUM_LAYERS; l++) {
        const char *name = ds_layer_shapes[l].name;
        ck_assert_msg(g[l].h == h[l] && g[l].w == h[l], "%s: input %dx%d", name, g[l].h, g[l].w);
        ck_assert_msg(g[l].oh == oh[l] && g[l].ow == oh[l], "%s: output %dx%d", name, g[l].oh, g[l].ow);
        ck_assert_msg(g[l].ph == ph[l] && g[l].pw == ph[l], "%s: pooled %dx%d", name, g[l].ph, g[l].pw);
        ck_assert_msg(g[l].col_rows == rows[l], "%s: im2col rows %d", name, g[l].col_rows);
        ck_assert_msg(g[l].in_size == in[l], "%s: in_size %zu", name, g[l].in_size);
        ck_assert_msg(g[l].out_size == out[l], "%s: out_size %zu", name, g[l].out_size);
        ck_assert_msg(g[l].pooled_size == pooled[l], "%s: pooled_size %zu", name, g[l].pooled_size);
        // Each layer reads what the one before it wrote (fc1: the last pool flattened).
        if (l > 0) ck_assert_uint_eq(g[l].in_size, g[l - 1].pooled_size);
    }
    ck_assert_uint_eq(g[DS_CONV1].in_size, DS_PIXELS);
    ck_assert_uint_eq(g[DS_FC3].out_size, DS_CLASSES);
    ck_assert_uint_eq(ds_params_count(), 312202);
}
END_TEST

// ---- Chunks: the summation order of training gradients ----

// A batch of n samples: pixels in [0,1], labels, soft targets whose rows sum to 1 (malloc'ed).
typedef struct {
    int n;
    float *x, *soft;
    uint8_t *y;
} chunk_batch;

static chunk_batch make_batch(int n, uint64_t seed) {
    chunk_batch b = {n, malloc((size_t)n * DS_PIXELS * sizeof(float)), malloc((size_t)n * 10 * sizeof(float)),
                     malloc((size_t)n)};
    fill(b.x, (size_t)n * DS_PIXELS, seed, 0, 1);
    fill(b.soft, (size_t)n * 10, seed + 1, 0.01f, 1);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < 10; k++) s += b.soft[i * 10 + k];
        for (int k = 0; k < 10; k++) b.soft[i * 10 + k] /= (float)s;
        b.y[i] = (uint8_t)((i * 7 + 3) % 10);
    }
    return b;
}

static void free_batch(chunk_batch *b) { free(b->x), free(b->soft), free(b->y); }

// ds_engine_train_grad's gradient (into grad) and loss on a fresh engine.
static double engine_grad(const ds_model *m, const chunk_batch *b, const float *soft, int threads, int chunk,
                          const ds_train_pass *pass, float *grad) {
    ds_engine *e;
    ck_assert_int_eq(ds_engine_create(&e, b->n, threads, chunk), DS_OK);
    double loss = ds_engine_train_grad(e, &m->p, b->x, b->y, soft, b->n, pass, grad);
    ds_engine_free(e);
    return loss;
}

// A batch of 40 (the last chunk partial at chunk 32: 40 = 32 + 8), dropout on: for each chunk,
// the same gradient bits and loss on 1, 2 and 8 threads. Chunks change the summation order only:
// chunk 4 and chunk 32 agree to float rounding and differ in their bits (why chunk is part of a
// job's results); the loss is the same bits.
START_TEST(test_train_grad_any_threads_any_chunk) {
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 17), 0);
    chunk_batch b = make_batch(40, 31);
    size_t np = ds_params_count(), bytes = np * sizeof(float);
    ds_train_pass pass = {.temperature = 1.0f, .dropout = 0.5f, .seed = 3, .step = 11};
    const int chunks[3] = {4, 8, 32}, threads[3] = {1, 2, 8};
    float *ref[3], *g = malloc(bytes);
    double loss[3];
    for (int c = 0; c < 3; c++) {
        ref[c] = malloc(bytes);
        loss[c] = engine_grad(&m, &b, NULL, 1, chunks[c], &pass, ref[c]);
        for (int t = 1; t < 3; t++) {
            double l = engine_grad(&m, &b, NULL, threads[t], chunks[c], &pass, g);
            ck_assert_msg(memcmp(g, ref[c], bytes) == 0, "chunk %d: %d threads differ from 1", chunks[c], threads[t]);
            ck_assert_msg(l == loss[c], "chunk %d: loss %.17g on %d threads, %.17g on 1", chunks[c], l, threads[t], loss[c]);
        }
    }
    double scale = 0;
    for (size_t j = 0; j < np; j++) scale = fmax(scale, fabs(ref[2][j]));
    ck_assert(scale > 1e-3);
    for (int c = 0; c < 2; c++) {
        ck_assert_msg(memcmp(ref[c], ref[2], bytes) != 0, "chunk %d gave the bits of chunk 32", chunks[c]);
        for (size_t j = 0; j < np; j++)
            ck_assert_msg(fabs(ref[c][j] - ref[2][j]) <= 1e-5 * scale, "chunk %d [%zu]: %g vs %g", chunks[c], j,
                          ref[c][j], ref[2][j]);
        ck_assert(loss[c] == loss[2]); // per-sample losses do not depend on the chunk, summed in sample order
        free(ref[c]);
    }
    free(ref[2]), free(g);
    free_batch(&b);
    ds_model_free(&m);
}
END_TEST

// k simulated gang members, k = 1..5, each with its own engine (1 or 2 threads): the chunks of
// ds_chunk_range (contiguous, balanced, covering every chunk once), computed member by member with
// ds_engine_chunk_grads, then ds_grad_fold over all of them equal ds_engine_train_grad bit for
// bit, and so do the losses; a member writes the losses of its own samples only. Batches of 40
// at chunk 8 (5 chunks) with soft labels at T=10, and 12 at chunk 8 (2 chunks, the second
// partial: fewer chunks than members) with hard labels.
START_TEST(test_chunk_grads_fold_any_members) {
    ds_model m;
    ck_assert_int_eq(ds_model_init(&m, 23), 0);
    size_t np = ds_params_count(), bytes = np * sizeof(float);
    const struct { int n; float T; int soft; } cases[2] = {{40, 10.0f, 1}, {12, 1.0f, 0}};
    enum { CHUNK = 8 };
    ds_engine *e[2];
    ck_assert_int_eq(ds_engine_create(&e[0], 40, 1, CHUNK), DS_OK);
    ck_assert_int_eq(ds_engine_create(&e[1], 40, 2, CHUNK), DS_OK);
    float *ref = malloc(bytes), *grad = malloc(bytes);
    for (int ci = 0; ci < 2; ci++) {
        chunk_batch b = make_batch(cases[ci].n, 41 + ci);
        const float *soft = cases[ci].soft ? b.soft : NULL;
        ds_train_pass pass = {.temperature = cases[ci].T, .dropout = 0.5f, .seed = 5, .step = 2};
        double want = ds_engine_train_grad(e[0], &m.p, b.x, b.y, soft, b.n, &pass, ref);
        int nc = ds_chunk_count(b.n, CHUNK);
        ck_assert_int_eq(nc, (b.n + CHUNK - 1) / CHUNK);
        float *cg = malloc((size_t)nc * bytes);
        double *losses = malloc((size_t)b.n * sizeof(double)), *mine = malloc((size_t)b.n * sizeof(double));
        const float *chunks[8];
        for (int c = 0; c < nc; c++) chunks[c] = cg + (size_t)c * np;
        for (int k = 1; k <= 5; k++) {
            int next = 0;
            for (int mb = 0; mb < k; mb++) {
                int c0, c1;
                ds_chunk_range(nc, k, mb, &c0, &c1);
                ck_assert_msg(c0 == next && c1 >= c0, "k %d member %d: [%d, %d) after %d", k, mb, c0, c1, next);
                ck_assert_int_le(abs((c1 - c0) - nc / k), 1);
                next = c1;
                for (int i = 0; i < b.n; i++) mine[i] = NAN;
                ds_engine_chunk_grads(e[mb % 2], &m.p, b.x, b.y, soft, b.n, c0, c1, &pass, cg + (size_t)c0 * np, mine);
                for (int i = 0; i < b.n; i++) {
                    int own = i >= c0 * CHUNK && i < c1 * CHUNK;
                    ck_assert_msg(own == !isnan(mine[i]), "k %d member %d: loss of sample %d", k, mb, i);
                    if (own) losses[i] = mine[i];
                }
            }
            ck_assert_int_eq(next, nc);
            ds_grad_fold(grad, chunks, nc, 0, np);
            ck_assert_msg(memcmp(grad, ref, bytes) == 0, "n %d, %d members: gradient differs", b.n, k);
            double sum = 0;
            for (int i = 0; i < b.n; i++) sum += losses[i];
            ck_assert_msg(sum / b.n == want, "n %d, %d members: loss %.17g vs %.17g", b.n, k, sum / b.n, want);
        }
        free(cg), free(losses), free(mine);
        free_batch(&b);
    }
    free(ref), free(grad);
    ds_engine_free(e[0]), ds_engine_free(e[1]);
    ds_model_free(&m);
}
END_TEST

static void use_onednn(void) { ds_engine_set_default_kind(DS_ENGINE_ONEDNN); }
static void use_gemm(void) { ds_engine_set_default_kind(DS_ENGINE_GEMM); }

// A tcase "<what>-<kind>" of s whose tests run with that engine kind as the default.
static TCase *engine_tcase(Suite *s, const char *what, const char *kind, void (*setup)(void), int timeout) {
    static char names[16][32]; // Check keeps the name pointer for the suite's lifetime
    static int used;
    char *name = names[used++ % 16];
    snprintf(name, sizeof names[0], "%s-%s", what, kind);
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

int main(void) {
    Suite *s = suite_create("nn");
    TCase *layers = tcase_create("layers");
    tcase_add_test(layers, test_conv_gradients);
    tcase_add_test(layers, test_conv_known_answer);
    tcase_add_test(layers, test_fc_gradients);
    tcase_add_test(layers, test_maxpool_and_relu);
    tcase_add_test(layers, test_maxpool_blocked_matches_plain);
    tcase_add_test(layers, test_fc_rowwise);
    tcase_add_test(layers, test_dropout_mask);
    tcase_add_test(layers, test_softmax_xent_known);
    tcase_add_test(layers, test_softmax_xent_stable);
    tcase_add_test(layers, test_param_count);
    tcase_add_test(layers, test_init_pytorch_unchanged);
    tcase_add_test(layers, test_init_glorot);
    tcase_add_test(layers, test_layer_geometry);
    suite_add_tcase(s, layers);
    // "network-*" (forward and input gradient) is what tests/valgrind.sh runs; "gradients-*", the
    // finite-difference checks of the training pass, makes ~2,400 passes that valgrind takes
    // about 10 s each over (its trainings run in valgrind's one-rank sweep instead).
    // Every engine test runs on both kinds (their own tcases: a fixture sets the default kind).
    for (int k = 0; k < 2; k++) {
        void (*setup)(void) = k ? use_gemm : use_onednn;
        const char *kind = k ? "gemm" : "onednn";
        TCase *net = engine_tcase(s, "network", kind, setup, 120);
        tcase_add_test(net, test_forward_matches_naive);
        tcase_add_test(net, test_input_gradient);
        if (!k) tcase_add_test(net, test_sample_bits_any_group);
        TCase *grads = engine_tcase(s, "gradients", kind, setup, 120);
        tcase_add_test(grads, test_network_gradient_T100_soft_dropout);
        tcase_add_test(grads, test_network_gradient_T1_hard);
        tcase_add_test(grads, test_network_gradient_T1_soft_dropout);
        tcase_add_test(grads, test_network_gradient_T100_hard);
        TCase *train = engine_tcase(s, "training", kind, setup, 300);
        tcase_add_test(train, test_learns_synthetic);
        tcase_add_test(train, test_deterministic_any_threads);
        tcase_add_test(train, test_resume_bit_identical);
        tcase_add_test(train, test_distillation_synthetic);
        tcase_add_test(train, test_lr_step_decay);
        tcase_add_test(train, test_config_errors);
        tcase_add_test(train, test_divergence_detected);
        TCase *chunks = engine_tcase(s, "chunks", kind, setup, 120);
        tcase_add_test(chunks, test_train_grad_any_threads_any_chunk);
        tcase_add_test(chunks, test_chunk_grads_fold_any_members);
    }
    return tu_run(s);
}
