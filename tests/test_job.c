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
        "[run]\nname = other\nresults = elsewhere\nthreads = 2\nseed = 5 ; same seed\n\n"
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
    ds_job_attack_params(&j.attacks[0], &one, params, sizeof params);
    ck_assert_str_eq(params, "eps=0.3 space=softmax labels=true denormals=keep gradient=stable "
                             "precision=float32");
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
    expect_error(BASE "[attack a]\nkind = deepfool\n", "bad.job:4:", "expected fgsm | jsma");
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
    tcase_add_test(tc, fgsm_eps_list);
    tcase_add_test(tc, missing_file);
    tcase_add_test(tc, known_plan);
    tcase_add_test(tc, seeds_do_not_depend_on_position);
    tcase_add_test(tc, journal_rules);
    tcase_add_test(tc, run_state_and_lock);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
