// FGSM (Goodfellow et al. 2015): x' = clip(x + eps sign(grad_x L(x, y)), 0, 1), sign(0) = 0.
// One input gradient per sample serves every eps.
#include "attack_internal.h"
#include "ds_error.h"

#include <stdlib.h>

int ds_fgsm_count(const ds_fgsm_params *p, int n) {
    return p->n_eps * n;
}

static float sign_of(float g) {
    return g > 0.0f ? 1.0f : g < 0.0f ? -1.0f : 0.0f; // NaN counts as 0
}

int ds_fgsm(const ds_classifier *c, const ds_fgsm_params *p, const float *x, const uint8_t *labels,
            int n, int32_t first_index, ds_attack_record *rec, float *x_adv) {
    int rc = ds_fgsm_params_check(p);
    if (!rc) rc = dsa_check_inputs("fgsm", c, x, labels, n, rec);
    if (rc) return rc;
    const int D = c->n_in, C = c->n_classes, B = c->max_batch;
    const float T = dsa_temperature(c, p->temperature);
    ds_fpmode fp = dsa_enter(p->num.denormals);
    float *z = malloc(sizeof(float) * B * C);
    float *dz = malloc(sizeof(float) * B * C);
    float *g = malloc(sizeof(float) * B * D);
    float *xa = malloc(sizeof(float) * B * D); // scratch when x_adv is NULL
    int *clean = malloc(sizeof(int) * B);
    if (!z || !dz || !g || !xa || !clean) {
        rc = ds_fail(DS_ENOMEM, "fgsm: out of memory");
        goto done;
    }
    for (int start = 0; start < n; start += B) {
        int nb = n - start < B ? n - start : B;
        const float *xb = x + (size_t)start * D;
        if ((rc = c->forward(c->ctx, xb, nb, z))) goto done;
        for (int i = 0; i < nb; i++) {
            clean[i] = ds_argmax(z + i * C, C);
            int y = p->labels == DS_LABELS_TRUE ? labels[start + i] : clean[i];
            ds_space_loss_dz(p->space, &p->num, z + i * C, C, y, T, dz + i * C);
        }
        if ((rc = c->input_grad(c->ctx, dz, nb, g))) goto done;
        for (int e = 0; e < p->n_eps; e++) {
            float eps = p->eps[e];
            float *xe = x_adv ? x_adv + ((size_t)e * n + start) * D : xa;
            for (size_t k = 0; k < (size_t)nb * D; k++) {
                float v = xb[k] + eps * sign_of(g[k]);
                xe[k] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
            }
            if ((rc = c->forward(c->ctx, xe, nb, z))) goto done;
            for (int i = 0; i < nb; i++) {
                ds_attack_record *r = &rec[(size_t)e * n + start + i];
                const float *gi = g + (size_t)i * D;
                int zero = 1;
                for (int k = 0; k < D && zero; k++) zero = gi[k] == 0.0f;
                r->index = first_index + start + i;
                r->label = labels[start + i];
                r->target = -1;
                r->clean_pred = clean[i];
                r->adv_pred = ds_argmax(z + i * C, C);
                r->success = r->adv_pred != r->label;
                r->zero_grad = (uint8_t)zero;
                r->iterations = 1;
                ds_attack_distortion(r, xb + (size_t)i * D, xe + (size_t)i * D, D);
            }
        }
    }
done:
    ds_fpmode_restore(fp);
    free(z);
    free(dz);
    free(g);
    free(xa);
    free(clean);
    return rc;
}
