// The layers: forward/backward pairs over caller-owned buffers.
// Convolutions work on a group of G samples in C,N,H,W order ([channels][G][rows][cols]): one
// im2col matrix and one GEMM per layer cover the whole group.
#include "ds_nn.h"
#include "ds_rng.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

// x[o, i] += b[o], then max(x, 0) if relu: one pass for both.
static void add_bias(float *restrict x, const float *restrict b, int rows, int cols, int relu) {
    for (int o = 0; o < rows; o++) {
        float *row = x + (size_t)o * cols, bo = b[o];
        if (relu)
            for (int i = 0; i < cols; i++) {
                float v = row[i] + bo;
                row[i] = v > 0.0f ? v : 0.0f;
            }
        else
            for (int i = 0; i < cols; i++) row[i] += bo;
    }
}

// col [C*9, G*Ho*Wo]: row (c,kh,kw), column (g,oh,ow) holds in[c][g][oh+kh][ow+kw].
static void im2col(float *restrict col, const float *restrict in, int G, int C, int H, int W) {
    int Ho = H - 2, Wo = W - 2;
    size_t N = (size_t)G * Ho * Wo;
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
                float *row = col + ((size_t)(c * 3 + kh) * 3 + kw) * N;
                for (int g = 0; g < G; g++) {
                    const float *src = in + ((size_t)c * G + g) * H * W + kh * W + kw;
                    float *restrict dst = row + (size_t)g * Ho * Wo;
                    for (int oh = 0; oh < Ho; oh++) {
                        const float *restrict s = src + (size_t)oh * W;
                        float *restrict d = dst + (size_t)oh * Wo;
                        for (int ow = 0; ow < Wo; ow++) d[ow] = s[ow];
                    }
                }
            }
}

// The adjoint of im2col: din = 0, then din[c][g][oh+kh][ow+kw] += dcol[(c,kh,kw)][(g,oh,ow)].
static void col2im(float *restrict din, const float *restrict dcol, int G, int C, int H, int W) {
    int Ho = H - 2, Wo = W - 2;
    size_t N = (size_t)G * Ho * Wo;
    memset(din, 0, (size_t)C * G * H * W * sizeof(float));
    for (int c = 0; c < C; c++)
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
                const float *row = dcol + ((size_t)(c * 3 + kh) * 3 + kw) * N;
                for (int g = 0; g < G; g++) {
                    float *dst = din + ((size_t)c * G + g) * H * W + kh * W + kw;
                    for (int oh = 0; oh < Ho; oh++) {
                        const float *s = row + ((size_t)g * Ho + oh) * Wo;
                        float *d = dst + (size_t)oh * W;
                        for (int ow = 0; ow < Wo; ow++) d[ow] += s[ow];
                    }
                }
            }
}

void ds_conv_forward(float *out, float *col, const float *in, const float *w, const float *b,
                     int G, int C, int H, int W, int OC, int relu) {
    int K = C * 9, N = G * (H - 2) * (W - 2);
    im2col(col, in, G, C, H, W);
    // out [OC, N] = w [OC, K] @ col [K, N]
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, OC, N, K, 1.0f, w, K, col, N, 0.0f,
                out, N);
    add_bias(out, b, OC, N, relu);
}

void ds_conv_backward(float *din, float *dw, float *db, float *dcol, const float *dout,
                      const float *col, const float *w, int G, int C, int H, int W, int OC) {
    int K = C * 9, N = G * (H - 2) * (W - 2);
    if (dw) {
        // dw [OC, K] += dout [OC, N] @ col^T [N, K]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, OC, K, N, 1.0f, dout, N, col, N, 1.0f,
                    dw, K);
        for (int o = 0; o < OC; o++) {
            const float *row = dout + (size_t)o * N;
            float s = 0.0f;
#pragma omp simd reduction(+ : s)
            for (int i = 0; i < N; i++) s += row[i];
            db[o] += s;
        }
    }
    if (din) {
        // dcol [K, N] = w^T [K, OC] @ dout [OC, N]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, N, OC, 1.0f, w, K, dout, N, 0.0f,
                    dcol, N);
        col2im(din, dcol, G, C, H, W);
    }
}

void ds_relu_backward(float *dx, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) dx[i] = y[i] > 0.0f ? dx[i] : 0.0f;
}

