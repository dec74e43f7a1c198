// Provenance (ds_store.h, ds_h5.h): the code and library versions and the root attributes
// every HDF5 file written by distill_sweep carries. The only place that asks MPI and OpenBLAS
// for their versions, so the HDF5 helpers do not depend on either.
#include "ds_h5.h"
#include "ds_error.h"
#include "ds_nn.h"
#include "ds_store.h"

#include <cblas.h>
#include <mpi.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern const char ds_build_version[]; // build/version.c, written by the Makefile

const char *ds_code_version(void) { return ds_build_version[0] ? ds_build_version : "unknown"; }

// Appends the first line of s to out (cap bytes in all).
static void append_line(char *out, size_t cap, const char *sep, const char *s) {
    size_t len = strlen(out);
    if (len >= cap) return;
    int n = (int)strcspn(s, "\r\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == ',')) n--;
    snprintf(out + len, cap - len, "%s%.*s", len ? sep : "", n, s);
}

void ds_library_versions(char *out, size_t cap) {
    if (!cap) return;
    out[0] = '\0';
    unsigned maj = 0, min = 0, rel = 0;
    char buf[MPI_MAX_LIBRARY_VERSION_STRING + 64];
    H5get_libversion(&maj, &min, &rel);
    snprintf(buf, sizeof buf, "HDF5 %u.%u.%u", maj, min, rel);
    append_line(out, cap, ", ", buf);
    const char *blas = openblas_get_config();
    append_line(out, cap, ", ", blas ? blas : "OpenBLAS (unknown)");
    ds_onednn_version(buf, sizeof buf);
    append_line(out, cap, ", ", buf);
    int len = 0; // MPI_Get_library_version may be called before MPI_Init
    if (MPI_Get_library_version(buf, &len) == MPI_SUCCESS && len > 0) {
        buf[len < (int)sizeof buf ? len : (int)sizeof buf - 1] = '\0';
        append_line(out, cap, ", ", buf);
    }
}

int ds_h5_write_provenance(hid_t file, const ds_provenance *prov) {
    static const ds_provenance none = {"", NULL, 0, ""};
    if (!prov) prov = &none;
    char host[256] = "unknown", libs[1024], utc[32] = "unknown";
    if (gethostname(host, sizeof host) != 0) snprintf(host, sizeof host, "unknown");
    host[sizeof host - 1] = '\0';
    ds_library_versions(libs, sizeof libs);
    time_t now = time(NULL);
    struct tm tm;
    if (gmtime_r(&now, &tm)) strftime(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
    const char *code = prov->code_version && *prov->code_version ? prov->code_version
                                                                  : ds_code_version();
    int rc;
    if ((rc = ds_h5_attr_set_string(file, "job_text", prov->job_text ? prov->job_text : "")) ||
        (rc = ds_h5_attr_set_string(file, "code_version", code)) ||
        (rc = ds_h5_attr_set_string(file, "engine", ds_engine_kind_name(ds_engine_default_kind()))) ||
        (rc = ds_h5_attr_set_uint64(file, "seed", prov->seed)) ||
        (rc = ds_h5_attr_set_string(file, "task", prov->task ? prov->task : "")) ||
        (rc = ds_h5_attr_set_string(file, "host", host)) ||
        (rc = ds_h5_attr_set_string(file, "library_versions", libs)) ||
        (rc = ds_h5_attr_set_string(file, "created_utc", utc)))
        return rc;
    return DS_OK;
}
