// The merged HDF5 files of a run: weights.h5 (every model), soft_labels.h5 (every teacher's soft
// labels) and adversarial.h5 (every attack group's records in sample order; with an ε list
// ε-major, each ε's records in sample order), each written through the atomic ds_h5 writer under
// its staged name (reduce_internal.h).
#include "ds_error.h"
#include "ds_h5.h"
#include "ds_nn.h"
#include "reduce_internal.h"

#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

// ---- weights.h5 ----

// Copies every trained model (warmstart, baseline, teachers, students) into its group, with its
// attributes, and notes its test accuracy.
int reduce_weights(reducer *r) {
    char path[1200], src[1200];
    int rc = reduce_stage(r, "weights.h5", path, sizeof path);
    if (rc) return rc;
    ds_h5_writer w;
    if ((rc = ds_h5_begin(&w, path, &r->prov))) return rc;
    for (int i = 0; i < r->plan.ntasks && !rc; i++) {
        const ds_task *t = &r->plan.tasks[i];
        if (t->kind != DS_TASK_TRAIN) continue;
        ds_plan_task_path(&r->plan, i, r->run_dir, src, sizeof src);
        if ((rc = ds_h5_copy_model(src, t->model, w.file, t->model))) break;
        hid_t g;
        if ((rc = ds_h5_open_group(w.file, t->model, &g))) break;
        char *role = NULL;
        rc = ds_h5_attr_get_double(g, "test_accuracy", &r->test_accuracy[i]);
        if (!rc) rc = ds_h5_attr_get_string(g, "role", &role);
        if (!rc && strcmp(role, ds_role_name(t->role)))
            rc = ds_fail(DS_EFORMAT, "%s: %s: role '%s', but the plan trains a %s there", src,
                         t->model, role, ds_role_name(t->role));
        free(role);
        H5Gclose(g);
    }
    if (rc) {
        ds_h5_abandon(&w);
        return rc;
    }
    reduce_staged_written(r, "weights.h5");
    return ds_h5_commit(&w);
}

// ---- soft_labels.h5 ----

int reduce_soft_labels(reducer *r) {
    char path[1200], src[1200];
    int rc = reduce_stage(r, "soft_labels.h5", path, sizeof path);
    if (rc) return rc;
    ds_h5_writer w;
    if ((rc = ds_h5_begin(&w, path, &r->prov))) return rc;
    for (int i = 0; i < r->plan.ntasks && !rc; i++) {
        const ds_task *t = &r->plan.tasks[i];
        if (t->kind != DS_TASK_SOFT) continue;
        ds_plan_task_path(&r->plan, i, r->run_dir, src, sizeof src);
        float *soft = NULL;
        int rows = 0;
        if ((rc = ds_store_load_matrix(src, "soft_labels", &soft, &rows, DS_CLASSES))) break;
        if (rows != r->plan.train_n)
            rc = ds_fail(DS_EFORMAT, "%s: soft_labels: %d rows for %d training samples", src,
                         rows, r->plan.train_n);
        // "T100", with several seeds "s2/T100" (ds_plan_rep_name).
        char tn[32], name[DS_JOB_NAME];
        ds_temp_name(t->temperature, tn, sizeof tn);
        ds_plan_rep_name(&r->plan, t->rep, tn, name, sizeof name);
        hsize_t dims[2] = {(hsize_t)rows, DS_CLASSES};
        if (!rc) rc = ds_h5_write_dataset(w.file, name, H5T_NATIVE_FLOAT, 2, dims, soft, 1);
        free(soft);
        if (rc) break;
        hid_t d = H5Dopen2(w.file, name, H5P_DEFAULT);
        if (d < 0) {
            rc = ds_h5_fail(DS_EIO, w.file, name, "cannot open dataset");
            break;
        }
        rc = ds_h5_attr_set_double(d, "temperature", t->temperature);
        if (!rc) rc = ds_h5_attr_set_string(d, "teacher", t->model);
        H5Dclose(d);
    }
    if (rc) {
        ds_h5_abandon(&w);
        return rc;
    }
    reduce_staged_written(r, "soft_labels.h5");
    return ds_h5_commit(&w);
}

