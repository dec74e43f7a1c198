// The training driver (ds_train.h) on a tiny synthetic set: a training stopped after its first
// epoch and resumed from the checkpoint ends with the same bits as one never stopped; a
// checkpoint of another training is refused by name and left alone; a damaged one is an error
// or a restart, as the policy says. Gangs: k members in threads with an in-process reducer train
// the bits of a trainer alone, and a gang's segments (ended at a boundary, resumed on another k)
// end with the bits of one uninterrupted training.
#include "ds_error.h"
#include "ds_rng.h"
#include "ds_store.h"
#include "ds_train.h"
#include "testutil.h"

#include <pthread.h>

// n random images, label i % 10, with a bright column at the label's place.
static void tiny_set(ds_dataset *d, int n, uint64_t seed) {
    d->n = n, d->rows = 28, d->cols = 28;
    d->images = malloc((size_t)n * DS_PIXELS);
    d->labels = malloc((size_t)n);
    ds_rng r = ds_rng_stream(seed, 7, 0);
    for (int i = 0; i < n; i++) {
        d->labels[i] = (uint8_t)(i % 10);
        for (int p = 0; p < DS_PIXELS; p++)
            d->images[(size_t)i * DS_PIXELS + p] = p % 28 == 2 + 2 * (i % 10) ? 255 : (uint8_t)ds_rng_below(&r, 80);
    }
}

// What the driver reported, and a stop request raised after epoch stop_after (0: never).
typedef struct {
    int started, resumed, resumed_after, damaged, epochs_run, stop_after, evaluated, saved;
    double epoch_accuracy; // of the last DS_TRAIN_EPOCH
    volatile int stop;
} record;

static void on_event(void *user, const ds_train_event *e) {
    record *r = user;
    if (e->kind == DS_TRAIN_START) r->started = 1, r->resumed = e->resumed, r->resumed_after = e->epoch;
    if (e->kind == DS_TRAIN_DAMAGED) r->damaged++;
    if (e->kind == DS_TRAIN_EPOCH) r->epochs_run++, r->epoch_accuracy = e->accuracy;
    if (e->kind == DS_TRAIN_EVALUATED) r->evaluated++;
    if (e->kind == DS_TRAIN_SAVED) r->saved++;
    if (e->kind == DS_TRAIN_EPOCH && e->epoch == r->stop_after) r->stop = 1;
}

typedef struct {
    char dir[512];
    ds_dataset train, test;
} fixture;

static void setup(fixture *f) {
    tu_tempdir(f->dir, sizeof f->dir);
    tiny_set(&f->train, 40, 1);
    tiny_set(&f->test, 20, 2);
}

static void teardown(fixture *f) {
    ds_dataset_free(&f->train);
    ds_dataset_free(&f->test);
}

// Trains (seed, T, epochs) into dir/<out>.h5 with checkpoint dir/<ckpt> (NULL: none).
static int train(const fixture *f, uint64_t seed, float T, int epochs, const char *out, const char *ckpt,
                 ds_ckpt_damaged damaged, record *rec) {
    ds_train_config c;
    ds_train_config_default(&c);
    c.epochs = epochs, c.batch = 16, c.threads = 1, c.seed = seed, c.temperature = T;
    char path[700], cpath[700];
    snprintf(path, sizeof path, "%s/%s.h5", f->dir, out);
    snprintf(cpath, sizeof cpath, "%s/%s", f->dir, ckpt ? ckpt : "");
    ds_provenance prov = {.job_text = "", .code_version = "test", .seed = seed, .task = out};
    ds_train_start start = {.source = NULL, .init_seed = seed};
    ds_train_output o = {.path = path, .group = "baseline", .role = "baseline", .name = out, .prov = &prov};
    ds_ckpt_policy policy = {.path = ckpt ? cpath : NULL, .damaged = damaged};
    ds_train_progress progress = {.fn = on_event, .user = rec};
    return ds_train_run(&c, &f->train, NULL, &f->test, &start, &o, &policy, &rec->stop, &progress, NULL);
}

static int exists(const fixture *f, const char *name) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    return access(path, F_OK) == 0;
}

