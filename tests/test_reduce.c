// The reducer on a run folder built here through the library (no training): every task file
// holds known data (random models and soft labels, attack records with known outcomes, images
// for the JSMA groups) and is journaled like the sweep does. The outputs are checked against
// values counted here independently: the exact CSV text, summary.h5's columns, the records and
// images of adversarial.h5 in sample order, bit-identical models and soft labels, the papers'
// lines of summary.md; then determinism, and refusals (missing, unjournaled, changed or
// inconsistent task files) that leave the previous outputs untouched.
#define _GNU_SOURCE // setenv
#include "ds_attack.h"
#include "ds_error.h"
#include "ds_h5.h"
#include "ds_job.h"
#include "ds_plan.h"
#include "ds_reduce.h"
#include "ds_store.h"
#include "ds_filecrc.h"
#include "ds_run.h"
#include "testutil.h"

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>

// ---- The run ----

static const char *JOB_TEXT =
    "[run]\nname = r\nseed = 5\nthreads = 1\n"
    "[data]\ntrain_samples = 6\ntest_samples = 10\n"
    "[train]\nepochs = 1\nwarm_start = 1\nbatch = 2\n"
    "[distill]\ntemperatures = 1 100\n"
    "[attack fgsm]\nkind = fgsm\nmodels = baseline students\nsamples = 10\nshard = 4\n"
    "[attack jsma]\nkind = jsma\nmodels = baseline T100/student\nsamples = 2\nshard = 1\n"
    "[attack transfer]\nkind = transfer\nsource = baseline\ncraft = jsma\nmodels = students\n"
    "samples = 3\nshard = 2\n";
#define TRAIN_N 6
#define TEST_N 10
#define NTASKS 25 // without the reducer: 8 train/soft, fgsm 3x3, jsma 2x2, transfer 2x2

// The summary rows in plan order, with what the generated records add up to.
typedef struct {
    const char *model, *config, *kind, *params;
    double T;
    int n, successes, correct, zero_grad;
    ds_attack_record *rec; // all records of the group, in sample order
    float *images;         // JSMA groups only
    int nrec;
} expected_row;

static expected_row rows[] = {
    {.model = "baseline", .config = "fgsm", .kind = "fgsm",
     .params = "eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32", .T = 1},
    {.model = "baseline", .config = "jsma", .kind = "jsma",
     .params = "space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=stable precision=float32", .T = 1},
    {.model = "T1/student", .config = "fgsm", .kind = "fgsm",
     .params = "eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32", .T = 1},
    {.model = "T1/student", .config = "transfer", .kind = "transfer",
     .params = "source=baseline craft=jsma space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=stable precision=float32", .T = 1},
    {.model = "T100/student", .config = "fgsm", .kind = "fgsm",
     .params = "eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32", .T = 100},
    {.model = "T100/student", .config = "jsma", .kind = "jsma",
     .params = "space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=stable precision=float32", .T = 100},
    {.model = "T100/student", .config = "transfer", .kind = "transfer",
     .params = "source=baseline craft=jsma space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=stable precision=float32", .T = 100},
};
#define NROWS ((int)(sizeof rows / sizeof *rows))

// The rows that ROUNDING_JOB adds: the same FGSM with denormals flushed.
#define FLUSH_PARAMS "eps=0.3 space=softmax labels=true denormals=flush gradient=stable precision=float32"
static expected_row flush_rows[] = {
    {.model = "baseline", .config = "fgsm-flush", .kind = "fgsm", .params = FLUSH_PARAMS, .T = 1},
    {.model = "T1/student", .config = "fgsm-flush", .kind = "fgsm", .params = FLUSH_PARAMS, .T = 1},
    {.model = "T100/student", .config = "fgsm-flush", .kind = "fgsm", .params = FLUSH_PARAMS, .T = 100},
};
#define NFLUSH ((int)(sizeof flush_rows / sizeof *flush_rows))

static char run[512];
static ds_job job;
static ds_plan plan;
static ds_model models[NTASKS + 1]; // by task index (TRAIN tasks)
static float *soft[NTASKS + 1];     // by task index (SOFT tasks)

