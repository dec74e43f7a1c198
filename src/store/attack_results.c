// Attack results in HDF5: per set a group with the compound dataset "records" (fields named as in
// ds_attack_record, packed in the file), optional "adversarial" images float32 [n, n_in] (chunked,
// shuffle + deflate) and the attributes attack, params, model, first, count. Files are written
// atomically through ds_h5_writer (ds_h5.h).
#include "ds_attack.h"
#include "ds_error.h"
#include "ds_h5.h"

#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define RECORD_FIELDS 11

// The memory type of ds_attack_record; *packed: the same fields without padding, for the file.
static hid_t record_type(hid_t *packed) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ds_attack_record));
    if (t < 0) return t;
    H5Tinsert(t, "index", HOFFSET(ds_attack_record, index), H5T_NATIVE_INT32);
    H5Tinsert(t, "label", HOFFSET(ds_attack_record, label), H5T_NATIVE_INT32);
    H5Tinsert(t, "target", HOFFSET(ds_attack_record, target), H5T_NATIVE_INT32);
    H5Tinsert(t, "clean_pred", HOFFSET(ds_attack_record, clean_pred), H5T_NATIVE_INT32);
    H5Tinsert(t, "adv_pred", HOFFSET(ds_attack_record, adv_pred), H5T_NATIVE_INT32);
    H5Tinsert(t, "success", HOFFSET(ds_attack_record, success), H5T_NATIVE_UINT8);
    H5Tinsert(t, "zero_grad", HOFFSET(ds_attack_record, zero_grad), H5T_NATIVE_UINT8);
    H5Tinsert(t, "iterations", HOFFSET(ds_attack_record, iterations), H5T_NATIVE_INT32);
    H5Tinsert(t, "l0", HOFFSET(ds_attack_record, l0), H5T_NATIVE_FLOAT);
    H5Tinsert(t, "l2", HOFFSET(ds_attack_record, l2), H5T_NATIVE_FLOAT);
    H5Tinsert(t, "linf", HOFFSET(ds_attack_record, linf), H5T_NATIVE_FLOAT);
    if (packed) {
        *packed = H5Tcopy(t);
        if (*packed < 0 || H5Tpack(*packed) < 0) {
            H5Tclose(t);
            return -1;
        }
    }
    return t;
}

static int write_records(hid_t g, const ds_attack_set *s) {
    hid_t packed = H5I_INVALID_HID, mem = record_type(&packed);
    hsize_t dims[1] = {(hsize_t)s->n_records};
    hid_t space = H5Screate_simple(1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = H5I_INVALID_HID;
    int rc = DS_OK;
    if (mem < 0 || space < 0 || dcpl < 0) {
        rc = ds_h5_fail(DS_EIO, g, "records", "cannot make the record type");
        goto out;
    }
    if (s->n_records > 0) {
        hsize_t chunk[1] = {s->n_records < 4096 ? (hsize_t)s->n_records : 4096};
        if (H5Pset_chunk(dcpl, 1, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 && H5Pset_deflate(dcpl, 4) < 0)) {
            rc = ds_h5_fail(DS_EIO, g, "records", "cannot set chunking and compression");
            goto out;
        }
    }
    d = H5Dcreate2(g, "records", packed, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) {
        rc = ds_h5_fail(DS_EIO, g, "records", "cannot create dataset");
        goto out;
    }
    if (s->n_records > 0 && H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, s->records) < 0)
        rc = ds_h5_fail(DS_EIO, g, "records", "cannot write dataset");
out:
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    if (packed >= 0) H5Tclose(packed);
    if (mem >= 0) H5Tclose(mem);
    return rc;
}

