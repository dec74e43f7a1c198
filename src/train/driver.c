// The resumable training driver (ds_train.h): start (checkpoint, source or fresh), epochs with a
// checkpoint after each but the last, evaluation, save. The one place that decides whether a
// checkpoint is resumed. On a gang every member runs it: all read the checkpoint and train; only
// the writer writes, evaluates and saves; the gang's decision at each boundary replaces the stop
// flag.
#include "ds_train.h"

#include "ds_error.h"
#include "ds_fault.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// One training's arguments and state, shared by the steps below.
typedef struct {
    const ds_train_config *cfg;
    const ds_dataset *train, *test;
    const float *soft;
    const ds_train_output *out;
    const ds_ckpt_policy *ckpt;
    const volatile int *stop;
    const ds_train_progress *progress;
    const ds_train_gang *gang; // NULL: alone
    ds_trainer tr;
    ds_model m;
} run;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Alone, or the gang's writer: writes checkpoints and the model, evaluates.
static int writes(const run *r) { return !r->gang || r->gang->writer; }

static void report(const run *r, ds_train_event e) {
    e.epoch = r->tr.epoch;
    e.epochs = r->cfg->epochs;
    if (r->progress && r->progress->fn) r->progress->fn(r->progress->user, &e);
}

// The checkpoint, if there is one of this training: into r->m, r->tr.velocity and r->tr.epoch
// (*resumed = 1). A damaged one is the policy's choice; a foreign one is refused by name.
static int resume(run *r, int *resumed) {
    const ds_train_config *c = r->cfg;
    const char *path = r->ckpt ? r->ckpt->path : NULL;
    *resumed = 0;
    if (!path || access(path, F_OK)) return DS_OK;
    ds_model k;
    int rc = ds_store_load_checkpoint(path, &k, r->tr.velocity);
    if (rc) {
        memset(r->tr.velocity, 0, sizeof(float) * ds_params_count());
        if (r->ckpt->damaged == DS_CKPT_DAMAGED_FAILS) return rc;
        report(r, (ds_train_event){.kind = DS_TRAIN_DAMAGED, .accuracy = -1, .message = ds_errmsg()});
        return DS_OK;
    }
    if (k.seed != c->seed || k.temperature != c->temperature || k.epochs < 1 || k.epochs > c->epochs) {
        rc = ds_fail(DS_EINVAL, "%s: checkpoint of a training at T=%g seed %llu (epoch %d), not of this one "
                     "(T=%g seed %llu, %d epoch%s); remove it or choose another checkpoint",
                     path, k.temperature, (unsigned long long)k.seed, k.epochs, c->temperature,
                     (unsigned long long)c->seed, c->epochs, c->epochs == 1 ? "" : "s");
        ds_model_free(&k);
        return rc;
    }
    r->m = k;
    r->tr.epoch = k.epochs;
    *resumed = 1;
    return DS_OK;
}

// The model to train: the checkpoint's, else a copy of the source, else a fresh one; its
// attributes are this training's.
static int start_model(run *r, const ds_train_start *s) {
    const ds_train_gang *g = r->gang;
    int shared = g && g->share_start, resumed = 0, rc;
    if (shared && !g->writer) { // the writer's state arrives below
        rc = ds_model_alloc(&r->m);
    } else {
        rc = resume(r, &resumed);
        if (!rc && !resumed) {
            rc = s->source ? ds_model_copy(&r->m, s->source) : ds_model_init_as(&r->m, s->init_seed, s->init);
            r->m.epochs = 0;
        }
    }
    if (shared) {
        // The writer takes part even when it failed (state < 0: no weights are sent), so that
        // nobody waits for it; a member without a model to receive into cannot.
        if (rc && !g->writer) return rc;
        int state = rc ? rc : r->tr.epoch;
        g->share_start(g->user, r->m.mem, r->tr.velocity, ds_params_count(), &state);
        if (!rc && state < 0)
            rc = ds_fail(state, "%s: the gang's writer could not start the training", r->out->name);
        if (!rc) {
            resumed = state > 0;
            r->tr.epoch = r->m.epochs = state;
        }
    }
    if (rc) return rc;
    r->m.temperature = r->cfg->temperature;
    r->m.seed = r->cfg->seed;
    r->m.test_accuracy = -1;
    snprintf(r->m.role, sizeof r->m.role, "%s", r->out->role);
    report(r, (ds_train_event){.kind = DS_TRAIN_START, .resumed = resumed, .accuracy = -1});
    return DS_OK;
}

