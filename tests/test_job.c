// Unit tests of the job parser (ds_job.h), the plan (ds_plan.h) and the journal (ds_sweep.h).
#include "ds_error.h"
#include "ds_job.h"
#include "ds_plan.h"
#include "ds_filecrc.h"
#include "ds_run.h"
#include "testutil.h"

#include <sys/stat.h>

static const char *const small_job =
    "; a small sweep\n"
    "[run]\n"
    "seed = 5\n"
    "engine = gemm\n" // the engine of runs made before onednn: the canonical texts from then
    "[data]\n"
    "train_samples = 256\n"
    "test_samples = 64\n"
    "[train]\n"
    "epochs = 2\n"
    "warm_start = 1\n"
    "batch = 32\n"
    "[distill]\n"
    "temperatures = 100 2.5\n"
    "[attack fgsm]\n"
    "kind = fgsm\n"
    "samples = 40\n"
    "shard = 16\n"
    "[attack transfer]\n"
    "kind = transfer\n"
    "craft = jsma\n"
    "samples = 2\n";

// ---- Parsing ----

START_TEST(shipped_jobs_parse) {
    const char *jobs[] = {"jobs/paper.job", "jobs/quick.job", "jobs/smoke.job", "jobs/demo.job"};
    for (int i = 0; i < 4; i++) {
        ds_job j;
        int rc = ds_job_parse(&j, jobs[i]);
        ck_assert_msg(rc == DS_OK, "%s: %s", jobs[i], ds_errmsg());
        ds_plan p;
        rc = ds_plan_build(&p, &j, j.train_samples > 0 ? j.train_samples : 60000,
                           j.test_samples > 0 ? j.test_samples : 10000);
        ck_assert_msg(rc == DS_OK, "%s: %s", jobs[i], ds_errmsg());
        ds_plan_free(&p);
        ds_job_free(&j);
    }
}
END_TEST

START_TEST(paper_job_is_the_paper) {
    ds_job j;
    ck_assert_int_eq(ds_job_parse(&j, "jobs/paper.job"), DS_OK);
    ck_assert_int_eq(j.baseline_epochs, 50);
    ck_assert_int_eq(j.student_epochs, 50);
    ck_assert_int_eq(j.batch, 128);
    ck_assert_double_eq(j.lr, 0.1);
    ck_assert_double_eq(j.lr_decay, 1); // the paper's constant learning rate
    ck_assert_int_eq(j.warm_start, 0);
    ck_assert_int_eq(j.ntemps, 9);
    const double t[] = {1, 2, 5, 10, 20, 30, 40, 50, 100};
    for (int i = 0; i < 9; i++) ck_assert_double_eq(j.temps[i], t[i]);
    ck_assert_str_eq(j.attacks[0].name, "fgsm");
    ck_assert_str_eq(j.attacks[0].params, "eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32");
    ck_assert_int_eq(j.attacks[0].samples, -1);
    ck_assert_str_eq(j.attacks[1].params, "space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=stable precision=float32");
    ck_assert_int_eq(j.attacks[1].first, 0);
    ck_assert_int_eq(j.attacks[1].samples, 100);
    ds_plan p;
    ck_assert_int_eq(ds_plan_build(&p, &j, 60000, 10000), DS_OK);
    // FGSM on all 10,000 samples of the baseline: 10 shards of 1,000.
    int g = -1;
    for (int i = 0; i < p.ngroups && g < 0; i++)
        if (!strcmp(p.groups[i].model, "baseline") && p.groups[i].attack == 0) g = i;
    ck_assert_int_ge(g, 0);
    ck_assert_int_eq(p.groups[g].count, 10000);
    ck_assert_int_eq(p.groups[g].ntasks, 10);
    ds_plan_free(&p);
    ds_job_free(&j);
}
END_TEST

START_TEST(defaults_and_values) {
    ds_job j;
    ck_assert_int_eq(ds_job_parse_text(&j, small_job, "dir/small.job"), DS_OK);
    ck_assert_str_eq(j.name, "small"); // from the file name
    ck_assert_str_eq(j.results, "results");
    ck_assert_uint_eq(j.seed, 5);
    ck_assert_int_eq(j.threads, 1);
    ck_assert_str_eq(j.dataset, "mnist");
    ck_assert_int_eq(j.train_samples, 256);
    ck_assert_int_eq(j.teacher_epochs, 2);
    ck_assert_int_eq(j.warm_start, 1);
    ck_assert_double_eq(j.lr, 0.1);
    ck_assert_int_eq(j.ntemps, 2);
    ck_assert_double_eq(j.temps[0], 2.5); // sorted
    ck_assert_double_eq(j.temps[1], 100);
    ck_assert_int_eq(j.nattacks, 2);
    ck_assert_int_eq(j.attacks[1].kind, DS_KIND_TRANSFER);
    ck_assert_int_eq(j.attacks[1].craft.kind, DS_KIND_JSMA);
    ck_assert_str_eq(j.attacks[1].source, "baseline");
    ck_assert_str_eq(j.attacks[1].params, "source=baseline craft=jsma space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=stable precision=float32");
    ck_assert_uint_eq(j.attacks[1].targets, DS_TARGET_STUDENTS);
    ck_assert_uint_eq(j.attacks[0].targets, DS_TARGET_BASELINE | DS_TARGET_STUDENTS);
    ds_job_free(&j);
}
END_TEST

START_TEST(temperature_names) {
    char s[32];
    ds_temp_name(100, s, sizeof s);
    ck_assert_str_eq(s, "T100");
    ds_temp_name(2.5, s, sizeof s);
    ck_assert_str_eq(s, "T2.5");
    ds_temp_name(1, s, sizeof s);
    ck_assert_str_eq(s, "T1");
}
END_TEST

// small_job with extra lines at the end of its [train] section (malloc'ed).
static char *with_train_keys(const char *lines) {
    const char *at = strstr(small_job, "[distill]");
    size_t head = (size_t)(at - small_job), n = strlen(small_job) + strlen(lines) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)head, small_job, lines, at);
    return s;
}

START_TEST(canonical_text) {
    ds_job a, b, c;
    ck_assert_int_eq(ds_job_parse_text(&a, small_job, "a.job"), DS_OK);
    // Comments, blank lines, key order, the run name, results folder and threads do not matter.
    const char *same =
        "[run]\nname = other\nresults = elsewhere\nthreads = 2\nseed = 5 ; same seed\nengine = gemm\n\n"
        "[data]\ntest_samples = 64\ntrain_samples = 256\n"
        "[train]\nbatch = 32\nepochs = 2\nwarm_start = 1\n"
        "[distill]\ntemperatures = 2.5, 100\n"
        "[attack fgsm]\nshard = 16\nkind = fgsm\nsamples = 40\neps = 0.3\n"
        "[attack transfer]\nkind = transfer\ncraft = jsma\nsamples = 2\n";
    ck_assert_int_eq(ds_job_parse_text(&b, same, "b.job"), DS_OK);
    char *ca = ds_job_canonical(&a), *cb = ds_job_canonical(&b);
    ck_assert_str_eq(ca, cb);
    free(cb);
    // One epoch more changes the results.
    char *text = strdup(small_job);
    char *e = strstr(text, "epochs = 2");
    e[9] = '3';
    ck_assert_int_eq(ds_job_parse_text(&c, text, "c.job"), DS_OK);
    char *cc = ds_job_canonical(&c);
    ck_assert_str_ne(ca, cc);
    free(cc);
    free(text);
    // A step decay of the learning rate changes the results; without lr_decay the share is inert.
    ds_job d, f;
    char *decayed = with_train_keys("lr_decay = 0.1\nlr_decay_last = 0.25\n");
    char *share_only = with_train_keys("lr_decay_last = 0.5\n");
    ck_assert_int_eq(ds_job_parse_text(&d, decayed, "d.job"), DS_OK);
    ck_assert_int_eq(ds_job_parse_text(&f, share_only, "f.job"), DS_OK);
    char *cd = ds_job_canonical(&d), *cf = ds_job_canonical(&f);
    ck_assert_str_ne(ca, cd);
    ck_assert_str_eq(ca, cf);
    ck_assert_ptr_nonnull(strstr(cd, "train.lr_decay = 0.10000000000000001 last 0.25\n"));
    // 20 epochs with the last quarter decayed: epochs 16-20 (from 0-based 15); 4 epochs: the last.
    ck_assert_int_eq(ds_job_lr_decay_from(&d, 20), 15);
    ck_assert_int_eq(ds_job_lr_decay_from(&d, 4), 3);
    ck_assert_int_eq(ds_job_lr_decay_from(&d, 3), 2);
    free(ca);
    free(cd);
    free(cf);
    free(decayed);
    free(share_only);
    ds_job_free(&a);
    ds_job_free(&b);
    ds_job_free(&c);
    ds_job_free(&d);
    ds_job_free(&f);
}
END_TEST

// ---- Errors: every one names the file and the line ----

static void expect_error(const char *text, const char *where, const char *what) {
    ds_job j;
    int rc = ds_job_parse_text(&j, text, "bad.job");
    if (rc == DS_OK) {
        ds_plan p;
        rc = ds_plan_build(&p, &j, 256, 64);
        if (rc == DS_OK) ds_plan_free(&p);
        ds_job_free(&j);
    }
    ck_assert_msg(rc == DS_EINVAL, "expected an error for:\n%s", text);
    const char *m = ds_errmsg();
    ck_assert_msg(!strncmp(m, where, strlen(where)), "message '%s' does not start with '%s'", m, where);
    ck_assert_msg(strstr(m, what) != NULL, "message '%s' does not say '%s'", m, what);
}

#define BASE "[distill]\ntemperatures = 1 100\n"              // lines 1-2
#define ATK "[attack a]\nkind = fgsm\n"                          // 2 lines

START_TEST(explicit_defaults_change_nothing) {
    const char *implicit = "[distill]\ntemperatures = 1\n[attack j]\nkind = jsma\n"
                           "[attack c]\nkind = cw-l2\n[attack f]\nkind = fgsm\n";
    const char *explicit_ = "[distill]\ntemperatures = 1\n[attack j]\nkind = jsma\ngamma = 0.145\n"
                            "theta = 1\nspace = softmax\n[attack c]\nkind = cw-l2\nc = 0.01\nlr = 0.1\n"
                            "targeted = true\ndenormals = keep\n[attack f]\nkind = fgsm\neps = 0.3\nlabels = true\n"
                            "denormals = keep\ngradient = stable\nprecision = float32\n";
    ds_job a, b;
    ck_assert_int_eq(ds_job_parse_text(&a, implicit, "a.job"), DS_OK);
    ck_assert_int_eq(ds_job_parse_text(&b, explicit_, "b.job"), DS_OK);
    char *ca = ds_job_canonical(&a), *cb = ds_job_canonical(&b);
    ck_assert_str_eq(ca, cb);
    free(ca);
    free(cb);
    ds_job_free(&a);
    ds_job_free(&b);
}
END_TEST

