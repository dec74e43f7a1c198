// distill_sweep train / eval: one model from the command line, with the same engine, trainer and
// storage as the sweep. Trains a baseline, a teacher (--temperature T), or a distilled student
// (--teacher FILE: soft labels of that teacher at T), checkpointing every epoch.
#include "ds_cli.h"
#include "ds_error.h"
#include "ds_nn.h"
#include "ds_store.h"
#include "ds_train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char train_usage[] =
    "usage: distill_sweep train --out FILE.h5 [options]\n"
    "  --data DIR            IDX folder (default: MNIST via $MNIST_DIR or data/mnist)\n"
    "  --dataset NAME        mnist (default) or fashion-mnist\n"
    "  --train-count N       use the first N training samples (default: all)\n"
    "  --epochs N --batch N --lr X --momentum X --dropout X   (paper: 50 128 0.1 0.5 0.5)\n"
    "  --lr-decay X --lr-decay-from E  lr * X from 0-based epoch E on (default 1: constant lr)\n"
    "  --temperature T       training temperature (default 1)\n"
    "  --teacher FILE[:GROUP]  distil: train on this teacher's soft labels at T (role student)\n"
    "  --init FILE[:GROUP]   start from these weights instead of a fresh initialisation\n"
    "  --init-kind NAME      the fresh initialisation: pytorch (default: PyTorch's default) or\n"
    "                        glorot (Glorot-uniform weights, zero biases: Keras' default)\n"
    "  --role NAME           baseline, teacher or student (default: from T and --teacher)\n"
    "  --group NAME          HDF5 group of the model in FILE (default: the role)\n"
    "  --seed N              initialisation, shuffling and dropout (default 1)\n"
    "  --threads N           engine threads (default 2)\n"
    "  --chunk N             samples per gradient chunk, a multiple of 4 (default 32): fixes the\n"
    "                        summation order, so it is part of the result (any --threads gives\n"
    "                        the same bits for one --chunk; another --chunk, other bits)\n"
    "  --checkpoint FILE     save every epoch; resume from it if it exists\n" DS_CLI_ENGINE_HELP;

typedef struct {
    const char *data, *dataset, *out, *teacher, *init, *role, *group, *checkpoint;
    int train_count;
    ds_init init_kind;   // --init-kind (a fresh initialisation only)
    int init_kind_set;
    ds_train_config cfg;
} train_opts;