static int write_set(hid_t file, const ds_attack_set *s) {
    if (s->n_records < 0 || (s->n_records > 0 && !s->records) || (s->images && s->n_in < 1))
        return ds_fail(DS_EINVAL, "attack results: set '%s' is inconsistent", s->group);
    hid_t g;
    int rc = ds_h5_require_group(file, s->group[0] ? s->group : "/", &g);
    if (rc) return rc;
    if (!rc) rc = ds_h5_attr_set_string(g, "attack", s->attack);
    if (!rc) rc = ds_h5_attr_set_string(g, "params", s->params);
    if (!rc) rc = ds_h5_attr_set_string(g, "model", s->model);
    if (!rc) rc = ds_h5_attr_set_int64(g, "first", s->first);
    if (!rc) rc = ds_h5_attr_set_int64(g, "count", s->count);
    if (!rc) rc = write_records(g, s);
    if (!rc && s->images) {
        hsize_t dims[2] = {(hsize_t)s->n_records, (hsize_t)s->n_in};
        rc = ds_h5_write_dataset(g, "adversarial", H5T_NATIVE_FLOAT, 2, dims, s->images, 1);
    }
    H5Gclose(g);
    return rc;
}

int ds_attack_results_save(const char *path, const ds_attack_set *sets, int n_sets,
                           const ds_provenance *prov) {
    if (n_sets < 1 || !sets) return ds_fail(DS_EINVAL, "%s: no attack results to write", path);
    ds_h5_writer w;
    int rc = ds_h5_begin(&w, path, prov);
    if (rc) return rc;
    for (int i = 0; i < n_sets && !rc; i++) rc = write_set(w.file, &sets[i]);
    if (rc) {
        ds_h5_abandon(&w);
        return rc;
    }
    return ds_h5_commit(&w);
}

// ---- Reading ----

typedef struct {
    char found[sizeof(((ds_attack_set *)0)->group)];
} find_ctx;

static herr_t find_records(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    find_ctx *f = data;
    size_t len = strlen(name);
    if (len >= 7 && !strcmp(name + len - 7, "records") && (len == 7 || name[len - 8] == '/')) {
        hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
        int is_dataset = o >= 0 && H5Iget_type(o) == H5I_DATASET;
        if (o >= 0) H5Oclose(o);
        if (is_dataset && len - 7 < sizeof f->found) {
            snprintf(f->found, sizeof f->found, "%.*s", len > 7 ? (int)(len - 8) : 0, name);
            return 1;
        }
    }
    return 0;
}

static int read_records(hid_t g, ds_attack_set *out) {
    hid_t d = H5Dopen2(g, "records", H5P_DEFAULT);
    if (d < 0) return ds_h5_fail(DS_EFORMAT, g, "records", "missing dataset");
    hid_t mem = record_type(NULL), ft = H5Dget_type(d), space = H5Dget_space(d);
    int rc = DS_OK;
    if (mem < 0 || ft < 0 || space < 0 || H5Tget_class(ft) != H5T_COMPOUND ||
        H5Sget_simple_extent_ndims(space) != 1) {
        rc = ds_h5_fail(DS_EFORMAT, g, "records", "not a one-dimensional compound dataset");
        goto out;
    }
    // HDF5 converts members by name and silently leaves missing ones alone: require all of them.
    for (int k = 0; k < RECORD_FIELDS; k++) {
        char *field = H5Tget_member_name(mem, (unsigned)k);
        int missing = H5Tget_member_index(ft, field) < 0;
        if (missing) rc = ds_h5_fail(DS_EFORMAT, g, "records", "missing field '%s'", field);
        H5free_memory(field);
        if (missing) goto out;
    }
    hsize_t n;
    H5Sget_simple_extent_dims(space, &n, NULL);
    // A count the stored bytes cannot hold (a corrupt file) is refused before allocating:
    // unwritten storage holds nothing, deflate expands < 1100:1.
    hsize_t stored = H5Dget_storage_size(d);
    if (n > (hsize_t)INT_MAX || (n > 2048 && n * H5Tget_size(ft) / 1100 > stored)) {
        rc = ds_h5_fail(DS_EFORMAT, g, "records", "%llu records do not fit the %llu bytes stored",
                        (unsigned long long)n, (unsigned long long)stored);
        goto out;
    }
    out->n_records = (int)n;
    out->records = calloc(n ? n : 1, sizeof *out->records);
    if (!out->records) {
        rc = ds_fail(DS_ENOMEM, "attack results: out of memory for %d records", (int)n);
        goto out;
    }
    if (n > 0 && H5Dread(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, out->records) < 0)
        rc = ds_h5_fail(DS_EFORMAT, g, "records", "cannot read dataset");
out:
    if (space >= 0) H5Sclose(space);
    if (ft >= 0) H5Tclose(ft);
    if (mem >= 0) H5Tclose(mem);
    H5Dclose(d);
    return rc;
}