void ds_conv_backward_input_1ch(float *din, const float *dout, const float *w, int OC, int H, int W) {
    int Ho = H - 2, Wo = W - 2;
    memset(din, 0, (size_t)H * W * sizeof(float));
    for (int o = 0; o < OC; o++)
        for (int kh = 0; kh < 3; kh++)
            for (int kw = 0; kw < 3; kw++) {
                float wk = w[o * 9 + kh * 3 + kw];
                for (int y = 0; y < Ho; y++) {
                    float *restrict d = din + (size_t)(y + kh) * W + kw;
                    const float *restrict s = dout + ((size_t)o * Ho + y) * Wo;
                    for (int x = 0; x < Wo; x++) d[x] += wk * s[x];
                }
            }
}

void ds_maxpool_forward(float *out, uint8_t *arg, const float *in, int P, int H, int W) {
    int Ho = H / 2, Wo = W / 2;
    for (int p = 0; p < P; p++) {
        const float *src = in + (size_t)p * H * W;
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                const float *a = src + (2 * oh) * W + 2 * ow;
                // Ties go to the first candidate, as in PyTorch.
                float m = a[0];
                uint8_t k = 0;
                if (a[1] > m) m = a[1], k = 1;
                if (a[W] > m) m = a[W], k = 2;
                if (a[W + 1] > m) m = a[W + 1], k = 3;
                size_t o = ((size_t)p * Ho + oh) * Wo + ow;
                out[o] = m;
                arg[o] = k;
            }
    }
}

void ds_maxpool_backward(float *din, const float *dout, const uint8_t *arg, const float *in, int P,
                         int H, int W) {
    // Every input belongs to exactly one window: write all four, so no memset is needed. The
    // winner's gradient passes only where the input (a ReLU output) is positive.
    int Ho = H / 2, Wo = W / 2;
    for (int p = 0; p < P; p++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                size_t o = ((size_t)p * Ho + oh) * Wo + ow, i = (size_t)p * H * W + (2 * oh) * W + 2 * ow;
                int k = arg[o];
                float g = in[i + (k >> 1) * W + (k & 1)] > 0.0f ? dout[o] : 0.0f;
                din[i] = k == 0 ? g : 0.0f;
                din[i + 1] = k == 1 ? g : 0.0f;
                din[i + W] = k == 2 ? g : 0.0f;
                din[i + W + 1] = k == 3 ? g : 0.0f;
            }
}

// The blocked pools: V is a constant after inlining (the switch below), so that the lane loop
// becomes vector compares and blends.
static inline void pool_fwd_lanes(float *restrict out, uint8_t *restrict arg, const float *restrict in,
                                  int P, int H, int W, int V) {
    int Ho = H / 2, Wo = W / 2;
    for (int p = 0; p < P; p++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                const float *a = in + (((size_t)p * H + 2 * oh) * W + 2 * ow) * V, *b = a + V,
                            *c = a + (size_t)W * V, *d = c + V;
                size_t o = (((size_t)p * Ho + oh) * Wo + ow) * V;
                for (int v = 0; v < V; v++) { // ties to the first candidate, as ds_maxpool_forward
                    float m = a[v];
                    uint8_t k = 0;
                    if (b[v] > m) m = b[v], k = 1;
                    if (c[v] > m) m = c[v], k = 2;
                    if (d[v] > m) m = d[v], k = 3;
                    out[o + v] = m;
                    arg[o + v] = k;
                }
            }
}

static inline void pool_bwd_lanes(float *restrict din, const float *restrict dout, const uint8_t *restrict arg,
                                  const float *restrict in, int P, int H, int W, int V) {
    int Ho = H / 2, Wo = W / 2;
    for (int p = 0; p < P; p++)
        for (int oh = 0; oh < Ho; oh++)
            for (int ow = 0; ow < Wo; ow++) {
                size_t o = (((size_t)p * Ho + oh) * Wo + ow) * V, i = (((size_t)p * H + 2 * oh) * W + 2 * ow) * V;
                size_t off[4] = {i, i + V, i + (size_t)W * V, i + (size_t)W * V + V};
                // Candidate j gets the gradient where it won and (a ReLU output) is positive: no
                // gather of the winner, so the lane loop stays vector selects.
                for (int j = 0; j < 4; j++)
                    for (int v = 0; v < V; v++)
                        din[off[j] + v] = arg[o + v] == j && in[off[j] + v] > 0.0f ? dout[o + v] : 0.0f;
            }
}