static int parse_train(int argc, char **argv, train_opts *o) {
    ds_train_config_default(&o->cfg);
    o->cfg.threads = 2;
    o->dataset = "mnist";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(train_usage, stdout);
            exit(0);
        }
        if (i + 1 >= argc) return ds_fail(DS_EINVAL, "%s: missing value (see --help)", a);
        const char *v = argv[++i];
        double x;
        int rc = DS_OK;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--dataset")) o->dataset = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--teacher")) o->teacher = v;
        else if (!strcmp(a, "--init")) o->init = v;
        else if (!strcmp(a, "--init-kind")) {
            rc = ds_init_parse(v, &o->init_kind);
            if (rc) rc = ds_fail_context(rc, "--init-kind");
            o->init_kind_set = 1;
        }
        else if (!strcmp(a, "--role")) o->role = v;
        else if (!strcmp(a, "--group")) o->group = v;
        else if (!strcmp(a, "--checkpoint")) o->checkpoint = v;
        else if (!strcmp(a, "--train-count")) rc = ds_cli_int(a, v, 1, &o->train_count);
        else if (!strcmp(a, "--epochs")) rc = ds_cli_int(a, v, 0, &o->cfg.epochs);
        else if (!strcmp(a, "--batch")) rc = ds_cli_int(a, v, 1, &o->cfg.batch);
        else if (!strcmp(a, "--threads")) rc = ds_cli_int(a, v, 1, &o->cfg.threads);
        else if (!strcmp(a, "--chunk")) rc = ds_cli_int(a, v, DS_GROUP, &o->cfg.chunk);
        else if (!strcmp(a, "--engine")) rc = ds_cli_engine(a, v);
        else if (!strcmp(a, "--lr")) rc = ds_cli_double(a, v, &x), o->cfg.lr = (float)x;
        else if (!strcmp(a, "--lr-decay")) rc = ds_cli_double(a, v, &x), o->cfg.lr_decay = (float)x;
        else if (!strcmp(a, "--lr-decay-from")) rc = ds_cli_int(a, v, 0, &o->cfg.lr_decay_from);
        else if (!strcmp(a, "--momentum")) rc = ds_cli_double(a, v, &x), o->cfg.momentum = (float)x;
        else if (!strcmp(a, "--dropout")) rc = ds_cli_double(a, v, &x), o->cfg.dropout = (float)x;
        else if (!strcmp(a, "--temperature")) rc = ds_cli_double(a, v, &x), o->cfg.temperature = (float)x;
        else if (!strcmp(a, "--seed")) {
            int s;
            rc = ds_cli_int(a, v, 0, &s);
            o->cfg.seed = (uint64_t)s;
        } else return ds_fail(DS_EINVAL, "%s: unknown option (see --help)", a);
        if (rc) return rc;
    }
    if (!o->out) return ds_fail(DS_EINVAL, "--out FILE.h5 is required (see --help)");
    if (o->init && o->init_kind_set)
        return ds_fail(DS_EINVAL, "--init-kind chooses a fresh initialisation; --init FILE starts from weights");
    if (!o->role) o->role = o->teacher ? "student" : o->cfg.temperature != 1.0f ? "teacher" : "baseline";
    if (strcmp(o->role, "baseline") && strcmp(o->role, "teacher") && strcmp(o->role, "student") &&
        strcmp(o->role, "warmstart"))
        return ds_fail(DS_EINVAL, "--role '%s': expected baseline, teacher, student or warmstart", o->role);
    if (!strcmp(o->role, "student") && !o->teacher)
        return ds_fail(DS_EINVAL, "--role student needs --teacher FILE[:GROUP]");
    if (!o->group) o->group = o->role;
    return ds_train_config_check(&o->cfg);
}

// Loads train (unless tr is NULL) and test sets of the named dataset from dir (or where
// ds_data_locate finds it).
static int load_data(const char *name, const char *dir, int train_count, ds_dataset *tr, ds_dataset *te) {
    char found[1024];
    int rc = ds_data_locate(name, dir, found, sizeof found);
    if (!rc && tr) rc = ds_dataset_load(tr, found, "train");
    if (!rc) rc = ds_dataset_load(te, found, "t10k");
    if (!rc && train_count) rc = ds_dataset_slice(tr, 0, train_count);
    return rc;
}

typedef struct {
    const train_opts *o;
    const char *init; // --init resolved to FILE:GROUP
    int n;            // training samples
} train_progress;

// The command's lines (tests grep them).
static void print_progress(void *user, const ds_train_event *e) {
    const train_progress *p = user;
    const train_opts *o = p->o;
    const ds_train_config *c = &o->cfg;
    if (e->kind == DS_TRAIN_START) {
        if (e->resumed) printf("resuming from %s after epoch %d\n", o->checkpoint, e->epoch);
        else if (o->init) printf("starting from %s\n", p->init);
        else if (o->init_kind != DS_INIT_PYTORCH) printf("initialisation %s\n", ds_init_name(o->init_kind));
        printf("training %s at T=%g on %d samples: %d epochs, batch %d, lr %g, momentum %g, dropout %g, seed %llu, %d threads\n",
               o->role, c->temperature, p->n, c->epochs, c->batch, c->lr, c->momentum, c->dropout,
               (unsigned long long)c->seed, c->threads);
        if (c->lr_decay != 1.0f)
            printf("learning rate %g from epoch %d on\n", ds_train_lr(c, c->lr_decay_from), c->lr_decay_from + 1);
    } else if (e->kind == DS_TRAIN_EPOCH) {
        printf("epoch %d/%d  loss %.4f  test %.2f%%  %.1f s  %.0f samples/s\n", e->epoch, e->epochs, e->loss,
               100.0 * e->accuracy, e->seconds, p->n / e->seconds);
    } else if (e->kind == DS_TRAIN_SAVED) {
        printf("saved %s:%s  test accuracy %.2f%%\n", o->out, o->group, 100.0 * e->accuracy);
    } else {
        return;
    }
    fflush(stdout);
}