static uint64_t mix(uint64_t x) { // splitmix64
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static float unit(uint64_t h) { return (float)(h >> 40) / (float)(1 << 24); } // [0,1)

static expected_row *row_of(const char *model, const char *config) {
    for (int i = 0; i < NROWS; i++)
        if (!strcmp(rows[i].model, model) && !strcmp(rows[i].config, config)) return &rows[i];
    for (int i = 0; i < NFLUSH; i++)
        if (!strcmp(flush_rows[i].model, model) && !strcmp(flush_rows[i].config, config))
            return &flush_rows[i];
    ck_abort_msg("no expected row for %s %s", model, config);
    return NULL;
}

static void path_in_run(const char *rel, char *out, size_t cap) { snprintf(out, cap, "%s/%s", run, rel); }

static void journal(int task) {
    ds_journal_entry e;
    char path[1024];
    snprintf(e.id, sizeof e.id, "%s", plan.tasks[task].id);
    snprintf(e.file, sizeof e.file, "%s", plan.tasks[task].file);
    ds_plan_task_path(&plan, task, run, path, sizeof path);
    ck_assert_int_eq(ds_file_crc32(path, &e.bytes, &e.crc), DS_OK);
    ck_assert_int_eq(ds_journal_append(run, &e), DS_OK);
}

static void make_model(int task) {
    const ds_task *t = &plan.tasks[task];
    ds_model *m = &models[task];
    ck_assert_int_eq(ds_model_alloc(m), DS_OK);
    for (size_t i = 0; i < ds_params_count(); i++)
        m->mem[i] = 2 * unit(mix((uint64_t)task << 32 | i)) - 1;
    m->temperature = (float)t->temperature;
    snprintf(m->role, sizeof m->role, "%s", ds_role_name(t->role));
    m->epochs = t->epochs;
    m->seed = t->seed;
    m->test_accuracy = 0.5 + 0.01 * task + 1.0 / 3;
    char path[1024];
    ds_plan_task_path(&plan, task, run, path, sizeof path);
    ds_provenance prov = {.job_text = job.text, .seed = job.seed, .task = t->id};
    ck_assert_int_eq(ds_store_save_model(path, t->model, m, &prov), DS_OK);
}

static void make_soft(int task) {
    soft[task] = malloc(sizeof(float) * TRAIN_N * DS_CLASSES);
    for (int i = 0; i < TRAIN_N * DS_CLASSES; i++) soft[task][i] = unit(mix(task * 1000 + i));
    char path[1024];
    ds_plan_task_path(&plan, task, run, path, sizeof path);
    ck_assert_int_eq(ds_store_save_matrix(path, "soft_labels", soft[task], TRAIN_N, DS_CLASSES, NULL),
                     DS_OK);
}

// One shard: FGSM one record per sample, JSMA (and transfer of JSMA) one per (sample, target).
static void make_shard(int task) {
    const ds_task *t = &plan.tasks[task];
    const ds_job_attack *a = &job.attacks[t->attack];
    int per = a->kind == DS_KIND_FGSM ? 1 : DS_CLASSES - 1, n = t->count * per;
    int images = a->kind == DS_KIND_JSMA;
    ds_attack_record *rec = calloc((size_t)n, sizeof *rec);
    float *img = images ? malloc(sizeof(float) * DS_PIXELS * (size_t)n) : NULL;
    expected_row *e = row_of(t->model, a->name);
    for (int k = 0; k < n; k++) {
        ds_attack_record *r = &rec[k];
        uint64_t h = mix((uint64_t)task * 7919 + (uint64_t)k);
        r->index = t->first + k / per;
        r->label = (r->index * 7 + 3) % DS_CLASSES;
        r->target = per == 1 ? -1 : (r->label + 1 + k % per) % DS_CLASSES;
        r->clean_pred = h % 4 == 0 ? (r->label + 1) % DS_CLASSES : r->label;
        r->success = (h >> 8) % 3 != 0;
        r->adv_pred = r->success ? (per == 1 ? (r->label + 2) % DS_CLASSES : r->target) : r->label;
        r->zero_grad = (h >> 16) % 5 == 0;
        r->iterations = (int32_t)((h >> 20) % 56);
        r->l0 = (float)((h >> 30) % 100);
        r->l2 = unit(h) * 5;
        r->linf = unit(mix(h));
        if (img)
            for (int p = 0; p < DS_PIXELS; p++) img[(size_t)k * DS_PIXELS + p] = unit(mix(h + p));
        e->n++;
        e->successes += r->success;
        e->correct += r->clean_pred == r->label;
        e->zero_grad += r->zero_grad;
    }
    // Keep the group's records (and images) in sample order: shards are made in plan order.
    e->rec = realloc(e->rec, sizeof *rec * (size_t)(e->nrec + n));
    memcpy(e->rec + e->nrec, rec, sizeof *rec * (size_t)n);
    if (img) {
        e->images = realloc(e->images, sizeof(float) * DS_PIXELS * (size_t)(e->nrec + n));
        memcpy(e->images + (size_t)e->nrec * DS_PIXELS, img, sizeof(float) * DS_PIXELS * (size_t)n);
    }
    e->nrec += n;
    ds_attack_set s = {.first = t->first, .count = t->count, .n_records = n, .records = rec,
                       .n_in = img ? DS_PIXELS : 0, .images = img};
    snprintf(s.group, sizeof s.group, "%s", a->name);
    snprintf(s.attack, sizeof s.attack, "%s", ds_attack_kind_name(a->kind));
    snprintf(s.params, sizeof s.params, "%s", a->params);
    snprintf(s.model, sizeof s.model, "%s:%s", plan.tasks[t->model_task].file, t->model);
    char path[1024];
    ds_plan_task_path(&plan, task, run, path, sizeof path);
    ck_assert_int_eq(ds_attack_results_save(path, &s, 1, NULL), DS_OK);
    free(rec);
    free(img);
}

static void write_text(const char *rel, const char *text) {
    char path[1024];
    path_in_run(rel, path, sizeof path);
    tu_write_file(path, text, strlen(text));
}

// Forgets the previous run's generated data (a test may build several runs).
static void reset_row(expected_row *r) {
    free(r->rec);
    free(r->images);
    r->rec = NULL;
    r->images = NULL;
    r->n = r->successes = r->correct = r->zero_grad = r->nrec = 0;
}

static void reset(void) {
    for (int i = 0; i < NROWS; i++) reset_row(&rows[i]);
    for (int i = 0; i < NFLUSH; i++) reset_row(&flush_rows[i]);
    for (int i = 0; i <= NTASKS; i++) {
        if (models[i].mem) ds_model_free(&models[i]);
        memset(&models[i], 0, sizeof models[i]);
        free(soft[i]);
        soft[i] = NULL;
    }
    if (plan.tasks) ds_plan_free(&plan);
    if (job.text) ds_job_free(&job);
    memset(&job, 0, sizeof job);
}

static void build_run(const char *job_text) {
    reset();
    tu_tempdir(run, sizeof run);
    char path[1024];
    path_in_run("tasks", path, sizeof path);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    write_text("job.ini", job_text);
    path_in_run("job.ini", path, sizeof path);
    ck_assert_int_eq(ds_job_parse(&job, path), DS_OK);
    // run.txt as a sweep writes it (src/run/run.c): the facts, then the canonical job.
    char *canon = ds_job_canonical(&job), state[1 << 15];
    snprintf(state, sizeof state, "# distill_sweep run state: do not edit. A resume must match "
             "it.\ndataset mnist\ntrain_n %d\ntest_n %d\ndata_crc32 00000000\n--- canonical job "
             "---\n%s", TRAIN_N, TEST_N, canon);
    free(canon);
    write_text("run.txt", state);
    ck_assert_int_eq(ds_plan_build(&plan, &job, TRAIN_N, TEST_N), DS_OK);
    for (int i = 0; i < plan.ntasks; i++) {
        switch (plan.tasks[i].kind) {
        case DS_TASK_TRAIN: make_model(i); break;
        case DS_TASK_SOFT: make_soft(i); break;
        case DS_TASK_ATTACK: make_shard(i); break;
        default: continue;
        }
        journal(i);
    }
    setenv("DS_GNUPLOT", "", 1); // no figure unless a test asks for one (speed)
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st, (void)flag, (void)f;
    return remove(p);
}

static void teardown(void) {
    if (run[0]) nftw(run, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    run[0] = '\0';
}

static char *slurp(const char *rel, size_t *n) {
    char path[1024];
    path_in_run(rel, path, sizeof path);
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    fclose(f);
    if (n) *n = (size_t)len;
    return s;
}

static int exists(const char *rel) {
    char path[1024];
    path_in_run(rel, path, sizeof path);
    return access(path, F_OK) == 0;
}

static int staged_files_left(void) {
    DIR *d = opendir(run);
    ck_assert_ptr_nonnull(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) n += !strncmp(e->d_name, ".reduce-", 8) || strstr(e->d_name, ".tmp");
    closedir(d);
    return n;
}

static void reduce_ok(void) {
    int rc = ds_reduce_run(run);
    ck_assert_msg(rc == DS_OK, "ds_reduce_run: %d %s", rc, ds_errmsg());
}

// ---- Values ----

START_TEST(test_csv_exact) {
    build_run(JOB_TEXT);
    ck_assert_int_eq(plan.ntasks - 1, NTASKS);
    reduce_ok();
    // The expected text, from the records counted at generation.
    char want[8192];
    size_t len = (size_t)snprintf(want, sizeof want, "model,temperature,attack,params,n,successes,"
                                  "success_rate,clean_accuracy,zero_grad_share\n");
    for (int i = 0; i < NROWS; i++) {
        const expected_row *e = &rows[i];
        ck_assert_int_gt(e->n, 0);
        len += (size_t)snprintf(want + len, sizeof want - len, "%s,%g,%s,%s,%d,%d,%.17g,%.17g,%.17g\n",
                                e->model, e->T, e->kind, e->params, e->n, e->successes,
                                (double)e->successes / e->n, (double)e->correct / e->n,
                                (double)e->zero_grad / e->n);
    }
    char *csv = slurp("summary.csv", NULL);
    ck_assert_ptr_nonnull(csv);
    ck_assert_str_eq(csv, want);
    // Spot values known by construction: 10 FGSM samples, 2 JSMA samples x 9 targets, 3 x 9.
    ck_assert_int_eq(rows[0].n, 10);
    ck_assert_int_eq(rows[1].n, 18);
    ck_assert_int_eq(rows[3].n, 27);
    free(csv);
    ck_assert_int_eq(staged_files_left(), 0);
    teardown();
}
END_TEST

START_TEST(test_summary_h5) {
    build_run(JOB_TEXT);
    reduce_ok();
    typedef struct {
        char *model;
        int64_t n, successes;
        double success_rate, test_accuracy, zero_grad_share;
    } row;
    hid_t str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(row));
    H5Tinsert(t, "model", HOFFSET(row, model), str);
    H5Tinsert(t, "n", HOFFSET(row, n), H5T_NATIVE_INT64);
    H5Tinsert(t, "successes", HOFFSET(row, successes), H5T_NATIVE_INT64);
    H5Tinsert(t, "success_rate", HOFFSET(row, success_rate), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "test_accuracy", HOFFSET(row, test_accuracy), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "zero_grad_share", HOFFSET(row, zero_grad_share), H5T_NATIVE_DOUBLE);
    char path[1024];
    path_in_run("summary.h5", path, sizeof path);
    hid_t f;
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    hid_t d = H5Dopen2(f, "summary", H5P_DEFAULT);
    ck_assert_int_ge(d, 0);
    hid_t sp = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), NROWS);
    row got[NROWS];
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, got), 0);
    for (int i = 0; i < NROWS; i++) {
        ck_assert_str_eq(got[i].model, rows[i].model);
        ck_assert_int_eq(got[i].n, rows[i].n);
        ck_assert_int_eq(got[i].successes, rows[i].successes);
        ck_assert(got[i].success_rate == (double)rows[i].successes / rows[i].n);
        ck_assert(got[i].zero_grad_share == (double)rows[i].zero_grad / rows[i].n);
        int mt = ds_plan_model_task(&plan, rows[i].model);
        ck_assert(got[i].test_accuracy == models[mt].test_accuracy);
    }
    H5Dvlen_reclaim(t, sp, H5P_DEFAULT, got);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    H5Tclose(t);
    H5Tclose(str);
    teardown();
}
END_TEST

