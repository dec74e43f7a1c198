// The dry run (ds_sweep.h): the plan of a job, the progress of its run folder, and the predicted
// makespan per rank count (ds_sched.h) with a rate from --rate, the run's sweep.log or a short
// measurement of the engine. No MPI, no training.
#include "ds_sweep.h"

#include "ds_error.h"
#include "ds_nn.h"
#include "ds_rng.h"
#include "ds_sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

// The job and its plan, with the sizes from the job when it fixes them, else from the data if it
// can be found, else MNIST's (60,000 and 10,000). Exit status 1 with the message printed.
static int load_plan(const char *job_path, ds_job *job, ds_plan *plan, const char **note) {
    int rc = ds_job_parse(job, job_path);
    if (rc) {
        fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
        return 1;
    }
    ds_engine_set_default_kind(job->engine); // the calibration measures the job's engine
    int train_n = job->train_samples, test_n = job->test_samples;
    *note = "";
    if (train_n < 0 || test_n < 0) {
        ds_run run = {.lock_fd = -1};
        ds_dataset tr, te;
        if (!ds_run_load_data(job, &run, &tr, &te, NULL)) {
            train_n = run.train_n;
            test_n = run.test_n;
            ds_dataset_free(&tr);
            ds_dataset_free(&te);
        } else {
            if (train_n < 0) train_n = 60000;
            if (test_n < 0) test_n = 10000;
            *note = " (data not found: assuming MNIST's sizes)";
        }
    }
    if ((rc = ds_plan_build(plan, job, train_n, test_n))) {
        fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
        ds_job_free(job);
        return 1;
    }
    return 0;
}