// The teacher's soft labels at the training temperature, as in the paper (*soft malloc'ed).
static int teacher_soft_labels(const train_opts *o, const ds_dataset *tr, float **soft) {
    ds_model teacher = {0};
    char resolved[1024];
    int rc = ds_cli_load_model(o->teacher, &teacher, resolved, sizeof resolved);
    *soft = rc ? NULL : malloc((size_t)tr->n * DS_CLASSES * sizeof(float));
    if (!rc && !*soft) rc = ds_fail(DS_ENOMEM, "soft labels: out of memory");
    if (!rc) rc = ds_soft_labels(&teacher, tr, o->cfg.temperature, o->cfg.threads, *soft);
    if (!rc) printf("soft labels from %s at T=%g\n", resolved, o->cfg.temperature);
    ds_model_free(&teacher);
    return rc;
}

// ds_train_run with the command's start, output and lines; a damaged --checkpoint is an error.
static int train(const train_opts *o) {
    ds_dataset tr = {0}, te = {0};
    ds_model init = {0};
    float *soft = NULL;
    char resolved[1024], name[1100];
    int rc = load_data(o->dataset, o->data, o->train_count, &tr, &te);
    if (!rc && o->teacher) rc = teacher_soft_labels(o, &tr, &soft);
    if (!rc && o->init) rc = ds_cli_load_model(o->init, &init, resolved, sizeof resolved);
    if (!rc) {
        ds_provenance prov = {.job_text = "", .code_version = ds_code_version(), .seed = o->cfg.seed, .task = o->group};
        ds_train_start start = {.source = o->init ? &init : NULL, .init_seed = o->cfg.seed,
                                 .init = o->init_kind};
        snprintf(name, sizeof name, "%s:%s", o->out, o->group); // "out.h5:baseline: training diverged: ..."
        ds_train_output out = {.path = o->out, .group = o->group, .role = o->role, .name = name, .prov = &prov};
        ds_ckpt_policy policy = {.path = o->checkpoint, .damaged = DS_CKPT_DAMAGED_FAILS};
        train_progress tp = {o, resolved, tr.n};
        ds_train_progress progress = {.fn = print_progress, .user = &tp, .evaluate_each_epoch = 1};
        rc = ds_train_run(&o->cfg, &tr, soft, &te, &start, &out, &policy, NULL, &progress, NULL);
    }
    ds_model_free(&init);
    free(soft);
    ds_dataset_free(&tr);
    ds_dataset_free(&te);
    return rc;
}

int ds_cmd_train(int argc, char **argv) {
    train_opts o = {0};
    int rc = parse_train(argc, argv, &o);
    if (!rc) rc = train(&o);
    if (rc) fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
    return rc ? 1 : 0;
}

static const char eval_usage[] =
    "usage: distill_sweep eval --model FILE[:GROUP] [options]\n"
    "prints the model's accuracy on the test set\n"
    "  --data DIR --dataset NAME   as for train (default: MNIST via $MNIST_DIR or data/mnist)\n"
    "  --first N --count N   test samples [N, N+count) (default: all)\n"
    "  --logits FILE.csv     also write their logits: index,label,z0,...,z9 (%.9g, exact floats)\n"
    "  --temperature T       the temperature of a model without our attributes (role external,\n"
    "                        e.g. exported from PyTorch; default 1)\n"
    "  --threads N           engine threads (default 2)\n" DS_CLI_ENGINE_HELP;

typedef struct {
    const char *model, *data, *dataset, *logits;
    int threads, first, count;
    double temperature;
} eval_opts;