// ---- adversarial.h5 ----

// The record layout of src/store/attack_results.c (fields named as in ds_attack_record), checked
// against every shard's file type (H5Tequal), so that a change there fails loudly here.
_Static_assert(sizeof(ds_attack_record) == 40,
               "ds_attack_record changed: update record_types in src/reduce/merge.c");

static int record_types(hid_t *mem, hid_t *packed) {
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(ds_attack_record));
    *mem = t;
    *packed = H5I_INVALID_HID;
    if (t < 0) return ds_h5_fail(DS_EIO, -1, NULL, "reduce: cannot make the record type");
    herr_t e = 0;
    e |= H5Tinsert(t, "index", HOFFSET(ds_attack_record, index), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "label", HOFFSET(ds_attack_record, label), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "target", HOFFSET(ds_attack_record, target), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "clean_pred", HOFFSET(ds_attack_record, clean_pred), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "adv_pred", HOFFSET(ds_attack_record, adv_pred), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "success", HOFFSET(ds_attack_record, success), H5T_NATIVE_UINT8);
    e |= H5Tinsert(t, "zero_grad", HOFFSET(ds_attack_record, zero_grad), H5T_NATIVE_UINT8);
    e |= H5Tinsert(t, "iterations", HOFFSET(ds_attack_record, iterations), H5T_NATIVE_INT32);
    e |= H5Tinsert(t, "l0", HOFFSET(ds_attack_record, l0), H5T_NATIVE_FLOAT);
    e |= H5Tinsert(t, "l2", HOFFSET(ds_attack_record, l2), H5T_NATIVE_FLOAT);
    e |= H5Tinsert(t, "linf", HOFFSET(ds_attack_record, linf), H5T_NATIVE_FLOAT);
    if (e >= 0) {
        *packed = H5Tcopy(t);
        if (*packed >= 0 && H5Tpack(*packed) >= 0) return DS_OK;
    }
    int rc = ds_h5_fail(DS_EIO, -1, NULL, "reduce: cannot make the record type");
    if (*packed >= 0) H5Tclose(*packed);
    H5Tclose(t);
    *mem = *packed = H5I_INVALID_HID;
    return rc;
}

// Checks that the records dataset of group `group` in the shard file has the packed record type.
static int check_record_type(const char *path, const char *group, hid_t packed) {
    hid_t f;
    int rc = ds_h5_open(path, 0, &f);
    if (rc) return rc;
    char name[256];
    snprintf(name, sizeof name, "%s/records", group);
    hid_t d = H5Dopen2(f, name, H5P_DEFAULT);
    hid_t t = d >= 0 ? H5Dget_type(d) : H5I_INVALID_HID;
    if (t < 0) rc = ds_h5_fail(DS_EFORMAT, f, name, "cannot read the record type");
    else if (H5Tequal(t, packed) <= 0)
        rc = ds_fail(DS_EFORMAT, "%s: %s: the record fields differ from the reducer's "
                     "(src/reduce/merge.c must follow src/store/attack_results.c)", path, name);
    if (t >= 0) H5Tclose(t);
    if (d >= 0) H5Dclose(d);
    H5Fclose(f);
    return rc;
}