// The rounding settings of an attack: parsed into the library's own structs, named in params
// and in the canonical text (a flush run is not the same job as a keep run), errors by line.
START_TEST(numerics_keys) {
    const char *text = "[distill]\ntemperatures = 1\n[attack f]\nkind = fgsm\ndenormals = flush\n"
                       "gradient = framework\nprecision = float64\n[attack c]\nkind = cw-l2\n"
                       "denormals = flush\n[attack t]\nkind = transfer\ncraft = jsma\n"
                       "precision = float64\n";
    ds_job j, k;
    ck_assert_int_eq(ds_job_parse_text(&j, text, "n.job"), DS_OK);
    ck_assert_int_eq(j.attacks[0].craft.fgsm.num.denormals, DS_DENORMALS_FLUSH);
    ck_assert_int_eq(j.attacks[0].craft.fgsm.num.gradient, DS_GRADIENT_FRAMEWORK);
    ck_assert_int_eq(j.attacks[0].craft.fgsm.num.precision, DS_PRECISION_FLOAT64);
    ck_assert_str_eq(j.attacks[0].params, "eps=0.3 space=softmax labels=true denormals=flush "
                                          "gradient=framework precision=float64");
    ck_assert_int_eq(j.attacks[1].craft.cw.denormals, DS_DENORMALS_FLUSH);
    ck_assert_int_eq(j.attacks[2].craft.jsma.num.precision, DS_PRECISION_FLOAT64);
    ck_assert_str_eq(j.attacks[2].params, "source=baseline craft=jsma space=softmax gamma=0.145 "
                     "theta=1 iterations=56 denormals=keep gradient=stable precision=float64");
    const char *plain = "[distill]\ntemperatures = 1\n[attack f]\nkind = fgsm\n";
    ck_assert_int_eq(ds_job_parse_text(&k, plain, "k.job"), DS_OK);
    char *cj = ds_job_canonical(&j), *ck = ds_job_canonical(&k);
    ck_assert_ptr_nonnull(strstr(cj, "denormals=flush"));
    ck_assert_ptr_nonnull(strstr(ck, "attack.f.params = eps=0.3 space=softmax labels=true denormals=keep"));
    free(cj);
    free(ck);
    ds_job_free(&j);
    ds_job_free(&k);
    expect_error(BASE ATK "denormals = sometimes\n", "bad.job:5:", "[attack a] denormals: unknown denormals setting 'sometimes' (expected one of: keep, flush)");
    expect_error(BASE ATK "precision = float16\n", "bad.job:5:", "expected one of: float32, float64");
    expect_error(BASE "[attack c]\nkind = cw-l2\ngradient = stable\n", "bad.job:5:", "unknown key 'gradient'");
}
END_TEST

// fgsm `eps = a b c` (issue 17, helper "checks"): the list in params and, in full, in the
// canonical text; one ε keeps the line of runs made before lists; errors by line.
START_TEST(fgsm_eps_list) {
    ds_job j;
    ck_assert_int_eq(ds_job_parse_text(&j, BASE ATK "eps = 0.05 0.3,0.1\n[attack t]\nkind = "
                                       "transfer\ncraft = fgsm\neps = 0.2 0.4\n", "e.job"), DS_OK);
    const ds_fgsm_params *f = &j.attacks[0].craft.fgsm;
    ck_assert_int_eq(f->n_eps, 3);
    ck_assert(f->eps[0] == 0.05f && f->eps[1] == 0.3f && f->eps[2] == 0.1f); // as written
    ck_assert_str_eq(j.attacks[0].params, "eps=0.05,0.3,0.1 space=softmax labels=true "
                                          "denormals=keep gradient=stable precision=float32");
    ck_assert_str_eq(j.attacks[1].params, "source=baseline craft=fgsm eps=0.2,0.4 space=softmax "
                                          "labels=true denormals=keep gradient=stable "
                                          "precision=float32");
    char *c = ds_job_canonical(&j);
    ck_assert_ptr_nonnull(strstr(c, "attack.a.exact = eps 0.0500000007 0.300000012 0.100000001\n"));
    free(c);
    // The params string of one ε of the list: what the reducer's per-ε rows are named by.
    ds_craft one = j.attacks[0].craft;
    one.fgsm.eps[0] = one.fgsm.eps[1];
    one.fgsm.n_eps = 1;
    char params[256];
    ck_assert_int_eq(ds_job_attack_params(&j.attacks[0], &one, params, sizeof params), 82);
    ck_assert_str_eq(params, "eps=0.3 space=softmax labels=true denormals=keep gradient=stable "
                             "precision=float32");
    // Its length even when it does not fit (the parser's 255-character check uses it).
    ck_assert_int_eq(ds_job_attack_params(&j.attacks[1], &j.attacks[1].craft, params, 10),
                     (int)strlen(j.attacks[1].params));
    ck_assert_str_eq(params, "source=ba");
    ds_job_free(&j);
    ck_assert_int_eq(ds_job_parse_text(&j, BASE ATK "eps = 0.3\n", "e.job"), DS_OK);
    c = ds_job_canonical(&j);
    ck_assert_ptr_nonnull(strstr(c, "attack.a.exact = eps 0.300000012\n"));
    free(c);
    ds_job_free(&j);
    expect_error(BASE ATK "eps = 0.1 1.5\n", "bad.job:5:", "[attack a] eps: expected numbers in (0, 1], got '1.5'");
    expect_error(BASE ATK "eps = 0.1 0.3 0.1\n", "bad.job:5:", "[attack a] eps: 0.1 appears twice");
    expect_error(BASE ATK "eps = 0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8 0.9 1 0.11 0.12 0.13 0.14 0.15 "
                 "0.16 0.17\n", "bad.job:5:", "at most 16 values");
}
END_TEST

START_TEST(error_cases) {
    expect_error("[run]\nseed = 1\n[bogus]\nx = 1\n" BASE, "bad.job:3:", "unknown section [bogus]");
    expect_error(BASE "[train]\nepochs = 2\nepoch = 3\n", "bad.job:5:", "unknown key 'epoch'");
    expect_error(BASE "[train]\nepochs = ten\n", "bad.job:4:", "expected an integer");
    expect_error(BASE "[train]\nepochs = 0\n", "bad.job:4:", "[train] epochs");
    expect_error(BASE "[train]\nlr = -0.1\n", "bad.job:4:", "[train] lr");
    expect_error(BASE "[train]\nlr = 0.1x\n", "bad.job:4:", "got '0.1x'");
    expect_error(BASE "[train]\nlr_decay = 0\n", "bad.job:4:", "[train] lr_decay");
    expect_error(BASE "[train]\nlr_decay = 2\n", "bad.job:4:", "[train] lr_decay");
    expect_error(BASE "[train]\nlr_decay_last = 1.5\n", "bad.job:4:", "[train] lr_decay_last");
    expect_error(BASE "[train]\nbatch = 64\nbatch = 32\n", "bad.job:5:", "set twice (first at line 4");
    expect_error(BASE "[train]\nbatch = 64\n[train]\nlr = 0.1\n", "bad.job:5:", "appears twice");
    expect_error(BASE "[attack a]\nsamples = 3\n", "bad.job:3:", "missing 'kind");
    expect_error(BASE "[attack a]\n", "bad.job:3:", "missing 'kind");
    expect_error(BASE "[attack a]\nkind = deepfool\n", "bad.job:4:", "expected fgsm | jsma | cw-l2 | transfer | pgd");
    expect_error(BASE ATK "theta = 1\n", "bad.job:5:", "unknown key 'theta'");
    expect_error(BASE ATK "eps = 1.5\n", "bad.job:5:", "[attack a] eps");
    expect_error(BASE ATK "space = probits\n", "bad.job:5:", "expected one of: softmax, logits, logits_T");
    expect_error(BASE ATK "labels = maybe\n", "bad.job:5:", "expected one of: true, predicted");
    expect_error(BASE ATK "[attack a]\nkind = jsma\n", "bad.job:5:", "appears twice");
    expect_error(BASE "[attack a]\nkind = jsma\ngamma = 0\n", "bad.job:5:", "gamma");
    expect_error(BASE "[attack a]\nkind = jsma\ntheta = 0\n", "bad.job:5:", "theta");
    expect_error(BASE "[attack a]\nkind = cw-l2\nsearch_steps = 0\n", "bad.job:5:", "search_steps");
    expect_error(BASE "[attack a]\nkind = cw-l2\ntargeted = perhaps\n", "bad.job:5:", "targeted");
    expect_error(BASE "[attack a b]\nkind = fgsm\n", "bad.job:3:", "attack name");
    expect_error("[distill]\ntemperatures = 1 -2\n", "bad.job:2:", "positive numbers, got '-2'");
    expect_error("[distill]\ntemperatures = 1 1.0\n", "bad.job:2:", "1 appears twice");
    expect_error("[distill]\ntemperatures = 1 x\n", "bad.job:2:", "got 'x'");
    expect_error("[run]\nseed = 1\n[distill]\n; none\n", "bad.job:3:", "missing [distill] temperatures");
    expect_error("[run]\nseed = 1\n", "bad.job:", "missing [distill] temperatures");
    expect_error("seed = 1\n" BASE, "bad.job:1:", "before the first [section]");
    expect_error(BASE "[train]\nthis line has no equals sign\n", "bad.job:4:", "expected '[section]' or 'key = value'");
    expect_error("[run]\nname = a/b\n" BASE, "bad.job:2:", "[run] name");
    expect_error("[run]\nthreads = 0\n" BASE, "bad.job:2:", "[run] threads");
    expect_error("[run]\nseed = -1\n" BASE, "bad.job:2:", "[run] seed");
    expect_error("[data]\ndataset = cifar\n" BASE, "bad.job:2:", "expected mnist | fashion-mnist | auto");
    expect_error("[data]\ntrain_samples = 100\n[train]\nbatch = 128\n" BASE, "bad.job:4:",
                 "larger than [data] train_samples");
    expect_error("[data]\ntest_samples = 50\n" BASE ATK "samples = 60\n", "bad.job:7:",
                 "do not fit in [data] test_samples = 50");
    expect_error("[data]\ntest_samples = 50\n" BASE ATK "first = 50\n", "bad.job:7:", "do not fit");
    expect_error(BASE ATK "models = T7/student\n", "bad.job:5:", "'T7/student' is not");
    expect_error(BASE "[attack a]\nkind = transfer\nsource = T3/teacher\n", "bad.job:5:",
                 "not a model of this job");
    expect_error(BASE "[attack a]\nkind = transfer\ncraft = transfer\n", "bad.job:5:", "craft");
    // Plan-level: the sample range checked against the real test set (64 samples here).
    expect_error(BASE ATK "first = 60\nsamples = 10\n", "bad.job:6:", "do not fit in the test set of 64");
    // A line longer than inih's buffer.
    char longline[400];
    snprintf(longline, sizeof longline, BASE "[train]\nlr = 0.1%0300d\n", 0);
    expect_error(longline, "bad.job:4:", "line longer than");
}
END_TEST

