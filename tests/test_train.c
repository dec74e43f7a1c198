// The training driver (ds_train.h) on a tiny synthetic set: a training stopped after its first
// epoch and resumed from the checkpoint ends with the same bits as one never stopped; a
// checkpoint of another training is refused by name and left alone; a damaged one is an error
// or a restart, as the policy says.
#include "ds_error.h"
#include "ds_rng.h"
#include "ds_store.h"
#include "ds_train.h"
#include "testutil.h"

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
    int started, resumed, resumed_after, damaged, epochs_run, stop_after;
    volatile int stop;
} record;

static void on_event(void *user, const ds_train_event *e) {
    record *r = user;
    if (e->kind == DS_TRAIN_START) r->started = 1, r->resumed = e->resumed, r->resumed_after = e->epoch;
    if (e->kind == DS_TRAIN_DAMAGED) r->damaged++;
    if (e->kind == DS_TRAIN_EPOCH) r->epochs_run++;
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

int main(void) {
    Suite *s = suite_create("train");
    TCase *tc = tcase_create("driver");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_resume_bit_identical);
    tcase_add_test(tc, test_foreign_checkpoint_refused);
    tcase_add_test(tc, test_damaged_checkpoint_policy);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