// A shard's set must be the one the plan expects: its attack, parameters, model and samples, and
// records in sample order covering every sample of the shard; with an ε list (slices > 1) so
// is each of its ε-major slices, one record per sample.
static int check_shard(const reducer *r, const ds_task *t, const ds_job_attack *a,
                       const char *path, const ds_attack_set *s, int slices) {
    char model[1200];
    snprintf(model, sizeof model, "%.900s:%.100s", r->plan.tasks[t->model_task].file, t->model);
    if (strcmp(s->attack, ds_attack_kind_name(a->kind)) || strcmp(s->params, a->params))
        return ds_fail(DS_EFORMAT, "%s: %s: holds '%s %s', but the job says '%s %s'", path,
                       a->name, s->attack, s->params, ds_attack_kind_name(a->kind), a->params);
    if (strcmp(s->model, model))
        return ds_fail(DS_EFORMAT, "%s: %s: attacked model '%s', expected '%s'", path, a->name,
                       s->model, model);
    if (s->first != t->first || s->count != t->count)
        return ds_fail(DS_EFORMAT, "%s: %s: samples [%d, %d), expected [%d, %d)", path, a->name,
                       s->first, s->first + s->count, t->first, t->first + t->count);
    if (slices > 1 && s->n_records != slices * t->count)
        return ds_fail(DS_EFORMAT, "%s: %s: %d records, expected %d (%d eps values x %d samples)",
                       path, a->name, s->n_records, slices * t->count, slices, t->count);
    int len = slices > 1 ? t->count : s->n_records;
    for (int e = 0; e < slices; e++) {
        const ds_attack_record *rec = s->records + (size_t)e * (size_t)len;
        int distinct = 0;
        for (int i = 0; i < len; i++) {
            int32_t idx = rec[i].index;
            if (idx < t->first || idx >= t->first + t->count || (i > 0 && idx < rec[i - 1].index))
                return ds_fail(DS_EFORMAT, "%s: %s: record %d: sample %d out of order or outside "
                               "[%d, %d)", path, a->name, e * len + i, (int)idx, t->first,
                               t->first + t->count);
            distinct += i == 0 || idx != rec[i - 1].index;
        }
        if (distinct != t->count)
            return ds_fail(DS_EFORMAT, "%s: %s: records for %d of the %d samples", path, a->name,
                           distinct, t->count);
    }
    return DS_OK;
}

// Appends n rows of n_in floats to the extendible dataset "adversarial" of g (created on first
// use, chunked, shuffle + deflate), which holds *rows rows so far.
static int append_images(hid_t g, const float *x, int n, int n_in, hsize_t *rows) {
    int rc = DS_OK;
    hid_t d = H5I_INVALID_HID, fs = H5I_INVALID_HID, ms = H5I_INVALID_HID;
    if (*rows == 0 && !ds_h5_exists(g, "adversarial")) {
        hsize_t dims[2] = {0, (hsize_t)n_in}, max[2] = {H5S_UNLIMITED, (hsize_t)n_in};
        hsize_t chunk[2] = {(256 * 1024) / (sizeof(float) * (size_t)n_in), (hsize_t)n_in};
        if (chunk[0] < 1) chunk[0] = 1;
        hid_t space = H5Screate_simple(2, dims, max), dcpl = H5Pcreate(H5P_DATASET_CREATE);
        if (space >= 0 && dcpl >= 0 && H5Pset_chunk(dcpl, 2, chunk) >= 0 &&
            H5Pset_shuffle(dcpl) >= 0 &&
            (H5Zfilter_avail(H5Z_FILTER_DEFLATE) <= 0 || H5Pset_deflate(dcpl, 4) >= 0))
            d = H5Dcreate2(g, "adversarial", H5T_NATIVE_FLOAT, space, H5P_DEFAULT, dcpl,
                           H5P_DEFAULT);
        if (d < 0) rc = ds_h5_fail(DS_EIO, g, "adversarial", "cannot create dataset");
        if (dcpl >= 0) H5Pclose(dcpl);
        if (space >= 0) H5Sclose(space);
    } else {
        d = H5Dopen2(g, "adversarial", H5P_DEFAULT);
        if (d < 0) rc = ds_h5_fail(DS_EIO, g, "adversarial", "cannot open dataset");
    }
    if (rc || n == 0) goto out;
    hsize_t size[2] = {*rows + (hsize_t)n, (hsize_t)n_in}, start[2] = {*rows, 0};
    hsize_t count[2] = {(hsize_t)n, (hsize_t)n_in};
    if (H5Dset_extent(d, size) < 0 || (fs = H5Dget_space(d)) < 0 ||
        H5Sselect_hyperslab(fs, H5S_SELECT_SET, start, NULL, count, NULL) < 0 ||
        (ms = H5Screate_simple(2, count, NULL)) < 0 ||
        H5Dwrite(d, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, x) < 0) {
        rc = ds_h5_fail(DS_EIO, g, "adversarial", "cannot append %d images", n);
        goto out;
    }
    *rows += (hsize_t)n;
out:
    if (ms >= 0) H5Sclose(ms);
    if (fs >= 0) H5Sclose(fs);
    if (d >= 0) H5Dclose(d);
    return rc;
}