// Progress of an existing run (read-only: the journal is not repaired here), and what a sweep of
// this job would make of it (ds_run_job_compare: the rule ds_run_open applies).
static void print_progress(const ds_job *job, const ds_plan *plan, const char *dir, FILE *out) {
    ds_run_state st;
    if (!ds_run_state_read(dir, &st)) {
        char *canon = ds_job_canonical(job), added[1024];
        uint8_t *done = malloc((size_t)plan->ntasks);
        int cmp = canon ? ds_run_job_compare(st.canonical, canon, added, sizeof added) : DS_ENOMEM;
        if (cmp < 0) {
            fprintf(out, "%s exists but a sweep of this job would refuse it (%s): give the job "
                    "another [run] name, or use --new-run\n", dir,
                    cmp == DS_EINVAL ? ds_errmsg() : "out of memory");
        } else if (done && !ds_run_tasks_done(plan, dir, done, NULL)) {
            int ndone = 0;
            for (int i = 0; i < plan->ntasks; i++) ndone += done[i];
            if (cmp == DS_RUN_EXTENDS)
                fprintf(out, "%s exists: a sweep of this job would extend the run: %s\n", dir, added);
            fprintf(out, "%s exists: %d of %d tasks done\n", dir, ndone, plan->ntasks - 1);
            for (int r = 0; job->nseeds > 1 && r < job->nseeds; r++) {
                int n = 0, d = 0;
                for (int i = 0; i < plan->ntasks; i++)
                    if (plan->tasks[i].rep == r && plan->tasks[i].kind != DS_TASK_REDUCE)
                        n++, d += done[i];
                fprintf(out, "  seed %llu: %d of %d tasks done\n", (unsigned long long)job->seeds[r], d, n);
            }
        }
        free(done);
        free(canon);
    }
    ds_run_state_free(&st);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

// Training steps of the job's batch on random data with the engine (the job's threads, 1 for
// auto), until about a second has passed: MFLOP/s by the plan's cost model (60 MFLOP per sample
// and step, src/run/plan.c), so the rate means what the plan's costs mean.
static int measure_rate(const ds_job *job, double *mflops, char *how, size_t cap) {
    int threads = job->threads >= 1 ? job->threads : 1, n = job->batch;
    size_t np = ds_params_count();
    ds_engine *e = NULL;
    ds_model m = {0};
    float *x = malloc((size_t)n * 784 * sizeof(float)), *grad = malloc(np * sizeof(float));
    uint8_t *labels = malloc((size_t)n);
    int rc = x && grad && labels ? ds_model_init(&m, 1) : ds_fail(DS_ENOMEM, "measurement: out of memory");
    if (!rc) rc = ds_engine_create(&e, n, threads, job->chunk);
    if (!rc) {
        ds_rng r = ds_rng_stream(1, 2, 3);
        for (size_t i = 0; i < (size_t)n * 784; i++) x[i] = ds_rng_uniform(&r);
        for (int i = 0; i < n; i++) labels[i] = (uint8_t)(ds_rng_u64(&r) % 10);
        ds_train_pass pass = {.temperature = 1, .dropout = 0.5f, .seed = 1};
        ds_engine_train_grad(e, &m.p, x, labels, NULL, n, &pass, grad); // warm-up
        int steps = 0;
        double t0 = now_s(), el = 0;
        while (steps < 3 || (el < 1.0 && steps < 50)) {
            pass.step = (uint64_t)++steps;
            ds_engine_train_grad(e, &m.p, x, labels, NULL, n, &pass, grad);
            el = now_s() - t0;
        }
        *mflops = 60.0 * n * steps / el;
        snprintf(how, cap, "rate measured: %d training steps of batch %d on random data, %d engine "
                 "thread(s): %.1f GFLOP/s per rank (60 MFLOP per sample and step)", steps, n,
                 threads, *mflops / 1e3);
    }
    ds_engine_free(e);
    ds_model_free(&m);
    free(x);
    free(grad);
    free(labels);
    return rc;
}

// Seconds per task: --rate, else the run's sweep.log if it holds finished tasks of this plan,
// else a measurement. how: the line saying which.
static int task_seconds(const ds_dry_run_options *o, const ds_plan *plan, const char *dir,
                        double *seconds, char *how, size_t cap) {
    if (o->rate_gflops > 0) {
        ds_sim_seconds_from_rate(plan, o->rate_gflops * 1e3, seconds);
        snprintf(how, cap, "rate given: %g GFLOP/s per rank (--rate)", o->rate_gflops);
        return DS_OK;
    }
    char log[700], why[900] = "";
    snprintf(log, sizeof log, "%s/sweep.log", dir);
    if (access(log, F_OK) == 0) {
        if (!ds_sim_calibrate(plan, log, seconds, how, cap)) return DS_OK;
        snprintf(why, sizeof why, " (%s)", ds_errmsg());
    }
    double rate;
    int rc = measure_rate(plan->job, &rate, how, cap);
    if (rc) return rc;
    ds_sim_seconds_from_rate(plan, rate, seconds);
    size_t len = strlen(how);
    if (why[0] && len < cap) snprintf(how + len, cap - len, "%s", why);
    return DS_OK;
}

// The prediction for every rank count of o. Exit status 1 with the message printed.
static int predict(const ds_dry_run_options *o, const ds_plan *plan, const char *dir, FILE *out) {
    double *seconds = malloc((size_t)plan->ntasks * sizeof(double));
    char how[2048];
    int rc = seconds ? task_seconds(o, plan, dir, seconds, how, sizeof how)
                     : ds_fail(DS_ENOMEM, "prediction: out of memory");
    if (!rc) {
        fprintf(out, "%s\n", how);
        ds_sim_input in = {.seconds = seconds, .comm_s = o->comm_ms / 1e3};
        rc = ds_sim_print(plan, &in, o->ranks, o->nranks, o->gang_max, out);
    }
    free(seconds);
    if (rc) fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
    return rc ? 1 : 0;
}

int ds_sweep_dry_run(const ds_dry_run_options *o, FILE *out) {
    ds_job job;
    ds_plan plan;
    const char *note;
    int status = load_plan(o->job_path, &job, &plan, &note);
    if (status) return status;
    char dir[600];
    ds_job_run_dir(&job, dir, sizeof dir);
    fprintf(out, "job %s: run folder %s%s\n", job.path, dir, note);
    ds_plan_print(&plan, out);
    print_progress(&job, &plan, dir, out);
    if (o->nranks > 0) status = predict(o, &plan, dir, out);
    ds_plan_free(&plan);
    ds_job_free(&job);
    return status;
}
