// Running one task of the plan (ds_sweep.h): train, soft labels, or one attack shard.
//
// Each task reads the files of the tasks it depends on, computes, and writes its own output
// atomically. Its result depends only on the job, the data and the task (seeds come from the
// task id), never on the rank or the number of ranks.
#include "ds_sweep.h"

#include "ds_attack.h"
#include "ds_error.h"
#include "ds_filecrc.h"
#include "ds_nn.h"
#include "ds_store.h"
#include "ds_train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ATTACK_BATCH 128 // samples per engine call in the attacks

static void task_path(const ds_worker_ctx *ctx, int task, char *out, size_t cap) {
    ds_plan_task_path(ctx->plan, task, ctx->run_dir, out, cap);
}

// The seed in a task file's provenance is its replicate's ([run] seeds).
static ds_provenance provenance(const ds_worker_ctx *ctx, const ds_task *t) {
    return (ds_provenance){.job_text = ctx->job->text, .code_version = ds_code_version(),
                           .seed = ctx->job->seeds[t->rep], .task = t->id};
}

// Loads the model produced by TRAIN task `task`.
static int load_model(const ds_worker_ctx *ctx, int task, ds_model *m) {
    char path[1024];
    task_path(ctx, task, path, sizeof path);
    return ds_store_load_model(path, ctx->plan->tasks[task].model, m);
}

// ---- Training ----

// The task's training settings, from the job.
static int train_config(const ds_worker_ctx *ctx, const ds_task *t, ds_train_config *cfg) {
    const ds_job *job = ctx->job;
    ds_train_config_default(cfg);
    cfg->epochs = t->epochs;
    cfg->batch = job->batch;
    cfg->chunk = job->chunk;
    cfg->lr = (float)job->lr;
    cfg->lr_decay = (float)job->lr_decay;
    cfg->lr_decay_from = ds_job_lr_decay_from(job, t->epochs);
    cfg->momentum = (float)job->momentum;
    cfg->dropout = (float)job->dropout;
    cfg->temperature = (float)t->temperature;
    cfg->seed = t->seed;
    cfg->threads = ctx->threads;
    return ds_train_config_check(cfg);
}

// The student's soft labels (*soft malloc'ed), from the task that computed them.
static int load_soft(const ds_worker_ctx *ctx, const ds_task *t, float **soft) {
    char sp[1024];
    int rows;
    task_path(ctx, t->model_task, sp, sizeof sp);
    int rc = ds_store_load_matrix(sp, "soft_labels", soft, &rows, DS_CLASSES);
    if (!rc && rows != ctx->train->n) {
        free(*soft);
        *soft = NULL;
        rc = ds_fail(DS_EFORMAT, "%s: %d rows of soft labels for %d training samples", sp, rows,
                     ctx->train->n);
    }
    return rc;
}

typedef struct {
    const ds_worker_ctx *ctx;
    const ds_task *t;
} train_progress;

// The task's lines in the sweep's log (tests grep them): printed by the gang's writer only.
static void print_progress(void *user, const ds_train_event *e) {
    const train_progress *p = user;
    ds_task_report *r = p->ctx->report;
    if (r && e->kind == DS_TRAIN_START) *r = (ds_task_report){e->epoch, e->epoch, e->epochs};
    if (r && e->kind == DS_TRAIN_EPOCH) r->epoch1 = e->epoch;
    if (p->ctx->gang && !p->ctx->gang->writer) return;
    int rank = p->ctx->rank;
    const char *id = p->t->id;
    if (e->kind == DS_TRAIN_DAMAGED)
        printf("[rank %d] %s: ignoring an unreadable checkpoint (%s); starting over\n", rank, id, e->message);
    else if (e->kind == DS_TRAIN_START && e->resumed)
        printf("[rank %d] %s: resuming from the checkpoint after epoch %d of %d\n", rank, id, e->epoch, e->epochs);
    else if (e->kind == DS_TRAIN_EPOCH)
        printf("[rank %d] %s: epoch %d/%d loss %.4f (%.1f s)\n", rank, id, e->epoch, e->epochs, e->loss, e->seconds);
    else if (e->kind == DS_TRAIN_EVALUATED)
        printf("[rank %d] %s: test accuracy %.2f%%\n", rank, id, 100 * e->accuracy);
    else return;
    fflush(stdout);
}