void ds_maxpool_forward_blocked(float *out, uint8_t *arg, const float *in, int P, int H, int W, int V) {
    switch (V) {
    case 16: pool_fwd_lanes(out, arg, in, P, H, W, 16); break;
    case 8: pool_fwd_lanes(out, arg, in, P, H, W, 8); break;
    default: pool_fwd_lanes(out, arg, in, P, H, W, V);
    }
}

void ds_maxpool_backward_blocked(float *din, const float *dout, const uint8_t *arg, const float *in,
                                 int P, int H, int W, int V) {
    switch (V) {
    case 16: pool_bwd_lanes(din, dout, arg, in, P, H, W, 16); break;
    case 8: pool_bwd_lanes(din, dout, arg, in, P, H, W, 8); break;
    default: pool_bwd_lanes(din, dout, arg, in, P, H, W, V);
    }
}

void ds_fc_forward(float *out, const float *in, const float *w, const float *b, int B, int NI, int NO,
                   int relu) {
    // out [B, NO] = in [B, NI] @ w^T [NI, NO] + b
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, NO, NI, 1.0f, in, NI, w, NI, 0.0f, out, NO);
    for (int i = 0; i < B; i++) {
        float *row = out + (size_t)i * NO;
        for (int o = 0; o < NO; o++) row[o] = relu && row[o] + b[o] < 0.0f ? 0.0f : row[o] + b[o];
    }
}

void ds_fc_backward(float *din, float *dw, float *db, const float *dout, const float *in,
                    const float *w, int B, int NI, int NO) {
    if (dw) {
        // dw [NO, NI] += dout^T [NO, B] @ in [B, NI]
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, NO, NI, B, 1.0f, dout, NO, in, NI, 1.0f,
                    dw, NI);
        for (int i = 0; i < B; i++)
            for (int o = 0; o < NO; o++) db[o] += dout[(size_t)i * NO + o];
    }
    if (din) // din [B, NI] = dout [B, NO] @ w [NO, NI]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, NI, NO, 1.0f, dout, NO, w, NI, 0.0f,
                    din, NI);
}

// ---- Row-by-row fully connected layers: every operation on a row is fixed by NI and NO alone ----

typedef float v8f __attribute__((vector_size(32)));

static inline v8f ld8(const float *p) {
    v8f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static inline void st8(float *p, v8f v) { memcpy(p, &v, sizeof v); }

// r[i] = sum_k a[i][k] w[k] for R = 1 or 4 rows (R a constant after inlining; the rows share
// each weight load): two 8-lane accumulators over 16-wide steps, one 8-wide step, the lanes in a
// fixed tree, then the scalar tail. The same operations for every row, whatever R.
static inline void dot_rows(float *r, const float *restrict a, size_t lda, const float *restrict w, int n,
                            int R) {
    v8f s0[4] = {{0}}, s1[4] = {{0}};
    int k = 0;
    for (; k + 16 <= n; k += 16) {
        v8f w0 = ld8(w + k), w1 = ld8(w + k + 8);
        for (int i = 0; i < R; i++) {
            s0[i] += ld8(a + i * lda + k) * w0;
            s1[i] += ld8(a + i * lda + k + 8) * w1;
        }
    }
    int k8 = k + 8 <= n;
    if (k8)
        for (int i = 0; i < R; i++) s0[i] += ld8(a + i * lda + k) * ld8(w + k);
    for (int i = 0; i < R; i++) {
        v8f t8 = s0[i] + s1[i];
        float t = ((t8[0] + t8[1]) + (t8[2] + t8[3])) + ((t8[4] + t8[5]) + (t8[6] + t8[7]));
        for (int j = k + 8 * k8; j < n; j++) t += a[i * lda + j] * w[j];
        r[i] = t;
    }
}

// out rows [i, i+R) of the row-by-row forward.
static inline void fc_rows(float *out, const float *in, const float *w, const float *b, int i, int NI, int NO,
                           int relu, int R) {
    for (int o = 0; o < NO; o++) {
        float r[4];
        dot_rows(r, in + (size_t)i * NI, (size_t)NI, w + (size_t)o * NI, NI, R);
        for (int j = 0; j < R; j++) {
            float v = r[j] + b[o];
            out[(size_t)(i + j) * NO + o] = relu && v < 0.0f ? 0.0f : v;
        }
    }
}

void ds_fc_forward_rowwise(float *out, const float *in, const float *w, const float *b, int B, int NI,
                           int NO, int relu) {
    int i = 0;
    for (; i + 4 <= B; i += 4) fc_rows(out, in, w, b, i, NI, NO, relu, 4);
    for (; i < B; i++) fc_rows(out, in, w, b, i, NI, NO, relu, 1);
}

// din [R,NI] = dout [R,NO] @ w [NO,NI] for R = 1 or 4 rows (R a constant after inlining).
static inline void din_rows(float *restrict din, const float *restrict dout, const float *restrict w, int NI,
                            int NO, int R) {
    int k = 0;
    for (; k + 32 <= NI; k += 32) {
        v8f a[4][4] = {{{0}}};
        for (int o = 0; o < NO; o++) {
            const float *wr = w + (size_t)o * NI + k;
            v8f w0 = ld8(wr), w1 = ld8(wr + 8), w2 = ld8(wr + 16), w3 = ld8(wr + 24);
            for (int r = 0; r < R; r++) {
                float g = dout[(size_t)r * NO + o];
                v8f go = {g, g, g, g, g, g, g, g};
                a[r][0] += go * w0, a[r][1] += go * w1, a[r][2] += go * w2, a[r][3] += go * w3;
            }
        }
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) st8(din + (size_t)r * NI + k + 8 * q, a[r][q]);
    }
    for (; k < NI; k++)
        for (int r = 0; r < R; r++) {
            float a = 0.0f;
            for (int o = 0; o < NO; o++) a += dout[(size_t)r * NO + o] * w[(size_t)o * NI + k];
            din[(size_t)r * NI + k] = a;
        }
}