static int write_records(hid_t g, hid_t mem, hid_t packed, const ds_attack_record *rec, int n) {
    hsize_t dims[1] = {(hsize_t)n};
    hid_t space = H5Screate_simple(1, dims, NULL), dcpl = H5Pcreate(H5P_DATASET_CREATE);
    hid_t d = H5I_INVALID_HID;
    int rc = DS_OK;
    if (space < 0 || dcpl < 0) {
        rc = ds_h5_fail(DS_EIO, g, "records", "cannot make dataspace");
        goto out;
    }
    if (n > 0) {
        hsize_t chunk[1] = {n < 4096 ? (hsize_t)n : 4096};
        if (H5Pset_chunk(dcpl, 1, chunk) < 0 || H5Pset_shuffle(dcpl) < 0 ||
            (H5Zfilter_avail(H5Z_FILTER_DEFLATE) > 0 && H5Pset_deflate(dcpl, 4) < 0)) {
            rc = ds_h5_fail(DS_EIO, g, "records", "cannot set chunking and compression");
            goto out;
        }
    }
    d = H5Dcreate2(g, "records", packed, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    if (d < 0) rc = ds_h5_fail(DS_EIO, g, "records", "cannot create dataset");
    else if (n > 0 && H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, rec) < 0)
        rc = ds_h5_fail(DS_EIO, g, "records", "cannot write dataset");
out:
    if (d >= 0) H5Dclose(d);
    if (dcpl >= 0) H5Pclose(dcpl);
    if (space >= 0) H5Sclose(space);
    return rc;
}

// Every key=value of the params string as its own attribute: integer, number or string.
static int write_param_attributes(hid_t g, const char *params) {
    static const char *const reserved[] = {"attack", "params", "config", "model", "role",
                                           "temperature", "first", "count", "shards"};
    char buf[256];
    snprintf(buf, sizeof buf, "%s", params);
    char *save = NULL;
    for (char *kv = strtok_r(buf, " ", &save); kv; kv = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(kv, '=');
        if (!eq || eq == kv) continue;
        *eq = '\0';
        const char *v = eq + 1;
        int skip = 0;
        for (size_t i = 0; i < sizeof reserved / sizeof *reserved; i++) skip |= !strcmp(kv, reserved[i]);
        if (skip) continue;
        char *end;
        int rc;
        long long iv = strtoll(v, &end, 10);
        if (*v && !*end) {
            rc = ds_h5_attr_set_int64(g, kv, iv);
        } else {
            double dv = strtod(v, &end);
            rc = *v && !*end ? ds_h5_attr_set_double(g, kv, dv) : ds_h5_attr_set_string(g, kv, v);
        }
        if (rc) return rc;
    }
    return DS_OK;
}

