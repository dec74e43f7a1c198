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
#include "ds_stats.h"
#include "testutil.h"
#include "../src/reduce/reduce_internal.h" // the checks on reducers built here (no kind parser)

#include <dirent.h>
#include <ftw.h>
#include <math.h>
#include <sys/stat.h>

// ---- Statistics (ds_stats.h): known answers ----

START_TEST(test_stats_t_quantiles) {
    // Student t 0.975 quantiles as published (4 decimals: NIST/SEMATECH e-Handbook, Table of
    // upper critical values of the t distribution).
    static const struct { int df; double t; } pub[] = {
        {1, 12.7062}, {2, 4.3027}, {4, 2.7764}, {9, 2.2622}, {29, 2.0452}};
    for (size_t i = 0; i < sizeof pub / sizeof *pub; i++) {
        double t = ds_t_quantile(0.975, pub[i].df);
        ck_assert_msg(fabs(t - pub[i].t) < 1e-4, "df %d: %.10f, published %.4f", pub[i].df, t,
                      pub[i].t);
        ck_assert(fabs(ds_t_cdf(t, pub[i].df) - 0.975) < 1e-13); // the inverse of the CDF
        ck_assert(ds_t_quantile(0.025, pub[i].df) == -t);        // symmetry
    }
    // df = 1 is the Cauchy distribution: F(t) = 1/2 + atan(t)/pi, so t = tan(0.475 pi).
    ck_assert(fabs(ds_t_quantile(0.975, 1) - tan(0.475 * M_PI)) < 1e-11);
    // df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t^2)), so t = 2 (2p - 1) / sqrt(2 - 2 (2p-1)^2 / ... )
    // i.e. t = (2p - 1) sqrt(2 / (1 - (2p - 1)^2)).
    ck_assert(fabs(ds_t_quantile(0.975, 2) - 0.95 * sqrt(2 / (1 - 0.95 * 0.95))) < 1e-12);
    ck_assert(ds_t_cdf(0, 7) == 0.5 && ds_t_quantile(0.5, 7) == 0);
    // I_0.4(2, 3) = P(Binomial(4, 0.4) >= 2) = 6(.16)(.36) + 4(.064)(.6) + .0256 = 0.5248.
    ck_assert(fabs(ds_betainc(2, 3, 0.4) - 0.5248) < 1e-14);
    ck_assert(ds_betainc(2, 3, 0) == 0 && ds_betainc(2, 3, 1) == 1);
    ck_assert(isnan(ds_betainc(2, 3, 1.5)) && isnan(ds_t_quantile(1, 3)) &&
              isnan(ds_t_quantile(0.975, 0)));
}
END_TEST

START_TEST(test_stats_mean_sd_interval) {
    // By hand: 0.80 0.84 0.88 -> mean 0.84; deviations -0.04 0 0.04, squares 0.0032 / 2 = 0.0016,
    // sd 0.04; half width t(0.975, 2) 0.04 / sqrt(3) = 4.30265 * 0.0230940 = 0.0993655.
    const double x[] = {0.80, 0.84, 0.88};
    ds_stats s;
    ds_stats_compute(x, 3, &s);
    ck_assert_int_eq(s.n, 3);
    ck_assert(fabs(s.mean - 0.84) < 1e-15 && fabs(s.sd - 0.04) < 1e-15);
    ck_assert(s.min == 0.80 && s.max == 0.88);
    ck_assert_msg(fabs(s.lo - 0.7406345) < 1e-6 && fabs(s.hi - 0.9393655) < 1e-6, "[%.9f, %.9f]",
                  s.lo, s.hi);
    ck_assert(fabs((s.hi - s.lo) / 2 - 4.302652729749464 * 0.04 / sqrt(3)) < 1e-12);
    // Two values a, b: sd = |a - b| / sqrt(2), half width t(0.975, 1) sd / sqrt(2) = 12.7062 |a-b|/2.
    const double y[] = {0.25, 0.75};
    ds_stats_compute(y, 2, &s);
    ck_assert(s.mean == 0.5 && fabs(s.sd - 0.5 / sqrt(2)) < 1e-15);
    ck_assert(fabs(s.lo - (0.5 - tan(0.475 * M_PI) * 0.25)) < 1e-11); // not clipped to [0, 1]
    ck_assert(s.lo < 0 && s.hi > 1);
    // One value: no spread, no interval. None: nothing.
    ds_stats_compute(x + 1, 1, &s);
    ck_assert(s.n == 1 && s.mean == 0.84 && s.min == 0.84 && s.max == 0.84);
    ck_assert(isnan(s.sd) && isnan(s.lo) && isnan(s.hi));
    ds_stats_compute(x, 0, &s);
    ck_assert(s.n == 0 && isnan(s.mean) && isnan(s.min) && isnan(s.sd) && isnan(s.lo));
    // Equal values: sd 0, the interval one point.
    const double z[] = {0.3, 0.3, 0.3, 0.3};
    ds_stats_compute(z, 4, &s);
    ck_assert(s.sd == 0 && s.lo == 0.3 && s.hi == 0.3);
}
END_TEST

START_TEST(test_stats_wilson) {
    const double z2 = 1.959963984540054 * 1.959963984540054;
    double lo, hi;
    // 8 of 10 (by hand: centre (0.8 + 0.19207) / 1.38415 = 0.71673, half width 0.22658).
    ds_wilson(8, 10, &lo, &hi);
    ck_assert_msg(fabs(lo - 0.4902) < 1e-4 && fabs(hi - 0.9433) < 1e-4, "[%.6f, %.6f]", lo, hi);
    // k = 0: [0, z^2 / (n + z^2)]; k = n: [n / (n + z^2), 1] (the closed forms at the ends).
    ds_wilson(0, 10, &lo, &hi);
    ck_assert(lo == 0 && fabs(hi - z2 / (10 + z2)) < 1e-15);
    ds_wilson(10, 10, &lo, &hi);
    ck_assert(hi == 1 && fabs(lo - 10 / (10 + z2)) < 1e-15);
    ds_wilson(1, 1, &lo, &hi);
    ck_assert(hi == 1 && fabs(lo - 1 / (1 + z2)) < 1e-15);
    ds_wilson(0, 0, &lo, &hi);
    ck_assert(isnan(lo) && isnan(hi));
    // Always inside [0, 1] and around k/n; symmetric: [lo, hi](k) = 1 - [hi, lo](n - k).
    for (int n = 1; n <= 60; n++)
        for (int k = 0; k <= n; k++) {
            double l2, h2;
            ds_wilson(k, n, &lo, &hi);
            ds_wilson(n - k, n, &l2, &h2);
            ck_assert(0 <= lo && lo <= (double)k / n && (double)k / n <= hi && hi <= 1);
            ck_assert(fabs(lo - (1 - h2)) < 1e-14 && fabs(hi - (1 - l2)) < 1e-14);
        }
}
END_TEST

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
#define MAX_TASKS 128 // of any run built here

