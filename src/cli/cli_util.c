// Helpers shared by the sub-commands: numbers from options, models from "FILE[:GROUP]".
#include "ds_cli.h"
#include "ds_error.h"
#include "ds_h5.h"
#include "ds_nn.h"
#include "ds_store.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int ds_cli_engine(const char *name, const char *v) {
    ds_engine_kind k;
    if (ds_engine_kind_parse(v, &k)) return ds_fail_context(DS_EINVAL, name);
    ds_engine_set_default_kind(k);
    return DS_OK;
}

int ds_cli_int(const char *name, const char *v, int lo, int *out) {
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || end == v || *end || x < lo || x > INT_MAX)
        return ds_fail(DS_EINVAL, "%s: '%s' is not an integer >= %d", name, v, lo);
    *out = (int)x;
    return DS_OK;
}

int ds_cli_double(const char *name, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || end == v || *end || !isfinite(x))
        return ds_fail(DS_EINVAL, "%s: '%s' is not a number", name, v);
    *out = x;
    return DS_OK;
}

// "FILE[:GROUP]": the whole string if it names a file, else split at the last ':'.
void ds_cli_split_spec(const char *spec, char *file, size_t fcap, char *group, size_t gcap) {
    struct stat st;
    const char *colon = strrchr(spec, ':');
    if (stat(spec, &st) == 0 || !colon) {
        snprintf(file, fcap, "%s", spec);
        group[0] = '\0';
        return;
    }
    snprintf(file, fcap, "%.*s", (int)(colon - spec), spec);
    snprintf(group, gcap, "%s", colon + 1);
}

static herr_t find_model(hid_t loc, const char *name, const H5L_info_t *info, void *data) {
    (void)info;
    size_t len = strlen(name);
    if (len < 5 || strcmp(name + len - 5, "conv1") || (len > 5 && name[len - 6] != '/')) return 0;
    hid_t o = H5Oopen(loc, name, H5P_DEFAULT);
    int is_group = o >= 0 && H5Iget_type(o) == H5I_GROUP;
    if (o >= 0) H5Oclose(o);
    if (!is_group) return 0;
    snprintf(data, 256, "%.*s", len > 5 ? (int)(len - 6) : 1, len > 5 ? name : "/");
    return 1;
}

// The first group of the file that holds a model (a "conv1" sub-group), else "model".
static int default_model_group(const char *path, char *group, size_t cap) {
    hid_t f;
    int rc = ds_h5_open(path, 0, &f);
    if (rc) return rc;
    char found[256] = "";
    if (H5Lvisit(f, H5_INDEX_NAME, H5_ITER_INC, find_model, found) <= 0) snprintf(found, sizeof found, "model");
    H5Fclose(f);
    snprintf(group, cap, "%s", found);
    return DS_OK;
}

int ds_cli_load_model(const char *spec, ds_model *m, char *resolved, size_t cap) {
    char file[700], group[256];
    ds_cli_split_spec(spec, file, sizeof file, group, sizeof group);
    int rc = group[0] ? DS_OK : default_model_group(file, group, sizeof group);
    if (!rc) rc = ds_store_load_model(file, group, m);
    snprintf(resolved, cap, "%s:%s", file, group);
    return rc;
}

void ds_cli_external_temperature(ds_model *m, double T) {
    if (!strcmp(m->role, "external") && T > 0) m->temperature = (float)T;
}