START_TEST(test_adversarial_records_in_sample_order) {
    build_run(JOB_TEXT);
    reduce_ok();
    char path[1024];
    path_in_run("adversarial.h5", path, sizeof path);
    for (int i = 0; i < NROWS; i++) {
        const expected_row *e = &rows[i];
        char group[160];
        snprintf(group, sizeof group, "%s/%s", e->model, e->config);
        ds_attack_set s;
        int rc = ds_attack_results_load(path, group, &s);
        ck_assert_msg(rc == DS_OK, "%s: %s", group, ds_errmsg());
        ck_assert_str_eq(s.attack, e->kind);
        ck_assert_str_eq(s.params, e->params);
        ck_assert_str_eq(s.model, e->model);
        ck_assert_int_eq(s.first, 0);
        ck_assert_int_eq(s.count, !strcmp(e->config, "fgsm") ? 10 : !strcmp(e->config, "jsma") ? 2 : 3);
        ck_assert_int_eq(s.n_records, e->nrec);
        ck_assert(memcmp(s.records, e->rec, sizeof *e->rec * (size_t)e->nrec) == 0);
        for (int k = 1; k < s.n_records; k++) ck_assert_int_ge(s.records[k].index, s.records[k - 1].index);
        if (e->images) {
            ck_assert_ptr_nonnull(s.images);
            ck_assert_int_eq(s.n_in, DS_PIXELS);
            ck_assert(memcmp(s.images, e->images, sizeof(float) * DS_PIXELS * (size_t)e->nrec) == 0);
        } else {
            ck_assert_ptr_null(s.images);
        }
        ds_attack_set_free(&s);
    }
    // The parameters as attributes, typed.
    hid_t f, g;
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    ck_assert_int_eq(ds_h5_open_group(f, "T100/student/jsma", &g), DS_OK);
    double gamma, T;
    int64_t theta, shards;
    char *space = NULL, *config = NULL;
    ck_assert_int_eq(ds_h5_attr_get_double(g, "gamma", &gamma), DS_OK);
    ck_assert_int_eq(ds_h5_attr_get_int64(g, "theta", &theta), DS_OK);
    ck_assert_int_eq(ds_h5_attr_get_string(g, "space", &space), DS_OK);
    ck_assert_int_eq(ds_h5_attr_get_string(g, "config", &config), DS_OK);
    ck_assert_int_eq(ds_h5_attr_get_double(g, "temperature", &T), DS_OK);
    ck_assert_int_eq(ds_h5_attr_get_int64(g, "shards", &shards), DS_OK);
    ck_assert(gamma == 0.145 && theta == 1 && T == 100 && shards == 2);
    ck_assert_str_eq(space, "softmax");
    ck_assert_str_eq(config, "jsma");
    free(space);
    free(config);
    H5Gclose(g);
    H5Fclose(f);
    teardown();
}
END_TEST