// The summary rows in plan order, with what the generated records add up to.
typedef struct {
    const char *model, *config, *kind, *params;
    double T;
    int e; // ε index of a configuration with an ε list (rows made by row_for)
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
static ds_model models[MAX_TASKS]; // by task index (TRAIN tasks)
static float *soft[MAX_TASKS];     // by task index (SOFT tasks)

// The rows that are not in the tables above (several seeds: "s5/T100/student"; ε lists; the
// checks' jobs), per (model, configuration, ε index), made while the shards are generated.
#define MAX_EXTRA 128
static expected_row extra[MAX_EXTRA];
static char extra_names[MAX_EXTRA][3][256]; // model, configuration, params
static int nextra;

// Optional: sets the outcome of record r (ε index e of its configuration) after the random fill.
static void (*outcome_hook)(const ds_task *t, const ds_job_attack *a, int e, ds_attack_record *r);

static uint64_t mix(uint64_t x) { // splitmix64
    x += 0x9E3779B97F4A7C15ull;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

static float unit(uint64_t h) { return (float)(h >> 40) / (float)(1 << 24); } // [0,1)

// The params of configuration a at its ε index e, from its own params: the "eps=a,b,c" word
// replaced by "eps=<that value>".
static void params_at(const ds_job_attack *a, int e, char *out, size_t cap) {
    const char *p = strstr(a->params, "eps=");
    ck_assert_ptr_nonnull(p);
    const char *end = strchr(p, ' ');
    const float *eps;
    ck_assert_int_gt(ds_craft_eps(&a->craft, &eps), e);
    snprintf(out, cap, "%.*seps=%g%s", (int)(p - a->params), a->params, (double)eps[e],
             end ? end : "");
}

// The expected row of (model, config, ε index e): a row of the tables above (e = 0), or one of
// extra[] (made if create, with the kind, params and temperature of the plan's group).
static expected_row *row_for(const char *model, const char *config, int e, int create) {
    if (e == 0) {
        for (int i = 0; i < NROWS; i++)
            if (!strcmp(rows[i].model, model) && !strcmp(rows[i].config, config)) return &rows[i];
        for (int i = 0; i < NFLUSH; i++)
            if (!strcmp(flush_rows[i].model, model) && !strcmp(flush_rows[i].config, config))
                return &flush_rows[i];
    }
    for (int i = 0; i < nextra; i++)
        if (!strcmp(extra[i].model, model) && !strcmp(extra[i].config, config) && extra[i].e == e)
            return &extra[i];
    if (!create) return NULL;
    ck_assert_int_lt(nextra, MAX_EXTRA);
    const ds_job_attack *a = NULL;
    for (int i = 0; i < job.nattacks; i++)
        if (!strcmp(job.attacks[i].name, config)) a = &job.attacks[i];
    int g = -1;
    for (int i = 0; i < plan.ngroups; i++)
        if (!strcmp(plan.groups[i].model, model) && a == &job.attacks[plan.groups[i].attack]) g = i;
    ck_assert(a && g >= 0);
    char (*names)[256] = extra_names[nextra];
    snprintf(names[0], 256, "%s", model);
    snprintf(names[1], 256, "%s", config);
    if (ds_craft_eps(&a->craft, NULL) > 1) params_at(a, e, names[2], 256);
    else snprintf(names[2], 256, "%s", a->params);
    extra[nextra] = (expected_row){.model = names[0], .config = names[1],
                                   .kind = ds_attack_kind_name(a->kind), .params = names[2],
                                   .T = plan.groups[g].temperature, .e = e};
    return &extra[nextra++];
}

static expected_row *row_of(const char *model, const char *config) {
    expected_row *e = row_for(model, config, 0, 0);
    ck_assert_msg(e, "no expected row for %s %s", model, config);
    return e;
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
    m->test_accuracy = 0.5 + 0.01 * (task % 16) + 1.0 / 3; // below 1 in a second replicate too
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

// One shard: FGSM (and transfer of FGSM; PGD, Square) one record per sample, and per ε with an
// ε list (ε-major); JSMA (and transfer of JSMA) one per (sample, target).
static void make_shard(int task) {
    const ds_task *t = &plan.tasks[task];
    const ds_job_attack *a = &job.attacks[t->attack];
    int n_eps = ds_craft_eps(&a->craft, NULL); // FGSM, PGD, Square: one record per sample
    int per = n_eps > 0 ? 1 : DS_CLASSES - 1, slices = n_eps > 1 ? n_eps : 1;
    int len = t->count * per, n = len * slices; // len: records of one ε
    int images = a->kind == DS_KIND_JSMA;
    ds_attack_record *rec = calloc((size_t)n, sizeof *rec);
    float *img = images ? malloc(sizeof(float) * DS_PIXELS * (size_t)n) : NULL;
    for (int k = 0; k < n; k++) {
        ds_attack_record *r = &rec[k];
        uint64_t h = mix((uint64_t)task * 7919 + (uint64_t)k);
        int ei = k / len, kk = k % len;
        expected_row *e = row_for(t->model, a->name, slices > 1 ? ei : 0, 1);
        r->index = t->first + kk / per;
        r->label = (r->index * 7 + 3) % DS_CLASSES;
        r->target = per == 1 ? -1 : (r->label + 1 + kk % per) % DS_CLASSES;
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
        if (outcome_hook) outcome_hook(t, a, ei, r);
        e->n++;
        e->successes += r->success;
        e->correct += r->clean_pred == r->label;
        e->zero_grad += r->zero_grad;
    }
    // Keep each row's records (and images) in sample order: shards are made in plan order.
    for (int ei = 0; ei < slices; ei++) {
        expected_row *e = row_for(t->model, a->name, slices > 1 ? ei : 0, 1);
        const ds_attack_record *from = rec + (size_t)ei * (size_t)len;
        e->rec = realloc(e->rec, sizeof *rec * (size_t)(e->nrec + len));
        memcpy(e->rec + e->nrec, from, sizeof *rec * (size_t)len);
        if (img) {
            e->images = realloc(e->images, sizeof(float) * DS_PIXELS * (size_t)(e->nrec + len));
            memcpy(e->images + (size_t)e->nrec * DS_PIXELS, img + (size_t)ei * len * DS_PIXELS,
                   sizeof(float) * DS_PIXELS * (size_t)len);
        }
        e->nrec += len;
    }
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
    for (int i = 0; i < nextra; i++) reset_row(&extra[i]);
    nextra = 0;
    for (int i = 0; i < MAX_TASKS; i++) {
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
    ck_assert_int_le(plan.ntasks, MAX_TASKS);
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

// The 95% Wilson interval, written here from its other textbook form:
// (2k + z^2 -/+ z sqrt(4 k (n - k) / n + z^2)) / (2 (n + z^2)), clipped to [0, 1].
static void wilson_ref(int k, int n, double *lo, double *hi) {
    const double z = 1.959963984540054;
    double c = 2.0 * k + z * z, h = z * sqrt(4.0 * k * (n - k) / n + z * z), d = 2 * (n + z * z);
    *lo = k == 0 ? 0 : fmax(0, (c - h) / d);
    *hi = k == n ? 1 : fmin(1, (c + h) / d);
}

// One field of a CSV line (no quoted fields in these runs): the i-th, 0-based, into out.
static void csv_get(const char *line, int i, char *out, size_t cap) {
    const char *p = line;
    for (int k = 0; k < i; k++) {
        p = strchr(p, ',');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    size_t n = strcspn(p, ",\n");
    ck_assert_uint_lt(n, cap);
    memcpy(out, p, n);
    out[n] = '\0';
}

static double csv_num(const char *line, int i) {
    char f[64], *end;
    csv_get(line, i, f, sizeof f);
    if (!f[0]) return NAN;
    double x = strtod(f, &end);
    ck_assert_msg(*end == '\0', "field %d '%s' is not a number", i, f);
    return x;
}

// The line of a CSV text that starts with prefix (exactly one).
static const char *csv_line(const char *csv, const char *prefix) {
    const char *hit = NULL;
    for (const char *p = csv; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, strlen(prefix))) {
            ck_assert_msg(!hit, "two lines start with '%s'", prefix);
            hit = p;
        }
    ck_assert_msg(hit, "no line starts with '%s':\n%s", prefix, csv);
    return hit;
}

// The k-th (0-based) of exactly n lines of a CSV text that start with prefix.
static const char *csv_line_n(const char *csv, const char *prefix, int n, int k) {
    const char *hit = NULL;
    int count = 0;
    for (const char *p = csv; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (!strncmp(p, prefix, strlen(prefix)) && count++ == k) hit = p;
    ck_assert_msg(count == n && hit, "%d lines start with '%s', expected %d:\n%s", count, prefix,
                  n, csv);
    return hit;
}

static void assert_close(double got, double want, const char *what) {
    ck_assert_msg((isnan(got) && isnan(want)) || fabs(got - want) <= 1e-12 * fmax(1, fabs(want)),
                  "%s: %.17g, expected %.17g", what, got, want);
}

// Summary rows of a plan group: one per ε of its configuration's list (at least one).
static int group_slices(const ds_attack_group *g) {
    int n = ds_craft_eps(&job.attacks[g->attack].craft, NULL);
    return n > 1 ? n : 1;
}

// summary.csv of a run: every plan group's rows (one per ε of a list), their existing columns
// exactly as the reducer before replicates wrote them (from the records counted at
// generation), then the appended seed, Wilson interval and configuration name. Returns the
// number of rows.
static int check_summary_csv(const char *csv) {
    const char *head = "model,temperature,attack,params,n,successes,success_rate,clean_accuracy,"
                       "zero_grad_share";
    ck_assert_msg(!strncmp(csv, head, strlen(head)) &&
                      !strncmp(csv + strlen(head), ",seed,success_lo,success_hi,config\n", 35),
                  "header: %.200s", csv);
    const char *line = strchr(csv, '\n') + 1;
    int i = 0;
    for (int gi = 0, ei = 0; gi < plan.ngroups; i++, line = strchr(line, '\n') + 1) {
        const ds_attack_group *g = &plan.groups[gi];
        const expected_row *e = row_for(g->model, job.attacks[g->attack].name, ei, 0);
        if (++ei == group_slices(g)) gi++, ei = 0; // the next row: the next ε, or group
        ck_assert_ptr_nonnull(e);
        ck_assert_int_gt(e->n, 0);
        char want[1024];
        int len = snprintf(want, sizeof want, "%s,%g,%s,%s,%d,%d,%.17g,%.17g,%.17g,%llu,", e->model,
                           e->T, e->kind, e->params, e->n, e->successes,
                           (double)e->successes / e->n, (double)e->correct / e->n,
                           (double)e->zero_grad / e->n,
                           (unsigned long long)job.seeds[g->rep]);
        ck_assert_msg(!strncmp(line, want, (size_t)len), "row %d:\n%.300s\nexpected to start\n%s", i,
                      line, want);
        double lo, hi;
        wilson_ref(e->successes, e->n, &lo, &hi);
        assert_close(csv_num(line, 10), lo, "success_lo");
        assert_close(csv_num(line, 11), hi, "success_hi");
        ck_assert(csv_num(line, 10) <= (double)e->successes / e->n &&
                  (double)e->successes / e->n <= csv_num(line, 11));
        int commas = 0;
        for (const char *p = line; *p != '\n'; p++) commas += *p == ',';
        ck_assert_int_eq(commas, 12); // 13 columns: nothing else appended
        const char *config = strchr(line, '\n');
        while (config[-1] != ',') config--;
        ck_assert_msg(!strncmp(config, e->config, strlen(e->config)) && config[strlen(e->config)] == '\n',
                      "row %d: config column %.40s, expected %s", i, config, e->config);
    }
    ck_assert_str_eq(line, "");
    return i;
}

// A copy of a summary.csv without its last four columns (seed, success_lo, success_hi, config):
// the columns of the reducer before replicates. Free it.
static char *old_columns(const char *csv) {
    char *out = malloc(strlen(csv) + 1), *o = out;
    ck_assert_ptr_nonnull(out);
    for (const char *p = csv; *p;) {
        const char *end = strchr(p, '\n');
        ck_assert_ptr_nonnull(end);
        const char *cut = end;
        for (int k = 0; k < 4; k++)
            while (*--cut != ',') ck_assert(cut > p);
        memcpy(o, p, (size_t)(cut - p));
        o += cut - p;
        *o++ = '\n';
        p = end + 1;
    }
    *o = '\0';
    return out;
}

START_TEST(test_csv_exact) {
    build_run(JOB_TEXT);
    ck_assert_int_eq(plan.ntasks - 1, NTASKS);
    reduce_ok();
    // The existing columns: the expected text of the reducer before replicates, from the records
    // counted at generation; each line continues with ",<seed>,<lo>,<hi>".
    char *csv = slurp("summary.csv", NULL);
    ck_assert_ptr_nonnull(csv);
    ck_assert_int_eq(check_summary_csv(csv), NROWS);
    const char *line = strchr(csv, '\n') + 1;
    for (int i = 0; i < NROWS; i++, line = strchr(line, '\n') + 1) {
        const expected_row *e = &rows[i];
        char want[1024];
        int len = snprintf(want, sizeof want, "%s,%g,%s,%s,%d,%d,%.17g,%.17g,%.17g,5,", e->model,
                           e->T, e->kind, e->params, e->n, e->successes,
                           (double)e->successes / e->n, (double)e->correct / e->n,
                           (double)e->zero_grad / e->n);
        ck_assert(!strncmp(line, want, (size_t)len)); // in the order of the table above
    }
    // Spot values known by construction: 10 FGSM samples, 2 JSMA samples x 9 targets, 3 x 9.
    ck_assert_int_eq(rows[0].n, 10);
    ck_assert_int_eq(rows[1].n, 18);
    ck_assert_int_eq(rows[3].n, 27);
    free(csv);
    // summary-seeds.csv of one seed: n_seeds 1, the row's own values, no spread, no interval.
    char want[8192];
    size_t len = (size_t)snprintf(want, sizeof want, "model,temperature,attack,params,n_seeds,seeds,"
                                  "success_rate_mean,success_rate_sd,success_rate_min,"
                                  "success_rate_max,success_rate_t_lo,success_rate_t_hi,"
                                  "clean_accuracy_mean,clean_accuracy_sd,test_accuracy_mean,"
                                  "test_accuracy_sd,config\n");
    for (int i = 0; i < NROWS; i++) {
        const expected_row *e = &rows[i];
        double rate = (double)e->successes / e->n;
        len += (size_t)snprintf(want + len, sizeof want - len,
                                "%s,%g,%s,%s,1,5,%.17g,,%.17g,%.17g,,,%.17g,,%.17g,,%s\n", e->model, e->T,
                                e->kind, e->params, rate, rate, rate, (double)e->correct / e->n,
                                models[ds_plan_model_task(&plan, e->model)].test_accuracy, e->config);
    }
    char *seeds = slurp("summary-seeds.csv", NULL);
    ck_assert_ptr_nonnull(seeds);
    ck_assert_str_eq(seeds, want);
    free(seeds);
    ck_assert_int_eq(staged_files_left(), 0);
    teardown();
}
END_TEST

// ---- Replicates: two seeds ----

static void expect_line(const char *md, const char *line) {
    if (strstr(md, line)) return;
    fprintf(stderr, "summary.md:\n%s\n", md);
    ck_abort_msg("summary.md lacks '%s'", line);
}

static int have_gnuplot(void) { return system("command -v gnuplot >/dev/null 2>&1") == 0; }

static const char *SEEDS_JOB =
    "[run]\nname = r\nseeds = 5 7\nthreads = 1\n"
    "[data]\ntrain_samples = 6\ntest_samples = 10\n"
    "[train]\nepochs = 1\nwarm_start = 1\nbatch = 2\n"
    "[distill]\ntemperatures = 1 100\n"
    "[attack fgsm]\nkind = fgsm\nmodels = baseline students\nsamples = 10\nshard = 4\n"
    "[attack jsma]\nkind = jsma\nmodels = baseline students\nsamples = 2\nshard = 1\n";
static const char *const SEEDS_MODELS[] = {"baseline", "T1/student", "T100/student"};
static const char *const SEEDS_CONFIGS[] = {"fgsm", "jsma"};
static const double T_975_1 = 12.706204736174707; // tan(0.475 pi): Student t, df 1, 0.975

// Two values' statistics written out for n = 2: mean, sd = |a - b| / sqrt(2), and the 95% t
// interval mean -/+ t(0.975, 1) sd / sqrt(2).
typedef struct { double mean, sd, min, max, lo, hi; } two;
static two two_of(double a, double b) {
    two t = {.mean = (a + b) / 2, .sd = fabs(a - b) / sqrt(2), .min = fmin(a, b), .max = fmax(a, b)};
    t.lo = t.mean - T_975_1 * t.sd / sqrt(2);
    t.hi = t.mean + T_975_1 * t.sd / sqrt(2);
    return t;
}

static const expected_row *seed_row(uint64_t seed, const char *model, const char *config) {
    char name[DS_JOB_NAME];
    snprintf(name, sizeof name, "s%llu/%s", (unsigned long long)seed, model);
    return row_of(name, config);
}

static double seed_test_accuracy(uint64_t seed, const char *model) {
    char name[DS_JOB_NAME];
    snprintf(name, sizeof name, "s%llu/%s", (unsigned long long)seed, model);
    int t = ds_plan_model_task(&plan, name);
    ck_assert_int_ge(t, 0);
    return models[t].test_accuracy;
}

static double rate(const expected_row *e) { return (double)e->successes / e->n; }

START_TEST(test_seeds_aggregate) {
    build_run(SEEDS_JOB);
    ck_assert_int_eq(job.nseeds, 2);
    reduce_ok();
    // Per seed: every replicate's rows from its own records, named s<seed>/..., seed column.
    char *csv = slurp("summary.csv", NULL);
    ck_assert_int_eq(check_summary_csv(csv), 12);
    ck_assert_ptr_nonnull(csv_line(csv, "s7/T100/student,100,fgsm,"));
    ck_assert_ptr_nonnull(strstr(csv_line(csv, "s5/baseline,1,jsma,"), ",5,"));
    free(csv);
    // Over seeds: each (model, configuration) row holds the statistics of the two rows.
    char *agg = slurp("summary-seeds.csv", NULL);
    ck_assert_ptr_nonnull(agg);
    int lines = 0;
    for (const char *p = agg; (p = strchr(p, '\n')); p++) lines++;
    ck_assert_int_eq(lines, 1 + 6);
    for (int m = 0; m < 3; m++)
        for (int c = 0; c < 2; c++) {
            const expected_row *a = seed_row(5, SEEDS_MODELS[m], SEEDS_CONFIGS[c]);
            const expected_row *b = seed_row(7, SEEDS_MODELS[m], SEEDS_CONFIGS[c]);
            char prefix[512];
            snprintf(prefix, sizeof prefix, "%s,%g,%s,%s,2,5 7,", SEEDS_MODELS[m], a->T, a->kind,
                     a->params);
            const char *line = csv_line(agg, prefix);
            two s = two_of(rate(a), rate(b));
            assert_close(csv_num(line, 6), s.mean, "success_rate_mean");
            assert_close(csv_num(line, 7), s.sd, "success_rate_sd");
            assert_close(csv_num(line, 8), s.min, "success_rate_min");
            assert_close(csv_num(line, 9), s.max, "success_rate_max");
            assert_close(csv_num(line, 10), s.lo, "success_rate_t_lo");
            assert_close(csv_num(line, 11), s.hi, "success_rate_t_hi");
            two k = two_of((double)a->correct / a->n, (double)b->correct / b->n);
            assert_close(csv_num(line, 12), k.mean, "clean_accuracy_mean");
            assert_close(csv_num(line, 13), k.sd, "clean_accuracy_sd");
            two t = two_of(seed_test_accuracy(5, SEEDS_MODELS[m]), seed_test_accuracy(7, SEEDS_MODELS[m]));
            assert_close(csv_num(line, 14), t.mean, "test_accuracy_mean");
            assert_close(csv_num(line, 15), t.sd, "test_accuracy_sd");
            ck_assert(t.sd > 0 && s.lo <= s.mean && s.mean <= s.hi); // two different replicates
        }
    // summary.md: mean ± sd (n) beside the papers, and whether the paper's value is inside.
    char *md = slurp("summary.md", NULL), line[512];
    expect_line(md, "2 seeds (replicates s<seed>/): 5 7;");
    two acc = two_of(seed_test_accuracy(5, "baseline"), seed_test_accuracy(7, "baseline"));
    snprintf(line, sizeof line, "| baseline test accuracy | 99.51 | %.2f ± %.2f (2) | %s | baseline, "
             "2 seeds, 10 test samples; 95%% t interval %.2f–%.2f%% |", 100 * acc.mean,
             100 * acc.sd, acc.lo <= 0.9951 && 0.9951 <= acc.hi ? "yes" : "no", 100 * acc.lo,
             100 * acc.hi);
    expect_line(md, line);
    two f = two_of(rate(seed_row(5, "baseline", "fgsm")), rate(seed_row(7, "baseline", "fgsm")));
    snprintf(line, sizeof line, "| FGSM eps=0.3 success on the baseline | 88.03 | %.2f ± %.2f (2) | "
             "%s | [attack fgsm], 2 seeds of 10 attempts on 10 samples; 95%% t interval %.2f–%.2f%%",
             100 * f.mean, 100 * f.sd, f.lo <= 0.8803 && 0.8803 <= f.hi ? "yes" : "no",
             100 * f.lo, 100 * f.hi);
    expect_line(md, line);
    two j = two_of(rate(seed_row(5, "T100/student", "jsma")), rate(seed_row(7, "T100/student", "jsma")));
    snprintf(line, sizeof line, "| JSMA success at T=100 | 0.45 | %.2f ± %.2f (2) | %s |",
             100 * j.mean, 100 * j.sd, j.lo <= 0.0045 && 0.0045 <= j.hi ? "yes" : "no");
    expect_line(md, line);
    // "below 1.5": a bound, inside when our interval reaches below 1.5%.
    two b = two_of(rate(seed_row(5, "T100/student", "fgsm")), rate(seed_row(7, "T100/student", "fgsm")));
    snprintf(line, sizeof line, "| FGSM eps=0.3 success at T=100 | below 1.5 | %.2f ± %.2f (2) | %s |",
             100 * b.mean, 100 * b.sd, b.lo <= 0.015 ? "yes" : "no");
    expect_line(md, line);
    // The models over seeds; the attacks over seeds; every replicate's row with its Wilson interval.
    two st = two_of(seed_test_accuracy(5, "T100/student"), seed_test_accuracy(7, "T100/student"));
    snprintf(line, sizeof line, "| T100/student | student | 100 | 1 (+1 warm start) | %.2f ± %.2f (2) "
             "| %.2f | %.2f | %.2f–%.2f |", 100 * st.mean, 100 * st.sd, 100 * st.min, 100 * st.max,
             100 * st.lo, 100 * st.hi);
    expect_line(md, line);
    snprintf(line, sizeof line, "| T100/student | 100 | fgsm | fgsm | %s | 10 | %.2f ± %.2f (2) | "
             "%.2f–%.2f | ", seed_row(5, "T100/student", "fgsm")->params, 100 * b.mean, 100 * b.sd,
             100 * b.lo, 100 * b.hi);
    expect_line(md, line);
    const expected_row *e = seed_row(7, "T100/student", "fgsm");
    double lo, hi;
    wilson_ref(e->successes, e->n, &lo, &hi);
    snprintf(line, sizeof line, "| s7/T100/student | 100 | fgsm | fgsm | %s | 10 | %d | %.2f | "
             "%.2f–%.2f | ", e->params, e->successes, 100 * rate(e), 100 * lo, 100 * hi);
    expect_line(md, line);
    free(md);
    free(agg);
    teardown();
}
END_TEST

// summary.md's Rounding table over two seeds: mean ± sd (n) of each setting, the mean
// zero-gradient share in brackets, one line per base model; the masking checks and robust
// accuracy per model of each replicate, never over two replicates' rows.
START_TEST(test_seeds_rounding) {
    char text[4096];
    snprintf(text, sizeof text, "%s[attack fgsm-flush]\nkind = fgsm\ndenormals = flush\n"
             "models = baseline students\nsamples = 10\nshard = 4\n", SEEDS_JOB);
    build_run(text);
    reduce_ok();
    char *md = slurp("summary.md", NULL), line[256];
    const char *m = "T1/student";
    two k = two_of(rate(seed_row(5, m, "fgsm")), rate(seed_row(7, m, "fgsm")));
    two f = two_of(rate(seed_row(5, m, "fgsm-flush")), rate(seed_row(7, m, "fgsm-flush")));
    double kz = (seed_row(5, m, "fgsm")->zero_grad + seed_row(7, m, "fgsm")->zero_grad) / 20.0;
    double fz = (seed_row(5, m, "fgsm-flush")->zero_grad + seed_row(7, m, "fgsm-flush")->zero_grad) / 20.0;
    snprintf(line, sizeof line, "| T1/student | 1 | %.2f ± %.2f (2) (%.2f) | %.2f ± %.2f (2) (%.2f) |",
             100 * k.mean, 100 * k.sd, 100 * kz, 100 * f.mean, 100 * f.sd, 100 * fz);
    expect_line(md, line);
    const char *rounding = strstr(md, "## Rounding"), *next = strstr(rounding + 1, "\n## ");
    ck_assert(rounding && next);
    char *hit = strstr(rounding, "| s5/T1/student |");
    ck_assert(!hit || hit > next); // per base model, not per seed
    // The masking checks and the worst case: per model of one replicate, from its own rows.
    char *ck = slurp("checks.csv", NULL), *rb = slurp("robust.csv", NULL), want[512];
    for (int k = 0; k < 2; k++) {
        uint64_t seed = k ? 7 : 5;
        const expected_row *a = seed_row(seed, m, "fgsm"), *b = seed_row(seed, m, "fgsm-flush");
        const expected_row *hi = rate(a) >= rate(b) ? a : b, *lo = hi == a ? b : a;
        snprintf(want, sizeof want, "\ns%llu/T1/student,1,rounding,%s,%.17g,%.17g,%s eps=0.3 "
                 "%.2f%% vs %s eps=0.3 %.2f%% on the 10 samples both attacked (%+.2f points; 1 "
                 "comparison)\n",
                 (unsigned long long)seed,
                 rate(hi) - rate(lo) > 0.01 + 1e-9 ? "FAIL" : "pass", rate(hi), rate(lo),
                 hi->config, 100 * rate(hi), lo->config, 100 * rate(lo),
                 100 * (rate(hi) - rate(lo)));
        ck_assert_msg(strstr(ck, want), "checks.csv lacks '%s':\n%s", want + 1, ck);
        // Robust: correct and fooled by neither FGSM of this replicate (one record per sample).
        int robust = 0;
        for (int i = 0; i < 10; i++) {
            const ds_attack_record *x = &a->rec[i], *y = &b->rec[i];
            ck_assert(x->index == i && y->index == i);
            robust += x->clean_pred == x->label && !x->success && !y->success;
        }
        snprintf(want, sizeof want, "\ns%llu/T1/student,1,linf,0.3,10,%d,%.17g,fgsm fgsm-flush\n",
                 (unsigned long long)seed, robust, robust / 10.0);
        ck_assert_msg(strstr(rb, want), "robust.csv lacks '%s':\n%s", want + 1, rb);
    }
    ck_assert_ptr_null(strstr(rb, "\nT1/student,")); // no row over the replicates together
    free(ck);
    free(rb);
    free(md);
    teardown();
}
END_TEST

// summary.h5 of two seeds: the per-seed rows' seed and Wilson interval, the "aggregate" and
// "aggregate_models" tables.
START_TEST(test_seeds_summary_h5) {
    build_run(SEEDS_JOB);
    reduce_ok();
    char path[1024];
    path_in_run("summary.h5", path, sizeof path);
    hid_t f, str = H5Tcopy(H5T_C_S1);
    H5Tset_size(str, H5T_VARIABLE);
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    typedef struct {
        char *model;
        uint64_t seed;
        double lo, hi;
    } srow;
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof(srow));
    H5Tinsert(t, "model", HOFFSET(srow, model), str);
    H5Tinsert(t, "seed", HOFFSET(srow, seed), H5T_NATIVE_UINT64);
    H5Tinsert(t, "success_lo", HOFFSET(srow, lo), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "success_hi", HOFFSET(srow, hi), H5T_NATIVE_DOUBLE);
    srow s[12];
    hid_t d = H5Dopen2(f, "summary", H5P_DEFAULT), sp = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), 12);
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, s), 0);
    for (int i = 0; i < 12; i++) {
        const ds_attack_group *g = &plan.groups[i];
        const expected_row *e = row_of(g->model, job.attacks[g->attack].name);
        double lo, hi;
        wilson_ref(e->successes, e->n, &lo, &hi);
        ck_assert_str_eq(s[i].model, g->model);
        ck_assert(s[i].seed == (!strncmp(g->model, "s5/", 3) ? 5u : 7u));
        assert_close(s[i].lo, lo, "success_lo");
        assert_close(s[i].hi, hi, "success_hi");
    }
    H5Dvlen_reclaim(t, sp, H5P_DEFAULT, s);
    H5Sclose(sp);
    H5Dclose(d);
    H5Tclose(t);
    typedef struct {
        char *model, *config, *seeds;
        int64_t n;
        double mean, lo, hi;
    } arow;
    t = H5Tcreate(H5T_COMPOUND, sizeof(arow));
    H5Tinsert(t, "model", HOFFSET(arow, model), str);
    H5Tinsert(t, "config", HOFFSET(arow, config), str);
    H5Tinsert(t, "seeds", HOFFSET(arow, seeds), str);
    H5Tinsert(t, "n_seeds", HOFFSET(arow, n), H5T_NATIVE_INT64);
    H5Tinsert(t, "success_rate_mean", HOFFSET(arow, mean), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "success_rate_t_lo", HOFFSET(arow, lo), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "success_rate_t_hi", HOFFSET(arow, hi), H5T_NATIVE_DOUBLE);
    arow a[6];
    d = H5Dopen2(f, "aggregate", H5P_DEFAULT), sp = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), 6);
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, a), 0);
    for (int i = 0; i < 6; i++) {
        two w = two_of(rate(seed_row(5, a[i].model, a[i].config)),
                       rate(seed_row(7, a[i].model, a[i].config)));
        ck_assert_int_eq(a[i].n, 2);
        ck_assert_str_eq(a[i].seeds, "5 7");
        assert_close(a[i].mean, w.mean, "aggregate success_rate_mean");
        assert_close(a[i].lo, w.lo, "aggregate success_rate_t_lo");
        assert_close(a[i].hi, w.hi, "aggregate success_rate_t_hi");
    }
    ck_assert_str_eq(a[0].model, "baseline"); // in plan order
    ck_assert_str_eq(a[5].model, "T100/student");
    H5Dvlen_reclaim(t, sp, H5P_DEFAULT, a);
    H5Sclose(sp);
    H5Dclose(d);
    H5Tclose(t);
    typedef struct {
        char *model;
        int64_t n;
        double mean, sd, lo, hi;
    } mrow;
    t = H5Tcreate(H5T_COMPOUND, sizeof(mrow));
    H5Tinsert(t, "model", HOFFSET(mrow, model), str);
    H5Tinsert(t, "n_seeds", HOFFSET(mrow, n), H5T_NATIVE_INT64);
    H5Tinsert(t, "test_accuracy_mean", HOFFSET(mrow, mean), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "test_accuracy_sd", HOFFSET(mrow, sd), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "test_accuracy_t_lo", HOFFSET(mrow, lo), H5T_NATIVE_DOUBLE);
    H5Tinsert(t, "test_accuracy_t_hi", HOFFSET(mrow, hi), H5T_NATIVE_DOUBLE);
    mrow m[6];
    d = H5Dopen2(f, "aggregate_models", H5P_DEFAULT), sp = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), 6); // warmstart, baseline, 2 teachers, 2 students
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, m), 0);
    for (int i = 0; i < 6; i++) {
        two w = two_of(seed_test_accuracy(5, m[i].model), seed_test_accuracy(7, m[i].model));
        ck_assert_int_eq(m[i].n, 2);
        assert_close(m[i].mean, w.mean, "test_accuracy_mean");
        assert_close(m[i].sd, w.sd, "test_accuracy_sd");
        assert_close(m[i].lo, w.lo, "test_accuracy_t_lo");
        assert_close(m[i].hi, w.hi, "test_accuracy_t_hi");
    }
    H5Dvlen_reclaim(t, sp, H5P_DEFAULT, m);
    H5Sclose(sp);
    H5Dclose(d);
    H5Tclose(t);
    H5Fclose(f);
    H5Tclose(str);
    teardown();
}
END_TEST

