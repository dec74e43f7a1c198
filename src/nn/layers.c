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
