// One crafting configuration (ds_craft): the kind's settings behind one set of functions, so that
// a job, the sweep's tasks and `distill_sweep attack` build, check, run and name an attack alike.
#include "attack_internal.h"
#include "ds_error.h"

#include <stdio.h>

const char *ds_attack_kind_name(ds_attack_kind k) {
    static const char *const names[DS_NKINDS] = {"fgsm", "jsma", "cw-l2", "transfer", "pgd", "square"};
    return (unsigned)k < DS_NKINDS ? names[k] : "?";
}

int ds_craft_default(ds_craft *c, ds_attack_kind kind) {
    c->kind = kind;
    switch (kind) {
    case DS_KIND_FGSM: ds_fgsm_params_default(&c->fgsm); return DS_OK;
    case DS_KIND_JSMA: ds_jsma_params_default(&c->jsma); return DS_OK;
    case DS_KIND_CW_L2: ds_cw_params_default(&c->cw); return DS_OK;
    // ---- pgd ----
    case DS_KIND_PGD: ds_pgd_params_default(&c->pgd); return DS_OK;
    // ---- square ----
    case DS_KIND_SQUARE: ds_square_params_default(&c->square); return DS_OK;
    default: return ds_fail(DS_EINVAL, "attack kind %d is not a crafting attack", (int)kind);
    }
}

int ds_craft_check(const ds_craft *c) {
    switch (c->kind) {
    case DS_KIND_FGSM: return ds_fgsm_params_check(&c->fgsm);
    case DS_KIND_JSMA: return ds_jsma_params_check(&c->jsma);
    case DS_KIND_CW_L2: return ds_cw_params_check(&c->cw);
    // ---- pgd ----
    case DS_KIND_PGD: return ds_pgd_params_check(&c->pgd);
    // ---- square ----
    case DS_KIND_SQUARE: return ds_square_params_check(&c->square);
    default: return ds_fail(DS_EINVAL, "attack kind %d is not a crafting attack", (int)c->kind);
    }
}

void ds_craft_string(const ds_craft *c, int n_in, char *out, size_t cap) {
    switch (c->kind) {
    case DS_KIND_FGSM: ds_fgsm_params_string(&c->fgsm, out, cap); break;
    case DS_KIND_JSMA: ds_jsma_params_string(&c->jsma, n_in, out, cap); break;
    case DS_KIND_CW_L2: ds_cw_params_string(&c->cw, out, cap); break;
    // ---- pgd ----
    case DS_KIND_PGD: ds_pgd_params_string(&c->pgd, out, cap); break;
    // ---- square ----
    case DS_KIND_SQUARE: ds_square_params_string(&c->square, out, cap); break;
    default: snprintf(out, cap, "?");
    }
}

const ds_numerics *ds_craft_numerics(const ds_craft *c) {
    switch (c->kind) {
    case DS_KIND_FGSM: return &c->fgsm.num;
    case DS_KIND_JSMA: return &c->jsma.num;
    // ---- pgd ----
    case DS_KIND_PGD: return &c->pgd.num;
    default: return NULL;
    }
}

ds_denormals ds_craft_denormals(const ds_craft *c) {
    if (c->kind == DS_KIND_SQUARE) return c->square.denormals; // no gradient: denormals only
    const ds_numerics *n = ds_craft_numerics(c);
    return n ? n->denormals : c->cw.denormals;
}

// The eps list of the kinds that have one (records eps-major); *n = NULL for the others.
static float *eps_list(ds_craft *c, int **n) {
    switch (c->kind) {
    case DS_KIND_FGSM: *n = &c->fgsm.n_eps; return c->fgsm.eps;
    // ---- pgd ----
    case DS_KIND_PGD: *n = &c->pgd.n_eps; return c->pgd.eps;
    case DS_KIND_SQUARE: *n = &c->square.n_eps; return c->square.eps;
    default: *n = NULL; return NULL;
    }
}

int ds_craft_eps(const ds_craft *c, const float **eps) {
    int *n;
    const float *list = eps_list((ds_craft *)c, &n); // read only
    if (eps) *eps = list;
    return n ? *n : 0;
}

void ds_craft_select_eps(ds_craft *c, int e) {
    int *n;
    float *list = eps_list(c, &n);
    if (!n || e < 0 || e >= *n) return;
    list[0] = list[e];
    *n = 1;
}

int ds_craft_count(const ds_classifier *cl, const ds_craft *c, int n) {
    switch (c->kind) {
    case DS_KIND_FGSM: return ds_fgsm_count(&c->fgsm, n);
    case DS_KIND_JSMA: return ds_jsma_count(cl, n);
    // ---- pgd ----
    case DS_KIND_PGD: return ds_pgd_count(&c->pgd, n);
    // ---- square ----
    case DS_KIND_SQUARE: return ds_square_count(&c->square, n);
    default: return ds_cw_count(cl, &c->cw, n);
    }
}

int ds_craft_run(const ds_classifier *cl, const ds_craft *c, const float *x, const uint8_t *labels,
                 int n, int32_t first_index, ds_attack_record *rec, float *x_adv) {
    switch (c->kind) {
    case DS_KIND_FGSM: return ds_fgsm(cl, &c->fgsm, x, labels, n, first_index, rec, x_adv);
    case DS_KIND_JSMA: return ds_jsma(cl, &c->jsma, x, labels, n, first_index, rec, x_adv);
    case DS_KIND_CW_L2: return ds_cw_l2(cl, &c->cw, x, labels, n, first_index, rec, x_adv);
    // ---- pgd ----
    case DS_KIND_PGD: return ds_pgd(cl, &c->pgd, x, labels, n, first_index, rec, x_adv);
    // ---- square ----
    case DS_KIND_SQUARE: return ds_square(cl, &c->square, x, labels, n, first_index, rec, x_adv);
    default: return ds_fail(DS_EINVAL, "attack kind %d is not a crafting attack", (int)c->kind);
    }
}
