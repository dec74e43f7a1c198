// Atomic file replacement (ds_atomic.h): the new content or the old, never a part, and no
// temporary left behind on failure.
#include "ds_atomic.h"
#include "ds_error.h"
#include "testutil.h"

#include <sys/stat.h>

static char dir[512], path[600], tmp[610];

static void setup(void) {
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/out.txt", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
}

static void teardown(void) {
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int exists(const char *p) { return access(p, F_OK) == 0; }

static void assert_content(const char *p, const char *want) {
    char got[64] = "";
    FILE *f = fopen(p, "rb");
    ck_assert_ptr_nonnull(f);
    size_t n = fread(got, 1, sizeof got - 1, f);
    fclose(f);
    got[n] = '\0';
    ck_assert_str_eq(got, want);
}

START_TEST(test_write_and_replace) {
    ck_assert_int_eq(ds_atomic_write(path, "one\n", 4), DS_OK);
    assert_content(path, "one\n");
    ck_assert(!exists(tmp));
    tu_write_file(tmp, "stale", 5); // a crash's leftover is replaced, not trusted
    ck_assert_int_eq(ds_atomic_write(path, "two\n", 4), DS_OK);
    assert_content(path, "two\n");
    ck_assert(!exists(tmp));
    ck_assert_int_eq(ds_atomic_write(path, "", 0), DS_OK);
    assert_content(path, "");
}
END_TEST

START_TEST(test_missing_folder) {
    char p[700];
    snprintf(p, sizeof p, "%s/no/such/out.txt", dir);
    ck_assert_int_eq(ds_atomic_write(p, "x", 1), DS_EIO);
    char want[800];
    snprintf(want, sizeof want, "%s.tmp: cannot create: No such file or directory", p);
    ck_assert_str_eq(ds_errmsg(), want);
}
END_TEST

// A full disk: the temporary links to /dev/full. The old file stays, the link is removed.
START_TEST(test_disk_full_keeps_old_file) {
    struct stat st;
    if (stat("/dev/full", &st) != 0 || !S_ISCHR(st.st_mode)) return; // not available here
    ck_assert_int_eq(ds_atomic_write(path, "old\n", 4), DS_OK);
    ck_assert_int_eq(symlink("/dev/full", tmp), 0);
    ck_assert_int_eq(ds_atomic_write(path, "new\n", 4), DS_ENOSPC);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "out.txt.tmp: write failed: No space left on device"));
    ck_assert(!exists(tmp));
    assert_content(path, "old\n");
}
END_TEST

START_TEST(test_commit_staged) {
    char staged[700];
    snprintf(staged, sizeof staged, "%s/.staged", dir);
    ck_assert_int_eq(ds_atomic_write_synced(staged, "staged\n", 7), DS_OK);
    assert_content(staged, "staged\n");
    ck_assert_int_eq(ds_atomic_commit(staged, path), DS_OK);
    ck_assert(!exists(staged));
    assert_content(path, "staged\n");
    // A temporary that does not exist: the error names it, the file in place stays.
    ck_assert_int_eq(ds_atomic_commit(staged, path), DS_EIO);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), ".staged: cannot open to sync: No such file"));
    assert_content(path, "staged\n");
    // A target that is a non-empty folder: the rename fails and the temporary is removed.
    char sub[700], inner[800];
    snprintf(sub, sizeof sub, "%s/sub", dir);
    snprintf(inner, sizeof inner, "%s/x", sub);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    tu_write_file(inner, "x", 1);
    ck_assert_int_eq(ds_atomic_write_synced(staged, "s", 1), DS_OK);
    ck_assert_int_ne(ds_atomic_commit(staged, sub), DS_OK);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), ".staged: cannot rename to "));
    ck_assert(!exists(staged));
    // A file name without a folder: the current folder is synced.
    char cwd[600];
    ck_assert_ptr_nonnull(getcwd(cwd, sizeof cwd));
    ck_assert_int_eq(chdir(dir), 0);
    ck_assert_int_eq(ds_atomic_write("plain.txt", "p", 1), DS_OK);
    ck_assert_int_eq(chdir(cwd), 0);
    snprintf(inner, sizeof inner, "%s/plain.txt", dir);
    assert_content(inner, "p");
}
END_TEST

static Suite *atomic_suite(void) {
    Suite *s = suite_create("atomic");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_write_and_replace);
    tcase_add_test(tc, test_missing_folder);
    tcase_add_test(tc, test_disk_full_keeps_old_file);
    tcase_add_test(tc, test_commit_staged);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(atomic_suite()); }