// The gang's decision after epoch r->tr.epoch (its writer's checkpoint saved): DS_OK, or a stop
// or a new segment with this training's message, or the gang's own error as it is.
static int gang_boundary(run *r, int status) {
    const ds_train_gang *g = r->gang;
    int rc = g->at_boundary ? g->at_boundary(g->user, r->tr.epoch, status) : status;
    const char *saved = r->ckpt && r->ckpt->path ? "checkpoint saved" : "no checkpoint";
    if (rc == DS_EREGANG)
        return ds_fail(rc, "%s: segment ended after epoch %d (%s)", r->out->name, r->tr.epoch, saved);
    if (rc == DS_ESTOP) return ds_fail(rc, "%s: stopped after epoch %d (%s)", r->out->name, r->tr.epoch, saved);
    return rc;
}

// After an epoch that is not the last: the checkpoint and the fault point (alone or the writer),
// then the stop request (alone, with a checkpoint) or the gang's decision (every member).
static int checkpoint(run *r) {
    const char *path = r->ckpt ? r->ckpt->path : NULL;
    int rc = DS_OK;
    if (path && writes(r)) {
        rc = ds_store_save_checkpoint(path, &r->m, r->tr.velocity, r->out->prov);
        if (!rc) ds_fault("epoch-end", path);
    }
    if (r->gang) return gang_boundary(r, rc); // a failed save ends every member, not just the writer
    if (rc) return rc;
    if (path && r->stop && *r->stop)
        return ds_fail(DS_ESTOP, "%s: stopped after epoch %d (checkpoint saved)", r->out->name, r->tr.epoch);
    return DS_OK;
}

// Epochs from the trainer's position to cfg->epochs. *evaluated: the last one was evaluated.
static int run_epochs(run *r, int *evaluated) {
    int each = writes(r) && r->progress && r->progress->evaluate_each_epoch;
    *evaluated = 0;
    while (r->tr.epoch < r->cfg->epochs) {
        double t0 = now_s(), loss, acc = -1;
        int rc = ds_trainer_epoch(&r->tr, &r->m, r->train, r->soft, &loss);
        if (rc) return ds_fail_context(rc, r->out->name);
        double secs = now_s() - t0;
        if (each && (rc = ds_evaluate(&r->m, r->test, r->cfg->threads, &acc))) return rc;
        if (each) r->m.test_accuracy = acc;
        *evaluated = each;
        report(r, (ds_train_event){.kind = DS_TRAIN_EPOCH, .loss = loss, .seconds = secs, .accuracy = acc});
        if (r->tr.epoch < r->cfg->epochs && (rc = checkpoint(r))) return rc;
    }
    return DS_OK;
}

// The test accuracy (unless the last epoch measured it), the save, the checkpoint's removal: the
// writer's (a gang's other members are done).
static int finish(run *r, int evaluated) {
    if (!writes(r)) return DS_OK;
    int rc = evaluated ? DS_OK : ds_evaluate(&r->m, r->test, r->cfg->threads, &r->m.test_accuracy);
    if (rc) return rc;
    report(r, (ds_train_event){.kind = DS_TRAIN_EVALUATED, .accuracy = r->m.test_accuracy});
    if ((rc = ds_store_save_model(r->out->path, r->out->group, &r->m, r->out->prov))) return rc;
    report(r, (ds_train_event){.kind = DS_TRAIN_SAVED, .accuracy = r->m.test_accuracy});
    if (r->ckpt && r->ckpt->path) unlink(r->ckpt->path); // the saved model supersedes it
    return DS_OK;
}

int ds_train_run(const ds_train_config *cfg, const ds_dataset *train, const float *soft,
                 const ds_dataset *test, const ds_train_start *start, const ds_train_output *out,
                 const ds_ckpt_policy *ckpt, const volatile int *stop,
                 const ds_train_progress *progress, const ds_train_gang *gang) {
    run r = {.cfg = cfg, .train = train, .test = test, .soft = soft, .out = out, .ckpt = ckpt,
             .stop = stop, .progress = progress, .gang = gang};
    int evaluated = 0;
    int rc = ds_trainer_init(&r.tr, cfg, train->n, gang ? gang->reducer : NULL);
    if (!rc) rc = start_model(&r, start);
    if (!rc) rc = run_epochs(&r, &evaluated);
    if (!rc) rc = finish(&r, evaluated);
    ds_trainer_free(&r.tr);
    ds_model_free(&r.m);
    return rc;
}