// Trains the task's model (ds_train_run) from its checkpoint <out>.ckpt.h5 if it has one, else
// from its warm start or a fresh initialisation; an unreadable checkpoint is redone.
static int train(const ds_worker_ctx *ctx, const ds_task *t) {
    char out[1024], ckpt[1024];
    task_path(ctx, t->index, out, sizeof out);
    snprintf(ckpt, sizeof ckpt, "%.*s.ckpt.h5", (int)(strlen(out) - 3), out);
    ds_train_config cfg;
    float *soft = NULL;
    ds_model source = {0};
    int rc = train_config(ctx, t, &cfg);
    if (!rc && t->role == DS_ROLE_STUDENT) rc = load_soft(ctx, t, &soft);
    if (!rc && t->source_task >= 0) rc = load_model(ctx, t->source_task, &source);
    if (!rc) {
        ds_provenance prov = provenance(ctx, t);
        ds_train_start start = {.source = t->source_task >= 0 ? &source : NULL, .init_seed = t->seed,
                                 .init = ctx->job->init};
        ds_train_output o = {.path = out, .group = t->model, .role = ds_role_name(t->role),
                             .name = t->id, .prov = &prov};
        ds_ckpt_policy policy = {.path = ckpt, .damaged = DS_CKPT_DAMAGED_RESTARTS};
        train_progress tp = {ctx, t};
        ds_train_progress progress = {.fn = print_progress, .user = &tp};
        rc = ds_train_run(&cfg, ctx->train, soft, ctx->test, &start, &o, &policy, ctx->stop, &progress, ctx->gang);
    }
    ds_model_free(&source);
    free(soft);
    return rc;
}

static int soft_labels(const ds_worker_ctx *ctx, const ds_task *t) {
    ds_model m;
    int rc = load_model(ctx, t->model_task, &m);
    if (rc) return rc;
    float *s = malloc(sizeof(float) * DS_CLASSES * (size_t)ctx->train->n);
    if (!s) {
        ds_model_free(&m);
        return ds_fail(DS_ENOMEM, "%s: out of memory", t->id);
    }
    rc = ds_soft_labels(&m, ctx->train, (float)t->temperature, ctx->threads, s);
    if (!rc) {
        char out[1024];
        task_path(ctx, t->index, out, sizeof out);
        ds_provenance prov = provenance(ctx, t);
        rc = ds_store_save_matrix(out, "soft_labels", s, ctx->train->n, DS_CLASSES, &prov);
    }
    free(s);
    ds_model_free(&m);
    return rc;
}

// ---- Attacks ----

// Crafts with settings cp on classifier c: *rec (and *x_adv if want_images) malloc'ed.
static int craft(const ds_classifier *c, const ds_craft *cp, const float *x, const uint8_t *labels,
                 int n, int first, ds_attack_record **rec, int *nrec, float **x_adv,
                 int want_images) {
    int rc = ds_craft_check(cp);
    if (rc) return rc;
    int count = ds_craft_count(c, cp, n);
    *nrec = count;
    *rec = calloc((size_t)count, sizeof **rec);
    *x_adv = want_images ? malloc(sizeof(float) * DS_PIXELS * (size_t)count) : NULL;
    if (!*rec || (want_images && !*x_adv)) return ds_fail(DS_ENOMEM, "attack: out of memory");
    return ds_craft_run(c, cp, x, labels, n, first, *rec, *x_adv);
}

// The attack's settings for this task: the job's, with the seed of the random starts (PGD,
// Square, also when they craft a transfer) from the plan.
static ds_craft task_craft(const ds_worker_ctx *ctx, const ds_task *t) {
    ds_craft c = ctx->job->attacks[t->attack].craft;
    if (c.kind == DS_KIND_PGD) c.pgd.seed = ds_plan_attack_seed(ctx->plan, t);
    if (c.kind == DS_KIND_SQUARE) c.square.seed = ds_plan_attack_seed(ctx->plan, t);
    return c;
}

