// Transfer: adversarial images crafted on one model, evaluated on another.
#include "attack_internal.h"
#include "ds_error.h"

#include <stdlib.h>

int ds_attack_transfer(const ds_classifier *c, const float *x, const float *x_adv,
                       const ds_attack_record *src, int n, int untargeted, ds_denormals denormals,
                       ds_attack_record *out) {
    if (!c || !c->forward || c->n_in < 1 || c->n_classes < 2 || c->max_batch < 1)
        return ds_fail(DS_EINVAL, "transfer: classifier not initialised");
    if (n < 0) return ds_fail(DS_EINVAL, "transfer: negative record count %d", n);
    if (n > 0 && (!x || !x_adv || !src || !out))
        return ds_fail(DS_EINVAL, "transfer: missing images or records");
    for (int i = 0; i < n; i++)
        if (src[i].label < 0 || src[i].label >= c->n_classes || src[i].target >= c->n_classes)
            return ds_fail(DS_EINVAL, "transfer: record %d has label %d, target %d for %d classes", i,
                           src[i].label, src[i].target, c->n_classes);
    const int D = c->n_in, C = c->n_classes, B = c->max_batch;
    float *z = malloc(sizeof(float) * B * C);
    if (!z) return ds_fail(DS_ENOMEM, "transfer: out of memory");
    int rc = DS_OK;
    ds_fpmode fp = dsa_enter(denormals);
    for (int start = 0; start < n && !rc; start += B) {
        int nb = n - start < B ? n - start : B;
        if ((rc = c->forward(c->ctx, x + (size_t)start * D, nb, z))) break;
        for (int i = 0; i < nb; i++) {
            out[start + i] = src[start + i];
            out[start + i].clean_pred = ds_argmax(z + i * C, C);
        }
        if ((rc = c->forward(c->ctx, x_adv + (size_t)start * D, nb, z))) break;
        for (int i = 0; i < nb; i++) {
            ds_attack_record *r = &out[start + i];
            r->adv_pred = ds_argmax(z + i * C, C);
            r->success = (untargeted || r->target < 0) ? r->adv_pred != r->label
                                                        : r->adv_pred == r->target;
            r->zero_grad = 0;
        }
    }
    ds_fpmode_restore(fp);
    free(z);
    return rc;
}
