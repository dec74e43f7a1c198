// Models, checkpoints and soft-label matrices in HDF5 (include/ds_store.h, include/ds_h5.h).
//
// A model group holds conv1..fc3, each with float32 "weight" (conv [out,in,3,3], fc [out,in])
// and "bias" [out], and the attributes temperature, role, epochs, seed, test_accuracy (a group
// with none of them, e.g. exported from PyTorch, loads with the defaults of an external model).
#include "ds_error.h"
#include "ds_h5.h"
#include "ds_store.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

// ---- hid_t level (ds_h5.h) ----

static int weight_dims(int l, hsize_t *d) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    d[0] = (hsize_t)s->out;
    d[1] = (hsize_t)s->in;
    if (!s->k) return 2;
    d[2] = d[3] = (hsize_t)s->k;
    return 4;
}

static int write_layer(hid_t g, int l, const ds_model *m) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    int rc;
    if ((rc = ds_h5_check_finite(DS_ENUMERIC, g, s->name, m->p.w[l], ds_weight_count(l))) ||
        (rc = ds_h5_check_finite(DS_ENUMERIC, g, s->name, m->p.b[l], (size_t)s->out)))
        return rc;
    hid_t lg = H5Gcreate2(g, s->name, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (lg < 0) return ds_h5_fail(DS_EIO, g, s->name, "cannot create layer group");
    hsize_t wd[4], bd[1] = {(hsize_t)s->out};
    int rank = weight_dims(l, wd);
    if (!(rc = ds_h5_write_dataset(lg, "weight", H5T_NATIVE_FLOAT, rank, wd, m->p.w[l], 0)))
        rc = ds_h5_write_dataset(lg, "bias", H5T_NATIVE_FLOAT, 1, bd, m->p.b[l], 0);
    H5Gclose(lg);
    return rc;
}

int ds_h5_write_model(hid_t loc, const char *group, const ds_model *m) {
    if (!m || !m->mem) return ds_fail(DS_EINVAL, "model %s: no parameters", group ? group : "");
    hid_t g;
    int rc = ds_h5_require_group(loc, group, &g);
    if (rc) return rc;
    for (int l = 0; l < DS_NUM_LAYERS && !rc; l++) rc = write_layer(g, l, m);
    char role[sizeof m->role + 1];
    memcpy(role, m->role, sizeof m->role);
    role[sizeof m->role] = '\0';
    if (!rc) rc = ds_h5_attr_set_double(g, "temperature", (double)m->temperature);
    if (!rc) rc = ds_h5_attr_set_string(g, "role", role);
    if (!rc) rc = ds_h5_attr_set_int64(g, "epochs", m->epochs);
    if (!rc) rc = ds_h5_attr_set_uint64(g, "seed", m->seed);
    if (!rc) rc = ds_h5_attr_set_double(g, "test_accuracy", m->test_accuracy);
    H5Gclose(g);
    return rc;
}

static int read_layer(hid_t g, int l, ds_model *m) {
    const ds_layer_shape *s = &ds_layer_shapes[l];
    if (!ds_h5_exists(g, s->name)) return ds_h5_fail(DS_EFORMAT, g, s->name, "missing layer");
    hid_t lg;
    int rc = ds_h5_open_group(g, s->name, &lg);
    if (rc) return rc;
    hsize_t wd[4], bd[1] = {(hsize_t)s->out};
    int rank = weight_dims(l, wd);
    void *w = m->p.w[l], *b = m->p.b[l];
    rc = ds_h5_read_dataset(lg, "weight", H5T_NATIVE_FLOAT, rank, wd, &w);
    if (!rc) rc = ds_h5_check_finite(DS_EFORMAT, lg, "weight", m->p.w[l], ds_weight_count(l));
    if (!rc) rc = ds_h5_read_dataset(lg, "bias", H5T_NATIVE_FLOAT, 1, bd, &b);
    if (!rc) rc = ds_h5_check_finite(DS_EFORMAT, lg, "bias", m->p.b[l], (size_t)s->out);
    H5Gclose(lg);
    return rc;
}