static int group_attributes(hid_t g, const ds_attack_group *ag, const ds_job_attack *a,
                            int nshards) {
    int rc = ds_h5_attr_set_string(g, "attack", ds_attack_kind_name(a->kind));
    if (!rc) rc = ds_h5_attr_set_string(g, "params", a->params);
    if (!rc) rc = ds_h5_attr_set_string(g, "config", a->name);
    if (!rc) rc = ds_h5_attr_set_string(g, "model", ag->model);
    if (!rc) rc = ds_h5_attr_set_string(g, "role", ds_role_name(ag->role));
    if (!rc) rc = ds_h5_attr_set_double(g, "temperature", ag->temperature);
    if (!rc) rc = ds_h5_attr_set_int64(g, "first", ag->first);
    if (!rc) rc = ds_h5_attr_set_int64(g, "count", ag->count);
    if (!rc) rc = ds_h5_attr_set_int64(g, "shards", nshards);
    if (!rc) rc = write_param_attributes(g, a->params);
    return rc;
}

// With an ε list (nslices > 1): the shards' records, each ε-major, reordered ε-major over the
// whole group (ε e: [e * count, (e + 1) * count), in sample order). shard_n[k]: records of shard k.
static int eps_major(ds_attack_record **all, size_t n, const int *shard_n, int nshards,
                     int nslices) {
    if (n == 0) return DS_OK;
    ds_attack_record *o = malloc(sizeof *o * (n + 1));
    if (!o) return ds_fail(DS_ENOMEM, "reduce: out of memory for %zu records", n);
    size_t at = 0;
    for (int e = 0; e < nslices; e++) {
        size_t from = 0;
        for (int k = 0; k < nshards; k++) {
            size_t len = (size_t)(shard_n[k] / nslices);
            memcpy(o + at, *all + from + (size_t)e * len, len * sizeof *o);
            at += len;
            from += (size_t)shard_n[k];
        }
    }
    free(*all);
    *all = o;
    return DS_OK;
}

// The images of a group with an ε list, in the order of eps_major: each shard read once per ε.
static int eps_major_images(reducer *r, const ds_attack_group *ag, const ds_job_attack *a,
                            hid_t g, int nslices, hsize_t *img_rows) {
    char path[1200];
    int rc = DS_OK;
    for (int e = 0; e < nslices && !rc; e++)
        for (int k = 0; k < ag->ntasks && !rc; k++) {
            const ds_task *t = &r->plan.tasks[ag->first_task + k];
            ds_plan_task_path(&r->plan, t->index, r->run_dir, path, sizeof path);
            ds_attack_set s;
            if ((rc = ds_attack_results_load(path, a->name, &s))) break;
            if (s.images)
                rc = append_images(g, s.images + (size_t)e * (size_t)t->count * (size_t)s.n_in,
                                   t->count, s.n_in, img_rows);
            ds_attack_set_free(&s);
        }
    return rc;
}

