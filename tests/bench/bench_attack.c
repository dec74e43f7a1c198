// Attack benchmark on the paper's CNN: FGSM and PGD samples/s, JSMA and C&W (sample, target)
// pairs/s, and the JSMA pair search alone. Prints "bench <name> <value> <unit>" lines.
// PGD: L-inf eps 0.3, 20 steps of 0.01, random start, cross-entropy, groups of 256 samples
// (tests/bench/torch_attacks.py runs the same). Both stop a sample at its first adversarial
// iterate, so samples/s depends on the model (the twin's random model is another one): also
// printed, pgd_sample_steps_per_s, the steps taken by all samples per second.
//
// Model: $BENCH_MODEL (FILE.h5[:GROUP], group default "baseline") if set, else a randomly
// initialised one (ds_model_init, seed 1). Inputs: the MNIST test set if ds_data_locate finds it,
// else uniform random pixels. BENCH_SECONDS (default 10) per figure, BENCH_THREADS (default 2)
// engine threads, batch 64. C&W runs with its defaults (5 binary search steps of up to 200
// iterations, early abort). Square: queries per second (forward passes of single samples, the
// clean one included), calls of 64 samples with eps 0.3, p_init 0.8 on the logits and a budget
// of 100 queries (a random model is fooled in a few; a trained one spends the budget).
// BENCH_ONLY=name[,name]: only these figures (fgsm, jsma, pair_search, cw, square).
#include "ds_attack.h"
#include "ds_data.h"
#include "ds_error.h"
#include "ds_rng.h"
#include "bench_util.h"
#include "ds_store.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int die(const char *what) {
    fprintf(stderr, "bench_attack: %s: %s\n", what, ds_errmsg());
    return 1;
}

enum { POOL = 1000 }; // inputs cycled through

typedef int (*attack_fn)(const ds_classifier *c, const void *params, const float *x,
                         const uint8_t *y, int n, ds_attack_record *rec);

static int run_jsma(const ds_classifier *c, const void *p, const float *x, const uint8_t *y, int n,
                    ds_attack_record *rec) {
    return ds_jsma(c, p, x, y, n, 0, rec, NULL);
}

static int run_cw(const ds_classifier *c, const void *p, const float *x, const uint8_t *y, int n,
                  ds_attack_record *rec) {
    return ds_cw_l2(c, p, x, y, n, 0, rec, NULL);
}

// Runs the targeted attack on growing groups of samples until `seconds` have passed; returns
// (sample, target) pairs per second and the mean iterations per pair.
static int time_targeted(const ds_classifier *c, attack_fn fn, const void *p, const float *x,
                         const uint8_t *y, double seconds, double *rate, double *iters) {
    ds_attack_record *rec = malloc(sizeof *rec * POOL * 9);
    if (!rec) return ds_fail(DS_ENOMEM, "out of memory");
    long pairs = 0, it = 0;
    int next = 0, n = 1, rc = DS_OK;
    double t0 = now(), t = 0;
    do {
        if (next + n > POOL) next = 0;
        double t1 = now();
        if ((rc = fn(c, p, x + (size_t)next * c->n_in, y + next, n, rec))) break;
        for (int a = 0; a < n * (c->n_classes - 1); a++) it += rec[a].iterations;
        pairs += n * (c->n_classes - 1);
        next += n;
        // Next group: what fills about a third of the remaining time, at most one full batch.
        double per_sample = (now() - t1) / n, left = seconds - (now() - t0);
        n = (int)(left / 3 / per_sample);
        int cap = (c->max_batch + c->n_classes - 2) / (c->n_classes - 1);
        n = n < 1 ? 1 : n > cap ? cap : n;
    } while ((t = now() - t0) < seconds);
    *rate = pairs / t;
    *iters = pairs ? (double)it / pairs : 0;
    free(rec);
    return rc;
}

// The pair search alone, on Jacobian-like vectors (beta close to -alpha as for a softmax).
static double pair_search_rate(double seconds) {
    enum { D = DS_PIXELS };
    float alpha[D], beta[D], scratch[5 * (D + 8)];
    uint8_t dom[D];
    ds_rng r = ds_rng_stream(3, 4, 5);
    for (int k = 0; k < D; k++) {
        alpha[k] = (ds_rng_uniform(&r) - 0.5f) * 1e-3f;
        beta[k] = -alpha[k] + (ds_rng_uniform(&r) - 0.5f) * 1e-5f;
        dom[k] = ds_rng_uniform(&r) < 0.8f;
    }
    long n = 0;
    int p, q, sink = 0;
    double t0 = now(), t = 0;
    do {
        sink += ds_jsma_best_pair(alpha, beta, dom, D, scratch, &p, &q);
        alpha[n % D] *= -1.0f; // vary the input a little
        n++;
    } while ((t = now() - t0) < seconds);
    if (sink < 0) printf("impossible\n");
    return n / t;
}

// Square Attack queries per second: forward passes of one sample each, the clean one included
// (the figure torch_attacks.py's twin prints).
static int square_rate(const ds_classifier *c, const float *x, const uint8_t *y, double seconds,
                       double *rate) {
    enum { N = 64 };
    ds_square_params p;
    ds_square_params_default(&p);
    p.queries = 100;
    p.seed = 1;
    ds_attack_record rec[N];
    long queries = 0;
    int first = 0, rc = DS_OK;
    double t0 = now(), t = 0;
    do {
        if (first + N > POOL) first = 0;
        if ((rc = ds_square(c, &p, x + (size_t)first * c->n_in, y + first, N, first, rec, NULL))) break;
        queries += N; // the clean forwards
        for (int i = 0; i < N; i++) queries += rec[i].iterations;
        first += N;
    } while ((t = now() - t0) < seconds);
    *rate = queries / t;
    return rc;
}