// No attribute of ours: a model from another tool. Some but not all: one of ours, damaged.
static int is_external(hid_t g) {
    static const char *const names[] = {"temperature", "role", "epochs", "seed", "test_accuracy"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (H5Aexists(g, names[i]) != 0) return 0;
    return 1;
}

static int read_attributes(hid_t g, ds_model *m) {
    double t;
    int64_t epochs;
    char *role = NULL;
    int rc;
    if (is_external(g)) { // ds_model_alloc's defaults (T=1, epochs 0, accuracy -1), role external
        strcpy(m->role, "external");
        return DS_OK;
    }
    if ((rc = ds_h5_attr_get_double(g, "temperature", &t)) ||
        (rc = ds_h5_attr_get_string(g, "role", &role)) ||
        (rc = ds_h5_attr_get_int64(g, "epochs", &epochs)) ||
        (rc = ds_h5_attr_get_uint64(g, "seed", &m->seed)) ||
        (rc = ds_h5_attr_get_double(g, "test_accuracy", &m->test_accuracy)))
        goto out;
    char where[1024];
    ds_h5_where(g, NULL, where, sizeof where);
    if (!(t > 0) || t > 1e30) { // NaN fails the first test
        rc = ds_fail(DS_EFORMAT, "%s: attribute temperature: %g is not a positive number", where, t);
    } else if (strlen(role) >= sizeof m->role) {
        rc = ds_fail(DS_EFORMAT, "%s: attribute role: longer than %zu characters", where,
                     sizeof m->role - 1);
    } else if (epochs < 0 || epochs > INT_MAX) {
        rc = ds_fail(DS_EFORMAT, "%s: attribute epochs: %lld out of range", where,
                     (long long)epochs);
    } else {
        m->temperature = (float)t;
        memset(m->role, 0, sizeof m->role);
        memcpy(m->role, role, strlen(role));
        m->epochs = (int)epochs;
    }
out:
    free(role);
    return rc;
}

int ds_h5_read_model(hid_t loc, const char *group, ds_model *m) {
    int rc = ds_model_alloc(m);
    if (rc) return rc;
    hid_t g;
    rc = ds_h5_open_group(loc, group, &g);
    for (int l = 0; l < DS_NUM_LAYERS && !rc; l++) rc = read_layer(g, l, m);
    if (!rc) rc = read_attributes(g, m);
    if (g >= 0) H5Gclose(g);
    if (rc) ds_model_free(m);
    return rc;
}

int ds_h5_copy_model(const char *src_path, const char *src_group, hid_t dst,
                     const char *dst_group) {
    ds_model m;
    int rc = ds_store_load_model(src_path, src_group, &m);
    if (rc) return rc;
    rc = ds_h5_write_model(dst, dst_group, &m);
    ds_model_free(&m);
    return rc;
}

// ---- File level (ds_store.h) ----

int ds_store_save_models(const char *path, int n, const char *const *groups,
                         const ds_model *const *models, const ds_provenance *prov) {
    if (n < 1) return ds_fail(DS_EINVAL, "%s: no models to save", path);
    for (int i = 0; i < n; i++)
        if (!groups[i] || !*groups[i] || !models[i] || !models[i]->mem)
            return ds_fail(DS_EINVAL, "%s: model %d has no group name or parameters", path, i);
    ds_h5_writer w;
    int rc = ds_h5_begin(&w, path, prov);
    if (rc) return rc;
    for (int i = 0; i < n && !rc; i++) rc = ds_h5_write_model(w.file, groups[i], models[i]);
    if (rc) {
        ds_h5_abandon(&w);
        return rc;
    }
    return ds_h5_commit(&w);
}

int ds_store_save_model(const char *path, const char *group, const ds_model *m,
                        const ds_provenance *prov) {
    return ds_store_save_models(path, 1, &group, &m, prov);
}

int ds_store_load_model(const char *path, const char *group, ds_model *m) {
    memset(m, 0, sizeof *m); // nothing to free on any failure
    hid_t f;
    int rc = ds_h5_open(path, 0, &f);
    if (rc) return rc;
    rc = ds_h5_read_model(f, group, m);
    H5Fclose(f);
    return rc;
}

// CRC-32 of what a resumed training trusts: weights, velocity, epochs, seed and temperature. A
// bit flip in the data of a checkpoint leaves a readable HDF5 file; this catches it.
static uint64_t checkpoint_crc(const ds_model *m, const float *velocity) {
    size_t n = ds_params_count() * sizeof(float);
    int64_t epochs = m->epochs;
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < n; off += 1u << 30) { // crc32 takes a uInt length
        size_t len = n - off < (1u << 30) ? n - off : 1u << 30;
        crc = crc32(crc, (const Bytef *)m->mem + off, (uInt)len);
        crc = crc32(crc, (const Bytef *)velocity + off, (uInt)len);
    }
    crc = crc32(crc, (const Bytef *)&epochs, sizeof epochs);
    crc = crc32(crc, (const Bytef *)&m->seed, sizeof m->seed);
    crc = crc32(crc, (const Bytef *)&m->temperature, sizeof m->temperature);
    return (uint64_t)crc;
}