START_TEST(test_weights_and_soft_labels_bit_identical) {
    build_run(JOB_TEXT);
    reduce_ok();
    char path[1024];
    path_in_run("weights.h5", path, sizeof path);
    int nmodels = 0;
    for (int i = 0; i < plan.ntasks; i++) {
        const ds_task *t = &plan.tasks[i];
        if (t->kind == DS_TASK_TRAIN) {
            ds_model m;
            ck_assert_int_eq(ds_store_load_model(path, t->model, &m), DS_OK);
            ck_assert(memcmp(m.mem, models[i].mem, sizeof(float) * ds_params_count()) == 0);
            ck_assert(m.temperature == models[i].temperature);
            ck_assert_str_eq(m.role, models[i].role);
            ck_assert_int_eq(m.epochs, models[i].epochs);
            ck_assert(m.seed == models[i].seed);
            ck_assert(m.test_accuracy == models[i].test_accuracy);
            ds_model_free(&m);
            nmodels++;
        } else if (t->kind == DS_TASK_SOFT) {
            char sl[1024], name[32];
            path_in_run("soft_labels.h5", sl, sizeof sl);
            ds_temp_name(t->temperature, name, sizeof name);
            float *d;
            int n;
            ck_assert_int_eq(ds_store_load_matrix(sl, name, &d, &n, DS_CLASSES), DS_OK);
            ck_assert_int_eq(n, TRAIN_N);
            ck_assert(memcmp(d, soft[i], sizeof(float) * TRAIN_N * DS_CLASSES) == 0);
            free(d);
        }
    }
    ck_assert_int_eq(nmodels, 6); // warmstart, baseline, 2 teachers, 2 students
    teardown();
}
END_TEST