static void assert_same_weights(const fixture *f, const char *a, const char *b) {
    char pa[700], pb[700];
    snprintf(pa, sizeof pa, "%s/%s.h5", f->dir, a);
    snprintf(pb, sizeof pb, "%s/%s.h5", f->dir, b);
    ds_model ma, mb;
    ck_assert_int_eq(ds_store_load_model(pa, "baseline", &ma), DS_OK);
    ck_assert_int_eq(ds_store_load_model(pb, "baseline", &mb), DS_OK);
    ck_assert_int_eq(ma.epochs, mb.epochs);
    ck_assert(ma.test_accuracy == mb.test_accuracy);
    ck_assert_msg(memcmp(ma.mem, mb.mem, ds_params_count() * sizeof(float)) == 0, "%s and %s differ", a, b);
    ds_model_free(&ma), ds_model_free(&mb);
}

START_TEST(test_resume_bit_identical) {
    fixture f;
    setup(&f);
    record whole = {0}, first = {.stop_after = 1}, rest = {0};
    ck_assert_int_eq(train(&f, 5, 1.0f, 2, "whole", NULL, DS_CKPT_DAMAGED_FAILS, &whole), DS_OK);
    ck_assert_int_eq(whole.epochs_run, 2);
    // Stopped after epoch 1: the checkpoint stays, no model is written.
    ck_assert_int_eq(train(&f, 5, 1.0f, 2, "resumed", "r.ckpt.h5", DS_CKPT_DAMAGED_FAILS, &first), DS_ESTOP);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "resumed: stopped after epoch 1 (checkpoint saved)"));
    ck_assert(exists(&f, "r.ckpt.h5") && !exists(&f, "resumed.h5"));
    // The rerun continues from it, saves the model and removes the checkpoint.
    ck_assert_int_eq(train(&f, 5, 1.0f, 2, "resumed", "r.ckpt.h5", DS_CKPT_DAMAGED_FAILS, &rest), DS_OK);
    ck_assert(rest.resumed && rest.resumed_after == 1 && rest.epochs_run == 1);
    ck_assert(!exists(&f, "r.ckpt.h5") && exists(&f, "resumed.h5"));
    assert_same_weights(&f, "whole", "resumed");
    teardown(&f);
}
END_TEST

// A checkpoint at epoch 2 of a training (seed 7, T=1, 3 epochs), then trainings it is not from.
START_TEST(test_foreign_checkpoint_refused) {
    fixture f;
    setup(&f);
    record mine = {.stop_after = 2};
    ck_assert_int_eq(train(&f, 7, 1.0f, 3, "mine", "c.ckpt.h5", DS_CKPT_DAMAGED_RESTARTS, &mine), DS_ESTOP);
    struct { uint64_t seed; float T; int epochs; const char *names; } other[] = {
        {8, 1.0f, 3, "(T=1 seed 8, 3 epochs)"},   // another seed
        {7, 10.0f, 3, "(T=10 seed 7, 3 epochs)"}, // another temperature
        {7, 1.0f, 1, "(T=1 seed 7, 1 epoch)"},   // the checkpoint is beyond this training's end
    };
    for (int i = 0; i < 3; i++) {
        record rec = {0};
        int rc = train(&f, other[i].seed, other[i].T, other[i].epochs, "other", "c.ckpt.h5",
                       DS_CKPT_DAMAGED_RESTARTS, &rec);
        ck_assert_int_eq(rc, DS_EINVAL);
        const char *msg = ds_errmsg();
        ck_assert_msg(strstr(msg, "/c.ckpt.h5: checkpoint of a training at T=1 seed 7 (epoch 2), not of this one ") &&
                      strstr(msg, other[i].names) && strstr(msg, "remove it"), "case %d: %s", i, msg);
        ck_assert(!rec.started && rec.epochs_run == 0);
        ck_assert(exists(&f, "c.ckpt.h5") && !exists(&f, "other.h5")); // left alone, nothing written
    }
    teardown(&f);
}
END_TEST