// ---- Replicates and ε lists together ----

// Two seeds and an FGSM ε list: every replicate's rows per ε (seed and Wilson columns), one
// aggregate row per (base model, configuration, ε) holding the statistics of the two per-seed
// rows of that ε; Figure 1 at the list's 0.3 only; figure2 the means over the seeds.
static const char *SEEDS_EPS_EXTRA =
    "[attack curve]\nkind = fgsm\neps = 0.5 0.1 0.3\nmodels = baseline students\nsamples = 10\n"
    "shard = 4\n";
static const float CURVE_EPS[] = {0.5f, 0.1f, 0.3f}; // as written: the rows' order

static const expected_row *seed_row_eps(uint64_t seed, const char *model, int e) {
    char name[DS_JOB_NAME];
    snprintf(name, sizeof name, "s%llu/%s", (unsigned long long)seed, model);
    const expected_row *x = row_for(name, "curve", e, 0);
    ck_assert_ptr_nonnull(x);
    return x;
}

START_TEST(test_seeds_eps_aggregate) {
    char text[4096];
    snprintf(text, sizeof text, "%s%s", SEEDS_JOB, SEEDS_EPS_EXTRA);
    build_run(text);
    ck_assert_int_eq(job.nseeds, 2);
    unsetenv("DS_GNUPLOT");
    reduce_ok();
    // Per seed and ε: 12 rows of fgsm and jsma, and 2 seeds x 3 models x 3 eps of curve, each
    // from its own slice of records, old columns exact, then seed and Wilson interval.
    char *csv = slurp("summary.csv", NULL);
    ck_assert_int_eq(check_summary_csv(csv), 12 + 18);
    const expected_row *x = seed_row_eps(7, "T100/student", 1);
    ck_assert_int_eq(x->n, 10);
    ck_assert_str_eq(x->params, "eps=0.1 space=softmax labels=true denormals=keep gradient=stable "
                                "precision=float32");
    ck_assert_ptr_nonnull(csv_line(csv, "s7/T100/student,100,fgsm,eps=0.1 space=softmax "));
    free(csv);
    // Over seeds: one line per (model, configuration, ε), 6 + 9 of them.
    char *agg = slurp("summary-seeds.csv", NULL);
    int lines = 0;
    for (const char *p = agg; (p = strchr(p, '\n')); p++) lines++;
    ck_assert_int_eq(lines, 1 + 6 + 9);
    for (int m = 0; m < 3; m++)
        for (int e = 0; e < 3; e++) {
            const expected_row *a = seed_row_eps(5, SEEDS_MODELS[m], e);
            const expected_row *b = seed_row_eps(7, SEEDS_MODELS[m], e);
            ck_assert_str_eq(a->params, b->params);
            ck_assert(a->n == 10 && b->n == 10);
            char prefix[512];
            snprintf(prefix, sizeof prefix, "%s,%g,fgsm,eps=%g space=softmax labels=true "
                     "denormals=keep gradient=stable precision=float32,2,5 7,", SEEDS_MODELS[m],
                     a->T, (double)CURVE_EPS[e]);
            // At 0.3 the line of [attack fgsm] has the same first columns (summary-seeds.csv
            // names no configuration): the curve's is the second, in plan order.
            const char *line = csv_line_n(agg, prefix, e == 2 ? 2 : 1, e == 2 ? 1 : 0);
            two s = two_of(rate(a), rate(b));
            assert_close(csv_num(line, 6), s.mean, "success_rate_mean");
            assert_close(csv_num(line, 7), s.sd, "success_rate_sd");
            assert_close(csv_num(line, 8), s.min, "success_rate_min");
            assert_close(csv_num(line, 9), s.max, "success_rate_max");
            assert_close(csv_num(line, 10), s.lo, "success_rate_t_lo");
            assert_close(csv_num(line, 11), s.hi, "success_rate_t_hi");
            two k = two_of((double)a->correct / a->n, (double)b->correct / b->n);
            assert_close(csv_num(line, 12), k.mean, "clean_accuracy_mean");
            assert_close(csv_num(line, 13), k.sd, "clean_accuracy_sd");
        }
    // summary.h5 "aggregate": the same 15 rows.
    char path[1024];
    path_in_run("summary.h5", path, sizeof path);
    hid_t f, d, sp;
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    d = H5Dopen2(f, "aggregate", H5P_DEFAULT), sp = H5Dget_space(d);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), 15);
    H5Sclose(sp);
    H5Dclose(d);
    H5Fclose(f);
    // summary.md over seeds: the ε 0.5 row of the T1 student.
    char *md = slurp("summary.md", NULL), line[512];
    two s = two_of(rate(seed_row_eps(5, "T1/student", 0)), rate(seed_row_eps(7, "T1/student", 0)));
    snprintf(line, sizeof line, "| T1/student | 1 | fgsm | curve | eps=0.5 space=softmax labels=true "
             "denormals=keep gradient=stable precision=float32 | 10 | %.2f ± %.2f (2) | %.2f–%.2f |",
             100 * s.mean, 100 * s.sd, 100 * s.lo, 100 * s.hi);
    expect_line(md, line);
    // The checks per model of each replicate.
    expect_line(md, "| s5/T100/student | 100 |");
    expect_line(md, "| s7/baseline | 1 |");
    // Figure 1 with several seeds: each configuration at one ε (0.3 of the list).
    char *dat = slurp("figure1.dat", NULL);
    ck_assert_ptr_nonnull(strstr(dat, "# index 0: [attack fgsm]"));
    ck_assert_ptr_nonnull(strstr(dat, "# index 2: [attack curve] fgsm eps=0.3 space=softmax"));
    ck_assert_ptr_null(strstr(dat, "# index 3:"));
    ck_assert_ptr_null(strstr(dat, "[attack curve] fgsm eps=0.1 "));
    two c = two_of(rate(seed_row_eps(5, "T100/student", 2)), rate(seed_row_eps(7, "T100/student", 2)));
    const char *p = strstr(strstr(dat, "# index 2:"), "\n100 ");
    ck_assert_ptr_nonnull(p);
    double v[4];
    ck_assert_int_eq(sscanf(p + 1, "%lf %lf %lf %lf", &v[0], &v[1], &v[2], &v[3]), 4);
    ck_assert(fabs(v[1] - 100 * c.mean) < 1e-7 && fabs(v[2] - 100 * c.lo) < 1e-7 &&
              fabs(v[3] - 100 * c.hi) < 1e-7);
    free(dat);
    // figure2: one curve per base model, the mean over seeds with its t interval, eps sorted.
    dat = slurp("figure2.dat", NULL);
    char *gp = slurp("figure2.gp", NULL);
    const char *blk = strstr(dat, "# index 0: [attack curve] fgsm on baseline\n");
    ck_assert_ptr_nonnull(blk);
    ck_assert_ptr_null(strstr(dat, "s5/baseline"));
    blk = strchr(blk, '\n') + 1;
    for (int i = 0; i < 3; i++, blk = strchr(blk, '\n') + 1) {
        static const int order[] = {1, 2, 0}; // 0.1 0.3 0.5
        int e = order[i], n;
        const expected_row *a = seed_row_eps(5, "baseline", e), *b = seed_row_eps(7, "baseline", e);
        two w = two_of(rate(a), rate(b));
        double u[8];
        ck_assert_int_eq(sscanf(blk, "%lf %lf %lf %lf %d %lf %lf %lf", &u[0], &u[1], &u[2], &u[3],
                                &n, &u[5], &u[6], &u[7]), 8);
        ck_assert(fabs(u[0] - CURVE_EPS[e]) < 1e-6 && n == 2);
        const double want[] = {0, w.mean, w.lo, w.hi, 0, w.sd, rate(a), rate(b)};
        for (int k = 1; k < 8; k++)
            if (k != 4)
                ck_assert_msg(fabs(u[k] - 100 * want[k]) < 1e-7, "eps %g column %d: %g, want %g",
                              u[0], k + 1, u[k], 100 * want[k]);
    }
    ck_assert_ptr_nonnull(strstr(gp, "index 0 using 1:2:3:4 with yerrorlines"));
    if (have_gnuplot()) { // gnuplot draws both figures
        size_t n1, n2;
        char *p1 = slurp("figure1.png", &n1), *p2 = slurp("figure2.png", &n2);
        ck_assert(p1 && p2 && n1 > 1000 && n2 > 1000 && !memcmp(p2, "\x89PNG", 4));
        free(p1);
        free(p2);
    }
    free(dat);
    free(gp);
    free(md);
    free(agg);
    teardown();
}
END_TEST