static int read_string_attr(hid_t g, const char *name, char *out, size_t cap) {
    char *v = NULL;
    int rc = ds_h5_attr_get_string(g, name, &v);
    if (!rc) snprintf(out, cap, "%s", v);
    free(v);
    return rc;
}

static int read_set(hid_t g, ds_attack_set *out) {
    int64_t first, count;
    int rc = read_string_attr(g, "attack", out->attack, sizeof out->attack);
    if (!rc) rc = read_string_attr(g, "params", out->params, sizeof out->params);
    if (!rc) rc = read_string_attr(g, "model", out->model, sizeof out->model);
    if (!rc) rc = ds_h5_attr_get_int64(g, "first", &first);
    if (!rc) rc = ds_h5_attr_get_int64(g, "count", &count);
    if (rc) return rc;
    out->first = (int32_t)first;
    out->count = (int32_t)count;
    if ((rc = read_records(g, out))) return rc;
    if (ds_h5_exists(g, "adversarial")) {
        hsize_t dims[2] = {(hsize_t)out->n_records, 0};
        void *img = NULL;
        if ((rc = ds_h5_read_dataset(g, "adversarial", H5T_NATIVE_FLOAT, 2, dims, &img))) return rc;
        out->images = img; // freed with the set
        // One image per record, of at least one pixel (0 rows in dims asked for "any").
        if (dims[0] != (hsize_t)out->n_records || dims[1] < 1 || dims[1] > INT_MAX)
            return ds_h5_fail(DS_EFORMAT, g, "adversarial", "shape [%llu,%llu] for %d records",
                              (unsigned long long)dims[0], (unsigned long long)dims[1],
                              out->n_records);
        out->n_in = (int)dims[1];
    }
    return DS_OK;
}

int ds_attack_results_load(const char *path, const char *group, ds_attack_set *out) {
    memset(out, 0, sizeof *out);
    hid_t file;
    int rc = ds_h5_open(path, 0, &file);
    if (rc) return rc;
    find_ctx f = {""};
    if (group && strlen(group) >= sizeof f.found) {
        H5Fclose(file);
        return ds_fail(DS_EINVAL, "%s: group name longer than %zu characters", path, sizeof f.found - 1);
    } else if (group && *group) {
        snprintf(f.found, sizeof f.found, "%s", group);
    } else if (!ds_h5_exists(file, "records")) {
        herr_t st = H5Lvisit(file, H5_INDEX_NAME, H5_ITER_INC, find_records, &f);
        if (st <= 0) {
            H5Fclose(file);
            return ds_fail(DS_EFORMAT, "%s: no attack results (no group holds 'records')", path);
        }
    }
    hid_t g;
    if (!(rc = ds_h5_open_group(file, f.found[0] ? f.found : "/", &g))) {
        snprintf(out->group, sizeof out->group, "%s", f.found[0] ? f.found : "/");
        rc = read_set(g, out);
        H5Gclose(g);
    }
    H5Fclose(file);
    if (rc) ds_attack_set_free(out);
    return rc;
}

void ds_attack_set_free(ds_attack_set *s) {
    if (!s) return;
    free(s->records);
    free(s->images);
    s->records = NULL;
    s->images = NULL;
    s->n_records = 0;
}