START_TEST(test_damaged_checkpoint_policy) {
    fixture f;
    setup(&f);
    char path[700];
    snprintf(path, sizeof path, "%s/d.ckpt.h5", f.dir);
    tu_write_file(path, "not a checkpoint", 16);
    record fails = {0}, restarts = {0}, whole = {0};
    int rc = train(&f, 3, 2.0f, 2, "d", "d.ckpt.h5", DS_CKPT_DAMAGED_FAILS, &fails);
    ck_assert_msg(rc == DS_EFORMAT || rc == DS_EIO, "rc %d: %s", rc, ds_errmsg());
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "d.ckpt.h5"));
    ck_assert(!fails.started && !exists(&f, "d.h5"));
    // Restarting: reported once, trained from scratch, same bits as a training without one.
    ck_assert_int_eq(train(&f, 3, 2.0f, 2, "d", "d.ckpt.h5", DS_CKPT_DAMAGED_RESTARTS, &restarts), DS_OK);
    ck_assert(restarts.damaged == 1 && !restarts.resumed && restarts.epochs_run == 2);
    ck_assert(!exists(&f, "d.ckpt.h5"));
    ck_assert_int_eq(train(&f, 3, 2.0f, 2, "whole", NULL, DS_CKPT_DAMAGED_FAILS, &whole), DS_OK);
    assert_same_weights(&f, "whole", "d");
    teardown(&f);
}
END_TEST

// ---- Gangs: an in-process reducer (a test fixture, not product code) ----
// k members in threads sharing memory: each publishes its chunks' gradients and its samples'
// losses, folds its slice of the parameters over all chunks (ds_grad_fold, in chunk order), and
// copies the whole gradient and every loss back; barriers separate the phases. HDF5 is not
// thread-safe here, so members start one after another: the next starts when the one before
// has its model (its DS_TRAIN_START), i.e. has read the checkpoint.

enum { GANG_MAX = 5, GANG_CHUNK = 4, GANG_BATCH = 16 }; // batches of 16 and 8: 4 and 2 chunks

typedef struct {
    int k;
    pthread_barrier_t bar;
    const float *chunks[GANG_BATCH / GANG_CHUNK]; // chunk c's gradient, from the member computing it
    double losses[GANG_BATCH];
    float *grad;                                 // [np]: the fold
    int decide_after, decision;                  // at_boundary: decision after that epoch, else DS_OK
    int boundaries[GANG_MAX];                    // at_boundary calls per member
    pthread_mutex_t mu;                          // the start turn
    pthread_cond_t turn_cv;
    int turn;
} gang_shared;

typedef struct {
    gang_shared *sh;
    int member;
    ds_grad_reducer reducer;
} gang_member;

static int gang_reduce(void *user, const float *cg, int c0, int c1, int nc, size_t np, double *losses,
                       int n, float *grad) {
    gang_member *g = user;
    gang_shared *sh = g->sh;
    ck_assert_int_le(nc, GANG_BATCH / GANG_CHUNK);
    for (int c = c0; c < c1; c++) sh->chunks[c] = cg + (size_t)(c - c0) * np;
    for (int i = c0 * GANG_CHUNK; i < c1 * GANG_CHUNK && i < n; i++) sh->losses[i] = losses[i];
    pthread_barrier_wait(&sh->bar); // every chunk published
    ds_grad_fold(sh->grad, sh->chunks, nc, np * g->member / sh->k, np * (g->member + 1) / sh->k);
    pthread_barrier_wait(&sh->bar); // every slice folded
    memcpy(grad, sh->grad, np * sizeof(float));
    memcpy(losses, sh->losses, (size_t)n * sizeof(double));
    pthread_barrier_wait(&sh->bar); // read by all before the next step publishes
    return DS_OK;
}

static int gang_at_boundary(void *user, int epoch, int status) {
    gang_member *g = user;
    if (status) return status;
    g->sh->boundaries[g->member]++;
    pthread_barrier_wait(&g->sh->bar); // the writer's checkpoint is on disk
    return epoch == g->sh->decide_after ? g->sh->decision : DS_OK;
}

static void gang_init(gang_shared *sh, gang_member *m, int k) {
    memset(sh, 0, sizeof *sh);
    sh->k = k;
    sh->grad = malloc(ds_params_count() * sizeof(float));
    ck_assert_int_eq(pthread_barrier_init(&sh->bar, NULL, (unsigned)k), 0);
    pthread_mutex_init(&sh->mu, NULL);
    pthread_cond_init(&sh->turn_cv, NULL);
    for (int i = 0; i < k; i++)
        m[i] = (gang_member){sh, i, {.member = i, .size = k, .reduce = gang_reduce, .user = &m[i]}};
}

