// Running one task of the plan (ds_sweep.h): train, soft labels, or one attack shard.
//
// Each task reads the files of the tasks it depends on, computes, and writes its own output
// atomically. Its result depends only on the job, the data and the task (seeds come from the
// task id), never on the rank or the number of ranks.
#include "ds_sweep.h"

#include "ds_attack.h"
#include "ds_error.h"
#include "ds_fault.h"
#include "ds_nn.h"
#include "ds_store.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ATTACK_BATCH 128 // samples per engine call in the attacks

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void task_path(const ds_worker_ctx *ctx, int task, char *out, size_t cap) {
    ds_plan_task_path(ctx->plan, task, ctx->run_dir, out, cap);
}

static ds_provenance provenance(const ds_worker_ctx *ctx, const ds_task *t) {
    return (ds_provenance){.job_text = ctx->job->text, .code_version = ds_code_version(),
                           .seed = ctx->job->seed, .task = t->id};
}

// Loads the model produced by TRAIN task `task`.
static int load_model(const ds_worker_ctx *ctx, int task, ds_model *m) {
    char path[1024];
    task_path(ctx, task, path, sizeof path);
    return ds_store_load_model(path, ctx->plan->tasks[task].model, m);
}

// ---- Training ----

static int train(const ds_worker_ctx *ctx, const ds_task *t) {
    const ds_job *job = ctx->job;
    char out[1024], ckpt[1024];
    task_path(ctx, t->index, out, sizeof out);
    snprintf(ckpt, sizeof ckpt, "%.*s.ckpt.h5", (int)(strlen(out) - 3), out);
    ds_train_config cfg;
    ds_train_config_default(&cfg);
    cfg.epochs = t->epochs;
    cfg.batch = job->batch;
    cfg.lr = (float)job->lr;
    cfg.lr_decay = (float)job->lr_decay;
    cfg.lr_decay_from = ds_job_lr_decay_from(job, t->epochs);
    cfg.momentum = (float)job->momentum;
    cfg.dropout = (float)job->dropout;
    cfg.temperature = (float)t->temperature;
    cfg.seed = t->seed;
    cfg.threads = ctx->threads;
    int rc = ds_train_config_check(&cfg);
    if (rc) return rc;

    float *soft = NULL;
    if (t->role == DS_ROLE_STUDENT) {
        char sp[1024];
        int rows;
        task_path(ctx, t->model_task, sp, sizeof sp);
        if ((rc = ds_store_load_matrix(sp, "soft_labels", &soft, &rows, DS_CLASSES))) return rc;
        if (rows != ctx->train->n) {
            free(soft);
            return ds_fail(DS_EFORMAT, "%s: %d rows of soft labels for %d training samples", sp,
                           rows, ctx->train->n);
        }
    }
    ds_model m = {0};
    ds_trainer tr = {0};
    if ((rc = ds_trainer_init(&tr, &cfg, ctx->train->n))) goto done;

    // Start: the checkpoint if there is a usable one, else the warm start or a fresh model.
    int resumed = 0;
    if (!access(ckpt, F_OK)) {
        ds_model c;
        if (!ds_store_load_checkpoint(ckpt, &c, tr.velocity)) {
            if (c.seed == t->seed && c.epochs > 0 && c.epochs < t->epochs &&
                c.temperature == (float)t->temperature) {
                m = c;
                tr.epoch = c.epochs;
                resumed = 1;
                printf("[rank %d] %s: resuming from the checkpoint after epoch %d of %d\n",
                       ctx->rank, t->id, c.epochs, t->epochs);
            } else {
                ds_model_free(&c);
            }
        } else {
            printf("[rank %d] %s: ignoring an unreadable checkpoint (%s); starting over\n",
                   ctx->rank, t->id, ds_errmsg());
        }
        fflush(stdout);
        if (!resumed) memset(tr.velocity, 0, sizeof(float) * ds_params_count());
    }
    if (!resumed) {
        if (t->source_task >= 0) rc = load_model(ctx, t->source_task, &m);
        else rc = ds_model_init(&m, t->seed);
        if (rc) goto done;
        m.epochs = 0;
    }
    m.temperature = (float)t->temperature;
    snprintf(m.role, sizeof m.role, "%s", ds_role_name(t->role));
    m.seed = t->seed;
    m.test_accuracy = -1;
    ds_provenance prov = provenance(ctx, t);
    while (tr.epoch < t->epochs) {
        double t0 = now_s(), loss;
        if ((rc = ds_trainer_epoch(&tr, &m, ctx->train, soft, &loss))) {
            ds_fail_context(rc, t->id);
            goto done;
        }
        printf("[rank %d] %s: epoch %d/%d loss %.4f (%.1f s)\n", ctx->rank, t->id, tr.epoch,
               t->epochs, loss, now_s() - t0);
        fflush(stdout);
        if (tr.epoch < t->epochs) {
            if ((rc = ds_store_save_checkpoint(ckpt, &m, tr.velocity, &prov))) goto done;
            ds_fault("epoch-end", ckpt);
            if (*ctx->stop) {
                rc = ds_fail(DS_ESTOP, "%s: stopped after epoch %d (checkpoint saved)", t->id,
                             tr.epoch);
                goto done;
            }
        }
    }
    if ((rc = ds_evaluate(&m, ctx->test, ctx->threads, &m.test_accuracy))) goto done;
    printf("[rank %d] %s: test accuracy %.2f%%\n", ctx->rank, t->id, 100 * m.test_accuracy);
    fflush(stdout);
    if ((rc = ds_store_save_model(out, t->model, &m, &prov))) goto done;
    unlink(ckpt);
done:
    ds_trainer_free(&tr);
    ds_model_free(&m);
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

static int attack(const ds_worker_ctx *ctx, const ds_task *t) {
    const ds_job_attack *a = &ctx->job->attacks[t->attack];
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
        rc = craft(&ct, &a->craft, x, labels, n, t->first, &rec, &nrec, &x_adv, 0);
        if (rc) goto done;
    } else {
        // Craft on the source model, then show the same images to the target.
        if ((rc = load_model(ctx, t->source_task, &source))) goto done;
        if ((rc = ds_classifier_from_model(&cs, &source, ATTACK_BATCH, ctx->threads))) goto done;
        ds_attack_record *src = NULL;
        rc = craft(&cs, &a->craft, x, labels, n, t->first, &src, &nrec, &x_adv, 1);
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
            rc = ds_attack_transfer(&ct, x_rep, x_adv, src, nrec, 0, ds_craft_denormals(&a->craft), out);
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
