// distill_sweep attack: runs one attack on a saved model over a range of test samples, prints the
// success rates and optionally writes the per-attempt records (and adversarial images) to HDF5.
#include "ds_attack.h"
#include "ds_cli.h"
#include "ds_data.h"
#include "ds_error.h"
#include "ds_h5.h"
#include "ds_store.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static void usage(FILE *f) {
    fprintf(f,
        "usage: distill_sweep attack --model FILE.h5[:GROUP] --attack fgsm|jsma|cw-l2|pgd|square|\n"
        "       transfer [options]\n"
        "  --model FILE.h5[:GROUP]  the attacked model (transfer: the model evaluated); GROUP defaults\n"
        "                           to the first model group in the file, else \"model\"\n"
        "  --data DIR               MNIST folder (default: $MNIST_DIR, then data/mnist)\n"
        "  --first N --count N      test samples [N, N+count) (default 0 and: fgsm all, jsma and\n"
        "                           cw-l2 100, pgd 1000, square 100)\n"
        "  --out FILE.h5            write per-attempt records, parameters and adversarial images\n"
        "  --no-images              do not store adversarial images in --out\n"
        "  --threads N              engine threads (default 2); --batch N samples per call (64)\n"
        "  --engine onednn|gemm     how convolutions are computed (default onednn; gemm: the engine\n"
        "                           of runs made before onednn; the two round differently)\n"
        "fgsm:   --eps 0.3[,0.1,...] --space softmax|logits|logits_T --labels true|predicted\n"
        "jsma:   --gamma 0.145 --theta 1 --space softmax|logits|logits_T --iterations N\n"
        "        (default floor(784*gamma/2) = 56)\n"
        "cw-l2:  --targets all|none --steps 6 --iterations 200 --c0 0.01 --lr 0.1 --kappa 0\n"
        "        --no-abort-early   (MNIST's 0 and 1 pixels start deep in tanh's saturation: at\n"
        "        Carlini's lr 0.01 they need ~1000 iterations to move; 0.1 succeeds in 200)\n"
        "pgd:    --eps 0.3[,0.1,...] --norm linf|l2 --step 0.01 --steps 100 --restarts 1\n"
        "        --no-random-start --loss ce|margin --space softmax|logits|logits_T\n"
        "        --labels true|predicted --seed 1 (of the random starts)\n"
        "        (MadryLab/mnist_challenge's defaults; one result set per eps)\n"
        "square: --eps 0.3[,0.1,...] --queries 1000 --p-init 0.8 --space logits|softmax|logits_T\n"
        "        --labels true|predicted --seed 1   (gradient-free: only the outputs of --space;\n"
        "        queries = forward passes per sample, the initial one included; the paper used\n"
        "        10,000 on MNIST)\n"
        "transfer: --source FILE.h5[:GROUP] (attack results with images, crafted on another model)\n"
        "        --untargeted (success = misclassified, also for targeted sources)\n"
        "space logits_T divides the logits by the model's training temperature (--temperature T\n"
        "overrides it; for a model without our attributes, role external, it is its temperature,\n"
        "default 1).\n"
        "rounding of the attack's gradients (README, Definitions):\n"
        "  --denormals keep|flush   float32 denormals kept (default) or flushed to zero (FTZ/DAZ)\n"
        "  --gradient stable|framework  dL/dz_y as -sum of the other p_j (default) or p_y - 1\n"
        "  --precision float32|float64  the softmax and its derivatives in float32 (default) or\n"
        "                           in double, scaled into float32 range by a power of two\n");
}

typedef struct {
    const char *model, *attack, *data, *out, *eps, *space, *labels, *targets, *source;
    const char *denormals, *gradient, *precision, *norm, *loss;
    int first, count, threads, batch, iterations, steps, no_images, no_abort, untargeted;
    int restarts, no_random_start, seed;
    int queries;        // square
    double p_init;
    double gamma, theta, c0, lr, kappa, temperature, step;
} options;

static int fail(const char *msg) {
    fprintf(stderr, "distill_sweep: %s\n", msg);
    return 1;
}