static void gang_free(gang_shared *sh) {
    pthread_barrier_destroy(&sh->bar);
    pthread_mutex_destroy(&sh->mu);
    pthread_cond_destroy(&sh->turn_cv);
    free(sh->grad);
}

static void wait_turn(gang_shared *sh, int member) {
    pthread_mutex_lock(&sh->mu);
    while (sh->turn < member) pthread_cond_wait(&sh->turn_cv, &sh->mu);
    pthread_mutex_unlock(&sh->mu);
}

static void pass_turn(gang_shared *sh, int member) {
    pthread_mutex_lock(&sh->mu);
    if (sh->turn == member) sh->turn++;
    pthread_cond_broadcast(&sh->turn_cv);
    pthread_mutex_unlock(&sh->mu);
}

// Runs fn on k threads, job i at jobs + i * size.
static void gang_run(int k, void *(*fn)(void *), void *jobs, size_t size) {
    pthread_t th[GANG_MAX];
    for (int i = 0; i < k; i++) ck_assert_int_eq(pthread_create(&th[i], NULL, fn, (char *)jobs + i * size), 0);
    for (int i = 0; i < k; i++) pthread_join(th[i], NULL);
}

static void gang_config(ds_train_config *c, uint64_t seed, int epochs, int threads) {
    ds_train_config_default(c);
    c->epochs = epochs, c->batch = GANG_BATCH, c->chunk = GANG_CHUNK, c->threads = threads, c->seed = seed;
}

// One member's ds_trainer: its own engine threads (1 or 2), a fresh model, `epochs` epochs.
typedef struct {
    gang_member *g; // NULL: alone
    const ds_dataset *train;
    const float *soft;
    ds_train_config cfg;
    ds_model m;
    double loss[3];
    int rc;
} trainer_job;

static void *train_member(void *arg) {
    trainer_job *j = arg;
    ds_trainer t = {0};
    j->rc = ds_model_init(&j->m, j->cfg.seed);
    if (!j->rc) j->rc = ds_trainer_init(&t, &j->cfg, j->train->n, j->g ? &j->g->reducer : NULL);
    for (int e = 0; !j->rc && e < j->cfg.epochs; e++) j->rc = ds_trainer_epoch(&t, &j->m, j->train, j->soft, &j->loss[e]);
    ds_trainer_free(&t);
    return NULL;
}

// k = 2, 3 (on soft labels at T=10) and 5 (one member never has a chunk): after 3 epochs every
// member's weights and every epoch's mean loss are those of a trainer alone, bit for bit.
START_TEST(test_gang_trainers_bit_identical) {
    ds_dataset tr;
    tiny_set(&tr, 40, 3);
    float *soft = malloc((size_t)tr.n * DS_CLASSES * sizeof(float));
    for (int i = 0; i < tr.n * DS_CLASSES; i++) soft[i] = i % DS_CLASSES == tr.labels[i / DS_CLASSES] ? 0.82f : 0.02f;
    const struct { int k; int soft; } cases[3] = {{2, 0}, {3, 1}, {5, 0}};
    size_t bytes = ds_params_count() * sizeof(float);
    for (int ci = 0; ci < 3; ci++) {
        int k = cases[ci].k;
        trainer_job alone = {.train = &tr, .soft = cases[ci].soft ? soft : NULL}, jobs[GANG_MAX];
        gang_config(&alone.cfg, 9, 3, 1);
        if (cases[ci].soft) alone.cfg.temperature = 10.0f;
        train_member(&alone);
        ck_assert_int_eq(alone.rc, DS_OK);
        gang_shared sh;
        gang_member m[GANG_MAX];
        gang_init(&sh, m, k);
        for (int i = 0; i < k; i++) {
            jobs[i] = alone;
            jobs[i].g = &m[i];
            jobs[i].cfg.threads = 1 + i % 2;
        }
        gang_run(k, train_member, jobs, sizeof jobs[0]);
        for (int i = 0; i < k; i++) {
            ck_assert_msg(jobs[i].rc == DS_OK, "k %d member %d: %d", k, i, jobs[i].rc);
            ck_assert_msg(memcmp(jobs[i].m.mem, alone.m.mem, bytes) == 0, "k %d member %d: weights differ", k, i);
            ck_assert_int_eq(jobs[i].m.epochs, 3);
            for (int e = 0; e < 3; e++)
                ck_assert_msg(jobs[i].loss[e] == alone.loss[e], "k %d member %d epoch %d: loss %.17g vs %.17g", k, i,
                              e + 1, jobs[i].loss[e], alone.loss[e]);
            ds_model_free(&jobs[i].m);
        }
        gang_free(&sh);
        ds_model_free(&alone.m);
    }
    free(soft);
    ds_dataset_free(&tr);
}
END_TEST