// Figure 1 of two seeds: the mean with its interval per temperature and each seed's rate in
// figure1.dat; error bars and faint per-seed curves in figure1.gp; gnuplot draws it.
START_TEST(test_seeds_figure) {
    build_run(SEEDS_JOB);
    unsetenv("DS_GNUPLOT");
    reduce_ok();
    char *dat = slurp("figure1.dat", NULL), *gp = slurp("figure1.gp", NULL);
    ck_assert_ptr_nonnull(strstr(dat, "# index 1: [attack jsma]"));
    const char *p = strstr(dat, "\n100 "); // fgsm (index 0), T=100
    ck_assert_ptr_nonnull(p);
    double v[9];
    int n;
    ck_assert_int_eq(sscanf(p + 1, "%lf %lf %lf %lf %lf %d %lf %lf %lf", &v[0], &v[1], &v[2], &v[3],
                            &v[4], &n, &v[6], &v[7], &v[8]), 9);
    const expected_row *a = seed_row(5, "T100/student", "fgsm"), *b = seed_row(7, "T100/student", "fgsm");
    two s = two_of(rate(a), rate(b)),
        base = two_of(rate(seed_row(5, "baseline", "fgsm")), rate(seed_row(7, "baseline", "fgsm")));
    ck_assert(v[0] == 100 && n == 2);
    const double want[] = {100, s.mean, s.lo, s.hi, base.mean, 2, s.sd, rate(a), rate(b)};
    for (int i = 1; i < 9; i++)
        if (i != 5) ck_assert_msg(fabs(v[i] - 100 * want[i]) < 1e-7, "column %d: %g, want %g", i + 1, v[i], 100 * want[i]);
    // Means with error bars, configurations 4% of T apart; seeds dotted and faint; baseline dashed.
    ck_assert_ptr_nonnull(strstr(gp, "index 0 using ($1*0.980581):2:3:4 with yerrorlines lw 2 pt 7"));
    ck_assert_ptr_nonnull(strstr(gp, "index 1 using ($1*1.0198):2:3:4 with yerrorlines lw 2 pt 5"));
    ck_assert_ptr_nonnull(strstr(gp, "index 0 using ($1*0.980581):8 with linespoints dt (3,3) lw 1.5 pt 7 "
                                     "ps 0.7 lc rgb '#501f77b4' notitle"));
    ck_assert_ptr_nonnull(strstr(gp, "index 1 using ($1*1.0198):9 with linespoints dt (3,3)"));
    ck_assert_ptr_nonnull(strstr(gp, "index 0 using 1:5 with lines dt 2"));
    // The seeds' curves come first (drawn behind), the file named once, first.
    ck_assert(strstr(gp, "with linespoints dt (3,3)") < strstr(gp, "yerrorlines"));
    ck_assert_ptr_nonnull(strstr(gp, "plot 'figure1.dat' index 0 using ($1*0.980581):8 "));
    if (have_gnuplot()) {
        size_t len;
        char *png = slurp("figure1.png", &len), *svg = slurp("figure1.svg", NULL);
        ck_assert(png && len > 1000 && !memcmp(png, "\x89PNG", 4));
        ck_assert(svg && strstr(svg, "<svg"));
        free(png);
        free(svg);
    }
    free(dat);
    free(gp);
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
static void drop_last(ds_attack_set *s) { s->n_records--; }
// Restores the 12 records of a 4-sample shard with 3 ε, with the last slice (records 8-11,
// samples 0-3) out of order.
static void swap_in_last_slice(ds_attack_set *s) {
    s->n_records = 12;
    s->records = realloc(s->records, sizeof *s->records * 12);
    s->records[11] = s->records[7];
    s->records[11].index = 0;
    s->records[8].index = 3;
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
                          "clean_accuracy,zero_grad_share,seed,success_lo,success_hi,config\n");
    ck_assert(exists("weights.h5") && exists("soft_labels.h5") && !exists("figure1.dat"));
    char *md = slurp("summary.md", NULL);
    ck_assert(strstr(md, "| T2.5/student | student | 2.5 | 1 |"));
    ck_assert(strstr(md, "no T100/student in this sweep"));
    free(csv);
    free(md);
    teardown();
}
END_TEST