// A square section: its keys into the library's settings, the params string, the shard, the
// canonical text, the plan's cost, and errors by line and key.
START_TEST(square_section) {
    const char *text = "[distill]\ntemperatures = 100\n[attack sq]\nkind = square\n"
                       "eps = 0.1, 0.2 0.3\nqueries = 500\np_init = 0.05\nspace = softmax\n"
                       "labels = predicted\ndenormals = flush\nsamples = 600\n";
    ds_job j;
    ck_assert_int_eq(ds_job_parse_text(&j, text, "sq.job"), DS_OK);
    const ds_job_attack *a = &j.attacks[0];
    ck_assert_int_eq(a->kind, DS_KIND_SQUARE);
    ck_assert_int_eq(a->craft.kind, DS_KIND_SQUARE);
    const ds_square_params *q = &a->craft.square;
    ck_assert_int_eq(q->n_eps, 3);
    ck_assert_float_eq(q->eps[0], 0.1f);
    ck_assert_float_eq(q->eps[2], 0.3f);
    ck_assert_int_eq(q->queries, 500);
    ck_assert_float_eq(q->p_init, 0.05f);
    ck_assert_int_eq(q->space, DS_SPACE_SOFTMAX);
    ck_assert_int_eq(q->labels, DS_LABELS_PREDICTED);
    ck_assert_int_eq(q->denormals, DS_DENORMALS_FLUSH);
    ck_assert_int_eq(a->shard, 250);
    ck_assert_str_eq(a->params, "eps=0.1,0.2,0.3 queries=500 p_init=0.05 space=softmax "
                                "labels=predicted denormals=flush");
    char *canon = ds_job_canonical(&j);
    ck_assert_ptr_nonnull(strstr(canon, "attack.sq.kind = square\n"));
    ck_assert_ptr_nonnull(strstr(canon, "attack.sq.exact = eps 0.100000001 0.200000003 0.300000012 "
                                        "p_init 0.0500000007\n"));
    ds_plan p;
    ck_assert_int_eq(ds_plan_build(&p, &j, 256, 1000), DS_OK);
    int g = -1;
    for (int i = 0; i < p.ngroups && g < 0; i++)
        if (!strcmp(p.groups[i].model, "baseline")) g = i;
    ck_assert_int_ge(g, 0);
    ck_assert_int_eq(p.groups[g].ntasks, 3); // 250 + 250 + 100
    const ds_task *t = &p.tasks[p.groups[g].first_task];
    ck_assert_double_eq(t->cost, 20.0 * 250 * 500 * 3); // a forward per query and eps
    ds_plan_free(&p);
    // Round trip: the params string, written back as keys, is the same configuration.
    char back[512] = "[distill]\ntemperatures = 100\n[attack sq]\nkind = square\nsamples = 600\n";
    char params[256];
    snprintf(params, sizeof params, "%s", a->params);
    for (char *tok = strtok(params, " "); tok; tok = strtok(NULL, " ")) {
        char *eq = strchr(tok, '=');
        *eq = 0;
        snprintf(back + strlen(back), sizeof back - strlen(back), "%s = %s\n", tok, eq + 1);
    }
    ds_job k;
    ck_assert_int_eq(ds_job_parse_text(&k, back, "back.job"), DS_OK);
    char *canon2 = ds_job_canonical(&k);
    ck_assert_str_eq(canon, canon2);
    free(canon);
    free(canon2);
    ds_job_free(&k);
    ds_job_free(&j);
    // Defaults.
    ck_assert_int_eq(ds_job_parse_text(&j, BASE "[attack a]\nkind = square\n", "d.job"), DS_OK);
    ck_assert_str_eq(j.attacks[0].params,
                     "eps=0.3 queries=1000 p_init=0.8 space=logits labels=true denormals=keep");
    ds_job_free(&j);
#define SQ "[attack a]\nkind = square\n" // lines 3-4
    expect_error(BASE SQ "eps = 0.3 x\n", "bad.job:5:", "[attack a] eps: expected numbers in (0, 1], got 'x'");
    expect_error(BASE SQ "eps = 0\n", "bad.job:5:", "[attack a] eps");
    expect_error(BASE SQ "eps = 0.1 0.1\n", "bad.job:5:", "0.1 appears twice");
    expect_error(BASE SQ "eps = ,\n", "bad.job:5:", "[attack a] eps: empty");
    expect_error(BASE SQ "queries = 0\n", "bad.job:5:", "[attack a] queries");
    expect_error(BASE SQ "p_init = 1.5\n", "bad.job:5:", "[attack a] p_init");
    expect_error(BASE SQ "space = probits\n", "bad.job:5:", "expected one of: softmax, logits, logits_T");
    expect_error(BASE SQ "gradient = stable\n", "bad.job:5:", "unknown key 'gradient'");
    expect_error(BASE SQ "eps = 0.11 0.12 0.13 0.14 0.15 0.16 0.17 0.18 0.19 0.21 0.22 0.23 0.24 "
                 "0.25 0.26 0.27 0.28\n", "bad.job:5:", "at most 16 values");
#undef SQ
}
END_TEST

// [attack NAME] kind = pgd: every key into the library's ds_pgd_params, named in params and the
// canonical text, with PGD's default shard; `eps` lists for PGD and FGSM; a one-eps FGSM
// configuration keeps the canonical lines runs were made with before lists existed.
START_TEST(pgd_and_eps_lists) {
    const char *text = "[distill]\ntemperatures = 1 100\n"
                       "[attack p]\nkind = pgd\neps = 0.05 0.1 0.2 0.3 0.4 0.5\n"
                       "[attack q]\nkind = pgd\nnorm = l2\neps = 0.5, 1, 2\nstep = 0.1\nsteps = 40\n"
                       "random_start = false\nloss = margin\nspace = logits_T\nlabels = predicted\n"
                       "denormals = flush\ngradient = framework\nprecision = float64\nshard = 50\n"
                       "[attack f]\nkind = fgsm\neps = 0.1 0.3\n"
                       "[attack g]\nkind = fgsm\n"
                       "[attack t]\nkind = transfer\ncraft = pgd\nrestarts = 3\n";
    ds_job j;
    ck_assert_msg(ds_job_parse_text(&j, text, "p.job") == DS_OK, "%s", ds_errmsg());
    ck_assert_int_eq(j.nattacks, 5);
    const ds_job_attack *p = &j.attacks[0], *q = &j.attacks[1];
    ck_assert_int_eq(p->kind, DS_KIND_PGD);
    ck_assert_int_eq(p->craft.pgd.n_eps, 6);
    ck_assert_float_eq(p->craft.pgd.eps[5], 0.5f);
    ck_assert_int_eq(p->shard, 500);
    ck_assert_str_eq(p->params, "eps=0.05,0.1,0.2,0.3,0.4,0.5 norm=linf step=0.01 steps=100 "
                                "random_start=true restarts=1 loss=ce space=softmax labels=true "
                                "denormals=keep gradient=stable precision=float32");
    const ds_pgd_params *g = &q->craft.pgd;
    ck_assert_int_eq(g->norm, DS_NORM_L2);
    ck_assert_int_eq(g->n_eps, 3);
    ck_assert_float_eq(g->eps[2], 2.0f);
    ck_assert_float_eq(g->step, 0.1f);
    ck_assert_int_eq(g->steps, 40);
    ck_assert_int_eq(g->random_start, 0);
    ck_assert_int_eq(g->loss, DS_LOSS_MARGIN);
    ck_assert_int_eq(g->space, DS_SPACE_LOGITS_T);
    ck_assert_int_eq(g->labels, DS_LABELS_PREDICTED);
    ck_assert_int_eq(g->num.denormals, DS_DENORMALS_FLUSH);
    ck_assert_int_eq(g->num.gradient, DS_GRADIENT_FRAMEWORK);
    ck_assert_int_eq(g->num.precision, DS_PRECISION_FLOAT64);
    ck_assert_int_eq(q->shard, 50);
    ck_assert_str_eq(q->params, "eps=0.5,1,2 norm=l2 step=0.1 steps=40 random_start=false restarts=1 "
                                "loss=margin space=logits_T labels=predicted denormals=flush "
                                "gradient=framework precision=float64");
    ck_assert_int_eq(j.attacks[2].craft.fgsm.n_eps, 2);
    ck_assert_str_eq(j.attacks[2].params, "eps=0.1,0.3 space=softmax labels=true denormals=keep "
                                          "gradient=stable precision=float32");
    ck_assert_int_eq(j.attacks[4].craft.kind, DS_KIND_PGD);
    ck_assert_int_eq(j.attacks[4].craft.pgd.restarts, 3);
    ck_assert_int_eq(j.attacks[4].shard, 500);
    ck_assert_str_eq(j.attacks[4].params, "source=baseline craft=pgd eps=0.3 norm=linf step=0.01 "
                     "steps=100 random_start=true restarts=3 loss=ce space=softmax labels=true "
                     "denormals=keep gradient=stable precision=float32");
    char *c = ds_job_canonical(&j);
    ck_assert_ptr_nonnull(strstr(c, "attack.p.kind = pgd\n"));
    ck_assert_ptr_nonnull(strstr(c, "attack.p.exact = eps 0.0500000007 0.100000001 0.200000003 "
                                    "0.300000012 0.400000006 0.5 step 0.00999999978\n"));
    ck_assert_ptr_nonnull(strstr(c, "attack.q.exact = eps 0.5 1 2 step 0.100000001\n"));
    ck_assert_ptr_nonnull(strstr(c, "attack.f.exact = eps 0.100000001 0.300000012\n"));
    // One eps: the lines as they were before lists (existing runs resume).
    ck_assert_ptr_nonnull(strstr(c, "attack.g.kind = fgsm\n"
                                    "attack.g.params = eps=0.3 space=softmax labels=true denormals=keep "
                                    "gradient=stable precision=float32\n"
                                    "attack.g.models = 5\n"
                                    "attack.g.samples = 0 -1 shard 1000\n"
                                    "attack.g.exact = eps 0.300000012\n"));
    free(c);
    // The plan: shards of 500, and a PGD shard costs ~steps x n_eps FGSM shards.
    ds_plan pl;
    ck_assert_int_eq(ds_plan_build(&pl, &j, 256, 1000), DS_OK);
    const ds_task *tp = NULL, *tg = NULL;
    for (int i = 0; i < pl.ntasks; i++) {
        if (!strcmp(pl.tasks[i].id, "attack/baseline/p/0-500")) tp = &pl.tasks[i];
        if (!strcmp(pl.tasks[i].id, "attack/baseline/g/0-1000")) tg = &pl.tasks[i];
    }
    ck_assert_ptr_nonnull(tp);
    ck_assert_ptr_nonnull(tg);
    ck_assert_double_eq_tol(tp->cost / tg->cost, 0.5 * 100 * 6, 1e-9);
    ds_plan_free(&pl);
    ds_job_free(&j);
    // A one-eps FGSM job's canonical text is byte for byte the one before lists existed.
    ds_job a;
    ck_assert_int_eq(ds_job_parse_text(&a, small_job, "a.job"), DS_OK);
    char *ca = ds_job_canonical(&a);
    ck_assert_str_eq(ca,
        "run.seed = 5\ndata.dataset = mnist\ndata.train_samples = 256\ndata.test_samples = 64\n"
        "train.baseline_epochs = 2\ntrain.teacher_epochs = 2\ntrain.student_epochs = 2\n"
        "train.warm_start = 1\ntrain.batch = 32\ntrain.lr = 0.10000000000000001\n"
        "train.momentum = 0.5\ntrain.dropout = 0.5\ndistill.temperatures = 2.5 100\n"
        "attack.fgsm.kind = fgsm\n"
        "attack.fgsm.params = eps=0.3 space=softmax labels=true denormals=keep gradient=stable "
        "precision=float32\n"
        "attack.fgsm.models = 5\nattack.fgsm.samples = 0 40 shard 16\n"
        "attack.fgsm.exact = eps 0.300000012\n"
        "attack.transfer.kind = transfer\n"
        "attack.transfer.params = source=baseline craft=jsma space=softmax gamma=0.145 theta=1 "
        "iterations=56 denormals=keep gradient=stable precision=float32\n"
        "attack.transfer.models = 4\nattack.transfer.samples = 0 2 shard 10\n"
        "attack.transfer.exact = theta 1 gamma 0.144999996\n");
    free(ca);
    ds_job_free(&a);
}
END_TEST