// One member's ds_train_run into dir/<out>.h5 with checkpoint dir/<ckpt>; member 0 writes.
typedef struct {
    gang_member *g; // NULL: alone
    const fixture *f;
    ds_train_config cfg;
    const char *out, *ckpt;
    record rec;
    int rc;
    char msg[256];
} run_job;

static void run_event(void *user, const ds_train_event *e) {
    run_job *j = user;
    on_event(&j->rec, e);
    if (e->kind == DS_TRAIN_START && j->g) pass_turn(j->g->sh, j->g->member);
}

static void *run_member(void *arg) {
    run_job *j = arg;
    char path[700], cpath[700];
    snprintf(path, sizeof path, "%s/%s.h5", j->f->dir, j->out);
    snprintf(cpath, sizeof cpath, "%s/%s", j->f->dir, j->ckpt);
    ds_provenance prov = {.job_text = "", .code_version = "test", .seed = j->cfg.seed, .task = j->out};
    ds_train_start start = {.source = NULL, .init_seed = j->cfg.seed};
    ds_train_output o = {.path = path, .group = "baseline", .role = "baseline", .name = j->out, .prov = &prov};
    ds_ckpt_policy policy = {.path = cpath, .damaged = DS_CKPT_DAMAGED_FAILS};
    ds_train_progress progress = {.fn = run_event, .user = j, .evaluate_each_epoch = 1};
    ds_train_gang gang = {.reducer = j->g ? &j->g->reducer : NULL, .writer = j->g && j->g->member == 0,
                          .at_boundary = gang_at_boundary, .user = j->g};
    if (j->g) wait_turn(j->g->sh, j->g->member);
    j->rc = ds_train_run(&j->cfg, &j->f->train, NULL, &j->f->test, &start, &o, &policy, &j->rec.stop, &progress,
                         j->g ? &gang : NULL);
    snprintf(j->msg, sizeof j->msg, "%s", ds_errmsg());
    if (j->g) pass_turn(j->g->sh, j->g->member); // a start that failed passes it too
    return NULL;
}

// A segment of the training (seed 5, 3 epochs) into dir/gang.h5 on k members whose common
// decision after epoch decide_after is `decision`; `stop`: every member's own stop flag raised.
static void gang_segment(const fixture *f, int k, int decide_after, int decision, int stop, run_job *jobs) {
    gang_shared sh;
    gang_member m[GANG_MAX];
    gang_init(&sh, m, k);
    sh.decide_after = decide_after, sh.decision = decision;
    for (int i = 0; i < k; i++) {
        jobs[i] = (run_job){.g = &m[i], .f = f, .out = "gang", .ckpt = "g.ckpt.h5", .rec.stop = stop};
        gang_config(&jobs[i].cfg, 5, 3, 1 + i % 2);
    }
    gang_run(k, run_member, jobs, sizeof jobs[0]);
    for (int i = 0; i < k; i++) ck_assert_msg(sh.boundaries[i] == sh.boundaries[0], "member %d", i);
    for (int i = 0; i < k; i++) jobs[i].g = NULL; // m and sh end here
    gang_free(&sh);
}