// ---- Per-ε rows (issue 17) ----

// JOB_TEXT plus an FGSM ε list and a transfer of one: one summary row per ε.
static const char *EPS_EXTRA =
    "[attack curve]\nkind = fgsm\neps = 0.1 0.3 0.5\nmodels = baseline students\nsamples = 10\n"
    "shard = 4\n"
    "[attack tcurve]\nkind = transfer\ncraft = fgsm\neps = 0.1, 0.3\nmodels = students\n"
    "first = 2\nsamples = 5\nshard = 2\n";

// summary.csv as it must be in the columns of the reducer before replicates (old_columns): the
// groups in plan order, each ε of a list its own row, with the counts of the records generated
// for that (model, configuration, ε).
static void expected_csv(char *want, size_t cap) {
    size_t len = (size_t)snprintf(want, cap, "model,temperature,attack,params,n,successes,"
                                  "success_rate,clean_accuracy,zero_grad_share\n");
    for (int g = 0; g < plan.ngroups; g++) {
        const ds_attack_group *ag = &plan.groups[g];
        const ds_job_attack *a = &job.attacks[ag->attack];
        int slices = group_slices(ag);
        for (int e = 0; e < slices; e++) {
            const expected_row *x = row_for(ag->model, a->name, slices > 1 ? e : 0, 0);
            ck_assert_ptr_nonnull(x);
            char params[256];
            if (slices > 1) params_at(a, e, params, sizeof params);
            else snprintf(params, sizeof params, "%s", a->params);
            len += (size_t)snprintf(want + len, cap - len, "%s,%g,%s,%s,%d,%d,%.17g,%.17g,%.17g\n",
                                    ag->model, ag->temperature, ds_attack_kind_name(a->kind),
                                    params, x->n, x->successes, (double)x->successes / x->n,
                                    (double)x->correct / x->n, (double)x->zero_grad / x->n);
        }
    }
}

START_TEST(test_eps_rows) {
    char text[4096];
    snprintf(text, sizeof text, "%s%s", JOB_TEXT, EPS_EXTRA);
    build_run(text);
    reduce_ok();
    // One row per ε, rates over that ε's records; the one-ε configurations as before.
    char want[16384], *csv = slurp("summary.csv", NULL), *old = old_columns(csv);
    expected_csv(want, sizeof want);
    ck_assert_str_eq(old, want);
    free(old);
    ck_assert_int_eq(check_summary_csv(csv), 7 + 9 + 4); // the per-seed columns of every row
    ck_assert(strstr(csv, "\nbaseline,1,fgsm,eps=0.5 space=softmax labels=true denormals=keep "
                          "gradient=stable precision=float32,10,"));
    ck_assert(strstr(csv, "\nT100/student,100,transfer,source=baseline craft=fgsm eps=0.3 "
                          "space=softmax labels=true denormals=keep gradient=stable "
                          "precision=float32,5,"));
    // Each ε of the list is a slice of 10 records, and its rates are that slice's.
    const expected_row *c1 = row_for("T1/student", "curve", 1, 0);
    ck_assert_int_eq(c1->n, 10);
    ds_attack_rates q;
    ds_attack_rates_compute(c1->rec, c1->nrec, &q);
    ck_assert_int_eq(q.successes, c1->successes);
    // adversarial.h5: the group's records ε-major, each ε in sample order, params as the job's.
    char path[1024];
    path_in_run("adversarial.h5", path, sizeof path);
    ds_attack_set s;
    ck_assert_int_eq(ds_attack_results_load(path, "T1/student/curve", &s), DS_OK);
    ck_assert_int_eq(s.n_records, 30);
    ck_assert_str_eq(s.params, "eps=0.1,0.3,0.5 space=softmax labels=true denormals=keep "
                               "gradient=stable precision=float32");
    for (int e = 0; e < 3; e++) {
        const expected_row *x = row_for("T1/student", "curve", e, 0);
        ck_assert(memcmp(s.records + 10 * e, x->rec, sizeof *x->rec * 10) == 0);
    }
    ds_attack_set_free(&s);
    char *md = slurp("summary.md", NULL);
    ck_assert(strstr(md, "| T100/student | 100 | fgsm | curve | eps=0.3 space=softmax "));
    // figure1: one curve per configuration, a list at its ε 0.3 only.
    char *dat = slurp("figure1.dat", NULL);
    ck_assert(strstr(dat, "[attack curve] fgsm eps=0.3 space=softmax labels=true"));
    ck_assert(!strstr(dat, "[attack curve] fgsm eps=0.5") && !strstr(dat, "[attack curve] fgsm eps=0.1"));
    free(dat);
    free(md);
    free(csv);
    // A shard's ε slices are checked one by one.
    snapshot snap;
    take(&snap);
    replace_shard("attack/baseline/curve/0-4", drop_last);
    assert_refused(DS_EFORMAT, "tasks/atk-baseline-curve-000000.h5: curve: 11 records, expected 12 "
                               "(3 eps values x 4 samples)");
    replace_shard("attack/baseline/curve/0-4", swap_in_last_slice); // back to 12 records
    assert_refused(DS_EFORMAT, "tasks/atk-baseline-curve-000000.h5: curve: record 9: sample 1 out "
                               "of order");
    assert_untouched(&snap);
    teardown();
}
END_TEST

// The same job with `eps = 0.3` written out: the same params, the same rows.
START_TEST(test_one_eps_unchanged) {
    char text[4096];
    snprintf(text, sizeof text, "%s", JOB_TEXT);
    char *at = strstr(text, "[attack fgsm]\nkind = fgsm\n");
    ck_assert_ptr_nonnull(at);
    memmove(at + 36, at + 26, strlen(at + 26) + 1);
    memcpy(at + 26, "eps = 0.3\n", 10);
    build_run(text);
    ck_assert_int_eq(job.attacks[0].craft.fgsm.n_eps, 1);
    reduce_ok();
    char want[8192], *csv = slurp("summary.csv", NULL), *old = old_columns(csv);
    expected_csv(want, sizeof want);
    ck_assert_str_eq(old, want);
    free(old);
    ck_assert_int_eq(check_summary_csv(csv), NROWS);
    ck_assert(strstr(csv, "\nbaseline,1,fgsm,eps=0.3 space=softmax labels=true denormals=keep "
                          "gradient=stable precision=float32,10,"));
    ck_assert(!exists("figure2.dat")); // no ε list, no ε curve
    free(csv);
    teardown();
}
END_TEST

// ---- The checks on a reduced run (FGSM: the kinds a job can name on this branch) ----

// Per configuration (by name) and ε index: how many of the first samples are fooled.
static int fooled_first(const char *model, const char *config, int e) {
    int student = !strcmp(model, "T100/student");
    if (!strcmp(config, "fl")) return student ? (int[]){1, 3, 2}[e] : (int[]){5, 8, 10}[e];
    if (!strcmp(config, "fl-flush")) return student ? 0 : (int[]){5, 8, 10}[e];
    if (!strcmp(config, "fl-logitsT")) return student ? 9 : 8;
    if (!strcmp(config, "tr")) return 6;
    ck_abort_msg("no outcome for %s", config);
    return 0;
}

// The student misclassifies sample 9 (so it is fooled by every attack: success = misclassified),
// and its softmax gradients are zero on the samples no attack fooled.
static void checks_hook(const ds_task *t, const ds_job_attack *a, int e, ds_attack_record *r) {
    int student = !strcmp(t->model, "T100/student"), i = r->index;
    int wrong = student && i == 9, fooled = wrong || i < fooled_first(t->model, a->name, e);
    r->clean_pred = wrong ? (r->label + 1) % DS_CLASSES : r->label;
    r->success = (uint8_t)fooled;
    r->adv_pred = fooled ? (r->label + 2) % DS_CLASSES : r->label;
    r->zero_grad = (uint8_t)(student && a->craft.fgsm.space == DS_SPACE_SOFTMAX &&
                             a->kind == DS_KIND_FGSM && !fooled);
}

static const char *CHECKS_JOB =
    "[run]\nname = r\nseed = 5\nthreads = 1\n"
    "[data]\ntrain_samples = 6\ntest_samples = 10\n"
    "[train]\nepochs = 1\nwarm_start = 1\nbatch = 2\n"
    "[distill]\ntemperatures = 100\n"
    "[attack fl]\nkind = fgsm\neps = 0.1 0.3 0.5\nsamples = 10\nshard = 4\n"
    "[attack fl-flush]\nkind = fgsm\neps = 0.1 0.3 0.5\ndenormals = flush\nsamples = 10\n"
    "[attack fl-logitsT]\nkind = fgsm\nspace = logits_T\nsamples = 5\nshard = 5\n"
    "[attack tr]\nkind = transfer\ncraft = fgsm\nmodels = students\nsamples = 10\n";

static void expect_prefix_line(const char *text, const char *line) {
    char needle[512];
    snprintf(needle, sizeof needle, "\n%s", line);
    ck_assert_msg(strstr(text, needle), "no line starting '%s' in:\n%s", line, text);
}