void ds_fc_backward_rowwise(float *din, float *dw, float *db, const float *dout, const float *in,
                            const float *w, int B, int NI, int NO) {
    if (dw) // dw[o][k] += dout[i][o] in[i][k] and db[o] += dout[i][o], rows i in order
        for (int o = 0; o < NO; o++) {
            float *restrict row = dw + (size_t)o * NI;
            for (int i = 0; i < B; i++) {
                float g = dout[(size_t)i * NO + o];
                const float *restrict x = in + (size_t)i * NI;
                for (int k = 0; k < NI; k++) row[k] += g * x[k];
                db[o] += g;
            }
        }
    if (din) { // din[i][k] = sum_o dout[i][o] w[o][k], o in order: 32 columns of 4 rows (or of
               // one) at a time in registers, the same operations on each row either way
        int i = 0;
        for (; i + 4 <= B; i += 4) din_rows(din + (size_t)i * NI, dout + (size_t)i * NO, w, NI, NO, 4);
        for (; i < B; i++) din_rows(din + (size_t)i * NI, dout + (size_t)i * NO, w, NI, NO, 1);
    }
}

void ds_dropout_mask(float *mask, size_t n, float p, uint64_t seed, uint64_t step, uint64_t sample) {
    // One stream per (step, sample): the mask of a sample does not depend on which thread or
    // process draws it.
    ds_rng r = ds_rng_stream(seed, ((uint64_t)DS_STREAM_DROPOUT << 56) ^ step, sample);
    float keep = 1.0f / (1.0f - p);
    for (size_t i = 0; i < n; i++) mask[i] = ds_rng_uniform(&r) < p ? 0.0f : keep;
}

void ds_mul_forward(float *x, const float *mask, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] *= mask[i];
}

int ds_argmax(const float *z, int C) {
    int k = 0;
    for (int i = 1; i < C; i++)
        if (z[i] > z[k]) k = i; // first of equal maxima; NaN never wins
    return k;
}

void ds_softmax(float *p, const float *z, int C, float T) {
    float m = z[0] / T;
    for (int i = 1; i < C; i++) m = fmaxf(m, z[i] / T);
    float s = 0.0f;
    for (int i = 0; i < C; i++) s += (p[i] = expf(z[i] / T - m));
    for (int i = 0; i < C; i++) p[i] /= s;
}

double ds_softmax_xent(float *dz, const float *z, const float *s, int label, int C, float T) {
    // loss = logsumexp(z/T) - sum_i s_i z_i/T, with the max subtracted before exp.
    float m = z[0] / T;
    for (int i = 1; i < C; i++) m = fmaxf(m, z[i] / T);
    double sum = 0.0;
    for (int i = 0; i < C; i++) sum += exp((double)(z[i] / T - m));
    double lse = m + log(sum), loss = 0.0;
    for (int i = 0; i < C; i++) {
        double si = s ? s[i] : (i == label);
        loss += si * (lse - z[i] / T);
        if (dz) dz[i] = (float)((exp((double)(z[i] / T - m)) / sum - si) / T);
    }
    return loss;
}