// Whether figure `name` runs: BENCH_ONLY unset, or naming it in its comma list.
static int wanted(const char *name) {
    const char *only = getenv("BENCH_ONLY");
    if (!only || !*only) return 1;
    size_t n = strlen(name);
    for (const char *s = only; (s = strstr(s, name)); s += n)
        if ((s == only || s[-1] == ',') && (s[n] == 0 || s[n] == ',')) return 1;
    return 0;
}

int main(void) {
    double seconds = env_num("BENCH_SECONDS", 10);
    int threads = (int)env_num("BENCH_THREADS", 2), B = 64;
    openblas_set_num_threads(1);

    ds_model m;
    const char *spec = getenv("BENCH_MODEL");
    if (spec && *spec) {
        char file[1024], group[256] = "baseline";
        const char *colon = strrchr(spec, ':');
        snprintf(file, sizeof file, "%.*s", colon ? (int)(colon - spec) : (int)strlen(spec), spec);
        if (colon) snprintf(group, sizeof group, "%s", colon + 1);
        if (ds_store_load_model(file, group, &m)) return die(spec);
    } else if (ds_model_init(&m, 1)) {
        return die("model");
    }
    float *x = malloc(sizeof(float) * POOL * DS_PIXELS);
    uint8_t *y = malloc(POOL);
    if (!x || !y) return die("memory");
    char dir[1024];
    ds_dataset test = {0};
    int mnist = !ds_data_locate("mnist", NULL, dir, sizeof dir) && !ds_dataset_load(&test, dir, "t10k");
    if (mnist) {
        ds_range_pixels(x, &test, 0, POOL);
        memcpy(y, test.labels, POOL);
    } else {
        ds_rng r = ds_rng_stream(1, 2, 3);
        for (int i = 0; i < POOL * DS_PIXELS; i++) x[i] = ds_rng_uniform(&r);
        for (int i = 0; i < POOL; i++) y[i] = (uint8_t)ds_rng_below(&r, 10);
    }
    fprintf(stderr, "bench_attack: %s model, %s inputs, %d threads, batch %d, %g s per figure\n",
            spec && *spec ? spec : "random", mnist ? "MNIST test" : "random", threads, B, seconds);
    ds_classifier c;
    if (ds_classifier_from_model(&c, &m, B, threads)) return die("classifier");

    // FGSM: gradient, one eps, evaluation of x'.
    ds_attack_record *rec = malloc(sizeof *rec * 256);
    double rate, iters;
    if (wanted("fgsm")) {
        ds_fgsm_params fp;
        ds_fgsm_params_default(&fp);
        long samples = 0;
        double t0 = now(), t = 0;
        do {
            int first = (int)(samples % (POOL - 256 + 1));
            if (ds_fgsm(&c, &fp, x + (size_t)first * DS_PIXELS, y + first, 256, first, rec, NULL))
                return die("fgsm");
            samples += 256;
        } while ((t = now() - t0) < seconds);
        printf("bench fgsm_samples_per_s %.1f samples/s\n", samples / t);
        fflush(stdout);
    }

    if (wanted("pgd")) { // ---- pgd ----
        ds_pgd_params gp;
        ds_pgd_params_default(&gp);
        gp.steps = 20;
        gp.seed = 1;
        long steps = 0, samples = 0;
        double t0 = now(), t = 0;
        do {
            int first = (int)(samples % (POOL - 256 + 1));
            if (ds_pgd(&c, &gp, x + (size_t)first * DS_PIXELS, y + first, 256, first, rec, NULL))
                return die("pgd");
            for (int i = 0; i < 256; i++) steps += rec[i].iterations;
            samples += 256;
        } while ((t = now() - t0) < seconds);
        printf("bench pgd_samples_per_s %.1f samples/s\n", samples / t);
        printf("bench pgd_sample_steps_per_s %.1f steps/s\n", steps / t);
        fprintf(stderr, "bench_attack: pgd %.1f steps per sample (20 at most)\n", (double)steps / samples);
        fflush(stdout);
    }

    if (wanted("jsma")) {
        ds_jsma_params jp;
        ds_jsma_params_default(&jp);
        jp.threads = threads;
        if (time_targeted(&c, run_jsma, &jp, x, y, seconds, &rate, &iters)) return die("jsma");
        printf("bench jsma_pairs_per_s %.2f pairs/s\n", rate);
        fprintf(stderr, "bench_attack: jsma %.1f iterations per pair\n", iters);
        fflush(stdout);
    }

    if (wanted("pair_search")) {
        printf("bench jsma_pair_search_per_s %.1f searches/s\n", pair_search_rate(seconds / 4));
        fflush(stdout);
    }

    if (wanted("cw")) {
        ds_cw_params cp;
        ds_cw_params_default(&cp);
        if (time_targeted(&c, run_cw, &cp, x, y, seconds, &rate, &iters)) return die("cw-l2");
        printf("bench cw_pairs_per_s %.2f pairs/s\n", rate);
        fprintf(stderr, "bench_attack: cw-l2 %.1f iterations per pair\n", iters);
        fflush(stdout);
    }

    if (wanted("square")) {
        if (square_rate(&c, x, y, seconds, &rate)) return die("square");
        printf("bench square_queries_per_s %.1f queries/s\n", rate);
        fflush(stdout);
    }

    free(rec);
    ds_classifier_free(&c);
    ds_model_free(&m);
    ds_dataset_free(&test);
    free(x);
    free(y);
    return 0;
}