static int parse_options(int argc, char **argv, options *o, int *help) {
    memset(o, 0, sizeof *o);
    o->count = -1;
    o->threads = 2;
    o->batch = 64;
    o->gamma = 0.145;
    o->theta = 1.0;
    ds_cw_params cw; // the library's defaults, in one place
    ds_cw_params_default(&cw);
    o->c0 = cw.c0;
    o->lr = cw.lr;
    o->iterations = -1;
    o->steps = -1; // the attack's default: C&W's 6 search steps, PGD's 100 steps
    o->restarts = 1;
    o->seed = 1;
    o->step = NAN; // unset: the attack's default
    ds_square_params sq;
    ds_square_params_default(&sq);
    o->queries = sq.queries;
    o->p_init = sq.p_init;
    *help = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return DS_OK;
        }
        if (!strcmp(a, "--no-images")) { o->no_images = 1; continue; }
        if (!strcmp(a, "--no-abort-early")) { o->no_abort = 1; continue; }
        if (!strcmp(a, "--untargeted")) { o->untargeted = 1; continue; }
        if (!strcmp(a, "--no-random-start")) { o->no_random_start = 1; continue; }
        if (strncmp(a, "--", 2) || i + 1 >= argc)
            return ds_fail(DS_EINVAL, "%s: unknown option or missing value (see --help)", a);
        const char *v = argv[++i];
        int rc = DS_OK;
        if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--attack")) o->attack = v;
        else if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--eps")) o->eps = v;
        else if (!strcmp(a, "--space")) o->space = v;
        else if (!strcmp(a, "--labels")) o->labels = v;
        else if (!strcmp(a, "--targets")) o->targets = v;
        else if (!strcmp(a, "--source")) o->source = v;
        else if (!strcmp(a, "--denormals")) o->denormals = v;
        else if (!strcmp(a, "--gradient")) o->gradient = v;
        else if (!strcmp(a, "--precision")) o->precision = v;
        else if (!strcmp(a, "--norm")) o->norm = v;
        else if (!strcmp(a, "--loss")) o->loss = v;
        else if (!strcmp(a, "--step")) rc = ds_cli_double(a, v, &o->step);
        else if (!strcmp(a, "--restarts")) rc = ds_cli_int(a, v, 1, &o->restarts);
        else if (!strcmp(a, "--seed")) rc = ds_cli_int(a, v, 0, &o->seed);
        else if (!strcmp(a, "--first")) rc = ds_cli_int(a, v, 0, &o->first);
        else if (!strcmp(a, "--count")) rc = ds_cli_int(a, v, 1, &o->count);
        else if (!strcmp(a, "--threads")) rc = ds_cli_int(a, v, 1, &o->threads);
        else if (!strcmp(a, "--engine")) rc = ds_cli_engine(a, v);
        else if (!strcmp(a, "--batch")) rc = ds_cli_int(a, v, 1, &o->batch);
        else if (!strcmp(a, "--iterations")) rc = ds_cli_int(a, v, 1, &o->iterations);
        else if (!strcmp(a, "--steps")) rc = ds_cli_int(a, v, 1, &o->steps);
        else if (!strcmp(a, "--gamma")) rc = ds_cli_double(a, v, &o->gamma);
        else if (!strcmp(a, "--theta")) rc = ds_cli_double(a, v, &o->theta);
        else if (!strcmp(a, "--c0")) rc = ds_cli_double(a, v, &o->c0);
        else if (!strcmp(a, "--lr")) rc = ds_cli_double(a, v, &o->lr);
        else if (!strcmp(a, "--kappa")) rc = ds_cli_double(a, v, &o->kappa);
        else if (!strcmp(a, "--temperature")) rc = ds_cli_double(a, v, &o->temperature);
        else if (!strcmp(a, "--queries")) rc = ds_cli_int(a, v, 1, &o->queries);
        else if (!strcmp(a, "--p-init")) rc = ds_cli_double(a, v, &o->p_init);
        else return ds_fail(DS_EINVAL, "%s: unknown option (see --help)", a);
        if (rc) return rc;
    }
    if (!o->model) return ds_fail(DS_EINVAL, "--model FILE.h5[:GROUP] is required");
    if (!o->attack) return ds_fail(DS_EINVAL, "--attack fgsm|jsma|cw-l2|pgd|square|transfer is required");
    if (strcmp(o->attack, "fgsm") && strcmp(o->attack, "jsma") && strcmp(o->attack, "cw-l2") &&
        strcmp(o->attack, "transfer") && strcmp(o->attack, "pgd") && strcmp(o->attack, "square"))
        return ds_fail(DS_EINVAL, "unknown attack '%s' (expected fgsm, jsma, cw-l2, pgd, square or "
                       "transfer)", o->attack);
    if (!strcmp(o->attack, "transfer") && !o->source)
        return ds_fail(DS_EINVAL, "transfer needs --source FILE.h5[:GROUP] (attack results with images)");
    if (o->temperature < 0) return ds_fail(DS_EINVAL, "--temperature %g must be > 0", o->temperature);
    return DS_OK;
}