static void expect_line(const char *md, const char *line) {
    if (strstr(md, line)) return;
    fprintf(stderr, "summary.md:\n%s\n", md);
    ck_abort_msg("summary.md lacks '%s'", line);
}

START_TEST(test_markdown_beside_the_papers) {
    build_run(JOB_TEXT);
    reduce_ok();
    char *md = slurp("summary.md", NULL);
    ck_assert_ptr_nonnull(md);
    char line[256];
    int b = ds_plan_model_task(&plan, "baseline"), s = ds_plan_model_task(&plan, "T100/student");
    snprintf(line, sizeof line, "| baseline test accuracy | 99.51 | %.2f |", 100 * models[b].test_accuracy);
    expect_line(md, line);
    snprintf(line, sizeof line, "| distilled (T=100 student) test accuracy | 99.05 | %.2f |",
             100 * models[s].test_accuracy);
    expect_line(md, line);
    snprintf(line, sizeof line, "| FGSM eps=0.3 success on the baseline | 88.03 | %.2f |",
             100.0 * rows[0].successes / rows[0].n);
    expect_line(md, line);
    snprintf(line, sizeof line, "| FGSM eps=0.3 success at T=100 | below 1.5 | %.2f |",
             100.0 * rows[4].successes / rows[4].n);
    expect_line(md, line);
    snprintf(line, sizeof line, "| JSMA success on the baseline | ~96-97 (reported) | %.2f |",
             100.0 * rows[1].successes / rows[1].n);
    expect_line(md, line);
    snprintf(line, sizeof line, "| JSMA success at T=100 | 0.45 | %.2f |",
             100.0 * rows[5].successes / rows[5].n);
    expect_line(md, line);
    ck_assert(strstr(md, "over (sample, target) attempts"));
    ck_assert(strstr(md, "| T100/student | 100 | transfer | transfer | source=baseline craft=jsma"));
    free(md);
    teardown();
}
END_TEST