START_TEST(test_checks_reduced) {
    outcome_hook = checks_hook;
    build_run(CHECKS_JOB);
    outcome_hook = NULL;
    unsetenv("DS_GNUPLOT");
    reduce_ok();
    char *ck = slurp("checks.csv", NULL), *rb = slurp("robust.csv", NULL);
    ck_assert_ptr_nonnull(ck);
    ck_assert(!strncmp(ck, "model,temperature,check,verdict,value,reference,detail\n", 55));
    // The baseline: nothing to flag. Its curves are FGSM's: no 99% to reach, only no fall.
    expect_prefix_line(ck, "baseline,1,iterative,n/a,,,\"no PGD (L-inf) and FGSM at the same eps, "
                           "space, labels and rounding\"\n");
    expect_prefix_line(ck, "baseline,1,eps_curve,pass,,,no PGD or Square eps list (FGSM need not "
                           "reach 99%); never falls\n");
    expect_prefix_line(ck, "baseline,1,gradient_free,n/a,,,");
    expect_prefix_line(ck, "baseline,1,transfer,n/a,,,");
    expect_prefix_line(ck, "baseline,1,zero_grad,pass,0,0.01,");
    // fl-logitsT attacked the first 5 samples only: both over those 5 (fl fools 0-7 at 0.3).
    expect_prefix_line(ck, "baseline,1,logits,pass,1,1,fl-logitsT eps=0.3 100.00% vs best fl "
                           "eps=0.3 100.00% on the 5 samples both attacked (+0.00 points; 1 "
                           "comparison)\n");
    expect_prefix_line(ck, "baseline,1,rounding,pass,0.5,0.5,");
    // The T=100 student: the ε curve falls (40% -> 30%; the flushed one stays at 10%, no
    // failure for FGSM); 90% zero gradients; on the 5 samples fl-logitsT attacked, logits/T
    // (100%) beats the softmax (fl: 60% there, 40% over all 10) by 40 points; the flush costs 30
    // points; the transfer (70%) beats the softmax FGSM (40%): logits/T is no reference.
    expect_prefix_line(ck, "T100/student,100,eps_curve,FAIL,,,\"no PGD or Square eps list (FGSM "
                           "need not reach 99%); largest fall 10.00 points (fl, eps 0.3 -> "
                           "0.5)\"\n");
    expect_prefix_line(ck, "T100/student,100,zero_grad,FAIL,0.90000000000000002,0.01,\"largest: "
                           "fl-flush eps=0.1, 9 of 10 attempts (90.00%)\"\n");
    expect_prefix_line(ck, "T100/student,100,logits,FAIL,1,0.59999999999999998,fl-logitsT eps=0.3 "
                           "100.00% vs best fl eps=0.3 60.00% on the 5 samples both attacked "
                           "(+40.00 points; 1 comparison)\n");
    expect_prefix_line(ck, "T100/student,100,rounding,FAIL,0.40000000000000002,"
                           "0.10000000000000001,fl eps=0.3 40.00% vs fl-flush eps=0.3 10.00% "
                           "on the 10 samples both attacked (+30.00 points; 3 comparisons)\n");
    expect_prefix_line(ck, "T100/student,100,transfer,FAIL,0.69999999999999996,"
                           "0.40000000000000002,tr eps=0.3 70.00% vs best fl eps=0.3 40.00% on "
                           "the 10 samples both attacked (+30.00 points; 1 comparison)\n");
    expect_prefix_line(ck, "T100/student,100,iterative,n/a,,,");
    expect_prefix_line(ck, "T100/student,100,gradient_free,n/a,,,");
    // Robust accuracy, counted by hand from checks_hook.
    ck_assert_str_eq(rb, "model,temperature,norm,eps,n,robust,robust_accuracy,attacks\n"
                         "baseline,1,linf,0.1,10,5,0.5,fl fl-flush\n"
                         "baseline,1,linf,0.3,5,0,0,fl fl-flush fl-logitsT\n"
                         "baseline,1,linf,0.5,10,0,0,fl fl-flush\n"
                         "T100/student,100,linf,0.1,10,8,0.80000000000000004,fl fl-flush\n"
                         "T100/student,100,linf,0.3,5,0,0,fl fl-flush fl-logitsT tr\n"
                         "T100/student,100,linf,0.5,10,7,0.69999999999999996,fl fl-flush\n");
    // summary.md: the model x check table and the flagged model with its reasons.
    char *md = slurp("summary.md", NULL);
    expect_line(md, "| model | T | iterative | eps_curve | gradient_free | transfer | zero_grad | "
                    "logits | rounding | gradient masking suspected |");
    expect_line(md, "| baseline | 1 | n/a | pass | n/a | n/a | pass | pass | pass | no |");
    expect_line(md, "| T100/student | 100 | n/a | **FAIL** | n/a | **FAIL** | **FAIL** | **FAIL** | "
                    "**FAIL** | **yes** |");
    expect_line(md, "**T100/student: gradient masking suspected.**\n- eps_curve: ");
    expect_line(md, "- rounding: the rounding of the gradients moves success: fl eps=0.3 40.00%");
    expect_line(md, "- transfer: examples crafted on the baseline beat white-box attacks on the "
                    "model's softmax: tr eps=0.3 70.00% vs best fl eps=0.3 40.00% on the 10 "
                    "samples both attacked (+30.00 points; 1 comparison).");
    ck_assert(!strstr(md, "**baseline: gradient masking suspected"));
    expect_line(md, "| T100/student | 100 | linf | 0.3 | 5 | 0 | 0.00 | fl fl-flush fl-logitsT tr |");
    // summary.h5: the same tables.
    char path[1024];
    path_in_run("summary.h5", path, sizeof path);
    hid_t f;
    ck_assert_int_eq(ds_h5_open(path, 0, &f), DS_OK);
    hid_t d = H5Dopen2(f, "robust", H5P_DEFAULT), c = H5Dopen2(f, "checks", H5P_DEFAULT);
    ck_assert(d >= 0 && c >= 0);
    hid_t sp = H5Dget_space(d), sc = H5Dget_space(c);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sp), 6);
    ck_assert_int_eq(H5Sget_simple_extent_npoints(sc), 2 * REDUCE_NCHECKS);
    struct { int64_t n, robust; double acc; } got[6];
    hid_t t = H5Tcreate(H5T_COMPOUND, sizeof got[0]);
    H5Tinsert(t, "n", 0, H5T_NATIVE_INT64);
    H5Tinsert(t, "robust", 8, H5T_NATIVE_INT64);
    H5Tinsert(t, "robust_accuracy", 16, H5T_NATIVE_DOUBLE);
    ck_assert_int_ge(H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, got), 0);
    ck_assert(got[3].n == 10 && got[3].robust == 8 && got[3].acc == 0.8);
    H5Tclose(t);
    H5Sclose(sp);
    H5Sclose(sc);
    H5Dclose(d);
    H5Dclose(c);
    H5Fclose(f);
    // figure2: success against ε, one block per (configuration with a list, model).
    char *dat = slurp("figure2.dat", NULL), *gp = slurp("figure2.gp", NULL);
    ck_assert_ptr_nonnull(dat);
    ck_assert(strstr(dat, "# index 0: [attack fl] fgsm on baseline\n0.1 50 10 5 0\n0.3 80 10 8 0\n"
                          "0.5 100 10 10 0\n"));
    ck_assert(strstr(dat, "# index 3: [attack fl-flush] fgsm on T100/student\n0.1 10 10 1 90\n"));
    ck_assert(strstr(gp, "set multiplot layout 1,2") && strstr(gp, "set output 'figure2.svg'"));
    ck_assert(!strstr(gp, ".reduce-"));
    if (have_gnuplot()) {
        size_t n;
        char *png = slurp("figure2.png", &n), *svg = slurp("figure2.svg", NULL);
        ck_assert(png && n > 1000 && !memcmp(png, "\x89PNG", 4));
        ck_assert(svg && strstr(svg, "<svg"));
        free(png);
        free(svg);
    }
    ck_assert_int_eq(staged_files_left(), 0);
    free(dat);
    free(gp);
    free(md);
    free(ck);
    free(rb);
    teardown();
}
END_TEST

// ---- The checks on rows built here: every kind, each check both ways ----

static reducer fr;
static reduce_row frows[64];
static ds_attack_group fgroups[64];
static int nfgroups;

static void fake_reset(void) {
    reduce_checks_free(&fr);
    reduce_rows_free(&fr);
    memset(&fr, 0, sizeof fr);
    memset(frows, 0, sizeof frows);
    memset(fgroups, 0, sizeof fgroups);
    nfgroups = 0;
    fr.rows = frows;
}

static ds_craft c_fgsm(float eps, ds_space space) {
    ds_craft c;
    memset(&c, 0, sizeof c);
    ds_craft_default(&c, DS_KIND_FGSM);
    c.fgsm.eps[0] = eps;
    c.fgsm.space = space;
    return c;
}
static ds_craft c_pgd(float eps, ds_norm norm, ds_space space) {
    ds_craft c;
    memset(&c, 0, sizeof c);
    c.kind = DS_KIND_PGD;
    c.pgd.eps[0] = eps;
    c.pgd.n_eps = 1;
    c.pgd.norm = norm;
    c.pgd.space = space;
    c.pgd.steps = 100;
    c.pgd.step = 0.01f;
    c.pgd.restarts = 1;
    return c;
}
static ds_craft c_square(float eps) {
    ds_craft c;
    memset(&c, 0, sizeof c);
    c.kind = DS_KIND_SQUARE;
    c.square.eps[0] = eps;
    c.square.n_eps = 1;
    c.square.queries = 1000;
    c.square.p_init = 0.05f;
    c.square.space = DS_SPACE_LOGITS;
    return c;
}

// A configuration: its own kind, or a transfer from `source` (NULL: not a transfer).
static int fake_attack(const char *name, ds_craft craft, const char *source) {
    ds_job_attack *a = &fr.job.attacks[fr.job.nattacks];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", name);
    a->kind = source ? DS_KIND_TRANSFER : craft.kind;
    a->craft = craft;
    if (source) snprintf(a->source, sizeof a->source, "%s", source);
    ds_job_attack_params(a, &a->craft, a->params, sizeof a->params);
    return fr.job.nattacks++;
}

// A row of configuration ai (ε index e) against model, over samples [first, first + n) with
// outcomes pattern[i]: 'r' correct and not fooled, 'f' correct and fooled, 'w' misclassified
// (and fooled); 'z' correct, not fooled, zero gradient.
static reduce_row *fake_row(const char *model, double T, int ai, int e, int first,
                            const char *pattern) {
    int n = (int)strlen(pattern);
    ds_attack_group *g = NULL;
    for (int i = 0; i < nfgroups; i++)
        if (fgroups[i].attack == ai && !strcmp(fgroups[i].model, model)) g = &fgroups[i];
    if (!g) {
        g = &fgroups[nfgroups++];
        snprintf(g->model, sizeof g->model, "%s", model);
        g->role = !strcmp(model, "baseline") ? DS_ROLE_BASELINE : DS_ROLE_STUDENT;
        g->temperature = T;
        g->attack = ai;
        g->first = first;
        g->count = n;
    }
    static ds_attack_record rec[512];
    ck_assert_int_le(n, 512);
    for (int i = 0; i < n; i++) {
        char o = pattern[i];
        rec[i] = (ds_attack_record){.index = first + i, .label = 3, .target = -1,
                                    .clean_pred = o == 'w' ? 4 : 3, .iterations = 1};
        rec[i].success = o == 'f' || o == 'w';
        rec[i].adv_pred = rec[i].success ? 5 : 3;
        rec[i].zero_grad = o == 'z';
    }
    reduce_row *row = &frows[fr.nrows++];
    reduce_row_setup(row, g, &fr.job.attacks[ai], e);
    ck_assert_int_eq(reduce_row_records(row, rec, n), DS_OK);
    return row;
}

// 100 samples, `fooled` of them fooled, `zero` of the others with a zero gradient.
static const char *pat(int fooled, int zero) {
    static char buf[8][101];
    static int k;
    char *p = buf[k++ % 8];
    for (int i = 0; i < 100; i++) p[i] = i < fooled ? 'f' : i < fooled + zero ? 'z' : 'r';
    p[100] = '\0';
    return p;
}

// A targeted row (JSMA) of configuration ai against model over samples [first, first + n), 9
// attempts (targets) per sample: fooled[i] ('0'-'9') of sample first + i succeed.
static void fake_targeted(const char *model, double T, int ai, int first, const char *fooled) {
    int n = (int)strlen(fooled);
    ds_attack_group *g = &fgroups[nfgroups++];
    snprintf(g->model, sizeof g->model, "%s", model);
    g->role = !strcmp(model, "baseline") ? DS_ROLE_BASELINE : DS_ROLE_STUDENT;
    g->temperature = T;
    g->attack = ai;
    g->first = first;
    g->count = n;
    static ds_attack_record rec[9 * 64];
    ck_assert_int_le(n, 64);
    for (int i = 0; i < n; i++)
        for (int t = 0; t < 9; t++) {
            ds_attack_record *x = &rec[9 * i + t];
            int target = t < 3 ? t : t + 1; // every class but the label 3
            *x = (ds_attack_record){.index = first + i, .label = 3, .target = target,
                                    .clean_pred = 3, .iterations = 1};
            x->success = t < fooled[i] - '0';
            x->adv_pred = x->success ? target : 3;
        }
    reduce_row *row = &frows[fr.nrows++];
    reduce_row_setup(row, g, &fr.job.attacks[ai], 0);
    ck_assert_int_eq(reduce_row_records(row, rec, 9 * n), DS_OK);
}

static const reduce_check *fake_check(const char *model, const char *name) {
    for (int i = 0; i < fr.nchecks; i++)
        if (!strcmp(fr.checks[i].model, model) && !strcmp(reduce_check_name(fr.checks[i].check), name))
            return &fr.checks[i];
    ck_abort_msg("no check %s for %s", name, model);
    return NULL;
}