static void print_rates(const char *what, const ds_attack_record *r, int n, int n_in) {
    ds_attack_rates a;
    ds_attack_rates_compute(r, n, &a);
    printf("%s: success %.2f%% of %d attempts (%d), %.2f%% of the %d whose clean prediction was "
           "right; zero gradient %.2f%%; mean over successes: L0 %.1f (%.2f%% of pixels), L2 %.3f, "
           "Linf %.3f, iterations %.1f (all attempts)\n",
           what, 100.0 * a.success_rate, a.attempts, a.successes, 100.0 * a.success_rate_correct,
           a.correct, 100.0 * a.zero_grad_share, a.mean_l0, 100.0 * a.mean_l0 / n_in, a.mean_l2,
           a.mean_linf, a.mean_iterations);
}

// --denormals, --gradient, --precision into n (the library's defaults where not given).
static int parse_numerics(const options *o, ds_numerics *n) {
    int rc = DS_OK;
    if (o->denormals && (rc = ds_denormals_parse(o->denormals, &n->denormals))) return rc;
    if (o->gradient && (rc = ds_gradient_parse(o->gradient, &n->gradient))) return rc;
    if (o->precision && (rc = ds_precision_parse(o->precision, &n->precision))) return rc;
    return rc;
}

// --eps 0.05,0.1,0.3 into eps[DS_FGSM_MAX_EPS] (FGSM's and PGD's lists); the attack checks
// the values.
static int parse_eps_list(const char *s, float *eps, int *n_eps) {
    *n_eps = 0;
    const char *c = s;
    while (*c) {
        if (*n_eps == DS_FGSM_MAX_EPS)
            return ds_fail(DS_EINVAL, "--eps: more than %d values", DS_FGSM_MAX_EPS);
        char *end;
        errno = 0;
        double v = strtod(c, &end);
        if (errno || end == c || (*end && *end != ','))
            return ds_fail(DS_EINVAL, "--eps: '%s' is not a comma-separated list of numbers", s);
        eps[(*n_eps)++] = (float)v;
        c = *end ? end + 1 : end;
    }
    return *n_eps ? DS_OK : ds_fail(DS_EINVAL, "--eps: empty list");
}

typedef struct {
    options o;
    ds_dataset test;
    ds_model model;
    ds_classifier cls;
    char model_spec[1024];
    float *x;             // clean inputs of the attacked range
    ds_attack_set *sets;
    int n_sets;
} run_state;

// Adds a result set (records and images are taken over).
static int add_set(run_state *s, const char *group, const char *attack, const char *params,
                   int first, int count, ds_attack_record *rec, int n, float *images) {
    ds_attack_set *grown = realloc(s->sets, sizeof *grown * (s->n_sets + 1));
    if (!grown) return ds_fail(DS_ENOMEM, "out of memory");
    s->sets = grown;
    ds_attack_set *t = &s->sets[s->n_sets++];
    memset(t, 0, sizeof *t);
    snprintf(t->group, sizeof t->group, "%s", group);
    snprintf(t->attack, sizeof t->attack, "%s", attack);
    snprintf(t->params, sizeof t->params, "%s", params);
    snprintf(t->model, sizeof t->model, "%s", s->model_spec);
    t->first = first;
    t->count = count;
    t->records = rec;
    t->n_records = n;
    t->images = images;
    t->n_in = images ? DS_PIXELS : 0;
    return DS_OK;
}