int ds_store_save_checkpoint(const char *path, const ds_model *m, const float *velocity,
                             const ds_provenance *prov) {
    if (!m || !m->mem || !velocity)
        return ds_fail(DS_EINVAL, "%s: checkpoint without model or velocity", path);
    ds_h5_writer w;
    int rc = ds_h5_begin(&w, path, prov);
    if (rc) return rc;
    hsize_t n = (hsize_t)ds_params_count();
    if ((rc = ds_h5_write_model(w.file, "model", m)) ||
        (rc = ds_h5_check_finite(DS_ENUMERIC, w.file, "velocity", velocity, (size_t)n)) ||
        (rc = ds_h5_write_dataset(w.file, "velocity", H5T_NATIVE_FLOAT, 1, &n, velocity, 0)) ||
        (rc = ds_h5_attr_set_uint64(w.file, "checksum", checkpoint_crc(m, velocity)))) {
        ds_h5_abandon(&w);
        return rc;
    }
    return ds_h5_commit(&w);
}

int ds_store_load_checkpoint(const char *path, ds_model *m, float *velocity) {
    hid_t f;
    int rc = ds_h5_open(path, 0, &f);
    if (rc) return rc;
    rc = ds_h5_read_model(f, "model", m);
    if (!rc) {
        hsize_t n = (hsize_t)ds_params_count();
        void *v = velocity;
        uint64_t crc = 0;
        // Checkpoints written before checksums existed have none: they load as before.
        int has_crc = H5Aexists(f, "checksum") > 0;
        if ((rc = ds_h5_read_dataset(f, "velocity", H5T_NATIVE_FLOAT, 1, &n, &v)) ||
            (rc = ds_h5_check_finite(DS_EFORMAT, f, "velocity", velocity, (size_t)n)) ||
            (has_crc && (rc = ds_h5_attr_get_uint64(f, "checksum", &crc))))
            ds_model_free(m);
        else if (has_crc && crc != checkpoint_crc(m, velocity)) {
            rc = ds_fail(DS_EFORMAT, "%s: checksum mismatch: the checkpoint is damaged", path);
            ds_model_free(m);
        }
    }
    H5Fclose(f);
    return rc;
}

int ds_store_save_matrix(const char *path, const char *name, const float *data, int rows, int cols,
                         const ds_provenance *prov) {
    if (!name || !*name || rows < 0 || cols < 1 || (rows > 0 && !data))
        return ds_fail(DS_EINVAL, "%s: bad matrix %s [%d,%d]", path, name ? name : "", rows, cols);
    ds_h5_writer w;
    int rc = ds_h5_begin(&w, path, prov);
    if (rc) return rc;
    hsize_t d[2] = {(hsize_t)rows, (hsize_t)cols};
    if ((rc = ds_h5_check_finite(DS_ENUMERIC, w.file, name, data, (size_t)rows * cols)) ||
        (rc = ds_h5_write_dataset(w.file, name, H5T_NATIVE_FLOAT, 2, d, data, 1))) {
        ds_h5_abandon(&w);
        return rc;
    }
    return ds_h5_commit(&w);
}

int ds_store_load_matrix(const char *path, const char *name, float **data, int *rows, int cols) {
    *data = NULL;
    *rows = 0;
    if (!name || !*name || cols < 0) return ds_fail(DS_EINVAL, "%s: bad matrix request", path);
    hid_t f;
    int rc = ds_h5_open(path, 0, &f);
    if (rc) return rc;
    hsize_t d[2] = {0, (hsize_t)cols};
    void *buf = NULL;
    rc = ds_h5_read_dataset(f, name, H5T_NATIVE_FLOAT, 2, d, &buf);
    if (!rc && d[0] * d[1] > (hsize_t)INT_MAX)
        rc = ds_h5_fail(DS_EFORMAT, f, name, "too large (%llu x %llu)", (unsigned long long)d[0],
                        (unsigned long long)d[1]);
    if (!rc) rc = ds_h5_check_finite(DS_EFORMAT, f, name, buf, (size_t)(d[0] * d[1]));
    H5Fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    *data = buf;
    *rows = (int)d[0];
    return DS_OK;
}
