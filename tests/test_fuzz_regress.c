// Replays the fuzzers' seed corpora (tests/fuzz/corpus/<target>/) and every saved finding
// (tests/fuzz/regress/<target>/) through the fuzz entry points (tests/fuzz/entry.h): each file
// must load or fail cleanly (a DS_E* code and a one-line message naming the file), never crash.
// Seeds must load as what they are. Run from the repository root (as 'make check' does), or
// set DS_FUZZ_DIR to the tests/fuzz folder.
#include "fuzz/entry.c"
#include "testutil.h"

#include <dirent.h>

typedef int (*entry_fn)(const uint8_t *, size_t);

static const char *fuzz_dir(void) {
    const char *d = getenv("DS_FUZZ_DIR");
    return d && *d ? d : "tests/fuzz";
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: cannot open", path);
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    size_t got;
    while ((got = fread(buf + len, 1, cap - len, f)) > 0) {
        len += got;
        if (len == cap) {
            buf = realloc(buf, cap *= 2);
            ck_assert_ptr_nonnull(buf);
        }
    }
    fclose(f);
    *n = len;
    return buf;
}

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

// Runs every regular file of <fuzz_dir>/<kind>/<target> through fn; returns how many ran.
// Seeds (kind "corpus") must load as something (a non-zero result).
static int replay(const char *kind, const char *target, entry_fn fn) {
    char dirpath[1024];
    snprintf(dirpath, sizeof dirpath, "%s/%s/%s", fuzz_dir(), kind, target);
    struct dirent **names;
    int k = scandir(dirpath, &names, NULL, by_name);
    if (k < 0) return 0; // no findings yet
    int ran = 0;
    for (int i = 0; i < k; i++) {
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", dirpath, names[i]->d_name);
        free(names[i]);
        if (path[strlen(path) - 1] == '.' || strstr(path, "/README")) continue;
        size_t n;
        uint8_t *data = slurp(path, &n);
        int r = fn(data, n);
        free(data);
        ck_assert_msg(r >= 0, "%s: %s", path, fuzz_why());
        if (!strcmp(kind, "corpus"))
            ck_assert_msg(r != 0, "%s: a seed that nothing loads", path);
        ran++;
    }
    free(names);
    return ran;
}

START_TEST(test_idx) {
    ck_assert_int_gt(replay("corpus", "idx", fuzz_idx), 0);
    replay("regress", "idx", fuzz_idx);
}
END_TEST

START_TEST(test_job) {
    ck_assert_int_gt(replay("corpus", "job", fuzz_job), 0);
    replay("regress", "job", fuzz_job);
}
END_TEST

START_TEST(test_h5) {
    ck_assert_int_gt(replay("corpus", "h5", fuzz_h5), 0);
    replay("regress", "h5", fuzz_h5);
}
END_TEST

// The seeds load as what they are, through both the raw and the gzip path.
static int result_of(const char *target, const char *name, entry_fn fn) {
    char path[1024];
    snprintf(path, sizeof path, "%s/corpus/%s/%s", fuzz_dir(), target, name);
    size_t n;
    uint8_t *data = slurp(path, &n);
    int r = fn(data, n);
    free(data);
    ck_assert_msg(r >= 0, "%s: %s", path, fuzz_why());
    return r;
}

START_TEST(test_seeds_load) {
    ck_assert_int_eq(result_of("idx", "images3", fuzz_idx), 1 | 4);
    ck_assert_int_eq(result_of("idx", "labels3", fuzz_idx), 2 | 8);
    ck_assert_int_eq(result_of("idx", "images3.gz", fuzz_idx), 1); // gzip twice: not IDX
    ck_assert_int_eq(result_of("job", "paper.job", fuzz_job), 1 | 2 | 4);
    ck_assert_int_eq(result_of("job", "it.job", fuzz_job), 1 | 2 | 4);
    ck_assert_int_eq(result_of("h5", "model.h5", fuzz_h5), 1);
    ck_assert_int_eq(result_of("h5", "ckpt.h5", fuzz_h5), 2);
    ck_assert_int_eq(result_of("h5", "soft.h5", fuzz_h5), 4);
    ck_assert_int_eq(result_of("h5", "attack.h5", fuzz_h5), 8);
}
END_TEST

// Hand-made malformed inputs: each fails cleanly with a message naming the file.
START_TEST(test_malformed) {
    static const uint8_t empty[1];
    ck_assert_int_eq(fuzz_idx(empty, 0), 0);
    ck_assert_int_eq(fuzz_job(empty, 0), 0);
    ck_assert_int_eq(fuzz_h5(empty, 0), 0);
    static const uint8_t idx_huge[] = {0, 0, 8, 3, 0x00, 0x98, 0x96, 0x80, 0x10, 0, 0x10, 0};
    ck_assert_int_eq(fuzz_idx(idx_huge, sizeof idx_huge), 0);
    static const char nul_job[] = "[run]\nname = x\0[distill]\n";
    ck_assert_int_eq(fuzz_job((const uint8_t *)nul_job, sizeof nul_job - 1), 0);
    static const uint8_t h5_sig[] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n', 0, 0, 0, 0};
    ck_assert_int_eq(fuzz_h5(h5_sig, sizeof h5_sig), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("fuzz_regress");
    TCase *tc = tcase_create("replay");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_idx);
    tcase_add_test(tc, test_job);
    tcase_add_test(tc, test_h5);
    tcase_add_test(tc, test_seeds_load);
    tcase_add_test(tc, test_malformed);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
