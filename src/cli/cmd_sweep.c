// distill_sweep [run] JOB, distill_sweep --dry-run JOB, distill_sweep --reduce RUN_DIR.
//
// Only this command initialises MPI (the others run as plain programs).
#include "ds_cli.h"
#include "ds_error.h"
#include "ds_mpi.h"
#include "ds_reduce.h"
#include "ds_sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

static void usage(FILE *f) {
    fprintf(f,
            "usage: mpirun -np N distill_sweep [run] JOB [options]   run or resume a sweep\n"
            "       distill_sweep --dry-run JOB [--ranks N,N,...]     print the plan (and progress),\n"
            "                                                         and predict the makespan\n"
            "       distill_sweep --reduce results/<run>              rebuild the summary files\n"
            "options:\n"
            "  --threads N         engine threads per worker (default: the job's [run] threads)\n"
            "  --new-run           if the run folder holds a different job, start <run>-2 (-3, ...)\n"
            "                      instead of refusing\n"
            "  --coordinator-only  rank 0 only hands out tasks (for many ranks)\n"
            "  --gang-max N        the most ranks one training may use (default 16; 1: no gangs);\n"
            "                      results are bit-identical for any value\n"
            "  --gang-timeout S    a gang member that waits S seconds for the others ends the job\n"
            "                      (default 600; rerun to resume from the last checkpoint)\n"
            "  --progress | --no-progress   live progress bar (default: when stdout is a terminal)\n"
            "dry-run options:\n"
            "  --ranks N,N,...     predict makespan and utilisation on these rank counts\n"
            "  --rate GFLOPS       per rank (default: from the run folder's sweep.log, else measured)\n"
            "  --comm-ms X         communication per training step and extra gang rank (default 2;\n"
            "                      a sweep's scheduler uses it too)\n"
            "  (--gang-max applies to the prediction as to a sweep)\n"
            "Stop gracefully with SIGUSR1 or SIGTERM (trainings stop after the current epoch); rerun\n"
            "the same command to resume. See the README for the job format and the results layout.\n");
}

// Reduces a run folder on its own; refuses while a sweep holds the folder's lock (that sweep
// reduces when it ends).
static int reduce_only(const char *run_dir) {
    int fd, busy;
    if (ds_run_lock(run_dir, 0, &fd, &busy)) {
        if (busy)
            fprintf(stderr, "distill_sweep: %s is in use by a running sweep, which reduces it when "
                    "it ends\n", run_dir);
        else
            fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
        return 1;
    }
    int rc = ds_reduce_run(run_dir);
    if (fd >= 0) close(fd);
    if (rc) {
        fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
        return 1;
    }
    printf("reduced %s\n", run_dir);
    return 0;
}

// The sweep between MPI_Init_thread and MPI_Finalize. MPI errors are returned to the caller, so
// that DS_MPI_CHECK (ds_mpi.h) names the failed call and the rank before MPI_Abort.
static int sweep_mpi(ds_sweep_options *o, int argc, char **argv) {
    int provided;
    // MULTIPLE: rank 0's worker thread then calls MPI as a gang member (ds_gang.h).
    if (MPI_Init_thread(&argc, &argv, MPI_THREAD_MULTIPLE, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "distill_sweep: MPI_Init failed\n");
        return 1;
    }
    DS_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
    if (provided < MPI_THREAD_FUNNELED) {
        // Rank 0 then only coordinates (its worker thread would need FUNNELED).
        o->coordinator_only = 1;
    }
    o->rank0_gangs = provided >= MPI_THREAD_MULTIPLE;
    int status = ds_sweep_run(o);
    DS_MPI_CHECK(MPI_Finalize());
    return status;
}

// "16,64,256" into ranks[0..*n) (at most cap): DS_EINVAL naming --ranks otherwise.
static int parse_ranks(const char *v, int *ranks, int cap, int *n) {
    char buf[256];
    if (snprintf(buf, sizeof buf, "%s", v) >= (int)sizeof buf)
        return ds_fail(DS_EINVAL, "--ranks: the list is too long");
    *n = 0;
    for (char *tok = buf, *next; tok; tok = next) {
        next = strchr(tok, ',');
        if (next) *next++ = '\0';
        if (*n == cap) return ds_fail(DS_EINVAL, "--ranks: more than %d rank counts", cap);
        if (ds_cli_int("--ranks", tok, 1, &ranks[*n])) return DS_EINVAL;
        (*n)++;
    }
    return DS_OK;
}