// Runs an FGSM or PGD configuration and adds one result set per eps ("fgsm/eps=0.3"), each
// named by its one-eps settings string.
static int run_eps_attack(run_state *s, const ds_craft *cr) {
    const options *o = &s->o;
    const char *name = ds_attack_kind_name(cr->kind);
    int rc = ds_craft_check(cr);
    if (rc) return rc;
    int n = o->count, total = ds_craft_count(&s->cls, cr, n);
    ds_attack_record *rec = malloc(sizeof *rec * total);
    float *img = o->out && !o->no_images ? malloc(sizeof(float) * (size_t)total * DS_PIXELS) : NULL;
    if (!rec || (o->out && !o->no_images && !img)) {
        free(rec);
        free(img);
        return ds_fail(DS_ENOMEM, "%s: out of memory for %d records", name, total);
    }
    rc = ds_craft_run(&s->cls, cr, s->x, s->test.labels + o->first, n, o->first, rec, img);
    const float *eps;
    int count = ds_craft_eps(cr, &eps);
    for (int e = 0; e < count && !rc; e++) {
        ds_craft one = *cr;
        ds_craft_select_eps(&one, e);
        char params[256], group[64], what[300];
        ds_craft_string(&one, DS_PIXELS, params, sizeof params);
        snprintf(group, sizeof group, "%s/eps=%g", name, (double)eps[e]);
        // FGSM's lines as they always were; others behind the attack's name.
        snprintf(what, sizeof what, "%s%s%s", cr->kind == DS_KIND_FGSM ? "" : name,
                 cr->kind == DS_KIND_FGSM ? "" : " ", params);
        print_rates(what, rec + (size_t)e * n, n, DS_PIXELS);
        // Each eps gets its own copy so that every set owns its buffers.
        ds_attack_record *r = malloc(sizeof *r * n);
        float *im = img ? malloc(sizeof(float) * (size_t)n * DS_PIXELS) : NULL;
        if (!r || (img && !im)) {
            free(r);
            free(im);
            rc = ds_fail(DS_ENOMEM, "%s: out of memory", name);
            break;
        }
        memcpy(r, rec + (size_t)e * n, sizeof *r * n);
        if (im) memcpy(im, img + (size_t)e * n * DS_PIXELS, sizeof(float) * (size_t)n * DS_PIXELS);
        rc = add_set(s, group, name, params, o->first, n, r, n, im);
        if (rc) {
            free(r);
            free(im);
        }
    }
    free(rec);
    free(img);
    return rc;
}

static int run_fgsm(run_state *s) {
    const options *o = &s->o;
    ds_craft cr;
    ds_craft_default(&cr, DS_KIND_FGSM);
    ds_fgsm_params *p = &cr.fgsm;
    int rc = DS_OK;
    if (o->eps && (rc = parse_eps_list(o->eps, p->eps, &p->n_eps))) return rc;
    if (o->space && (rc = ds_space_parse(o->space, &p->space))) return rc;
    if (o->labels && (rc = ds_label_mode_parse(o->labels, &p->labels))) return rc;
    if ((rc = parse_numerics(o, &p->num))) return rc;
    p->temperature = (float)o->temperature;
    return run_eps_attack(s, &cr);
}

// ---- pgd ----
static int run_pgd(run_state *s) {
    const options *o = &s->o;
    ds_craft cr;
    ds_craft_default(&cr, DS_KIND_PGD);
    ds_pgd_params *p = &cr.pgd;
    int rc = DS_OK;
    if (o->eps && (rc = parse_eps_list(o->eps, p->eps, &p->n_eps))) return rc;
    if (o->norm && (rc = ds_norm_parse(o->norm, &p->norm))) return rc;
    if (o->loss && (rc = ds_loss_parse(o->loss, &p->loss))) return rc;
    if (o->space && (rc = ds_space_parse(o->space, &p->space))) return rc;
    if (o->labels && (rc = ds_label_mode_parse(o->labels, &p->labels))) return rc;
    if ((rc = parse_numerics(o, &p->num))) return rc;
    if (!isnan(o->step)) p->step = (float)o->step;
    if (o->steps > 0) p->steps = o->steps;
    p->restarts = o->restarts;
    p->random_start = !o->no_random_start;
    p->temperature = (float)o->temperature;
    p->seed = (uint64_t)o->seed;
    if ((rc = ds_pgd_params_check(p))) return rc;
    if (p->random_start) printf("pgd: random starts from seed %d\n", o->seed);
    return run_eps_attack(s, &cr);
}

// ---- square ----
static int run_square(run_state *s) {
    const options *o = &s->o;
    ds_craft cr;
    ds_craft_default(&cr, DS_KIND_SQUARE);
    ds_square_params *p = &cr.square;
    int rc = DS_OK;
    if (o->eps && (rc = parse_eps_list(o->eps, p->eps, &p->n_eps))) return rc;
    if (o->space && (rc = ds_space_parse(o->space, &p->space))) return rc;
    if (o->labels && (rc = ds_label_mode_parse(o->labels, &p->labels))) return rc;
    ds_numerics num = {0};
    if ((rc = parse_numerics(o, &num))) return rc;
    p->denormals = num.denormals;
    p->queries = o->queries;
    p->p_init = (float)o->p_init;
    p->temperature = (float)o->temperature;
    p->seed = (uint64_t)o->seed;
    if ((rc = ds_square_params_check(p))) return rc;
    return run_eps_attack(s, &cr);
}