static void expect_verdict(const char *model, const char *name, reduce_verdict v, double value,
                           double reference) {
    const reduce_check *c = fake_check(model, name);
    ck_assert_msg(c->verdict == v, "%s %s: %s (%s), expected %s", model, name,
                  reduce_verdict_name(c->verdict), c->detail, reduce_verdict_name(v));
    if (v == REDUCE_NA) {
        ck_assert(isnan(c->value) && isnan(c->reference));
        return;
    }
    ck_assert_msg(fabs(c->value - value) < 1e-12 && fabs(c->reference - reference) < 1e-12,
                  "%s %s: value %g reference %g, expected %g %g", model, name, c->value,
                  c->reference, value, reference);
}

static void compute(void) { ck_assert_int_eq(reduce_checks_compute(&fr), DS_OK); }

#define S "T100/student"

START_TEST(test_check_iterative) {
    fake_reset();
    int f = fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL);
    int p = fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL);
    fake_row(S, 100, f, 0, 0, pat(55, 0));
    fake_row(S, 100, p, 0, 0, pat(53, 0)); // 2 points below the single step
    compute();
    expect_verdict(S, "iterative", REDUCE_FAIL, 0.53, 0.55);
    fake_reset();
    f = fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL);
    p = fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL);
    fake_row(S, 100, f, 0, 0, pat(55, 0));
    fake_row(S, 100, p, 0, 0, pat(54, 0)); // exactly one point: within the tolerance
    compute();
    expect_verdict(S, "iterative", REDUCE_PASS, 0.54, 0.55);
    // Another space, another ε or L2: nothing to compare.
    fake_reset();
    f = fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL);
    fake_row(S, 100, f, 0, 0, pat(55, 0));
    fake_row(S, 100, fake_attack("pl", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_LOGITS), NULL), 0, 0, pat(1, 0));
    fake_row(S, 100, fake_attack("pe", c_pgd(0.2f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(1, 0));
    fake_row(S, 100, fake_attack("p2", c_pgd(0.3f, DS_NORM_L2, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(1, 0));
    compute();
    expect_verdict(S, "iterative", REDUCE_NA, 0, 0);
}
END_TEST

START_TEST(test_check_eps_curve) {
    static const struct {
        int s[3];
        reduce_verdict v;
    } cases[] = {
        {{40, 30, 99}, REDUCE_FAIL},  // falls by 10 points
        {{40, 60, 98}, REDUCE_FAIL},  // below 99% at the largest ε
        {{40, 39, 99}, REDUCE_PASS},  // a fall of one point is within the tolerance
        {{40, 60, 100}, REDUCE_PASS},
    };
    // A PGD curve (and a Square one): both rules.
    for (int sq = 0; sq < 2; sq++)
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            fake_reset();
            ds_craft c = sq ? c_square(0.5f) : c_pgd(0.5f, DS_NORM_LINF, DS_SPACE_SOFTMAX);
            float *eps = sq ? c.square.eps : c.pgd.eps;
            // The list as written, not sorted: 0.5 0.1 0.3; success as listed for 0.1 0.3 0.5.
            *(sq ? &c.square.n_eps : &c.pgd.n_eps) = 3;
            eps[0] = 0.5f, eps[1] = 0.1f, eps[2] = 0.3f;
            int a = fake_attack("curve", c, NULL);
            fake_row(S, 100, a, 0, 0, pat(cases[k].s[2], 0));
            fake_row(S, 100, a, 1, 0, pat(cases[k].s[0], 0));
            fake_row(S, 100, a, 2, 0, pat(cases[k].s[1], 0));
            ck_assert(frows[0].eps == 0.5f && frows[1].eps == 0.1f);
            compute();
            expect_verdict(S, "eps_curve", cases[k].v, cases[k].s[2] / 100.0, 0.99);
        }
    // An FGSM curve need not reach 99% (one step: 98.4% at ε 0.5 on the paper-2core baseline),
    // but must not fall; beside a PGD curve only the PGD one's largest ε counts.
    static const struct {
        int s[3], pgd; // pgd: the PGD curve's success at its largest ε (0: no PGD curve)
        reduce_verdict v;
    } fcases[] = {
        {{40, 60, 98}, 0, REDUCE_PASS},
        {{40, 30, 98}, 0, REDUCE_FAIL},  // falls by 10 points
        {{40, 60, 50}, 100, REDUCE_FAIL}, // falls by 10 points
        {{40, 60, 98}, 100, REDUCE_PASS},
        {{40, 60, 98}, 98, REDUCE_FAIL},  // the PGD curve stays below 99%
    };
    for (size_t k = 0; k < sizeof fcases / sizeof *fcases; k++) {
        fake_reset();
        ds_craft c = c_fgsm(0.1f, DS_SPACE_SOFTMAX);
        c.fgsm.n_eps = 3;
        c.fgsm.eps[1] = 0.3f, c.fgsm.eps[2] = 0.5f;
        int a = fake_attack("fgsm-curve", c, NULL);
        for (int e = 0; e < 3; e++) fake_row(S, 100, a, e, 0, pat(fcases[k].s[e], 0));
        if (fcases[k].pgd) {
            ds_craft p = c_pgd(0.1f, DS_NORM_LINF, DS_SPACE_SOFTMAX);
            p.pgd.n_eps = 2;
            p.pgd.eps[1] = 0.5f;
            int b = fake_attack("pgd-curve", p, NULL);
            fake_row(S, 100, b, 0, 0, pat(90, 0));
            fake_row(S, 100, b, 1, 0, pat(fcases[k].pgd, 0));
        }
        compute();
        const reduce_check *ck = fake_check(S, "eps_curve");
        ck_assert_msg(ck->verdict == fcases[k].v, "case %zu: %s (%s)", k,
                      reduce_verdict_name(ck->verdict), ck->detail);
        if (fcases[k].pgd) {
            ck_assert(fabs(ck->value - fcases[k].pgd / 100.0) < 1e-12 && ck->reference == 0.99);
        } else {
            ck_assert(isnan(ck->value) && isnan(ck->reference)); // no 99% rule to report
            const char *want = "no PGD or Square eps list (FGSM need not reach 99%); ";
            ck_assert_msg(!strncmp(ck->detail, want, strlen(want)), "%s", ck->detail);
        }
    }
    // A one-ε configuration has no curve; nor has a transfer with a list.
    fake_reset();
    fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(5, 0));
    ds_craft c = c_fgsm(0.1f, DS_SPACE_SOFTMAX);
    c.fgsm.n_eps = 2;
    c.fgsm.eps[1] = 0.3f;
    int t = fake_attack("tr", c, "baseline");
    fake_row(S, 100, t, 0, 0, pat(50, 0));
    fake_row(S, 100, t, 1, 0, pat(10, 0));
    compute();
    expect_verdict(S, "eps_curve", REDUCE_NA, 0, 0);
}
END_TEST

START_TEST(test_check_gradient_free) {
    for (int k = 0; k < 2; k++) {
        fake_reset();
        fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(50, 0));
        fake_row(S, 100, fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL), 0, 0,
                 pat(60, 0));
        fake_row(S, 100, fake_attack("square", c_square(0.3f), NULL), 0, 0, pat(k ? 61 : 70, 0));
        // A stronger white-box attack at another ε does not count.
        fake_row(S, 100, fake_attack("pgd5", c_pgd(0.5f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL), 0,
                 0, pat(100, 0));
        compute();
        expect_verdict(S, "gradient_free", k ? REDUCE_PASS : REDUCE_FAIL, k ? 0.61 : 0.70, 0.60);
        ck_assert_str_eq(fake_check(S, "gradient_free")->detail,
                         k ? "square eps=0.3 61.00% vs best pgd eps=0.3 60.00% on the 100 samples "
                             "both attacked (+1.00 points; 1 comparison)"
                           : "square eps=0.3 70.00% vs best pgd eps=0.3 60.00% on the 100 samples "
                             "both attacked (+10.00 points; 1 comparison)");
    }
    // T=100 of paper-2core: Square 99.8%, the softmax white-box attacks 2.4%, PGD on logits/T
    // 99.6%. The attacks on the logits or logits/T see through the temperature, and the
    // rounding variants (float64) are check rounding's: neither is the reference.
    fake_reset();
    fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(2, 0));
    fake_row(S, 100, fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL), 0, 0,
             pat(3, 0));
    fake_row(S, 100, fake_attack("pgd-logits_T", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_LOGITS_T),
                                 NULL), 0, 0, pat(99, 0));
    fake_row(S, 100, fake_attack("fgsm-logits", c_fgsm(0.3f, DS_SPACE_LOGITS), NULL), 0, 0,
             pat(95, 0));
    ds_craft f64 = c_fgsm(0.3f, DS_SPACE_SOFTMAX);
    f64.fgsm.num.precision = DS_PRECISION_FLOAT64;
    fake_row(S, 100, fake_attack("fgsm-float64", f64, NULL), 0, 0, pat(93, 0));
    fake_row(S, 100, fake_attack("square", c_square(0.3f), NULL), 0, 0, pat(100, 0));
    compute();
    expect_verdict(S, "gradient_free", REDUCE_FAIL, 1.0, 0.03);
    ck_assert_str_eq(fake_check(S, "gradient_free")->detail,
                     "square eps=0.3 100.00% vs best pgd eps=0.3 3.00% on the 100 samples both "
                     "attacked (+97.00 points; 1 comparison)");
    // With only attacks on the logits/T beside it: nothing to compare.
    fake_reset();
    fake_row(S, 100, fake_attack("pgd-logits_T", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_LOGITS_T),
                                 NULL), 0, 0, pat(99, 0));
    fake_row(S, 100, fake_attack("square", c_square(0.3f), NULL), 0, 0, pat(100, 0));
    compute();
    expect_verdict(S, "gradient_free", REDUCE_NA, 0, 0);
    fake_reset();
    fake_row(S, 100, fake_attack("square", c_square(0.3f), NULL), 0, 0, pat(70, 0));
    compute();
    expect_verdict(S, "gradient_free", REDUCE_NA, 0, 0);
}
END_TEST

START_TEST(test_check_transfer) {
    // FGSM examples from the baseline (56%) against a student whose softmax FGSM gets 2%: FAIL,
    // whatever an FGSM on the logits or logits/T (93%) gets; with a PGD on the softmax at 60%
    // (the best white-box attack on the softmax at that ε): pass.
    for (int k = 0; k < 2; k++) {
        fake_reset();
        fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(2, 0));
        fake_row(S, 100, fake_attack("fgsm-z", c_fgsm(0.3f, DS_SPACE_LOGITS), NULL), 0, 0,
                 pat(93, 0));
        fake_row(S, 100, fake_attack("fgsm-T", c_fgsm(0.3f, DS_SPACE_LOGITS_T), NULL), 0, 0,
                 pat(93, 0));
        if (k)
            fake_row(S, 100, fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL),
                     0, 0, pat(60, 0));
        fake_row(S, 100, fake_attack("tr", c_fgsm(0.3f, DS_SPACE_SOFTMAX), "baseline"), 0, 0,
                 pat(56, 0));
        compute();
        expect_verdict(S, "transfer", k ? REDUCE_PASS : REDUCE_FAIL, 0.56, k ? 0.60 : 0.02);
    }
    // JSMA examples: against the model's own JSMA on the softmax, not on the logits.
    fake_reset();
    ds_craft j, jz;
    memset(&j, 0, sizeof j);
    ds_craft_default(&j, DS_KIND_JSMA);
    jz = j;
    jz.jsma.space = DS_SPACE_LOGITS;
    fake_row(S, 100, fake_attack("jsma", j, NULL), 0, 0, pat(0, 0));
    fake_row(S, 100, fake_attack("jsma-z", jz, NULL), 0, 0, pat(90, 0));
    fake_row(S, 100, fake_attack("tr", j, "baseline"), 0, 0, pat(20, 0));
    // Transfer from another source, or to the baseline itself: not this check.
    fake_row("baseline", 1, fake_attack("tr2", c_fgsm(0.3f, DS_SPACE_SOFTMAX), "baseline"), 0, 0,
             pat(90, 0));
    fake_row("baseline", 1, fake_attack("fb", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0,
             pat(10, 0));
    compute();
    expect_verdict(S, "transfer", REDUCE_FAIL, 0.20, 0.0);
    expect_verdict("baseline", "transfer", REDUCE_NA, 0, 0);
}
END_TEST

START_TEST(test_check_zero_grad) {
    for (int k = 0; k < 2; k++) {
        fake_reset();
        fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0,
                 pat(10, k ? 1 : 2));
        // Zero gradients of an attack on the logits are not this check's.
        fake_row(S, 100, fake_attack("fgsm-z", c_fgsm(0.3f, DS_SPACE_LOGITS), NULL), 0, 0,
                 pat(10, 50));
        compute();
        expect_verdict(S, "zero_grad", k ? REDUCE_PASS : REDUCE_FAIL, k ? 0.01 : 0.02, 0.01);
    }
    fake_reset();
    fake_row(S, 100, fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL), 0, 0,
             pat(0, 97));
    compute();
    expect_verdict(S, "zero_grad", REDUCE_FAIL, 0.97, 0.01);
    fake_reset();
    fake_row(S, 100, fake_attack("square", c_square(0.3f), NULL), 0, 0, pat(0, 0));
    compute();
    expect_verdict(S, "zero_grad", REDUCE_NA, 0, 0);
}
END_TEST