// summary.md's Rounding section: the job's FGSM and the same FGSM with denormals flushed side
// by side, per model, with the success and zero-gradient shares of the records.
START_TEST(test_markdown_rounding) {
    char text[4096];
    snprintf(text, sizeof text, "%s[attack fgsm-flush]\nkind = fgsm\ndenormals = flush\n"
             "models = baseline students\nsamples = 10\nshard = 4\n", JOB_TEXT);
    build_run(text);
    reduce_ok();
    char *md = slurp("summary.md", NULL);
    ck_assert_ptr_nonnull(strstr(md, "## Rounding"));
    ck_assert_ptr_nonnull(strstr(md, "| model | T | fgsm<br>keep, stable, float32 | "
                                     "fgsm-flush<br>flush, stable, float32 |"));
    for (int i = 0; i < NFLUSH; i++) {
        const expected_row *k = row_of(flush_rows[i].model, "fgsm"), *f = &flush_rows[i];
        char line[256];
        snprintf(line, sizeof line, "| %s | %g | %.2f (%.2f) | %.2f (%.2f) |", f->model, f->T,
                 100.0 * k->successes / k->n, 100.0 * k->zero_grad / k->n,
                 100.0 * f->successes / f->n, 100.0 * f->zero_grad / f->n);
        ck_assert_msg(strstr(md, line), "no line '%s' in summary.md", line);
    }
    ck_assert_ptr_null(strstr(md, "jsma<br>")); // JSMA runs under one setting only: no table
    free(md);
    // The job of the other tests has no rounding variants, and no Rounding section.
    teardown();
    build_run(JOB_TEXT);
    reduce_ok();
    md = slurp("summary.md", NULL);
    ck_assert_ptr_null(strstr(md, "## Rounding"));
    free(md);
    teardown();
}
END_TEST

START_TEST(test_deterministic) {
    build_run(JOB_TEXT);
    reduce_ok();
    size_t n1, n2, m1, m2;
    char *csv1 = slurp("summary.csv", &n1), *md1 = slurp("summary.md", &m1);
    reduce_ok();
    char *csv2 = slurp("summary.csv", &n2), *md2 = slurp("summary.md", &m2);
    ck_assert(n1 == n2 && memcmp(csv1, csv2, n1) == 0);
    ck_assert(m1 == m2 && memcmp(md1, md2, m1) == 0);
    free(csv1);
    free(csv2);
    free(md1);
    free(md2);
    teardown();
}
END_TEST

// ---- Refusals: a clear message, and the previous outputs untouched ----

static const char *outputs[] = {"weights.h5", "soft_labels.h5", "adversarial.h5", "summary.h5",
                                "summary.csv", "summary.md"};
#define NOUT 6

typedef struct {
    char *data[NOUT];
    size_t len[NOUT];
} snapshot;

static void take(snapshot *s) {
    for (int i = 0; i < NOUT; i++) {
        s->data[i] = slurp(outputs[i], &s->len[i]);
        ck_assert_ptr_nonnull(s->data[i]);
    }
}

static void assert_untouched(snapshot *s) {
    for (int i = 0; i < NOUT; i++) {
        size_t n;
        char *now = slurp(outputs[i], &n);
        ck_assert_msg(now && n == s->len[i] && !memcmp(now, s->data[i], n), "%s changed", outputs[i]);
        free(now);
        free(s->data[i]);
    }
    ck_assert_int_eq(staged_files_left(), 0);
}