static int run_targeted(run_state *s, int jsma) {
    const options *o = &s->o;
    ds_jsma_params jp;
    ds_cw_params cp;
    ds_jsma_params_default(&jp);
    ds_cw_params_default(&cp);
    int rc = DS_OK;
    char params[256];
    if (jsma) {
        if (o->space && (rc = ds_space_parse(o->space, &jp.space))) return rc;
        jp.gamma = (float)o->gamma;
        jp.theta = (float)o->theta;
        jp.max_iterations = o->iterations > 0 ? o->iterations : 0;
        jp.temperature = (float)o->temperature;
        jp.threads = o->threads;
        if ((rc = parse_numerics(o, &jp.num))) return rc;
        if ((rc = ds_jsma_params_check(&jp))) return rc;
        ds_jsma_params_string(&jp, DS_PIXELS, params, sizeof params);
    } else {
        if (o->targets && (rc = ds_target_mode_parse(o->targets, &cp.targets))) return rc;
        if (o->steps > 0) cp.steps = o->steps;
        if (o->iterations > 0) cp.max_iterations = o->iterations;
        cp.c0 = (float)o->c0;
        cp.lr = (float)o->lr;
        cp.kappa = (float)o->kappa;
        cp.abort_early = !o->no_abort;
        ds_numerics num = {0};
        if ((rc = parse_numerics(o, &num))) return rc;
        cp.denormals = num.denormals;
        if ((rc = ds_cw_params_check(&cp))) return rc;
        ds_cw_params_string(&cp, params, sizeof params);
    }
    int n = o->count, total = jsma ? ds_jsma_count(&s->cls, n) : ds_cw_count(&s->cls, &cp, n);
    ds_attack_record *rec = malloc(sizeof *rec * total);
    float *img = o->out && !o->no_images ? malloc(sizeof(float) * (size_t)total * DS_PIXELS) : NULL;
    if (!rec || (o->out && !o->no_images && !img)) {
        free(rec);
        free(img);
        return ds_fail(DS_ENOMEM, "out of memory for %d records", total);
    }
    const uint8_t *labels = s->test.labels + o->first;
    rc = jsma ? ds_jsma(&s->cls, &jp, s->x, labels, n, o->first, rec, img)
              : ds_cw_l2(&s->cls, &cp, s->x, labels, n, o->first, rec, img);
    if (!rc) {
        char what[300];
        snprintf(what, sizeof what, "%s %s", o->attack, params);
        print_rates(what, rec, total, DS_PIXELS);
        rc = add_set(s, o->attack, o->attack, params, o->first, n, rec, total, img);
    }
    if (rc) {
        free(rec);
        free(img);
    }
    return rc;
}

static int run_transfer(run_state *s) {
    const options *o = &s->o;
    char file[1024], group[256];
    ds_cli_split_spec(o->source, file, sizeof file, group, sizeof group);
    ds_attack_set src;
    int rc = ds_attack_results_load(file, group, &src);
    if (rc) return rc;
    if (!src.images || src.n_in != DS_PIXELS) {
        ds_attack_set_free(&src);
        return ds_fail(DS_EINVAL, "%s: the source set '%s' has no adversarial images", file, src.group);
    }
    int n = src.n_records;
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1) * DS_PIXELS);
    ds_attack_record *out = malloc(sizeof *out * (n ? n : 1));
    if (!x || !out) rc = ds_fail(DS_ENOMEM, "transfer: out of memory");
    for (int i = 0; i < n && !rc; i++) {
        int idx = src.records[i].index;
        if (idx < 0 || idx >= s->test.n)
            rc = ds_fail(DS_EFORMAT, "%s: record %d names test sample %d, outside the test set of %d",
                         file, i, idx, s->test.n);
        else
            ds_range_pixels(x + (size_t)i * DS_PIXELS, &s->test, idx, 1);
    }
    ds_numerics num = {0};
    if (!rc) rc = parse_numerics(o, &num);
    if (!rc)
        rc = ds_attack_transfer(&s->cls, x, src.images, src.records, n, o->untargeted, num.denormals, out);
    if (!rc) {
        char params[256]; // what fits the set's params field
        snprintf(params, sizeof params, "source=%.120s:%.60s success=%s source_attack=%s", file, src.group,
                 o->untargeted ? "misclassify" : "source", src.attack);
        print_rates(params, out, n, DS_PIXELS);
        // The same over the examples that succeeded on the source model.
        int k = 0;
        ds_attack_record *sub = malloc(sizeof *sub * (n ? n : 1));
        if (sub) {
            for (int i = 0; i < n; i++)
                if (src.records[i].success) sub[k++] = out[i];
            print_rates("  of those successful on the source", sub, k, DS_PIXELS);
            free(sub);
        }
        float *images = NULL;
        if (o->out && !o->no_images) {
            images = src.images;
            src.images = NULL;
        }
        rc = add_set(s, "transfer", "transfer", params, src.first, src.count, out, n, images);
        if (!rc) out = NULL;
        else free(images);
    }
    free(x);
    free(out);
    ds_attack_set_free(&src);
    return rc;
}