static int attack(const ds_worker_ctx *ctx, const ds_task *t) {
    const ds_job_attack *a = &ctx->job->attacks[t->attack];
    const ds_craft cp = task_craft(ctx, t);
    const int n = t->count;
    ds_model target = {0}, source = {0};
    ds_classifier ct = {0}, cs = {0};
    ds_attack_record *rec = NULL, *out = NULL;
    float *x = NULL, *x_adv = NULL, *x_rep = NULL;
    int nrec = 0, rc;
    if ((rc = load_model(ctx, t->model_task, &target))) goto done;
    if ((rc = ds_classifier_from_model(&ct, &target, ATTACK_BATCH, ctx->threads))) goto done;
    x = malloc(sizeof(float) * DS_PIXELS * (size_t)n);
    if (!x) {
        rc = ds_fail(DS_ENOMEM, "%s: out of memory", t->id);
        goto done;
    }
    ds_range_pixels(x, ctx->test, t->first, n);
    const uint8_t *labels = ctx->test->labels + t->first;
    if (a->kind != DS_KIND_TRANSFER) {
        rc = craft(&ct, &cp, x, labels, n, t->first, &rec, &nrec, &x_adv, 0);
        if (rc) goto done;
    } else {
        // Craft on the source model, then show the same images to the target.
        if ((rc = load_model(ctx, t->source_task, &source))) goto done;
        if ((rc = ds_classifier_from_model(&cs, &source, ATTACK_BATCH, ctx->threads))) goto done;
        ds_attack_record *src = NULL;
        rc = craft(&cs, &cp, x, labels, n, t->first, &src, &nrec, &x_adv, 1);
        if (!rc) {
            out = calloc((size_t)nrec, sizeof *out);
            x_rep = malloc(sizeof(float) * DS_PIXELS * (size_t)nrec);
            if (!out || !x_rep) rc = ds_fail(DS_ENOMEM, "%s: out of memory", t->id);
        }
        if (!rc) {
            // The clean image of every record (JSMA and targeted C&W have several per sample).
            for (int i = 0; i < nrec; i++)
                memcpy(x_rep + (size_t)i * DS_PIXELS,
                       x + (size_t)(src[i].index - t->first) * DS_PIXELS, sizeof(float) * DS_PIXELS);
            rc = ds_attack_transfer(&ct, x_rep, x_adv, src, nrec, 0, ds_craft_denormals(&cp), out);
        }
        free(src);
        rec = out;
        out = NULL;
        if (rc) goto done;
    }
    char path[1024], model[1024];
    task_path(ctx, t->index, path, sizeof path);
    snprintf(model, sizeof model, "%.900s:%.100s", ctx->plan->tasks[t->model_task].file, t->model);
    ds_attack_set set = {.first = t->first, .count = n, .n_records = nrec, .records = rec};
    snprintf(set.group, sizeof set.group, "%s", a->name);
    snprintf(set.attack, sizeof set.attack, "%s", ds_attack_kind_name(a->kind));
    snprintf(set.params, sizeof set.params, "%s", a->params);
    snprintf(set.model, sizeof set.model, "%s", model);
    ds_provenance prov = provenance(ctx, t);
    rc = ds_attack_results_save(path, &set, 1, &prov);
done:
    if (rc && rc != DS_ENOSPC) ds_fail_context(rc, t->id);
    ds_classifier_free(&ct);
    ds_classifier_free(&cs);
    ds_model_free(&target);
    ds_model_free(&source);
    free(rec);
    free(out);
    free(x);
    free(x_adv);
    free(x_rep);
    return rc;
}

int ds_task_execute(const ds_worker_ctx *ctx, int task, uint64_t *bytes, uint32_t *crc) {
    const ds_task *t = &ctx->plan->tasks[task];
    int rc;
    switch (t->kind) {
    case DS_TASK_TRAIN: rc = train(ctx, t); break;
    case DS_TASK_SOFT: rc = soft_labels(ctx, t); break;
    case DS_TASK_ATTACK: rc = attack(ctx, t); break;
    default: return ds_fail(DS_EINVAL, "%s: not a worker task", t->id);
    }
    if (rc) return rc;
    char path[1024];
    task_path(ctx, task, path, sizeof path);
    return ds_file_crc32(path, bytes, crc);
}