START_TEST(pgd_errors) {
#define PGD "[attack a]\nkind = pgd\n" // lines 3-4
    expect_error(BASE PGD "eps = 0\n", "bad.job:5:", "[attack a] eps: expected numbers in (0, 1], got '0'");
    expect_error(BASE PGD "eps = 0.1 1.5\n", "bad.job:5:", "got '1.5'");
    expect_error(BASE PGD "eps = 0.1 0.3 0.1\n", "bad.job:5:", "[attack a] eps: 0.1 appears twice");
    expect_error(BASE PGD "eps = 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17\nnorm = l2\n", "bad.job:5:",
                 "at most 16 values");
    expect_error(BASE PGD "eps = 0.1 x\n", "bad.job:5:", "got 'x'");
    expect_error(BASE PGD "norm = l1\n", "bad.job:5:", "[attack a] norm: unknown norm 'l1' (expected one of: linf, l2)");
    expect_error(BASE PGD "loss = hinge\n", "bad.job:5:", "[attack a] loss: unknown loss 'hinge'");
    expect_error(BASE PGD "step = 0\n", "bad.job:5:", "[attack a] step");
    expect_error(BASE PGD "steps = 0\n", "bad.job:5:", "[attack a] steps");
    expect_error(BASE PGD "restarts = 0\n", "bad.job:5:", "[attack a] restarts");
    expect_error(BASE PGD "random_start = maybe\n", "bad.job:5:", "[attack a] random_start");
    expect_error(BASE PGD "random_start = false\nrestarts = 5\n", "bad.job:6:",
                 "[attack a] restarts: 5 restarts need random_start = true");
    expect_error(BASE PGD "steps = 1000000\nrestarts = 10000\n", "bad.job:6:", "more than 1e9");
    expect_error(BASE PGD "theta = 1\n", "bad.job:5:", "unknown key 'theta'");
    expect_error(BASE PGD "space = probits\n", "bad.job:5:", "expected one of: softmax, logits, logits_T");
    expect_error(BASE ATK "eps = 0.1 0.3 1.5\n", "bad.job:5:", "[attack a] eps: expected numbers in (0, 1]");
    expect_error(BASE ATK "norm = l2\n", "bad.job:5:", "unknown key 'norm'");
    // L2 radii may exceed 1; the settings string must fit the params column.
    expect_error(BASE PGD "norm = l2\neps = 0.000123457 0.000234568 0.000345679 0.000456789 0.000567891 "
                 "0.000678912 0.000789123 0.000891234 0.000912345 0.00101234 0.00112345 0.00123456\n",
                 "bad.job:6:", "longer than 255 characters; use fewer eps values");
    expect_error(BASE "[attack a]\nkind = transfer\ncraft = transfer\n", "bad.job:5:",
                 "expected fgsm | jsma | cw-l2 | pgd | square");
#undef PGD
}
END_TEST

START_TEST(missing_file) {
    ds_job j;
    ck_assert_int_eq(ds_job_parse(&j, "/nonexistent/x.job"), DS_EIO);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "/nonexistent/x.job"));
}
END_TEST

// ---- The plan ----

START_TEST(known_plan) {
    ds_job j;
    ck_assert_int_eq(ds_job_parse_text(&j, small_job, "small.job"), DS_OK);
    ds_plan p;
    ck_assert_int_eq(ds_plan_build(&p, &j, 256, 64), DS_OK);
    const char *ids[] = {
        "warmstart", "baseline",
        "T2.5/teacher", "T2.5/soft", "T2.5/student",
        "T100/teacher", "T100/soft", "T100/student",
        "attack/baseline/fgsm/0-16", "attack/baseline/fgsm/16-32", "attack/baseline/fgsm/32-40",
        "attack/T2.5/student/fgsm/0-16", "attack/T2.5/student/fgsm/16-32",
        "attack/T2.5/student/fgsm/32-40", "attack/T2.5/student/transfer/0-2",
        "attack/T100/student/fgsm/0-16", "attack/T100/student/fgsm/16-32",
        "attack/T100/student/fgsm/32-40", "attack/T100/student/transfer/0-2",
        "reduce"};
    int n = (int)(sizeof ids / sizeof ids[0]);
    ck_assert_int_eq(p.ntasks, n);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(p.tasks[i].id, ids[i]);
        ck_assert_int_eq(p.tasks[i].index, i);
        for (int k = 0; k < p.tasks[i].ndeps; k++) ck_assert_int_lt(p.tasks[i].deps[k], i);
    }
    ck_assert_str_eq(p.tasks[4].file, "tasks/T2.5-student.h5");
    ck_assert_str_eq(p.tasks[3].file, "tasks/T2.5-soft.h5");
    ck_assert_str_eq(p.tasks[16].file, "tasks/atk-T100-student-fgsm-000016.h5");
    ck_assert_str_eq(p.tasks[4].model, "T2.5/student");
    // Dependencies: teacher <- warm start; soft <- teacher; student <- soft + warm start;
    // attack <- its model; transfer <- its model + the baseline.
    ck_assert_int_eq(p.tasks[2].ndeps, 1);
    ck_assert_int_eq(p.tasks[2].deps[0], 0);
    ck_assert_int_eq(p.tasks[3].deps[0], 2);
    ck_assert_int_eq(p.tasks[4].ndeps, 2);
    ck_assert_int_eq(p.tasks[4].model_task, 3);
    ck_assert_int_eq(p.tasks[4].source_task, 0);
    ck_assert_int_eq(p.tasks[1].ndeps, 0);
    ck_assert_int_eq(p.tasks[14].ndeps, 2);
    ck_assert_int_eq(p.tasks[14].model_task, 4);
    ck_assert_int_eq(p.tasks[14].source_task, 1);
    ck_assert_int_eq(p.tasks[n - 1].kind, DS_TASK_REDUCE);
    ck_assert_int_eq(p.tasks[n - 1].ndeps, n - 1);
    ck_assert_int_eq(p.tasks[10].first, 32);
    ck_assert_int_eq(p.tasks[10].count, 8);
    ck_assert_int_eq(p.tasks[2].epochs, 2);
    ck_assert_double_eq(p.tasks[5].temperature, 100);
    // Groups: one per (model, attack), shards in sample order.
    ck_assert_int_eq(p.ngroups, 5);
    ck_assert_str_eq(p.groups[0].model, "baseline");
    ck_assert_int_eq(p.groups[0].first_task, 8);
    ck_assert_int_eq(p.groups[0].ntasks, 3);
    ck_assert_int_eq(p.groups[0].count, 40);
    ck_assert_str_eq(p.groups[2].model, "T2.5/student");
    ck_assert_int_eq(p.groups[2].attack, 1);
    ck_assert_double_eq(p.groups[4].temperature, 100);
    // Priorities: a task waits for nothing costlier than its own chain.
    for (int i = 0; i < n; i++)
        for (int k = 0; k < p.tasks[i].ndeps; k++)
            ck_assert(p.tasks[p.tasks[i].deps[k]].priority > p.tasks[i].priority);
    ck_assert_int_eq(ds_plan_find(&p, "T100/soft"), 6);
    ck_assert_int_eq(ds_plan_find(&p, "nope"), -1);
    ck_assert_int_eq(ds_plan_model_task(&p, "T100/student"), 7);
    ds_plan_free(&p);
    ds_job_free(&j);
}
END_TEST

START_TEST(seeds_do_not_depend_on_position) {
    ds_job a, b;
    ck_assert_int_eq(ds_job_parse_text(&a, small_job, "a.job"), DS_OK);
    char *text = strdup(small_job);
    char *t = strstr(text, "100 2.5");
    memcpy(t, "1 2 100", 7); // another temperature list
    ck_assert_int_eq(ds_job_parse_text(&b, text, "b.job"), DS_OK);
    ds_plan pa, pb;
    ck_assert_int_eq(ds_plan_build(&pa, &a, 256, 64), DS_OK);
    ck_assert_int_eq(ds_plan_build(&pb, &b, 256, 64), DS_OK);
    int ia = ds_plan_find(&pa, "T100/teacher"), ib = ds_plan_find(&pb, "T100/teacher");
    ck_assert_int_ne(ia, ib);
    ck_assert_uint_eq(pa.tasks[ia].seed, pb.tasks[ib].seed);
    ck_assert_uint_ne(pa.tasks[ia].seed, pa.tasks[ds_plan_find(&pa, "T100/student")].seed);
    ds_plan_free(&pa);
    ds_plan_free(&pb);
    ds_job_free(&a);
    ds_job_free(&b);
    free(text);
}
END_TEST

// ---- Replicates: [run] seeds ----

// small_job with its "seed = 5" line replaced (malloc'ed).
static char *with_seed_line(const char *line) {
    const char *at = strstr(small_job, "seed = 5\n");
    size_t head = (size_t)(at - small_job), n = strlen(small_job) + strlen(line) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)head, small_job, line, at + strlen("seed = 5\n"));
    return s;
}

static ds_job parse_ok(const char *text) {
    ds_job j;
    int rc = ds_job_parse_text(&j, text, "r.job");
    ck_assert_msg(rc == DS_OK, "%s", ds_errmsg());
    return j;
}