static void assert_refused(int code, const char *needle) {
    int rc = ds_reduce_run(run);
    ck_assert_msg(rc == code, "ds_reduce_run returned %d (%s), expected %d", rc, ds_errmsg(), code);
    ck_assert_msg(strstr(ds_errmsg(), needle), "message '%s' lacks '%s'", ds_errmsg(), needle);
}

START_TEST(test_missing_task_file) {
    build_run(JOB_TEXT);
    reduce_ok();
    snapshot s;
    take(&s);
    int t = ds_plan_find(&plan, "attack/T100/student/jsma/1-2");
    ck_assert_int_ge(t, 0);
    char path[1024];
    ds_plan_task_path(&plan, t, run, path, sizeof path);
    ck_assert_int_eq(unlink(path), 0);
    assert_refused(DS_EIO, "1 of 25 tasks are not done: attack/T100/student/jsma/1-2 "
                           "(tasks/atk-T100-student-jsma-000001.h5 is missing)");
    ck_assert(strstr(ds_errmsg(), run) && strstr(ds_errmsg(), "run the sweep again"));
    assert_untouched(&s);
    teardown();
}
END_TEST

START_TEST(test_many_missing_listed_briefly) {
    build_run(JOB_TEXT);
    char path[1024];
    path_in_run("tasks/done.log", path, sizeof path);
    ck_assert_int_eq(unlink(path), 0);
    assert_refused(DS_EIO, "25 of 25 tasks are not done: warmstart (tasks/warmstart.h5 is not in "
                           "tasks/done.log), baseline (");
    ck_assert(strstr(ds_errmsg(), ", ...;"));
    ck_assert(!exists("summary.csv") && !exists("weights.h5"));
    ck_assert_int_eq(staged_files_left(), 0);
    teardown();
}
END_TEST

START_TEST(test_changed_task_file) {
    build_run(JOB_TEXT);
    reduce_ok();
    snapshot s;
    take(&s);
    char path[1024];
    path_in_run("tasks/T100-soft.h5", path, sizeof path);
    FILE *f = fopen(path, "ab");
    fputc('x', f);
    fclose(f);
    assert_refused(DS_EIO, "T100/soft (tasks/T100-soft.h5 has the wrong size (truncated or rewritten))");
    assert_untouched(&s);
    teardown();
}
END_TEST

// A journaled shard whose content contradicts the plan: refused, naming the file.
static void replace_shard(const char *id, void (*edit)(ds_attack_set *)) {
    int t = ds_plan_find(&plan, id);
    ck_assert_int_ge(t, 0);
    char path[1024];
    ds_plan_task_path(&plan, t, run, path, sizeof path);
    ds_attack_set s;
    ck_assert_int_eq(ds_attack_results_load(path, job.attacks[plan.tasks[t].attack].name, &s), DS_OK);
    edit(&s);
    ck_assert_int_eq(ds_attack_results_save(path, &s, 1, NULL), DS_OK);
    ds_attack_set_free(&s);
    journal(t); // the newest matching line counts
}

static void wrong_params(ds_attack_set *s) { snprintf(s->params, sizeof s->params, "eps=0.1"); }
static void swapped(ds_attack_set *s) {
    ds_attack_record r = s->records[0];
    s->records[0] = s->records[s->n_records - 1];
    s->records[s->n_records - 1] = r;
}
static void no_images(ds_attack_set *s) {
    free(s->images);
    s->images = NULL;
    s->n_in = 0;
}