// The dry run's own options at argv[*i] into d: 1 if it was one (its value consumed), 0 if
// argv[*i] is another option, -1 after printing the error of a bad value.
static int dry_option(int argc, char **argv, int *i, ds_dry_run_options *d, int *ranks, int cap) {
    const char *a = argv[*i];
    if (strcmp(a, "--ranks") && strcmp(a, "--rate") && strcmp(a, "--comm-ms"))
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "distill_sweep: %s needs a value\n", a);
        return -1;
    }
    const char *v = argv[++*i];
    int rc;
    if (!strcmp(a, "--ranks")) {
        rc = parse_ranks(v, ranks, cap, &d->nranks);
        d->ranks = ranks;
    } else if (!strcmp(a, "--rate")) {
        rc = ds_cli_double(a, v, &d->rate_gflops);
        if (!rc && !(d->rate_gflops > 0))
            rc = ds_fail(DS_EINVAL, "--rate: '%s' is not a rate > 0 (GFLOP/s per rank)", v);
    } else {
        rc = ds_cli_double(a, v, &d->comm_ms);
        if (!rc && d->comm_ms < 0) rc = ds_fail(DS_EINVAL, "--comm-ms: '%s' is negative", v);
    }
    if (rc) fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
    return rc ? -1 : 1;
}

int ds_cmd_sweep(int argc, char **argv) {
    ds_sweep_options o = {.threads = 0, .progress_bar = -1};
    int ranks[64];
    ds_dry_run_options d = {.gang_max = 16, .comm_ms = 2};
    int dry = 0, reduce = 0, dry_opts = 0, r;
    const char *target = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if ((r = dry_option(argc, argv, &i, &d, ranks, 64)) != 0) {
            if (r < 0) return 2;
            dry_opts |= strcmp(a, "--comm-ms") ? 1 : 2; // --comm-ms also goes to a sweep
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "run") && !target && i == 1) {
            continue;
        } else if (!strcmp(a, "--dry-run")) {
            dry = 1;
        } else if (!strcmp(a, "--reduce")) {
            reduce = 1;
        } else if (!strcmp(a, "--new-run")) {
            o.new_run = 1;
        } else if (!strcmp(a, "--coordinator-only")) {
            o.coordinator_only = 1;
        } else if (!strcmp(a, "--progress")) {
            o.progress_bar = 1;
        } else if (!strcmp(a, "--no-progress")) {
            o.progress_bar = 0;
        } else if (!strcmp(a, "--threads")) {
            char *end;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || *end || v < 1 || v > 1024) {
                fprintf(stderr, "distill_sweep: --threads needs a number from 1 to 1024\n");
                return 2;
            }
            o.threads = (int)v;
            i++;
        } else if (!strcmp(a, "--gang-max") || !strcmp(a, "--gang-timeout")) {
            char *end;
            double v = i + 1 < argc ? strtod(argv[i + 1], &end) : 0;
            int is_max = !strcmp(a, "--gang-max");
            if (i + 1 >= argc || *end || !(v >= 1) || (is_max && (v > 256 || v != (int)v)) || v > 1e7) {
                fprintf(stderr, "distill_sweep: %s needs %s\n", a,
                        is_max ? "a whole number from 1 to 256" : "a number of seconds >= 1");
                return 2;
            }
            if (is_max) o.gang_max = d.gang_max = (int)v;
            else o.gang_timeout = v;
            i++;
        } else if (a[0] == '-') {
            fprintf(stderr, "distill_sweep: unknown option '%s'\n", a);
            usage(stderr);
            return 2;
        } else if (!target) {
            target = a;
        } else {
            fprintf(stderr, "distill_sweep: unexpected argument '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!target || dry + reduce > 1) {
        usage(stderr);
        return 2;
    }
    if (((dry_opts & 1) && !dry) || (dry && dry_opts && d.nranks == 0)) {
        fprintf(stderr, "distill_sweep: --ranks and --rate go with --dry-run, and a dry run's --rate "
                "and --comm-ms need --ranks\n");
        return 2;
    }
    o.comm_s = d.comm_ms / 1000;
    d.job_path = target;
    if (dry) return ds_sweep_dry_run(&d, stdout);
    if (reduce) return reduce_only(target);

    o.job_path = target;
    return sweep_mpi(&o, argc, argv);
}