START_TEST(seeds_key) {
    char *list = with_seed_line("seeds = 3 1, 20\n"), *one = with_seed_line("seeds = 5\n");
    ds_job a = parse_ok(list), b = parse_ok(one), c = parse_ok(small_job);
    ck_assert_int_eq(a.nseeds, 3);
    ck_assert_uint_eq(a.seeds[0], 3); // as written, not sorted
    ck_assert_uint_eq(a.seeds[1], 1);
    ck_assert_uint_eq(a.seeds[2], 20);
    ck_assert_uint_eq(a.seed, 3);
    ck_assert_int_eq(b.nseeds, 1);
    ck_assert_uint_eq(b.seeds[0], 5);
    ck_assert_int_eq(c.nseeds, 1);
    ck_assert_uint_eq(c.seeds[0], 5);
    // seeds = 5 is seed = 5: the same job; a list is another job, with its own line.
    char *ca = ds_job_canonical(&a), *cb = ds_job_canonical(&b), *cc = ds_job_canonical(&c);
    ck_assert_str_eq(cb, cc);
    ck_assert(!strncmp(ca, "run.seeds = 3 1 20\n", 19));
    ck_assert_ptr_null(strstr(ca, "run.seed ="));
    ck_assert_str_eq(ca + strlen("run.seeds = 3 1 20\n"), cc + strlen("run.seed = 5\n"));
    // No seed at all: {1}.
    ds_job d = parse_ok("[distill]\ntemperatures = 1\n");
    ck_assert_int_eq(d.nseeds, 1);
    ck_assert_uint_eq(d.seeds[0], 1);
    ck_assert_uint_eq(d.seed, 1);
    free(ca);
    free(cb);
    free(cc);
    free(list);
    free(one);
    ds_job_free(&a);
    ds_job_free(&b);
    ds_job_free(&c);
    ds_job_free(&d);
    expect_error("[run]\nseed = 1\nseeds = 1 2\n" BASE, "bad.job:3:",
                 "[run] seeds: the job already sets seed at line 2");
    expect_error("[run]\nseeds = 1 2\nseed = 4\n" BASE, "bad.job:3:",
                 "[run] seed: the job already sets seeds at line 2");
    expect_error("[run]\nseeds = 1 2 1\n" BASE, "bad.job:2:", "[run] seeds: 1 appears twice");
    expect_error("[run]\nseeds = 1 -2\n" BASE, "bad.job:2:", "non-negative integers, got '-2'");
    expect_error("[run]\nseeds = 1 2x\n" BASE, "bad.job:2:", "got '2x'");
    expect_error("[run]\nseeds = 99999999999999999999\n" BASE, "bad.job:2:", "[run] seeds");
    expect_error("[run]\nseeds =\n" BASE, "bad.job:2:", "[run] seeds: empty");
    char many[400] = "[run]\nseeds =";
    for (int i = 0; i <= DS_JOB_MAX_SEEDS; i++) snprintf(many + strlen(many), sizeof many - strlen(many), " %d", i);
    strcat(many, "\n" BASE);
    expect_error(many, "bad.job:2:", "[run] seeds: at most 64");
}
END_TEST

// The canonical text of small_job at the code before [run] seeds and [train] init existed
// (commit ff3f740): a run made then is the same job now.
static const char *const small_job_canonical =
    "run.seed = 5\n"
    "data.dataset = mnist\n"
    "data.train_samples = 256\n"
    "data.test_samples = 64\n"
    "train.baseline_epochs = 2\n"
    "train.teacher_epochs = 2\n"
    "train.student_epochs = 2\n"
    "train.warm_start = 1\n"
    "train.batch = 32\n"
    "train.lr = 0.10000000000000001\n"
    "train.momentum = 0.5\n"
    "train.dropout = 0.5\n"
    "distill.temperatures = 2.5 100\n"
    "attack.fgsm.kind = fgsm\n"
    "attack.fgsm.params = eps=0.3 space=softmax labels=true denormals=keep gradient=stable precision=float32\n"
    "attack.fgsm.models = 5\n"
    "attack.fgsm.samples = 0 40 shard 16\n"
    "attack.fgsm.exact = eps 0.300000012\n"
    "attack.transfer.kind = transfer\n"
    "attack.transfer.params = source=baseline craft=jsma space=softmax gamma=0.145 theta=1 iterations=56 denormals=keep gradient=stable precision=float32\n"
    "attack.transfer.models = 4\n"
    "attack.transfer.samples = 0 2 shard 10\n"
    "attack.transfer.exact = theta 1 gamma 0.144999996\n";

START_TEST(old_jobs_keep_their_canonical_text) {
    ds_job a = parse_ok(small_job);
    char *ca = ds_job_canonical(&a);
    ck_assert_str_eq(ca, small_job_canonical);
    free(ca);
    ds_job_free(&a);
    // Every committed job: one "run.seed" line first, no line of the new keys unless the job
    // sets them (none of them does with more than one seed or another init).
    const char *jobs[] = {"jobs/paper.job", "jobs/paper-2core.job", "jobs/quick.job",
                          "jobs/smoke.job", "jobs/demo.job"};
    for (int i = 0; i < 5; i++) {
        ds_job j;
        ck_assert_msg(ds_job_parse(&j, jobs[i]) == DS_OK, "%s: %s", jobs[i], ds_errmsg());
        char *c = ds_job_canonical(&j);
        if (j.nseeds == 1) {
            ck_assert_msg(!strncmp(c, "run.seed = ", 11), "%s: %.40s", jobs[i], c);
            ck_assert_ptr_null(strstr(c, "run.seeds"));
        }
        if (j.init == DS_INIT_PYTORCH) ck_assert_ptr_null(strstr(c, "train.init"));
        free(c);
        ds_job_free(&j);
    }
}
END_TEST

// [train] init: parsed by ds_init_parse, in the canonical text only when not the default.
START_TEST(init_key) {
    char *glorot = with_train_keys("init = glorot\n"), *pytorch = with_train_keys("init = pytorch\n");
    ds_job a = parse_ok(small_job), g = parse_ok(glorot), p = parse_ok(pytorch);
    ck_assert_int_eq(a.init, DS_INIT_PYTORCH);
    ck_assert_int_eq(g.init, DS_INIT_GLOROT);
    ck_assert_int_eq(p.init, DS_INIT_PYTORCH);
    char *ca = ds_job_canonical(&a), *cg = ds_job_canonical(&g), *cp = ds_job_canonical(&p);
    ck_assert_str_eq(ca, cp);
    ck_assert_str_eq(ca, small_job_canonical);
    ck_assert_ptr_nonnull(strstr(cg, "train.dropout = 0.5\ntrain.init = glorot\ndistill.temperatures"));
    free(ca);
    free(cg);
    free(cp);
    free(glorot);
    free(pytorch);
    ds_job_free(&a);
    ds_job_free(&g);
    ds_job_free(&p);
    expect_error(BASE "[train]\ninit = xavier\n", "bad.job:4:",
                 "[train] init: unknown init 'xavier' (expected one of: pytorch, glorot)");
}
END_TEST

// [train] chunk: parsed, in the canonical text only when not the default (32, so that runs made
// before the key existed are the same job), a multiple of 4; errors name the file, line and key.
// temperatures = none: the baseline alone (and its attacks), no teachers or students.
START_TEST(no_distillation) {
    ds_job j = parse_ok("[distill]\ntemperatures = none\n[attack f]\nkind = fgsm\n");
    ck_assert_int_eq(j.ntemps, 0);
    ds_plan p;
    ck_assert_msg(ds_plan_build(&p, &j, 1000, 50) == DS_OK, "%s", ds_errmsg());
    ck_assert_int_eq(p.ntasks, 3); // baseline, its fgsm shard, reduce
    ck_assert_str_eq(p.tasks[0].id, "baseline");
    ck_assert_str_eq(p.tasks[1].id, "attack/baseline/f/0-50");
    ck_assert_int_eq(p.tasks[2].kind, DS_TASK_REDUCE);
    ds_plan_free(&p);
    ds_job_free(&j);
    expect_error("[distill]\ntemperatures = none 10\n", "bad.job:2:", "got 'none'");
}
END_TEST

START_TEST(chunk_key) {
    char *eight = with_train_keys("chunk = 8\n"), *dflt = with_train_keys("chunk = 32\n");
    char *both = with_train_keys("chunk = 8\ninit = glorot\n");
    ds_job a = parse_ok(small_job), e = parse_ok(eight), d = parse_ok(dflt), b = parse_ok(both);
    ck_assert_int_eq(a.chunk, DS_CHUNK);
    ck_assert_int_eq(DS_CHUNK, 32);
    ck_assert_int_eq(e.chunk, 8);
    ck_assert_int_eq(d.chunk, 32);
    char *ca = ds_job_canonical(&a), *ce = ds_job_canonical(&e), *cd = ds_job_canonical(&d), *cb = ds_job_canonical(&b);
    ck_assert_str_eq(ca, small_job_canonical);
    ck_assert_str_eq(cd, ca);
    ck_assert_ptr_null(strstr(ca, "chunk"));
    ck_assert_ptr_nonnull(strstr(ce, "train.dropout = 0.5\ntrain.chunk = 8\ndistill.temperatures"));
    ck_assert_ptr_nonnull(strstr(cb, "train.dropout = 0.5\ntrain.chunk = 8\ntrain.init = glorot\ndistill"));
    // Apart from that line, the same job.
    char *at = strstr(ce, "train.chunk = 8\n");
    ck_assert_uint_eq(strlen(ce), strlen(ca) + strlen("train.chunk = 8\n"));
    ck_assert_int_eq(strncmp(ce, ca, (size_t)(at - ce)), 0);
    ck_assert_str_eq(at + strlen("train.chunk = 8\n"), ca + (at - ce));
    free(ca), free(ce), free(cd), free(cb);
    free(eight), free(dflt), free(both);
    ds_job_free(&a), ds_job_free(&e), ds_job_free(&d), ds_job_free(&b);
    expect_error(BASE "[train]\nbatch = 64\nchunk = 6\n", "bad.job:5: ", "[train] chunk: 6 is not a multiple of 4");
    ck_assert_ptr_null(strchr(ds_errmsg(), '\n'));
    expect_error(BASE "[train]\nchunk = 2\n", "bad.job:4: ", "[train] chunk: expected an integer in [4, 65536], got '2'");
    expect_error(BASE "[train]\nchunk = eight\n", "bad.job:4: ", "[train] chunk: expected an integer");
}
END_TEST

// [run] engine: onednn (the default) adds "run.engine = onednn" after the seed line, so that a
// run made before the key existed (which computed with the GEMM engine) is not resumed by the
// new engine; gemm keeps the old text; anything else is an error naming the line.
START_TEST(engine_key) {
    char *dflt = strdup(small_job); // without the engine line, and with engine = onednn
    char *at = strstr(dflt, "engine = gemm\n");
    memmove(at, at + strlen("engine = gemm\n"), strlen(at + strlen("engine = gemm\n")) + 1);
    size_t n = strlen(dflt) + 32;
    char *onednn = malloc(n);
    char *run = strstr(dflt, "seed = 5\n") + strlen("seed = 5\n");
    snprintf(onednn, n, "%.*sengine = onednn\n%s", (int)(run - dflt), dflt, run);
    ds_job g = parse_ok(small_job), d = parse_ok(dflt), o = parse_ok(onednn);
    ck_assert_int_eq(g.engine, DS_ENGINE_GEMM);
    ck_assert_int_eq(d.engine, DS_ENGINE_ONEDNN);
    ck_assert_int_eq(o.engine, DS_ENGINE_ONEDNN);
    char *cg = ds_job_canonical(&g), *cd = ds_job_canonical(&d), *co = ds_job_canonical(&o);
    ck_assert_str_eq(cg, small_job_canonical);
    ck_assert_str_eq(cd, co);
    const char *line = "run.engine = onednn\n";
    ck_assert_int_eq(strncmp(cd, "run.seed = 5\nrun.engine = onednn\n", 33), 0);
    ck_assert_uint_eq(strlen(cd), strlen(cg) + strlen(line));
    ck_assert_str_eq(cd + strlen("run.seed = 5\n") + strlen(line), cg + strlen("run.seed = 5\n"));
    free(cg), free(cd), free(co), free(dflt), free(onednn);
    ds_job_free(&g), ds_job_free(&d), ds_job_free(&o);
    expect_error("[run]\nengine = mkl\n" BASE, "bad.job:2: ", "[run] engine: engine 'mkl' is not onednn or gemm");
}
END_TEST