START_TEST(test_inconsistent_shards) {
    static const struct {
        const char *id;
        void (*edit)(ds_attack_set *);
        const char *message;
    } cases[] = {
        {"attack/T1/student/fgsm/4-8", wrong_params,
         "tasks/atk-T1-student-fgsm-000004.h5: fgsm: holds 'fgsm eps=0.1', but the job says "
         "'fgsm eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32'"},
        {"attack/baseline/fgsm/8-10", swapped,
         "tasks/atk-baseline-fgsm-000008.h5: fgsm: record 1: sample 8 out of order"},
        {"attack/baseline/jsma/1-2", no_images,
         "tasks/atk-baseline-jsma-000001.h5: jsma: has no adversarial images, unlike the earlier "
         "shards"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        build_run(JOB_TEXT);
        reduce_ok();
        snapshot s;
        take(&s);
        replace_shard(cases[i].id, cases[i].edit);
        assert_refused(DS_EFORMAT, cases[i].message);
        assert_untouched(&s);
        teardown();
    }
}
END_TEST

START_TEST(test_not_a_run_folder) {
    char dir[512];
    tu_tempdir(dir, sizeof dir);
    ck_assert_int_eq(ds_reduce_run(dir), DS_EIO);
    ck_assert(strstr(ds_errmsg(), "job.ini"));
    rmdir(dir);
    ck_assert_int_eq(ds_reduce_run(""), DS_EINVAL);
}
END_TEST

// ---- Figure ----

static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

START_TEST(test_figure) {
    build_run(JOB_TEXT);
    unsetenv("DS_GNUPLOT");
    reduce_ok();
    ck_assert(exists("figure1.dat") && exists("figure1.gp"));
    char *dat = slurp("figure1.dat", NULL), *gp = slurp("figure1.gp", NULL);
    // Students only: fgsm at T=1 and T=100, jsma at T=100, transfer at both; the baseline beside.
    char want[128];
    snprintf(want, sizeof want, "\n100 %.10g %.10g %d %d ", 100.0 * rows[4].successes / rows[4].n,
             100.0 * rows[0].successes / rows[0].n, rows[4].n, rows[4].successes);
    ck_assert_msg(strstr(dat, want), "figure1.dat lacks '%s':\n%s", want + 1, dat);
    ck_assert(strstr(dat, "# index 2: [attack transfer]"));
    ck_assert(strstr(dat, " NaN ")); // transfer: the baseline was not attacked
    ck_assert(strstr(gp, "set logscale x") && strstr(gp, "set output 'figure1.png'"));
    ck_assert(!strstr(gp, ".reduce-"));
    if (have_gnuplot()) {
        size_t n;
        char *png = slurp("figure1.png", &n), *svg = slurp("figure1.svg", NULL);
        ck_assert(png && n > 1000 && !memcmp(png, "\x89PNG", 4));
        ck_assert(svg && strstr(svg, "<svg"));
        free(png);
        free(svg);
    }
    free(dat);
    free(gp);
    // Without gnuplot: still a success, no new figure.
    char path[1024];
    path_in_run("figure1.png", path, sizeof path);
    unlink(path);
    setenv("DS_GNUPLOT", "/nonexistent/gnuplot", 1);
    reduce_ok();
    ck_assert(!exists("figure1.png") && exists("figure1.gp") && exists("summary.csv"));
    ck_assert_int_eq(staged_files_left(), 0);
    setenv("DS_GNUPLOT", "false", 1); // gnuplot fails: also only a warning
    reduce_ok();
    ck_assert(!exists("figure1.png") && exists("figure1.dat"));
    ck_assert_int_eq(staged_files_left(), 0);
    teardown();
}
END_TEST

START_TEST(test_no_attacks) {
    build_run("[run]\nname = r\n[data]\ntrain_samples = 6\n[train]\nepochs = 1\nbatch = 2\n"
              "[distill]\ntemperatures = 2.5\n");
    reduce_ok();
    char *csv = slurp("summary.csv", NULL);
    ck_assert_str_eq(csv, "model,temperature,attack,params,n,successes,success_rate,"
                          "clean_accuracy,zero_grad_share\n");
    ck_assert(exists("weights.h5") && exists("soft_labels.h5") && !exists("figure1.dat"));
    char *md = slurp("summary.md", NULL);
    ck_assert(strstr(md, "| T2.5/student | student | 2.5 | 1 |"));
    ck_assert(strstr(md, "no T100/student in this sweep"));
    free(csv);
    free(md);
    teardown();
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("reduce");
    TCase *tc = tcase_create("reduce");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_csv_exact);
    tcase_add_test(tc, test_summary_h5);
    tcase_add_test(tc, test_adversarial_records_in_sample_order);
    tcase_add_test(tc, test_weights_and_soft_labels_bit_identical);
    tcase_add_test(tc, test_markdown_beside_the_papers);
    tcase_add_test(tc, test_markdown_rounding);
    tcase_add_test(tc, test_deterministic);
    tcase_add_test(tc, test_missing_task_file);
    tcase_add_test(tc, test_many_missing_listed_briefly);
    tcase_add_test(tc, test_changed_task_file);
    tcase_add_test(tc, test_inconsistent_shards);
    tcase_add_test(tc, test_not_a_run_folder);
    tcase_add_test(tc, test_figure);
    tcase_add_test(tc, test_no_attacks);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