// One attack group: its shards' records concatenated (and images appended) into group
// /<model>/<config> of out; its rows' rates computed over them (per ε with an ε list: the
// group's rows are rows[row0 ..]).
static int merge_group(reducer *r, int gi, int row0, hid_t out, hid_t mem, hid_t packed) {
    const ds_attack_group *ag = &r->plan.groups[gi];
    const ds_job_attack *a = &r->job.attacks[ag->attack];
    int n_eps = ds_craft_eps(&a->craft, NULL), nslices = n_eps > 1 ? n_eps : 1;
    reduce_row *row = &r->rows[row0];
    for (int e = 0; e < nslices; e++) {
        reduce_row_setup(&row[e], ag, a, e);
        row[e].n_shards = ag->ntasks;
        row[e].test_accuracy = r->test_accuracy[ag->model_task];
    }
    int *shard_n = calloc((size_t)ag->ntasks + 1, sizeof *shard_n);
    if (!shard_n) return ds_fail(DS_ENOMEM, "%s: out of memory", a->name);
    char gname[2 * DS_JOB_NAME + 2], path[1200];
    snprintf(gname, sizeof gname, "%s/%s", ag->model, a->name);
    hid_t g;
    int rc = ds_h5_require_group(out, gname, &g);
    if (rc) {
        free(shard_n);
        return rc;
    }
    ds_attack_record *all = NULL;
    size_t n = 0, cap = 0;
    hsize_t img_rows = 0;
    int n_in = 0;
    for (int k = 0; k < ag->ntasks && !rc; k++) {
        const ds_task *t = &r->plan.tasks[ag->first_task + k];
        ds_plan_task_path(&r->plan, t->index, r->run_dir, path, sizeof path);
        if (gi == 0 && k == 0 && (rc = check_record_type(path, a->name, packed))) break;
        ds_attack_set s;
        if ((rc = ds_attack_results_load(path, a->name, &s))) break;
        rc = check_shard(r, t, a, path, &s, nslices);
        if (!rc && k > 0 && (s.images != NULL) != row->has_images)
            rc = ds_fail(DS_EFORMAT, "%s: %s: %s adversarial images, unlike the earlier shards",
                         path, a->name, s.images ? "has" : "has no");
        if (!rc && k == 0) {
            row->has_images = s.images != NULL;
            n_in = s.n_in;
        }
        if (!rc && s.images && s.n_in != n_in)
            rc = ds_fail(DS_EFORMAT, "%s: %s: images of %d values, earlier shards have %d", path,
                         a->name, s.n_in, n_in);
        if (!rc && n + (size_t)s.n_records > cap) {
            size_t c = cap ? cap : 1024;
            while (c < n + (size_t)s.n_records) c *= 2;
            ds_attack_record *p = realloc(all, c * sizeof *all);
            if (!p) rc = ds_fail(DS_ENOMEM, "%s: out of memory for %zu records", gname, c);
            else all = p, cap = c;
        }
        if (!rc) {
            if (s.n_records) memcpy(all + n, s.records, (size_t)s.n_records * sizeof *all);
            n += (size_t)s.n_records;
            shard_n[k] = s.n_records;
        }
        if (!rc && s.images && nslices == 1)
            rc = append_images(g, s.images, s.n_records, s.n_in, &img_rows);
        ds_attack_set_free(&s);
    }
    for (int e = 1; e < nslices; e++) row[e].has_images = row[0].has_images;
    if (!rc && n > (size_t)INT32_MAX) rc = ds_fail(DS_EINVAL, "%s: too many records", gname);
    if (!rc && nslices > 1) rc = eps_major(&all, n, shard_n, ag->ntasks, nslices);
    if (!rc && nslices > 1 && row->has_images)
        rc = eps_major_images(r, ag, a, g, nslices, &img_rows);
    // The rows' rates: all records, or slice e of the ε-major records (one per sample).
    for (int e = 0; e < nslices && !rc; e++)
        rc = nslices > 1 ? reduce_row_records(&row[e], all + (size_t)e * (size_t)ag->count,
                                              ag->count)
                         : reduce_row_records(row, all, (int)n);
    if (!rc) rc = write_records(g, mem, packed, all, (int)n);
    if (!rc) rc = group_attributes(g, ag, a, ag->ntasks);
    free(all);
    free(shard_n);
    H5Gclose(g);
    return rc;
}

int reduce_adversarial(reducer *r) {
    char path[1200];
    int rc = reduce_stage(r, "adversarial.h5", path, sizeof path);
    if (rc) return rc;
    hid_t mem, packed;
    if ((rc = record_types(&mem, &packed))) return rc;
    ds_h5_writer w;
    if ((rc = ds_h5_begin(&w, path, &r->prov))) goto out;
    for (int gi = 0, row0 = 0; gi < r->plan.ngroups && !rc; gi++) {
        rc = merge_group(r, gi, row0, w.file, mem, packed);
        int k = ds_craft_eps(&r->job.attacks[r->plan.groups[gi].attack].craft, NULL);
        row0 += k > 1 ? k : 1;
    }
    if (rc) {
        ds_h5_abandon(&w);
        goto out;
    }
    reduce_staged_written(r, "adversarial.h5");
    rc = ds_h5_commit(&w);
out:
    H5Tclose(packed);
    H5Tclose(mem);
    return rc;
}