// The seeds of small_job's tasks at the code before replicates (commit ff3f740), in plan order.
static const uint64_t small_job_task_seeds[20] = {
    0x5a8f73a84d54a4bbull, 0xbb957c0119f4e30bull, 0xdcf6a85a8fc87e26ull, 0x6b57a76aa1b77f85ull,
    0xfd1870aa6a1e3bd6ull, 0x1ce32ab6a796e953ull, 0xf780860c6df56ac6ull, 0x8c3fd0e8558b4b76ull,
    0xe5068948a1008ab7ull, 0x23da44f6c58dc2a3ull, 0x11220b4197c7fc88ull, 0xaf5feb9838269ca0ull,
    0x084c0cd072b5616cull, 0xa681cbece4232e73ull, 0x16f80a326fdd363aull, 0xe1678267dc88761eull,
    0x22f05e094ae9410aull, 0x99f5ac6163a45b32ull, 0x74c026b3a96ffe59ull, 0x9bec74fc2e522574ull};

START_TEST(one_seed_plan_unchanged) {
    ds_job j = parse_ok(small_job);
    ds_plan p;
    ck_assert_int_eq(ds_plan_build(&p, &j, 256, 64), DS_OK);
    ck_assert_int_eq(p.ntasks, 20);
    for (int i = 0; i < p.ntasks; i++) {
        const ds_task *t = &p.tasks[i];
        ck_assert_msg(t->seed == small_job_task_seeds[i], "task %d %s: seed %016llx", i, t->id,
                      (unsigned long long)t->seed);
        ck_assert_int_eq(t->rep, 0);
        ck_assert_str_eq(t->base_model, t->model);
    }
    for (int g = 0; g < p.ngroups; g++) {
        ck_assert_int_eq(p.groups[g].rep, 0);
        ck_assert_str_eq(p.groups[g].base_model, p.groups[g].model);
    }
    // The dry run's listing has no replicate lines.
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ds_plan_print(&p, f);
    fclose(f);
    ck_assert_ptr_null(strstr(out, "replicates"));
    free(out);
    ds_plan_free(&p);
    ds_job_free(&j);
}
END_TEST

// A job with seed list `seeds`, a transfer from a teacher and explicit model names (malloc'ed).
static char *replicate_job(const char *seed_line, int shard) {
    char *base = with_seed_line(seed_line);
    size_t n = strlen(base) + 200;
    char *s = malloc(n);
    snprintf(s, n, "%s[attack tt]\nkind = transfer\nsource = T2.5/teacher\nmodels = T100/student\n"
             "samples = 4\nshard = %d\n", base, shard);
    free(base);
    return s;
}

// Task b of a two-seed plan is task a of a one-seed plan, in replicate `rep` whose tasks start
// at `off`: the same work, the same seed, the same dependencies, names with "s<seed>/".
static void assert_replicate_task(const ds_task *a, const ds_task *b, int rep, int off,
                                  uint64_t seed) {
    char pre[32], id[2 * DS_TASK_ID], file[2 * DS_TASK_ID];
    snprintf(pre, sizeof pre, "s%llu", (unsigned long long)seed);
    if (a->kind == DS_TASK_ATTACK) {
        snprintf(id, sizeof id, "attack/%s/%s", pre, a->id + strlen("attack/"));
        snprintf(file, sizeof file, "tasks/atk-%s-%s", pre, a->file + strlen("tasks/atk-"));
    } else {
        snprintf(id, sizeof id, "%s/%s", pre, a->id);
        snprintf(file, sizeof file, "tasks/%s-%s", pre, a->file + strlen("tasks/"));
    }
    ck_assert_str_eq(b->id, id);
    ck_assert_str_eq(b->file, file);
    ck_assert_int_eq(b->rep, rep);
    ck_assert_str_eq(b->base_model, a->model);
    char model[2 * DS_JOB_NAME];
    snprintf(model, sizeof model, "%s/%s", pre, a->model);
    ck_assert_str_eq(b->model, model);
    ck_assert_msg(b->seed == a->seed, "%s: seed %016llx, one-seed sweep %016llx", b->id,
                  (unsigned long long)b->seed, (unsigned long long)a->seed);
    ck_assert_int_eq(b->kind, a->kind);
    ck_assert_int_eq(b->role, a->role);
    ck_assert_double_eq(b->temperature, a->temperature);
    ck_assert_int_eq(b->epochs, a->epochs);
    ck_assert_int_eq(b->attack, a->attack);
    ck_assert_int_eq(b->first, a->first);
    ck_assert_int_eq(b->count, a->count);
    ck_assert_double_eq(b->cost, a->cost);
    ck_assert_double_eq(b->priority, a->priority);
    ck_assert_int_eq(b->model_task, a->model_task < 0 ? -1 : a->model_task + off);
    ck_assert_int_eq(b->source_task, a->source_task < 0 ? -1 : a->source_task + off);
    ck_assert_int_eq(b->ndeps, a->ndeps);
    for (int k = 0; k < a->ndeps; k++) ck_assert_int_eq(b->deps[k], a->deps[k] + off);
}

START_TEST(replicate_plan) {
    char *t2 = replicate_job("seeds = 5 9\n", 10), *t5 = replicate_job("seed = 5\n", 10);
    char *t9 = replicate_job("seed = 9\n", 10), *t2s = replicate_job("seeds = 5 9\n", 1);
    ds_job j2 = parse_ok(t2), j5 = parse_ok(t5), j9 = parse_ok(t9), j2s = parse_ok(t2s);
    ds_plan p2, p5, p9, p2s;
    ck_assert_int_eq(ds_plan_build(&p2, &j2, 256, 64), DS_OK);
    ck_assert_int_eq(ds_plan_build(&p5, &j5, 256, 64), DS_OK);
    ck_assert_int_eq(ds_plan_build(&p9, &j9, 256, 64), DS_OK);
    ck_assert_int_eq(ds_plan_build(&p2s, &j2s, 256, 64), DS_OK);
    int n1 = p5.ntasks - 1; // one replicate's tasks, without the reduce task
    ck_assert_int_eq(p2.ntasks, 2 * n1 + 1);
    ck_assert_int_eq(p2.ngroups, 2 * p5.ngroups);
    for (int i = 0; i < n1; i++) {
        assert_replicate_task(&p5.tasks[i], &p2.tasks[i], 0, 0, 5);
        assert_replicate_task(&p9.tasks[i], &p2.tasks[n1 + i], 1, n1, 9);
    }
    const ds_task *r = &p2.tasks[2 * n1];
    ck_assert_int_eq(r->kind, DS_TASK_REDUCE);
    ck_assert_int_eq(r->ndeps, 2 * n1);
    // Groups: replicate 0's, then replicate 1's, each as the one-seed plan's.
    for (int g = 0; g < p5.ngroups; g++)
        for (int rep = 0; rep < 2; rep++) {
            const ds_attack_group *a = &(rep ? p9 : p5).groups[g], *b = &p2.groups[rep * p5.ngroups + g];
            ck_assert_int_eq(b->rep, rep);
            ck_assert_str_eq(b->base_model, a->model);
            ck_assert_int_eq(b->attack, a->attack);
            ck_assert_int_eq(b->first_task, a->first_task + rep * n1);
            ck_assert_int_eq(b->model_task, a->model_task + rep * n1);
            ck_assert_int_eq(b->ntasks, a->ntasks);
            ck_assert_int_eq(b->count, a->count);
        }
    // Names, lookups, and models and sources resolved inside the replicate.
    int s9b = ds_plan_find(&p2, "s9/baseline");
    ck_assert_int_eq(s9b, n1 + 1);
    ck_assert_str_eq(p2.tasks[s9b].file, "tasks/s9-baseline.h5");
    ck_assert_int_eq(ds_plan_model_task(&p2, "s9/baseline"), s9b);
    ck_assert_int_eq(ds_plan_model_task(&p2, "baseline"), -1);
    ck_assert_int_eq(ds_plan_rep_model_task(&p2, 1, "baseline"), s9b);
    ck_assert_int_eq(ds_plan_rep_model_task(&p2, 0, "T100/student"), ds_plan_find(&p2, "s5/T100/student"));
    int soft = ds_plan_find(&p2, "s9/T100/soft");
    ck_assert_int_ge(soft, 0);
    ck_assert_str_eq(p2.tasks[soft].file, "tasks/s9-T100-soft.h5");
    int tt = ds_plan_find(&p2, "attack/s9/T100/student/tt/0-4");
    ck_assert_int_ge(tt, 0);
    ck_assert_str_eq(p2.tasks[tt].file, "tasks/atk-s9-T100-student-tt-000000.h5");
    ck_assert_int_eq(p2.tasks[tt].source_task, ds_plan_find(&p2, "s9/T2.5/teacher"));
    ck_assert_int_eq(p2.tasks[tt].model_task, ds_plan_find(&p2, "s9/T100/student"));
    ck_assert_int_eq(ds_plan_find(&p2, "attack/s9/T2.5/student/tt/0-4"), -1); // not named
    char name[64];
    ds_plan_rep_name(&p2, 1, "T100", name, sizeof name);
    ck_assert_str_eq(name, "s9/T100");
    ds_plan_rep_name(&p5, 0, "T100", name, sizeof name);
    ck_assert_str_eq(name, "T100");
    // Random starts: one stream per (replicate seed, attack section), whatever the model, the
    // shard or the replicate's position; another seed or section, another stream.
    int f9 = ds_plan_find(&p2, "attack/s9/baseline/fgsm/16-32");
    uint64_t fgsm9 = ds_plan_attack_seed(&p2, &p2.tasks[f9]);
    ck_assert_uint_eq(fgsm9, ds_plan_attack_seed(&p9, &p9.tasks[ds_plan_find(&p9, "attack/baseline/fgsm/0-16")]));
    ck_assert_uint_eq(fgsm9, ds_plan_attack_seed(&p2, &p2.tasks[ds_plan_find(&p2, "attack/s9/T100/student/fgsm/32-40")]));
    ck_assert_uint_ne(fgsm9, ds_plan_attack_seed(&p2, &p2.tasks[ds_plan_find(&p2, "attack/s5/baseline/fgsm/16-32")]));
    uint64_t tt9 = ds_plan_attack_seed(&p2, &p2.tasks[tt]);
    ck_assert_uint_ne(fgsm9, tt9);
    int tt9s = ds_plan_find(&p2s, "attack/s9/T100/student/tt/3-4"); // shards of one sample
    ck_assert_int_ge(tt9s, 0);
    ck_assert_uint_eq(tt9, ds_plan_attack_seed(&p2s, &p2s.tasks[tt9s]));
    ck_assert_uint_eq(ds_plan_attack_seed(&p2, &p2.tasks[s9b]), 0); // not an attack
    // The dry run: each replicate's tasks and work, then the totals.
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    ds_plan_print(&p2, f);
    fclose(f);
    char line[160];
    snprintf(line, sizeof line, "  seed 9 (s9/): %d tasks (6 trainings, 2 soft labels, %d attack shards)",
             n1, n1 - 8);
    ck_assert_msg(strstr(out, line) != NULL, "no '%s' in the listing: %.300s", line, out);
    snprintf(line, sizeof line, "  total: 2 replicates, %d tasks with the reduce task", 2 * n1 + 1);
    ck_assert_msg(strstr(out, line) != NULL, "no '%s'", line);
    free(out);
    ds_plan_free(&p2);
    ds_plan_free(&p5);
    ds_plan_free(&p9);
    ds_plan_free(&p2s);
    ds_job_free(&j2);
    ds_job_free(&j5);
    ds_job_free(&j9);
    ds_job_free(&j2s);
    free(t2);
    free(t5);
    free(t9);
    free(t2s);
}
END_TEST