START_TEST(test_check_logits) {
    for (int k = 0; k < 2; k++) {
        fake_reset();
        fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(2, 0));
        fake_row(S, 100, fake_attack("fgsm-T", c_fgsm(0.3f, DS_SPACE_LOGITS_T), NULL), 0, 0,
                 pat(k ? 3 : 93, 0));
        // PGD on the logits has no PGD on the softmax to compare with.
        fake_row(S, 100, fake_attack("pgd-z", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_LOGITS), NULL), 0,
                 0, pat(100, 0));
        compute();
        expect_verdict(S, "logits", k ? REDUCE_PASS : REDUCE_FAIL, k ? 0.03 : 0.93, 0.02);
    }
    fake_reset();
    fake_row(S, 100, fake_attack("pgd-z", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_LOGITS), NULL), 0, 0,
             pat(100, 0));
    compute();
    expect_verdict(S, "logits", REDUCE_NA, 0, 0);
}
END_TEST

START_TEST(test_check_rounding) {
    for (int k = 0; k < 2; k++) {
        fake_reset();
        ds_craft keep = c_fgsm(0.3f, DS_SPACE_SOFTMAX), flush = keep, f64 = keep;
        flush.fgsm.num.denormals = DS_DENORMALS_FLUSH;
        f64.fgsm.num.precision = DS_PRECISION_FLOAT64;
        fake_row(S, 100, fake_attack("keep", keep, NULL), 0, 0, pat(40, 0));
        fake_row(S, 100, fake_attack("flush", flush, NULL), 0, 0, pat(k ? 39 : 25, 0));
        fake_row(S, 100, fake_attack("f64", f64, NULL), 0, 0, pat(40, 0));
        // Another ε is another attack, not a rounding variant.
        fake_row(S, 100, fake_attack("e5", c_fgsm(0.5f, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(90, 0));
        compute();
        expect_verdict(S, "rounding", k ? REDUCE_PASS : REDUCE_FAIL, 0.40, k ? 0.39 : 0.25);
    }
    // PGD under two denormals settings, different random-start seeds: still one attack.
    fake_reset();
    ds_craft p = c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), q = p;
    p.pgd.seed = 11;
    q.pgd.seed = 12;
    q.pgd.num.denormals = DS_DENORMALS_FLUSH;
    fake_row(S, 100, fake_attack("p", p, NULL), 0, 0, pat(30, 0));
    fake_row(S, 100, fake_attack("q", q, NULL), 0, 0, pat(80, 0));
    compute();
    expect_verdict(S, "rounding", REDUCE_FAIL, 0.80, 0.30);
    fake_reset();
    fake_row(S, 100, fake_attack("keep", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, pat(40, 0));
    compute();
    expect_verdict(S, "rounding", REDUCE_NA, 0, 0);
}
END_TEST

// Two configurations on different sample ranges: both rates over the samples both attacked.
START_TEST(test_check_common_samples) {
    // FGSM on samples [0, 200): 60% fooled on the first 100, 10% on the others (35% overall);
    // PGD on [0, 100) only, 55%. Over all their own samples PGD beats FGSM by 20 points; on the
    // 100 samples both attacked it is 5 points below: FAIL.
    char fg[201];
    for (int i = 0; i < 200; i++) fg[i] = i < 60 || (i >= 100 && i < 110) ? 'f' : 'r';
    fg[200] = '\0';
    fake_reset();
    int f = fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL);
    int p = fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL);
    fake_row(S, 100, f, 0, 0, fg);
    fake_row(S, 100, p, 0, 0, pat(55, 0));
    ck_assert(frows[0].rates.success_rate == 0.35 && frows[1].rates.success_rate == 0.55);
    compute();
    expect_verdict(S, "iterative", REDUCE_FAIL, 0.55, 0.60);
    ck_assert_str_eq(fake_check(S, "iterative")->detail,
                     "pgd eps=0.3 55.00% vs best fgsm eps=0.3 60.00% on the 100 samples both "
                     "attacked (-5.00 points; 1 comparison)");
    // PGD on [100, 200) instead, 12%: 35% against 12% overall would FAIL; on the common samples
    // FGSM gets 10%: pass.
    fake_reset();
    f = fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL);
    p = fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL);
    fake_row(S, 100, f, 0, 0, fg);
    fake_row(S, 100, p, 0, 100, pat(12, 0));
    compute();
    expect_verdict(S, "iterative", REDUCE_PASS, 0.12, 0.10);
    // Ranges that do not meet: nothing to compare.
    fake_reset();
    f = fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL);
    p = fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL);
    fake_row(S, 100, f, 0, 0, pat(60, 0));
    fake_row(S, 100, p, 0, 100, pat(12, 0));
    compute();
    expect_verdict(S, "iterative", REDUCE_NA, 0, 0);
    // The best reference is the best on the common samples: a transfer on [0, 100) at 30%
    // against FGSM on [0, 200) (35% overall, 60% on [0, 100)) and PGD on [0, 100) at 50%.
    fake_reset();
    fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, fg);
    fake_row(S, 100, fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL), 0, 0,
             pat(50, 0));
    fake_row(S, 100, fake_attack("tr", c_fgsm(0.3f, DS_SPACE_SOFTMAX), "baseline"), 0, 0,
             pat(30, 0));
    compute();
    expect_verdict(S, "transfer", REDUCE_PASS, 0.30, 0.60);
    // Rounding: a flushed FGSM on [100, 200) at 10% against the kept one: 35% vs 10% overall, 10%
    // vs 10% on the samples both attacked.
    fake_reset();
    ds_craft fl = c_fgsm(0.3f, DS_SPACE_SOFTMAX);
    fl.fgsm.num.denormals = DS_DENORMALS_FLUSH;
    fake_row(S, 100, fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL), 0, 0, fg);
    fake_row(S, 100, fake_attack("flush", fl, NULL), 0, 100, pat(10, 0));
    compute();
    expect_verdict(S, "rounding", REDUCE_PASS, 0.10, 0.10);
    ck_assert_ptr_nonnull(strstr(fake_check(S, "rounding")->detail, "on the 100 samples both "
                                                                    "attacked"));
}
END_TEST

// Targeted JSMA: the attempts (9 targets per sample) of the samples both rows attacked.
START_TEST(test_check_common_samples_targeted) {
    fake_reset();
    ds_craft j, jz;
    memset(&j, 0, sizeof j);
    ds_craft_default(&j, DS_KIND_JSMA);
    jz = j;
    jz.jsma.space = DS_SPACE_LOGITS;
    // JSMA on the softmax, samples [0, 4): 0 0 9 9 of 9 targets (50% of 36 attempts); on the
    // logits, samples [2, 6): 9 9 9 0 (75% of 36). Overall +25 points; on samples 2 and 3 (18
    // attempts each) both 100%: pass.
    fake_targeted(S, 100, fake_attack("jsma", j, NULL), 0, "0099");
    fake_targeted(S, 100, fake_attack("jsma-z", jz, NULL), 2, "9990");
    ck_assert(frows[0].rates.attempts == 36 && frows[0].rates.success_rate == 0.5);
    ck_assert(frows[1].rates.success_rate == 0.75);
    compute();
    expect_verdict(S, "logits", REDUCE_PASS, 1.0, 1.0);
    ck_assert_str_eq(fake_check(S, "logits")->detail,
                     "jsma-z 100.00% vs best jsma 100.00% on the 2 samples both attacked (+0.00 "
                     "points; 1 comparison)");
    // A JSMA transfer from the baseline on samples [3, 5): 9 9 (100%) against the softmax JSMA's
    // sample 3 (9 of 9): pass; the JSMA on the logits is no reference.
    fake_targeted(S, 100, fake_attack("tr", j, "baseline"), 3, "99");
    reduce_checks_free(&fr);
    compute();
    expect_verdict(S, "transfer", REDUCE_PASS, 1.0, 1.0);
    ck_assert_ptr_nonnull(strstr(fake_check(S, "transfer")->detail, "vs best jsma 100.00% on the "
                                                                    "1 sample both attacked"));
    fake_reset();
}
END_TEST

// Robust accuracy by hand: three L-inf attacks at ε 0.3 on 10 samples.
START_TEST(test_robust_accuracy) {
    fake_reset();
    int f = fake_attack("fgsm", c_fgsm(0.3f, DS_SPACE_SOFTMAX), NULL);
    int p = fake_attack("pgd", c_pgd(0.3f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL);
    int q = fake_attack("square", c_square(0.3f), NULL);
    fake_row(S, 100, f, 0, 0, "rrffrrwrrr");
    fake_row(S, 100, p, 0, 0, "rfrrrrwrrf");
    fake_row(S, 100, q, 0, 0, "rrrfrrwrrr");
    // Other threat models: PGD at ε 0.1, PGD L2 at 0.3, and JSMA (no ε): rows of their own or
    // none.
    fake_row(S, 100, fake_attack("pgd1", c_pgd(0.1f, DS_NORM_LINF, DS_SPACE_SOFTMAX), NULL), 0, 0,
             "ffffffffff");
    fake_row(S, 100, fake_attack("pgd2", c_pgd(0.3f, DS_NORM_L2, DS_SPACE_SOFTMAX), NULL), 0, 0,
             "frrrrrrrrr");
    ds_craft j;
    memset(&j, 0, sizeof j);
    ds_craft_default(&j, DS_KIND_JSMA);
    fake_row(S, 100, fake_attack("jsma", j, NULL), 0, 0, "ffffffffff");
    compute();
    ck_assert_int_eq(fr.nrobust, 3);
    const reduce_robust *o = &fr.robust[0]; // linf first, in increasing ε
    ck_assert(o->norm == DS_NORM_LINF && o->eps == 0.1f && o->n == 10 && o->robust == 0);
    o = &fr.robust[1];
    ck_assert(o->norm == DS_NORM_LINF && o->eps == 0.3f);
    ck_assert_int_eq(o->n, 10);
    ck_assert_int_eq(o->robust, 5); // samples 0, 4, 5, 7, 8
    ck_assert(o->robust_accuracy == 0.5);
    ck_assert_str_eq(o->attacks, "fgsm pgd square");
    o = &fr.robust[2];
    ck_assert(o->norm == DS_NORM_L2 && o->n == 10 && o->robust == 9);
    // A fourth attack on samples [2, 10) only: the intersection, 8 samples, 4 robust (4 5 7 8).
    fake_row(S, 100, fake_attack("fgsm-z", c_fgsm(0.3f, DS_SPACE_LOGITS), NULL), 0, 2, "rrrrrrrr");
    reduce_checks_free(&fr);
    compute();
    o = &fr.robust[1];
    ck_assert_int_eq(o->n, 8);
    ck_assert_int_eq(o->robust, 4);
    ck_assert_str_eq(o->attacks, "fgsm pgd square fgsm-z");
    fake_reset();
}
END_TEST

#undef S

static Suite *suite(void) {
    Suite *s = suite_create("reduce");
    TCase *tc = tcase_create("reduce");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_stats_t_quantiles);
    tcase_add_test(tc, test_stats_mean_sd_interval);
    tcase_add_test(tc, test_stats_wilson);
    tcase_add_test(tc, test_csv_exact);
    tcase_add_test(tc, test_seeds_aggregate);
    tcase_add_test(tc, test_seeds_rounding);
    tcase_add_test(tc, test_seeds_summary_h5);
    tcase_add_test(tc, test_seeds_figure);
    tcase_add_test(tc, test_seeds_eps_aggregate);
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
    tcase_add_test(tc, test_eps_rows);
    tcase_add_test(tc, test_one_eps_unchanged);
    tcase_add_test(tc, test_checks_reduced);
    tcase_add_test(tc, test_check_iterative);
    tcase_add_test(tc, test_check_eps_curve);
    tcase_add_test(tc, test_check_gradient_free);
    tcase_add_test(tc, test_check_transfer);
    tcase_add_test(tc, test_check_zero_grad);
    tcase_add_test(tc, test_check_logits);
    tcase_add_test(tc, test_check_rounding);
    tcase_add_test(tc, test_check_common_samples);
    tcase_add_test(tc, test_check_common_samples_targeted);
    tcase_add_test(tc, test_robust_accuracy);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