static int run(run_state *s, int argc, char **argv) {
    options *o = &s->o;
    char dir[1024];
    int rc = ds_data_locate("mnist", o->data, dir, sizeof dir);
    if (!rc) rc = ds_dataset_load(&s->test, dir, "t10k");
    if (rc) return rc;
    int transfer = !strcmp(o->attack, "transfer");
    if (!transfer) {
        int left = s->test.n - o->first;
        if (o->count < 0 && !strcmp(o->attack, "fgsm")) o->count = left;
        else if (o->count < 0 && !strcmp(o->attack, "pgd")) o->count = left < 1000 ? left : 1000;
        else if (o->count < 0) o->count = 100;
        if (o->first >= s->test.n || o->count > s->test.n - o->first)
            return ds_fail(DS_EINVAL, "samples [%d, %d) outside the test set of %d", o->first,
                           o->first + o->count, s->test.n);
    }
    if ((rc = ds_cli_load_model(o->model, &s->model, s->model_spec, sizeof s->model_spec))) return rc;
    ds_cli_external_temperature(&s->model, o->temperature);
    if ((rc = ds_classifier_from_model(&s->cls, &s->model, o->batch, o->threads))) return rc;
    printf("model %s: trained at T=%g, role %s\n", s->model_spec, (double)s->model.temperature,
           s->model.role);
    if (transfer) {
        rc = run_transfer(s);
    } else {
        s->x = malloc(sizeof(float) * (size_t)o->count * DS_PIXELS);
        if (!s->x) return ds_fail(DS_ENOMEM, "out of memory for %d samples", o->count);
        ds_range_pixels(s->x, &s->test, o->first, o->count);
        if (!strcmp(o->attack, "fgsm")) rc = run_fgsm(s);
        else if (!strcmp(o->attack, "pgd")) rc = run_pgd(s);
        else if (!strcmp(o->attack, "square")) rc = run_square(s);
        else rc = run_targeted(s, !strcmp(o->attack, "jsma"));
    }
    if (rc || !o->out) return rc;
    char cmdline[4096] = "distill_sweep";
    for (int i = 0; i < argc; i++)
        snprintf(cmdline + strlen(cmdline), sizeof cmdline - strlen(cmdline), " %s", argv[i]);
    // The seed of PGD's random starts and Square's draws (not in the settings string); 0 for
    // the other attacks.
    uint64_t seed = !strcmp(o->attack, "pgd") || !strcmp(o->attack, "square") ? (uint64_t)o->seed : 0;
    ds_provenance prov = {.job_text = cmdline, .code_version = ds_code_version(), .seed = seed,
                          .task = ""};
    rc = ds_attack_results_save(o->out, s->sets, s->n_sets, &prov);
    if (!rc) printf("wrote %s\n", o->out);
    return rc;
}

int ds_cmd_attack(int argc, char **argv) {
    run_state s;
    memset(&s, 0, sizeof s);
    int help;
    int rc = parse_options(argc, argv, &s.o, &help);
    if (help) {
        usage(stdout);
        return 0;
    }
    if (!rc) rc = run(&s, argc, argv);
    if (rc) fail(ds_errmsg());
    ds_classifier_free(&s.cls);
    if (s.model.mem) ds_model_free(&s.model);
    ds_dataset_free(&s.test);
    for (int i = 0; i < s.n_sets; i++) ds_attack_set_free(&s.sets[i]);
    free(s.sets);
    free(s.x);
    return rc ? 1 : 0;
}