// ---- The journal ----

static void write_text(const char *path, const char *s) { tu_write_file(path, s, strlen(s)); }

START_TEST(journal_rules) {
    char dir[256], path[512];
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/tasks", dir);
    ck_assert_int_eq(mkdir(path, 0755), 0);
    ds_job j;
    ck_assert_int_eq(ds_job_parse_text(&j, small_job, "small.job"), DS_OK);
    ds_plan p;
    ck_assert_int_eq(ds_plan_build(&p, &j, 256, 64), DS_OK);
    // Three tasks done: warmstart, baseline, T2.5/teacher.
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, p.tasks[i].file);
        write_text(path, p.tasks[i].id);
        ds_journal_entry e;
        snprintf(e.id, sizeof e.id, "%s", p.tasks[i].id);
        snprintf(e.file, sizeof e.file, "%s", p.tasks[i].file);
        ck_assert_int_eq(ds_file_crc32(path, &e.bytes, &e.crc), DS_OK);
        ck_assert_int_eq(ds_journal_append(dir, &e), DS_OK);
    }
    // A torn last line (a crash in the middle of an append) and a file without a line.
    snprintf(path, sizeof path, "%s/tasks/done.log", dir);
    FILE *f = fopen(path, "a");
    fputs("T100/teacher tasks/T100-teacher.h5 12", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/%s", dir, p.tasks[5].file);
    write_text(path, "complete but not journaled");
    uint8_t *done = calloc((size_t)p.ntasks, 1);
    ck_assert_int_eq(ds_journal_scan(&p, dir, done, NULL), DS_OK);
    for (int i = 0; i < p.ntasks; i++) ck_assert_int_eq(done[i], i < 3);
    // The read-only rule agrees, and says why for every task that is not done.
    uint8_t *ro = calloc((size_t)p.ntasks, 1);
    const char **why = calloc((size_t)p.ntasks, sizeof *why);
    ck_assert_int_eq(ds_run_tasks_done(&p, dir, ro, why), DS_OK);
    ck_assert_int_eq(memcmp(ro, done, (size_t)p.ntasks), 0);
    ck_assert_ptr_null(why[1]);
    ck_assert_str_eq(why[5], "is not in tasks/done.log");
    // Same size, other content: corrupted. Truncated: wrong size. Both run again.
    snprintf(path, sizeof path, "%s/%s", dir, p.tasks[0].file);
    write_text(path, "warmstarX");
    snprintf(path, sizeof path, "%s/%s", dir, p.tasks[1].file);
    write_text(path, "base");
    ck_assert_int_eq(ds_run_tasks_done(&p, dir, ro, why), DS_OK);
    ck_assert_str_eq(why[0], "does not match its checksum (corrupted)");
    ck_assert_str_eq(why[1], "has the wrong size (truncated or rewritten)");
    ck_assert_int_eq(ro[2], 1);
    ck_assert_int_eq(access(path, F_OK), 0); // read-only: nothing quarantined
    free(ro);
    free(why);
    ck_assert_int_eq(ds_journal_scan(&p, dir, done, NULL), DS_OK);
    ck_assert_int_eq(done[0], 0);
    ck_assert_int_eq(done[1], 0);
    ck_assert_int_eq(done[2], 1);
    snprintf(path, sizeof path, "%s/%s.corrupt", dir, p.tasks[0].file);
    ck_assert_int_eq(access(path, F_OK), 0); // kept aside for inspection
    // The journal was rewritten with the one valid line.
    ds_journal_entry *e;
    int n, bad;
    ck_assert_int_eq(ds_journal_read(dir, &e, &n, &bad), DS_OK);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(bad, 0);
    ck_assert_str_eq(e[0].id, "T2.5/teacher");
    free(e);
    free(done);
    ds_plan_free(&p);
    ds_job_free(&j);
}
END_TEST

// The run folder's state and lock (src/run/run.c): a run opened by ds_run_open is read back by
// ds_run_state_read with the same facts and canonical text, and rebuilds the same plan; a
// malformed run.txt is refused by name; a second ds_run_lock on a held folder reports busy.
START_TEST(run_state_and_lock) {
    char dir[256], path[700];
    tu_tempdir(dir, sizeof dir);
    char text[1024];
    snprintf(text, sizeof text, "[run]\nname = r\nresults = %s\n%s", dir,
             strstr(small_job, "[run]\n") + strlen("[run]\n"));
    ds_job j;
    ck_assert_int_eq(ds_job_parse_text(&j, text, "r.job"), DS_OK);
    ds_run run = {.train_n = 256, .test_n = 64, .data_crc = 0x1234abcdu};
    snprintf(run.dataset, sizeof run.dataset, "mnist");
    ck_assert_int_eq(ds_run_open(&j, &run, 0, NULL), DS_OK);
    ds_run_state st;
    ck_assert_int_eq(ds_run_state_read(run.dir, &st), DS_OK);
    ck_assert_str_eq(st.dataset, "mnist");
    ck_assert_int_eq(st.train_n, 256);
    ck_assert_int_eq(st.test_n, 64);
    ck_assert_uint_eq(st.data_crc, 0x1234abcdu);
    char *canon = ds_job_canonical(&j);
    ck_assert_str_eq(st.canonical, canon);
    free(canon);
    ds_run_state_free(&st);
    ds_job rj;
    ds_plan rp, p;
    ck_assert_int_eq(ds_run_load_plan(run.dir, &rj, &rp), DS_OK);
    ck_assert_int_eq(ds_plan_build(&p, &j, 256, 64), DS_OK);
    ck_assert_int_eq(rp.ntasks, p.ntasks);
    for (int i = 0; i < p.ntasks; i++) ck_assert_str_eq(rp.tasks[i].id, p.tasks[i].id);
    ds_plan_free(&rp);
    ds_plan_free(&p);
    ds_job_free(&rj);
    // Held by this ds_run: a second taker is told it is busy.
    int fd, busy;
    ck_assert_int_eq(ds_run_lock(run.dir, 0, &fd, &busy), DS_EIO);
    ck_assert_int_eq(busy, 1);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "is in use by another distill_sweep"));
    ds_run_close(&run);
    ck_assert_int_eq(ds_run_lock(run.dir, 0, &fd, &busy), DS_OK);
    ck_assert_int_eq(busy, 0);
    ck_assert_int_ge(fd, 0);
    close(fd);
    // A run.txt without its sizes is not a run state.
    snprintf(path, sizeof path, "%s/run.txt", run.dir);
    write_text(path, "dataset mnist\n--- canonical job ---\nx\n");
    ck_assert_int_eq(ds_run_state_read(run.dir, &st), DS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "run.txt: not a run state"));
    ds_run_state_free(&st);
    ck_assert_int_eq(ds_run_state_read(dir, &st), DS_EIO); // not a run folder
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "a run folder?"));
    ds_job_free(&j);
}
END_TEST

// ---- What a resume may change (ds_run_job_compare) ----

// small_job with its first `from` replaced by `to` (malloc'ed).
static char *job_variant(const char *from, const char *to) {
    const char *at = strstr(small_job, from);
    ck_assert_ptr_nonnull(at);
    size_t head = (size_t)(at - small_job), n = strlen(small_job) + strlen(to) + 1;
    char *s = malloc(n);
    snprintf(s, n, "%.*s%s%s", (int)head, small_job, to, at + strlen(from));
    return s;
}

// ds_run_job_compare of small_job's canonical text (the run) and that of text (the job).
static int compare_with(const char *text, char *summary, size_t cap) {
    ds_job a, b;
    ck_assert_int_eq(ds_job_parse_text(&a, small_job, "run.job"), DS_OK);
    ck_assert_msg(ds_job_parse_text(&b, text, "new.job") == DS_OK, "%s", ds_errmsg());
    char *ca = ds_job_canonical(&a), *cb = ds_job_canonical(&b);
    int rc = ds_run_job_compare(ca, cb, summary, cap);
    free(ca);
    free(cb);
    ds_job_free(&a);
    ds_job_free(&b);
    return rc;
}

// The variant (from -> to) extends the run by exactly `added`.
static void expect_extension(const char *from, const char *to, const char *added) {
    char *text = job_variant(from, to), summary[512];
    int rc = compare_with(text, summary, sizeof summary);
    ck_assert_msg(rc == DS_RUN_EXTENDS, "'%s' -> '%s': %d (%s)", from, to, rc, ds_errmsg());
    ck_assert_str_eq(summary, added);
    free(text);
}

// The variant is refused with a message that starts with `why`.
static void expect_refusal(const char *from, const char *to, const char *why) {
    char *text = job_variant(from, to), summary[512];
    int rc = compare_with(text, summary, sizeof summary);
    ck_assert_msg(rc == DS_EINVAL, "'%s' -> '%s' was not refused (%d)", from, to, rc);
    ck_assert_msg(!strncmp(ds_errmsg(), why, strlen(why)), "'%s' -> '%s': '%s' does not start "
                  "with '%s'", from, to, ds_errmsg(), why);
    free(text);
}

#define JSMA2 "[attack jsma]\nkind = jsma\nsamples = 2\nmodels = baseline T100/student\n"