// The training alone into dir/alone.h5; on 2 members ended after epoch 1 (DS_EREGANG: checkpoint
// saved, no model); resumed on 3 members (their stop flags raised and ignored) to the end: the
// writer's model has the alone training's bits, the others write and evaluate nothing.
START_TEST(test_gang_segments_resume_on_another_k) {
    fixture f;
    setup(&f);
    run_job alone = {.f = &f, .out = "alone", .ckpt = "a.ckpt.h5"}, jobs[GANG_MAX];
    gang_config(&alone.cfg, 5, 3, 1);
    run_member(&alone);
    ck_assert_msg(alone.rc == DS_OK, "%s", alone.msg);
    ck_assert(alone.rec.evaluated == 1 && alone.rec.saved == 1 && !exists(&f, "a.ckpt.h5"));

    gang_segment(&f, 2, 1, DS_EREGANG, 0, jobs);
    for (int i = 0; i < 2; i++) {
        ck_assert_msg(jobs[i].rc == DS_EREGANG, "member %d: %d %s", i, jobs[i].rc, jobs[i].msg);
        ck_assert_str_eq(jobs[i].msg, "gang: segment ended after epoch 1 (checkpoint saved)");
        ck_assert(jobs[i].rec.started && !jobs[i].rec.resumed && jobs[i].rec.epochs_run == 1);
        ck_assert(!jobs[i].rec.evaluated && !jobs[i].rec.saved);
        ck_assert(i == 0 ? jobs[i].rec.epoch_accuracy >= 0 : jobs[i].rec.epoch_accuracy == -1); // the writer evaluates
    }
    ck_assert(exists(&f, "g.ckpt.h5") && !exists(&f, "gang.h5"));

    gang_segment(&f, 3, -1, DS_OK, 1, jobs);
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(jobs[i].rc == DS_OK, "member %d: %s", i, jobs[i].msg);
        ck_assert(jobs[i].rec.resumed && jobs[i].rec.resumed_after == 1 && jobs[i].rec.epochs_run == 2);
        ck_assert_int_eq(jobs[i].rec.evaluated, i == 0);
        ck_assert_int_eq(jobs[i].rec.saved, i == 0);
    }
    ck_assert(!exists(&f, "g.ckpt.h5") && exists(&f, "gang.h5"));
    assert_same_weights(&f, "alone", "gang");
    teardown(&f);
}
END_TEST

// DS_ESTOP from the gang after epoch 2 of 3 on 5 members: the stop message, the checkpoint;
// a training alone (gang NULL) resumes it and ends with the bits of the uninterrupted one.
START_TEST(test_gang_stop_then_alone) {
    fixture f;
    setup(&f);
    run_job alone = {.f = &f, .out = "alone", .ckpt = "a.ckpt.h5"}, jobs[GANG_MAX];
    gang_config(&alone.cfg, 5, 3, 1);
    run_member(&alone);
    ck_assert_msg(alone.rc == DS_OK, "%s", alone.msg);
    gang_segment(&f, 5, 2, DS_ESTOP, 0, jobs);
    for (int i = 0; i < 5; i++) {
        ck_assert_msg(jobs[i].rc == DS_ESTOP, "member %d: %d %s", i, jobs[i].rc, jobs[i].msg);
        ck_assert_str_eq(jobs[i].msg, "gang: stopped after epoch 2 (checkpoint saved)");
        ck_assert_int_eq(jobs[i].rec.epochs_run, 2);
    }
    ck_assert(exists(&f, "g.ckpt.h5") && !exists(&f, "gang.h5"));
    run_job rest = {.f = &f, .out = "gang", .ckpt = "g.ckpt.h5"};
    gang_config(&rest.cfg, 5, 3, 2);
    run_member(&rest);
    ck_assert_msg(rest.rc == DS_OK, "%s", rest.msg);
    ck_assert(rest.rec.resumed && rest.rec.resumed_after == 2 && rest.rec.epochs_run == 1);
    assert_same_weights(&f, "alone", "gang");
    teardown(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("driver");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resume_bit_identical);
    tcase_add_test(tc, test_foreign_checkpoint_refused);
    tcase_add_test(tc, test_damaged_checkpoint_policy);
    suite_add_tcase(s, tc);
    TCase *gangs = tcase_create("gangs");
    tcase_set_timeout(gangs, 120);
    tcase_add_test(gangs, test_gang_trainers_bit_identical);
    tcase_add_test(gangs, test_gang_segments_resume_on_another_k);
    tcase_add_test(gangs, test_gang_stop_then_alone);
    suite_add_tcase(s, gangs);
    return tu_run(s);
}