static int parse_eval(int argc, char **argv, eval_opts *o, int *help) {
    *o = (eval_opts){.dataset = "mnist", .threads = 2, .count = -1};
    *help = 0;
    int rc = DS_OK;
    for (int i = 1; !rc && i < argc; i++) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return DS_OK;
        }
        if (i + 1 >= argc) return ds_fail(DS_EINVAL, "%s: missing value (see --help)", a);
        i++;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--dataset")) o->dataset = v;
        else if (!strcmp(a, "--logits")) o->logits = v;
        else if (!strcmp(a, "--threads")) rc = ds_cli_int(a, v, 1, &o->threads);
        else if (!strcmp(a, "--first")) rc = ds_cli_int(a, v, 0, &o->first);
        else if (!strcmp(a, "--count")) rc = ds_cli_int(a, v, 1, &o->count);
        else if (!strcmp(a, "--temperature")) rc = ds_cli_double(a, v, &o->temperature);
        else if (!strcmp(a, "--engine")) rc = ds_cli_engine(a, v);
        else rc = ds_fail(DS_EINVAL, "%s: unknown option (see --help)", a);
    }
    if (!rc && !o->model) rc = ds_fail(DS_EINVAL, "--model FILE[:GROUP] is required (see --help)");
    if (!rc && o->temperature < 0) rc = ds_fail(DS_EINVAL, "--temperature %g must be > 0", o->temperature);
    return rc;
}

// The logits of every sample of te as CSV rows "index,label,z0,...,z9", index = first + row.
static int write_logits(const char *path, const ds_model *m, const ds_dataset *te, int first,
                        int threads) {
    float *z = malloc(sizeof(float) * (size_t)te->n * DS_CLASSES);
    if (!z) return ds_fail(DS_ENOMEM, "logits: out of memory for %d samples", te->n);
    int rc = ds_logits(m, te, 0, te->n, threads, z);
    FILE *f = rc ? NULL : fopen(path, "w");
    if (!rc && !f) rc = ds_fail(DS_EIO, "%s: cannot write: %s", path, strerror(errno));
    for (int i = 0; f && i < te->n; i++) {
        fprintf(f, "%d,%d", first + i, te->labels[i]);
        for (int k = 0; k < DS_CLASSES; k++) fprintf(f, ",%.9g", (double)z[(size_t)i * DS_CLASSES + k]);
        fputc('\n', f);
    }
    if (f && (ferror(f) | fclose(f))) rc = ds_fail(DS_EIO, "%s: write failed", path);
    free(z);
    return rc;
}

int ds_cmd_eval(int argc, char **argv) {
    eval_opts o;
    int help, rc = parse_eval(argc, argv, &o, &help);
    if (help) {
        fputs(eval_usage, stdout);
        return 0;
    }
    ds_model m = {0};
    ds_dataset te = {0};
    char resolved[1024];
    double acc;
    if (!rc) rc = ds_cli_load_model(o.model, &m, resolved, sizeof resolved);
    if (!rc) ds_cli_external_temperature(&m, o.temperature);
    if (!rc) rc = load_data(o.dataset, o.data, 0, NULL, &te);
    if (!rc && (o.first || o.count > 0))
        rc = ds_dataset_slice(&te, o.first, o.count > 0 ? o.count : te.n - o.first);
    if (!rc) rc = ds_evaluate(&m, &te, o.threads, &acc);
    if (!rc)
        printf("%s: %s at T=%g, %d epochs: test accuracy %.2f%% (%d samples)\n", resolved, m.role,
               m.temperature, m.epochs, 100.0 * acc, te.n);
    if (!rc && o.logits) rc = write_logits(o.logits, &m, &te, o.first, o.threads);
    if (!rc && o.logits) printf("wrote the logits of %d samples to %s\n", te.n, o.logits);
    ds_model_free(&m);
    ds_dataset_free(&te);
    if (rc) fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
    return rc ? 1 : 0;
}