START_TEST(job_compare) {
    char summary[512] = "x";
    // The same job, however it is written.
    ck_assert_int_eq(compare_with(small_job, summary, sizeof summary), DS_RUN_SAME);
    ck_assert_str_eq(summary, "");
    char *same = job_variant("[attack fgsm]\n", "[attack fgsm]\neps = 0.3 ; the default\n");
    ck_assert_int_eq(compare_with(same, summary, sizeof summary), DS_RUN_SAME);
    free(same);
    // Added configurations, at the end or between the run's, with dots in the name; added models.
    expect_extension("[attack transfer]", JSMA2 "[attack transfer]", "+ attack jsma (2 models)");
    expect_extension("samples = 2\n", "samples = 2\n[attack fg.v2]\nkind = fgsm\nmodels = all\n",
                     "+ attack fg.v2 (5 models)");
    expect_extension("shard = 16\n", "shard = 16\nmodels = baseline students T100/teacher\n",
                     "+ models of fgsm: T100/teacher");
    expect_extension("shard = 16\n", "shard = 16\nmodels = all\n",
                     "+ models of fgsm: T2.5/teacher T100/teacher");
    expect_extension("craft = jsma\n", "craft = jsma\nmodels = students baseline\n",
                     "+ models of transfer: baseline");
    expect_extension("shard = 16\n", "shard = 16\nmodels = baseline T100/teacher students\n"
                     "[attack jsma]\nkind = jsma\nsamples = 1\n",
                     "+ models of fgsm: T100/teacher, + attack jsma (3 models)");
    // The same models named one by one: nothing to run, but run.txt's text changes.
    expect_extension("shard = 16\n", "shard = 16\nmodels = T2.5/student baseline T100/student\n",
                     "no new tasks (the same models, named otherwise)");
    // Any setting outside the attacks.
    expect_refusal("epochs = 2", "epochs = 3",
                   "the run was made with train.baseline_epochs = 2, this job has 3");
    expect_refusal("[train]\n", "[train]\nstudent_epochs = 4\n",
                   "the run was made with train.student_epochs = 2, this job has 4");
    expect_refusal("seed = 5", "seed = 6", "the run was made with run.seed = 5, this job has 6");
    expect_refusal("test_samples = 64", "test_samples = 60",
                   "the run was made with data.test_samples = 64, this job has 60");
    expect_refusal("temperatures = 100 2.5", "temperatures = 100 2.5 20",
                   "the run was made with distill.temperatures = 2.5 100, this job has 2.5 20 100");
    expect_refusal("batch = 32\n", "batch = 32\nlr_decay = 0.5\n",
                   "the run was made without train.lr_decay, this job has train.lr_decay = 0.5 last "
                   "0.25");
    // Any other setting of an existing attack.
    expect_refusal("shard = 16\n", "shard = 16\neps = 0.2\n",
                   "the run was made with attack.fgsm.params = eps=0.3 space=softmax labels=true "
                   "denormals=keep gradient=stable precision=float32, this job has eps=0.2 ");
    expect_refusal("samples = 40", "samples = 32",
                   "the run was made with attack.fgsm.samples = 0 40 shard 16, this job has 0 32 "
                   "shard 16");
    expect_refusal("shard = 16", "shard = 8",
                   "the run was made with attack.fgsm.samples = 0 40 shard 16, this job has 0 40 "
                   "shard 8");
    expect_refusal("shard = 16\n", "shard = 16\nfirst = 1\n",
                   "the run was made with attack.fgsm.samples = 0 40 shard 16, this job has 1 40 "
                   "shard 16");
    expect_refusal("craft = jsma", "craft = fgsm",
                   "the run was made with attack.transfer.params = source=baseline craft=jsma ");
    expect_refusal("kind = fgsm", "kind = jsma", "the run was made with attack.fgsm.kind = fgsm, "
                   "this job has jsma");
    // Removing a configuration or a model, and reordering the run's configurations.
    expect_refusal("[attack transfer]\nkind = transfer\ncraft = jsma\nsamples = 2\n", "",
                   "the run has [attack transfer], this job does not: removing an attack "
                   "configuration would silently drop its results from the summary");
    expect_refusal("shard = 16\n", "shard = 16\nmodels = students T100/teacher\n",
                   "the run attacks baseline with [attack fgsm], this job does not: removing a "
                   "model would silently drop its results from the summary");
    char *moved = job_variant("[attack transfer]\nkind = transfer\ncraft = jsma\nsamples = 2\n", "");
    char *reordered = malloc(strlen(moved) + 200);
    sprintf(reordered, "%.*s[attack transfer]\nkind = transfer\ncraft = jsma\nsamples = 2\n%s",
            (int)(strstr(moved, "[attack fgsm]") - moved), moved, strstr(moved, "[attack fgsm]"));
    ck_assert_int_eq(compare_with(reordered, summary, sizeof summary), DS_EINVAL);
    ck_assert_str_eq(ds_errmsg(), "[attack transfer] comes before [attack fgsm] in this job, after "
                     "it in the run: keep the run's attack sections in their order (new ones may "
                     "go anywhere)");
    free(moved);
    free(reordered);
    // Texts that are not canonical jobs still compare line by line.
    ck_assert_int_eq(ds_run_job_compare("a = 1\nattack.x.models = all\n",
                                        "a = 1\nattack.x.models = baseline\n", summary,
                                        sizeof summary), DS_EINVAL);
    ck_assert_str_eq(ds_errmsg(), "the run was made with attack.x.models = all, this job has baseline");
    ck_assert_int_eq(ds_run_job_compare("a = 1\n", "a = 1\nb = 2\n", summary, sizeof summary),
                     DS_EINVAL);
    ck_assert_str_eq(ds_errmsg(), "the run was made without b, this job has b = 2");
    ck_assert_int_eq(ds_run_job_compare("a = 1\nb = 2\n", "a = 1\n", summary, sizeof summary),
                     DS_EINVAL);
    ck_assert_str_eq(ds_errmsg(), "the run was made with b = 2, this job has no b");
}
END_TEST

static char *slurp(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    static char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    return strdup(buf);
}

// A run job text: small_job (or a variant) in results folder dir, run name r.
static void parse_in(ds_job *j, const char *dir, const char *body) {
    char text[2048];
    snprintf(text, sizeof text, "[run]\nname = r\nresults = %s\n%s", dir,
             strstr(body, "[run]\n") + strlen("[run]\n"));
    ck_assert_int_eq(ds_job_parse_text(j, text, "r.job"), DS_OK);
}

static ds_run run_of(void) {
    ds_run run = {.train_n = 256, .test_n = 64, .data_crc = 0x1234abcdu};
    snprintf(run.dataset, sizeof run.dataset, "mnist");
    return run;
}

START_TEST(run_extend) {
    char dir[256], ini[700], txt[700];
    tu_tempdir(dir, sizeof dir);
    ds_job j, x, bad;
    parse_in(&j, dir, small_job);
    char *ext = job_variant("[attack transfer]", JSMA2 "[attack transfer]");
    char *changed = job_variant("epochs = 2", "epochs = 3");
    parse_in(&x, dir, ext);
    parse_in(&bad, dir, changed);
    ds_run run = run_of();
    ck_assert_int_eq(ds_run_open(&j, &run, 0, NULL), DS_OK);
    ds_run_close(&run);
    char rdir[600];
    snprintf(rdir, sizeof rdir, "%s", run.dir);
    snprintf(ini, sizeof ini, "%s/job.ini", rdir);
    snprintf(txt, sizeof txt, "%s/run.txt", rdir);
    char *ini0 = slurp(ini), *txt0 = slurp(txt);
    // The extension replaces job.ini and run.txt, and says so.
    char logbuf[1024] = "";
    FILE *log = fmemopen(logbuf, sizeof logbuf, "w");
    run = run_of();
    ck_assert_int_eq(ds_run_open(&x, &run, 0, log), DS_OK);
    fclose(log);
    char want[1200];
    snprintf(want, sizeof want, "%s/r: extending the run: + attack jsma (2 models)\n", dir);
    ck_assert_str_eq(logbuf, want);
    char *ini1 = slurp(ini), *txt1 = slurp(txt), *cx = ds_job_canonical(&x);
    ck_assert_str_eq(ini1, x.text);
    ck_assert_str_eq(strstr(txt1, "--- canonical job ---\n") + 22, cx);
    ck_assert_str_eq(txt1 + strlen(txt1) - strlen(cx), cx);
    ck_assert_int_eq(strncmp(txt0, txt1, (size_t)(strstr(txt0, "---") - txt0)), 0); // same data
    ds_run_close(&run);
    // A resume of the extended run: nothing changes, the run's old job is now refused.
    run = run_of();
    ck_assert_int_eq(ds_run_open(&x, &run, 0, NULL), DS_OK);
    ds_run_close(&run);
    run = run_of();
    ck_assert_int_eq(ds_run_open(&j, &run, 0, NULL), DS_EINVAL);
    snprintf(want, sizeof want, "%s/r/run.txt: the run has [attack jsma], this job does not: ", dir);
    ck_assert_msg(!strncmp(ds_errmsg(), want, strlen(want)), "%s", ds_errmsg());
    // A changed epoch count: refused with one line, run.txt and job.ini untouched.
    run = run_of();
    ck_assert_int_eq(ds_run_open(&bad, &run, 0, NULL), DS_EINVAL);
    snprintf(want, sizeof want, "%s/r/run.txt: the run was made with train.baseline_epochs = 2, "
             "this job has 3: use a new run name (extending a run may only add attack "
             "configurations or models to one), or pass --new-run to start %s/r-2", dir, dir);
    ck_assert_str_eq(ds_errmsg(), want);
    char *ini2 = slurp(ini), *txt2 = slurp(txt);
    ck_assert_str_eq(ini2, ini1);
    ck_assert_str_eq(txt2, txt1);
    // Other data: refused naming the header line.
    run = run_of();
    run.data_crc = 0x1234abceu;
    ck_assert_int_eq(ds_run_open(&x, &run, 0, NULL), DS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "run.txt: the run was made with data_crc32 1234abcd, "
                                 "this job has data_crc32 1234abce: use a new run name"));
    // An extension interrupted between its renames (job.ini new, run.txt old): the reducer's
    // view refuses the folder; a sweep of either job repairs it.
    write_text(ini, x.text);
    write_text(txt, txt0);
    ds_job rj;
    ds_plan rp;
    ck_assert_int_eq(ds_run_load_plan(rdir, &rj, &rp), DS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "/r/job.ini is ahead of its run.txt (+ attack jsma "
                                 "(2 models)): an extension of the run was interrupted"));
    run = run_of();
    ck_assert_int_eq(ds_run_open(&j, &run, 0, NULL), DS_OK); // the run's job: job.ini put back
    ds_run_close(&run);
    char *ini3 = slurp(ini);
    ck_assert_str_eq(ini3, j.text);
    ck_assert_int_eq(ds_run_load_plan(rdir, &rj, &rp), DS_OK);
    ds_plan_free(&rp);
    ds_job_free(&rj);
    write_text(ini, changed); // an edited job.ini
    ck_assert_int_eq(ds_run_load_plan(rdir, &rj, &rp), DS_EFORMAT);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "/r/job.ini does not match its run.txt (the run was "
                                 "made with train.baseline_epochs = 2, this job has 3;"));
    free(ini0), free(txt0), free(ini1), free(txt1), free(ini2), free(txt2), free(ini3), free(cx);
    free(ext);
    free(changed);
    ds_job_free(&j);
    ds_job_free(&x);
    ds_job_free(&bad);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("job");
    TCase *tc = tcase_create("job");
    tcase_add_test(tc, shipped_jobs_parse);
    tcase_add_test(tc, paper_job_is_the_paper);
    tcase_add_test(tc, defaults_and_values);
    tcase_add_test(tc, temperature_names);
    tcase_add_test(tc, canonical_text);
    tcase_add_test(tc, explicit_defaults_change_nothing);
    tcase_add_test(tc, error_cases);
    tcase_add_test(tc, numerics_keys);
    tcase_add_test(tc, square_section);
    tcase_add_test(tc, pgd_and_eps_lists);
    tcase_add_test(tc, pgd_errors);
    tcase_add_test(tc, fgsm_eps_list);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, known_plan);
    tcase_add_test(tc, seeds_do_not_depend_on_position);
    tcase_add_test(tc, seeds_key);
    tcase_add_test(tc, old_jobs_keep_their_canonical_text);
    tcase_add_test(tc, init_key);
    tcase_add_test(tc, chunk_key);
    tcase_add_test(tc, engine_key);
    tcase_add_test(tc, no_distillation);
    tcase_add_test(tc, one_seed_plan_unchanged);
    tcase_add_test(tc, replicate_plan);
    tcase_add_test(tc, journal_rules);
    tcase_add_test(tc, run_state_and_lock);
    tcase_add_test(tc, job_compare);
    tcase_add_test(tc, run_extend);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
