// The sweep over MPI (ds_sweep.h): setup, coordinator, workers, progress.
//
//   rank 0, main thread   coordinator: hands ready tasks to idle workers (highest priority
//                         first), journals completed tasks, prints progress, runs the reducer
//   rank 0, local thread  a worker like the others (unless coordinator_only)
//   ranks 1..N-1          workers: wait for a task, run it, report, until told to stop
//
// Who gets ranks is decided by the scheduling policy (ds_sched.h), the same function the
// makespan prediction simulates. A training may run on a gang of k ranks (ds_gang.h): every
// member gets the same task message with the gang's members; the leader (the lowest rank)
// writes the files and, after each epoch's checkpoint, asks the coordinator whether to go on,
// to stop (a signal), or to end the segment so that the training continues on a larger gang
// (DS_EREGANG): the old members report back, and the coordinator sends the task again to the
// old members plus the ranks it reserved for it; they resume from that checkpoint.
// Rank 0's local worker can be a gang member only with MPI_THREAD_MULTIPLE (its thread then
// calls MPI on the gang's communicator); otherwise it runs tasks of one rank only.
//
// Waiting is done with MPI_Iprobe and short sleeps, never a busy MPI_Recv: on a 2-core machine
// a spinning coordinator would take a core from the workers.
#define _GNU_SOURCE // sched_getaffinity
#include "ds_sweep.h"

#include "ds_error.h"
#include "ds_fault.h"
#include "ds_gang.h"
#include "ds_mpi.h"
#include "ds_reduce.h"
#include "ds_sched.h"
#include "ds_store.h"

#include <errno.h>
#include <mpi.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { TAG_TASK = 11, TAG_STOP = 12, TAG_RESULT = 13, TAG_BOUNDARY = 14, TAG_DECISION = 15 };
enum { ST_PENDING, ST_RUNNING, ST_DONE, ST_FAILED, ST_BLOCKED };
enum { GANG_CAP = 256 }; // the most ranks of one gang (--gang-max)

// A task for one rank (k = 1) or for every member of a gang.
typedef struct {
    int task;
    int k;                  // gang size
    int tag;                // the gang's MPI_Comm_create_group tag (unique per gang formed)
    int grow;               // a training that may grow: even alone it asks at its boundaries
    int members[GANG_CAP];  // world ranks, increasing; members[0] leads and writes
} task_msg;

typedef struct {
    int task, epoch; // the leader of task's gang is at the boundary after `epoch` epochs
} boundary_msg;

typedef struct {
    int task;
    int status; // DS_OK or DS_E*
    int rank;
    int member, k; // this rank's place in the task's gang, and the gang's size
    uint32_t crc;
    uint64_t bytes;
    double seconds;
    ds_task_report rep;
    char msg[1024];
} result_msg;

static volatile int stop_requested;
static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void nap(long us) {
    struct timespec ts = {.tv_sec = 0, .tv_nsec = us * 1000};
    nanosleep(&ts, NULL);
}

// MPI_Bcast that waits with short sleeps instead of Open MPI's busy polling (ranks waiting
// for rank 0 to load data or to reduce must not take cores from it).
static void quiet_bcast(void *buf, int count, MPI_Datatype type) {
    MPI_Request req;
    DS_MPI_CHECK(MPI_Ibcast(buf, count, type, 0, MPI_COMM_WORLD, &req));
    int done = 0;
    for (;;) {
        DS_MPI_CHECK(MPI_Test(&req, &done, MPI_STATUS_IGNORE));
        if (done) return;
        nap(2000);
    }
}

// ---- Setup shared by all ranks ----

typedef struct {
    int status;      // DS_OK, or the failure every rank returns with
    int train_n, test_n;
    int threads;     // engine threads requested (0 = auto per node)
    uint32_t data_crc;
    char dataset[32];
    char data_dir[512];
    char run_dir[600];
} setup_msg;

static int auto_threads(void) {
    MPI_Comm local;
    int nlocal = 1;
    // Without a node communicator, count this rank alone (as many threads as it may use).
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &local) ==
        MPI_SUCCESS) {
        DS_MPI_CHECK(MPI_Comm_size(local, &nlocal));
        DS_MPI_CHECK(MPI_Comm_free(&local));
    }
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int n = (int)(online > 0 ? online : 1) / (nlocal > 0 ? nlocal : 1);
    cpu_set_t set;
    if (!sched_getaffinity(0, sizeof set, &set) && CPU_COUNT(&set) < n) n = CPU_COUNT(&set);
    return n < 1 ? 1 : n;
}

// Reads the job file on rank 0 and gives its text to every rank (one reader, even on a file
// system that is slow to show the file to other nodes).
static int share_job(const char *path, int rank, ds_job *job) {
    int rc = DS_OK;
    long len = -1;
    char *text = NULL;
    if (rank == 0) {
        rc = ds_job_parse(job, path);
        if (!rc) {
            len = (long)strlen(job->text);
            text = job->text;
        }
    }
    DS_MPI_CHECK(MPI_Bcast(&len, 1, MPI_LONG, 0, MPI_COMM_WORLD));
    if (len < 0) return rank == 0 ? rc : DS_EINVAL;
    if (rank != 0) {
        text = malloc((size_t)len + 1);
        if (!text) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    DS_MPI_CHECK(MPI_Bcast(text, (int)len + 1, MPI_CHAR, 0, MPI_COMM_WORLD));
    if (rank != 0) {
        rc = ds_job_parse_text(job, text, path);
        free(text);
    }
    return rc;
}

// ---- Progress ----

// Whether a live bar makes sense: stdout is a terminal, and, under mpirun (which gives the
// ranks a pseudo-terminal even when its own output goes to a file or a SLURM log), mpirun's
// stdout is a terminal too. Linux only (/proc); elsewhere no bar under mpirun.
static int want_bar(void) {
    if (!isatty(STDOUT_FILENO)) return 0;
    const char *term = getenv("TERM");
    if (term && !strcmp(term, "dumb")) return 0;
    if (!getenv("OMPI_COMM_WORLD_SIZE") && !getenv("PMI_RANK") && !getenv("PMIX_RANK")) return 1;
    char path[64], target[256];
    snprintf(path, sizeof path, "/proc/%ld/fd/1", (long)getppid());
    ssize_t n = readlink(path, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    return !strncmp(target, "/dev/pts/", 9) || !strncmp(target, "/dev/tty", 8);
}

typedef struct {
    double t0;
    FILE *log;      // <run>/sweep.log, or NULL
    int bar;        // live bar on a terminal
    int bar_shown;
    int ntasks, ndone, nrunning, nfailed;
    double cost_total, cost_done, cost_done_here; // cost_done_here: finished in this session
} progress;

static void fmt_hms(double s, char *out, size_t cap) {
    if (s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t > 359999) t = 359999; // 99:59:59
    snprintf(out, cap, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void eta(const progress *p, char *out, size_t cap) {
    double el = now_s() - p->t0;
    if (p->cost_done_here <= 0 || el < 1) {
        snprintf(out, cap, "ETA --:--:--");
        return;
    }
    char h[40];
    fmt_hms((p->cost_total - p->cost_done) * el / p->cost_done_here, h, sizeof h);
    snprintf(out, cap, "ETA %s", h);
}

static void draw_bar(progress *p) {
    if (!p->bar) return;
    int width = 30, fill = p->cost_total > 0 ? (int)(width * p->cost_done / p->cost_total) : 0;
    char bar[64], e[64];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = 0;
    eta(p, e, sizeof e);
    printf("\r[%s] %d/%d tasks, %d running, %s\033[K", bar, p->ndone, p->ntasks, p->nrunning, e);
    fflush(stdout);
    p->bar_shown = 1;
}

static void say(progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(progress *p, const char *fmt, ...) {
    char line[1600], stamp[32];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fmt_hms(now_s() - p->t0, stamp, sizeof stamp);
    if (p->bar_shown) printf("\r\033[K");
    printf("[%s] %s\n", stamp, line);
    fflush(stdout);
    if (p->log) {
        time_t t = time(NULL);
        struct tm tm;
        char utc[32];
        gmtime_r(&t, &tm);
        strftime(utc, sizeof utc, "%Y-%m-%dT%H:%M:%SZ", &tm);
        fprintf(p->log, "%s [%s] %s\n", utc, stamp, line);
        fflush(p->log);
    }
    draw_bar(p);
}

// ---- The local worker thread of rank 0 ----

typedef struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int task;  // -1: none
    task_msg msg;
    int quit;
    int has_result;
    result_msg res;
    int asks;          // the local thread leads a gang at a boundary: bnd waits for a decision
    boundary_msg bnd;
    int has_decision, decision;
    const ds_worker_ctx *ctx;
    double gang_timeout;
} local_worker;

// Runs task on this rank as member `member` of a gang of k (k = 1: alone) into *r.
static void run_one(const ds_worker_ctx *ctx, int task, int member, int k, result_msg *r) {
    *r = (result_msg){.task = task, .rank = ctx->rank, .member = member, .k = k};
    ds_worker_ctx c = *ctx;
    c.report = &r->rep;
    ds_fault("task-start", ctx->plan->tasks[task].id);
    double t0 = now_s();
    r->status = ds_task_execute(&c, task, &r->bytes, &r->crc);
    r->seconds = now_s() - t0;
    if (r->status) snprintf(r->msg, sizeof r->msg, "%s", ds_errmsg());
}

// ---- A gang member's side of an epoch boundary ----

typedef struct {
    ds_gang *gang;
    int leader;        // this member asks the coordinator
    int task;
    local_worker *lw;  // the leader is rank 0's local thread: ask through it; else by MPI
} boundary_ctx;

// The coordinator's decision for the leader: DS_OK, DS_EREGANG or DS_ESTOP.
static int ask_coordinator(boundary_ctx *b, int epoch) {
    boundary_msg m = {b->task, epoch};
    int d;
    if (b->lw) {
        pthread_mutex_lock(&b->lw->mu);
        b->lw->bnd = m;
        b->lw->has_decision = 0;
        b->lw->asks = 1;
        while (!b->lw->has_decision) pthread_cond_wait(&b->lw->cv, &b->lw->mu);
        d = b->lw->decision;
        pthread_mutex_unlock(&b->lw->mu);
        return d;
    }
    DS_MPI_CHECK(MPI_Send(&m, (int)sizeof m, MPI_BYTE, 0, TAG_BOUNDARY, MPI_COMM_WORLD));
    for (int flag = 0; !flag;) {
        DS_MPI_CHECK(MPI_Iprobe(0, TAG_DECISION, MPI_COMM_WORLD, &flag, MPI_STATUS_IGNORE));
        if (!flag) nap(500);
    }
    DS_MPI_CHECK(MPI_Recv(&d, 1, MPI_INT, 0, TAG_DECISION, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
    return d;
}

// ds_train_gang.at_boundary: the leader asks (unless its checkpoint failed: then that error is
// the answer), every member gets the answer.
static int at_boundary(void *user, int epoch, int status) {
    boundary_ctx *b = user;
    int d = !b->leader ? DS_OK : status ? status : ask_coordinator(b, epoch);
    if (b->gang) ds_gang_bcast_int(b->gang, &d); // a training alone has no gang to tell
    if (b->leader && status) return status; // its own message stays
    if (d < 0 && d != DS_EREGANG && d != DS_ESTOP)
        return ds_fail(d, "the gang's leader could not save the checkpoint after epoch %d (see its error)", epoch);
    if (d == DS_EREGANG) return ds_fail(DS_EREGANG, "segment ended after epoch %d (checkpoint saved)", epoch);
    if (d == DS_ESTOP) return ds_fail(DS_ESTOP, "stopped after epoch %d (checkpoint saved)", epoch);
    return d;
}

// ds_train_gang.share_start: the leader's starting state to every member.
static void share_start(void *user, float *weights, float *velocity, size_t n, int *state) {
    boundary_ctx *b = user;
    ds_gang_bcast_int(b->gang, state);
    if (*state < 0) return;
    ds_gang_bcast(b->gang, weights, n * sizeof *weights);
    ds_gang_bcast(b->gang, velocity, n * sizeof *velocity);
}

// Runs task message m on this rank: alone, or as a member of its gang. lw: rank 0's local
// worker (boundaries go through it), else NULL.
static void run_task_msg(const ds_worker_ctx *ctx, const task_msg *m, local_worker *lw,
                         double gang_timeout, result_msg *r) {
    if (m->k <= 1 && !m->grow) {
        run_one(ctx, m->task, 0, 1, r);
        return;
    }
    // A training: on its gang, or alone but asking at each boundary whether to grow.
    int member = 0;
    while (member < m->k && m->members[member] != ctx->rank) member++;
    ds_gang *g = NULL;
    if (m->k > 1) {
        int rc = ds_gang_create(&g, m->members, m->k, m->tag, ctx->plan->tasks[m->task].id, gang_timeout);
        if (rc) {
            *r = (result_msg){.task = m->task, .rank = ctx->rank, .member = member, .k = m->k, .status = rc};
            snprintf(r->msg, sizeof r->msg, "%s", ds_errmsg());
            return;
        }
    }
    boundary_ctx b = {.gang = g, .leader = member == 0, .task = m->task, .lw = lw};
    ds_train_gang tg = {.reducer = g ? ds_gang_reducer(g, ctx->job->chunk) : NULL,
                        .writer = member == 0, .at_boundary = at_boundary,
                        .share_start = g ? share_start : NULL, .user = &b};
    ds_worker_ctx c = *ctx;
    c.gang = &tg;
    run_one(&c, m->task, member, m->k > 1 ? m->k : 1, r);
    if (g) ds_gang_free(g);
}

static void *local_main(void *arg) {
    local_worker *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        while (w->task < 0 && !w->quit) pthread_cond_wait(&w->cv, &w->mu);
        if (w->quit) {
            pthread_mutex_unlock(&w->mu);
            return NULL;
        }
        task_msg m = w->msg;
        pthread_mutex_unlock(&w->mu);
        result_msg r;
        run_task_msg(w->ctx, &m, w, w->gang_timeout, &r);
        pthread_mutex_lock(&w->mu);
        w->res = r;
        w->has_result = 1;
        w->task = -1;
        pthread_mutex_unlock(&w->mu);
    }
}

// Starts the local worker thread; pthread_create's result (0: started).
static int local_start(local_worker *w, pthread_t *th) {
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    return pthread_create(th, NULL, local_main, w);
}

// Asks the local worker thread to quit (after its current task) and waits for it.
static void local_stop(local_worker *w, pthread_t th) {
    pthread_mutex_lock(&w->mu);
    w->quit = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(th, NULL);
}

// ---- Workers on ranks 1..N-1 ----

static void worker_loop(const ds_worker_ctx *ctx, double gang_timeout) {
    for (;;) {
        int flag = 0;
        MPI_Status st;
        while (!flag) {
            DS_MPI_CHECK(MPI_Iprobe(0, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st));
            if (!flag) nap(2000);
        }
        task_msg m;
        DS_MPI_CHECK(MPI_Recv(&m, (int)sizeof m, MPI_BYTE, 0, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        if (st.MPI_TAG == TAG_STOP) return;
        result_msg r;
        run_task_msg(ctx, &m, NULL, gang_timeout, &r);
        DS_MPI_CHECK(MPI_Send(&r, (int)sizeof r, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD));
    }
}

// ---- The coordinator ----

// A training's gang, as the coordinator sees it.
typedef struct {
    int k;           // ranks in its running segment (0: not running)
    int left;        // members that have not reported the segment's end
    int leader;      // world rank of member 0
    int epoch;       // epochs completed, as of its last boundary or start
    int at_boundary; // its leader waits for a decision after `epoch` epochs
    int grow_to;     // decided: its next segment runs on this many ranks (0: none)
    int segments;    // segments started in this session
    result_msg lead; // the leader's result of the segment
} gang_state;

typedef struct {
    const ds_plan *plan;
    const char *run_dir;
    uint8_t *state;
    int *waiting;     // unfinished dependencies per task
    int *rstart, *rdep; // dependents of task i: rdep[rstart[i] .. rstart[i+1])
    int *ready, nready; // tasks whose dependencies are done, not yet started
    int *worker_task; // per rank: the task it runs, -1 idle, -2 not a worker
    int *reserved;    // per rank: the task whose next segment it waits for, or -1
    gang_state *gs;   // per task
    int nranks;
    int rank0_gangs;  // rank 0's local worker may join gangs (MPI_THREAD_MULTIPLE)
    ds_sched_policy pol;
    int gang_tag;     // the last MPI_Comm_create_group tag handed out
    int dirty;        // something changed since the policy last decided
    double comm_s;    // --comm-ms
    double work_here, rank_seconds; // work (MFLOP) and seconds x ranks finished in this session
    ds_sched_item *items;
    ds_sched_grant *grants;
    progress pr;
    int stopping;     // no new tasks: a signal, a full disk, a journal failure
    int exit_status;
} coordinator;

// ---- Ready tasks: a plain list (the policy, ds_sched_decide, takes its items in any order) ----

static void push_ready(coordinator *c, int t) {
    if (c->plan->tasks[t].kind == DS_TASK_REDUCE) return; // the coordinator runs it at the end
    c->ready[c->nready++] = t;
    c->dirty = 1;
}

// Takes ready task t out of the list (the policy chose it).
static void remove_ready(coordinator *c, int t) {
    for (int i = 0; i < c->nready; i++)
        if (c->ready[i] == t) {
            c->ready[i] = c->ready[--c->nready];
            return;
        }
}

// Dependents lists, states and the first ready tasks, from the tasks already done.
static int init_tasks(coordinator *c, const uint8_t *done) {
    const ds_plan *p = c->plan;
    int n = p->ntasks;
    c->ready = calloc((size_t)n + 1, sizeof(int));
    if (!c->ready || ds_plan_dependents(p, &c->rstart, &c->rdep)) return DS_ENOMEM;
    for (int i = 0; i < n; i++) {
        c->state[i] = done[i] ? ST_DONE : ST_PENDING;
        c->waiting[i] = 0;
        for (int k = 0; k < p->tasks[i].ndeps; k++) c->waiting[i] += !done[p->tasks[i].deps[k]];
    }
    for (int i = 0; i < n; i++)
        if (c->state[i] == ST_PENDING && !c->waiting[i]) push_ready(c, i);
    return DS_OK;
}

static void block_dependents(coordinator *c, int task) {
    for (int k = c->rstart[task]; k < c->rstart[task + 1]; k++) {
        int j = c->rdep[k];
        if (c->state[j] != ST_PENDING) continue;
        c->state[j] = ST_BLOCKED;
        block_dependents(c, j);
    }
}

static void finish_task(coordinator *c, int task) {
    c->state[task] = ST_DONE;
    for (int k = c->rstart[task]; k < c->rstart[task + 1]; k++) {
        int j = c->rdep[k];
        if (--c->waiting[j] == 0 && c->state[j] == ST_PENDING) push_ready(c, j);
    }
}

// "(rank 1, 12.3 s)", "(rank 1, epochs 0-2 of 2, 40.1 s)", "(gang of 4 from rank 1, epochs
// 2-5 of 5, 30.2 s)": the format ds_sim_calibrate (ds_sched.h) reads back from sweep.log.
static void where_and_time(const result_msg *r, char *out, size_t cap) {
    char ep[64] = "";
    if (r->rep.epochs > 0)
        snprintf(ep, sizeof ep, "epochs %d-%d of %d, ", r->rep.epoch0, r->rep.epoch1, r->rep.epochs);
    if (r->k > 1) snprintf(out, cap, "(gang of %d from rank %d, %s%.1f s)", r->k, r->rank, ep, r->seconds);
    else snprintf(out, cap, "(rank %d, %s%.1f s)", r->rank, ep, r->seconds);
}

// The outcome of a task (for a gang: its leader's result at the end of the last segment).
static void handle_result(coordinator *c, const result_msg *r) {
    const ds_task *t = &c->plan->tasks[r->task];
    char wt[160];
    where_and_time(r, wt, sizeof wt);
    if (r->status == DS_OK) {
        ds_journal_entry e;
        snprintf(e.id, sizeof e.id, "%s", t->id);
        snprintf(e.file, sizeof e.file, "%s", t->file);
        e.bytes = r->bytes;
        e.crc = r->crc;
        int rc = ds_journal_append(c->run_dir, &e);
        if (rc) {
            c->state[r->task] = ST_FAILED;
            c->pr.nfailed++;
            say(&c->pr, "FAILED %s: its output is written but cannot be recorded: %s", t->id,
                ds_errmsg());
            c->stopping = 1;
            c->exit_status = 1;
            return;
        }
        finish_task(c, r->task);
        c->pr.ndone++;
        c->pr.cost_done += t->cost;
        c->pr.cost_done_here += t->cost;
        char e2[64];
        eta(&c->pr, e2, sizeof e2);
        say(&c->pr, "done   %s %s | %d/%d done, %d running | %s", t->id, wt, c->pr.ndone,
            c->pr.ntasks, c->pr.nrunning, e2);
    } else if (r->status == DS_ESTOP) {
        c->state[r->task] = ST_PENDING;
        push_ready(c, r->task);
        say(&c->pr, "stopped %s (rank %d): %s", t->id, r->rank, r->msg);
        c->stopping = 1;
    } else {
        c->state[r->task] = ST_FAILED;
        c->pr.nfailed++;
        say(&c->pr, "FAILED %s %s: %s", t->id, wt, r->msg);
        block_dependents(c, r->task);
        c->exit_status = 1;
        // A full or unwritable disk fails every task that follows: stop handing them out.
        if (r->status == DS_ENOSPC || r->status == DS_EIO) {
            if (!c->stopping)
                say(&c->pr, "not starting more tasks (%s); the completed ones are kept",
                    r->status == DS_ENOSPC ? "the results folder is full" : "an I/O error");
            c->stopping = 1;
        }
    }
}

// Sends task t to ranks[0..k) (increasing): one rank, or a gang. A later segment of a training
// (after a regang) says "grow" instead of "start".
static void assign(coordinator *c, int task, const int *ranks, int k, local_worker *lw) {
    const ds_task *t = &c->plan->tasks[task];
    gang_state *g = &c->gs[task];
    task_msg m = {.task = task, .k = k, .tag = k > 1 ? 100 + ++c->gang_tag % 30000 : 0,
                  .grow = t->kind == DS_TASK_TRAIN && c->pol.gangs && c->pol.grow};
    for (int i = 0; i < k; i++) m.members[i] = ranks[i];
    c->state[task] = ST_RUNNING;
    *g = (gang_state){.k = k, .left = k, .leader = ranks[0], .epoch = g->epoch,
                      .segments = g->segments + 1};
    c->pr.nrunning++;
    c->dirty = 1;
    char who[1200];
    if (k == 1) {
        snprintf(who, sizeof who, "rank %d", ranks[0]);
    } else {
        int n = snprintf(who, sizeof who, "ranks ");
        for (int i = 0; i < k && n < (int)sizeof who - 16; i++)
            n += snprintf(who + n, sizeof who - n, "%s%d", i ? "," : "", ranks[i]);
        snprintf(who + n, sizeof who - n, " (gang of %d)", k);
    }
    if (g->segments > 1)
        say(&c->pr, "grow   %s [%s] on %s, from epoch %d", t->id, ds_task_kind_name(t->kind), who, g->epoch);
    else
        say(&c->pr, "start  %s [%s] on %s", t->id, ds_task_kind_name(t->kind), who);
    for (int i = 0; i < k; i++) {
        c->worker_task[ranks[i]] = task;
        c->reserved[ranks[i]] = -1;
        if (ranks[i] == 0) {
            pthread_mutex_lock(&lw->mu);
            lw->msg = m;
            lw->task = task;
            pthread_cond_signal(&lw->cv);
            pthread_mutex_unlock(&lw->mu);
        } else {
            DS_MPI_CHECK(MPI_Send(&m, (int)sizeof m, MPI_BYTE, ranks[i], TAG_TASK, MPI_COMM_WORLD));
        }
    }
}

// One member of task r->task reports the end of its segment. When all have, the segment's
// outcome is the leader's: a regang sends the task to its next gang at once (its ranks are
// reserved), anything else is the task's result.
static void handle_member_result(coordinator *c, const result_msg *r, local_worker *lw) {
    int task = r->task;
    gang_state *g = &c->gs[task];
    c->worker_task[r->rank] = -1;
    c->dirty = 1;
    if (g->grow_to && r->status == DS_EREGANG) c->reserved[r->rank] = task; // back in the next segment
    if (r->member == 0) g->lead = *r;
    if (--g->left > 0) return;
    c->pr.nrunning--;
    result_msg lead = g->lead;
    lead.rank = g->leader;
    if (lead.status == DS_OK || lead.status == DS_EREGANG) { // for rate()
        const ds_task *t = &c->plan->tasks[task];
        c->work_here += lead.rep.epochs > 0
                            ? t->cost * (lead.rep.epoch1 - lead.rep.epoch0) / lead.rep.epochs : t->cost;
        c->rank_seconds += lead.seconds * g->k;
    }
    int grow_to = g->grow_to;
    g->k = 0;
    g->grow_to = 0;
    if (lead.status == DS_EREGANG && grow_to && !c->stopping) {
        char wt[160];
        where_and_time(&lead, wt, sizeof wt);
        say(&c->pr, "regang %s %s: next on %d ranks", c->plan->tasks[task].id, wt, grow_to);
        g->epoch = lead.rep.epoch1;
        int ranks[GANG_CAP], k = 0;
        for (int i = 0; i < c->nranks && k < grow_to; i++)
            if (c->reserved[i] == task && c->worker_task[i] == -1) ranks[k++] = i;
        assign(c, task, ranks, k, lw);
        return;
    }
    for (int i = 0; i < c->nranks; i++)
        if (c->reserved[i] == task) c->reserved[i] = -1;
    if (lead.status == DS_EREGANG) { // stopping meanwhile: it resumes in a later run
        lead.status = DS_ESTOP;
        snprintf(lead.msg, sizeof lead.msg, "%s: stopped after epoch %d (checkpoint saved)",
                 c->plan->tasks[task].id, lead.rep.epoch1);
    }
    handle_result(c, &lead);
}

// The leader of a gang (through MPI or the local thread) waits after an epoch.
static void handle_boundary(coordinator *c, const boundary_msg *b) {
    gang_state *g = &c->gs[b->task];
    g->at_boundary = 1;
    g->epoch = b->epoch;
    c->dirty = 1;
}

static void reply_boundary(coordinator *c, int task, int decision, local_worker *lw) {
    gang_state *g = &c->gs[task];
    g->at_boundary = 0;
    if (g->leader == 0) {
        pthread_mutex_lock(&lw->mu);
        lw->decision = decision;
        lw->has_decision = 1;
        lw->asks = 0;
        pthread_cond_broadcast(&lw->cv);
        pthread_mutex_unlock(&lw->mu);
    } else {
        DS_MPI_CHECK(MPI_Send(&decision, 1, MPI_INT, g->leader, TAG_DECISION, MPI_COMM_WORLD));
    }
}

static int is_idle(const coordinator *c, int r) { return c->worker_task[r] == -1 && c->reserved[r] == -1; }

// The most ranks task t could use now: 1, or for a training its chunks and --gang-max (a
// training alone on rank 0 without MPI_THREAD_MULTIPLE cannot grow).
static int max_ranks(const coordinator *c, int task) {
    const ds_task *t = &c->plan->tasks[task];
    if (!c->pol.gangs) return 1;
    const gang_state *g = &c->gs[task];
    if (g->k == 1 && g->leader == 0 && !c->rank0_gangs) return 1;
    int usable = c->nranks - (c->rank0_gangs && c->worker_task[0] != -2 ? 0 : 1);
    int m = ds_sched_max_ranks(t, c->pol.gang_max);
    if (m > usable) m = usable;
    if (m > GANG_CAP) m = GANG_CAP;
    return m < 1 ? 1 : m;
}

// Up to k idle ranks into ranks[] (increasing); returns how many. gang: they form or join a gang
// (rank 0 only with MPI_THREAD_MULTIPLE). A task of one rank goes to rank 0 first, unless it is
// a training that rank 0 could not let grow.
static int pick_ranks(const coordinator *c, int task, int k, int gang, int *ranks) {
    int train = c->plan->tasks[task].kind == DS_TASK_TRAIN && c->pol.gangs;
    int zero = is_idle(c, 0) && (!gang || c->rank0_gangs);
    int zero_last = zero && !gang && train && !c->rank0_gangs; // keep rank 0 for other tasks
    int n = 0;
    for (int r = 0; r < c->nranks && n < k; r++)
        if (is_idle(c, r) && (r != 0 || (zero && !zero_last))) ranks[n++] = r;
    if (!n && zero_last) ranks[n++] = 0; // only rank 0 is free: better than waiting
    return n;
}

// The policy's inputs it shares with the simulator (ds_sched.h): the communication per step and
// extra gang rank (--comm-ms, the prediction's), the work per second of one rank (MFLOP/s: this
// session's finished work over its rank-seconds, or the prediction's default 64 GFLOP/s before
// any), and the work not yet done (trainings: their epochs left).

static double rate(const coordinator *c) {
    return c->rank_seconds > 0 && c->work_here > 0 ? c->work_here / c->rank_seconds : 64000;
}

static double work_left(const coordinator *c) {
    const ds_plan *p = c->plan;
    double w = 0;
    for (int i = 0; i < p->ntasks; i++) {
        const ds_task *t = &p->tasks[i];
        if (c->state[i] == ST_DONE || t->kind == DS_TASK_REDUCE) continue;
        w += c->gs[i].k && t->epochs > 0 ? t->cost * (t->epochs - c->gs[i].epoch) / t->epochs : t->cost;
    }
    return w;
}

// Asks the policy (ds_sched_decide) what to start and which gang at a boundary grows, and
// applies it; every boundary waiting gets its answer.
static void schedule(coordinator *c, local_worker *lw) {
    const ds_plan *p = c->plan;
    if (!c->dirty) return;
    c->dirty = 0;
    if (c->stopping) {
        for (int t = 0; t < p->ntasks; t++)
            if (c->gs[t].k && c->gs[t].at_boundary) reply_boundary(c, t, DS_ESTOP, lw);
        return;
    }
    int idle = 0, n = 0;
    for (int r = 0; r < c->nranks; r++) idle += is_idle(c, r);
    for (int i = 0; i < c->nready; i++) {
        ds_sched_item *it = &c->items[n++];
        *it = ds_sched_item_of(&p->tasks[c->ready[i]], 0, 0, 0, c->pol.gang_max, c->comm_s, rate(c));
        it->max_ranks = max_ranks(c, c->ready[i]);
    }
    for (int i = 0; i < p->ntasks; i++) {
        const gang_state *g = &c->gs[i];
        const ds_task *t = &p->tasks[i];
        if (!g->k || g->grow_to || t->kind != DS_TASK_TRAIN) continue;
        int m = max_ranks(c, i);
        // Only a gang with a boundary ahead can grow (none after the last epoch's start).
        if (!g->at_boundary && (m <= g->k || g->epoch + 1 >= t->epochs)) continue;
        ds_sched_item *it = &c->items[n++];
        *it = ds_sched_item_of(t, g->k, g->epoch, g->at_boundary, c->pol.gang_max, c->comm_s, rate(c));
        it->max_ranks = m;
    }
    c->pol.pool = work_left(c) / c->nranks;
    int ng = idle > 0 && n > 0 ? ds_sched_decide(&c->pol, idle, c->items, n, c->grants) : 0;
    for (int i = 0; i < ng; i++) {
        const ds_sched_grant *gr = &c->grants[i];
        gang_state *g = &c->gs[gr->task];
        int ranks[GANG_CAP];
        if (!g->k && c->state[gr->task] == ST_PENDING && gr->ranks >= 1) { // a ready task starts
            int want = gr->ranks > GANG_CAP ? GANG_CAP : gr->ranks;
            int k = pick_ranks(c, gr->task, want, want > 1, ranks);
            if (!k) continue;
            remove_ready(c, gr->task);
            assign(c, gr->task, ranks, k, lw);
        } else if (g->k && g->at_boundary && gr->ranks > g->k) { // a gang grows: end the segment
            int extra = pick_ranks(c, gr->task, gr->ranks - g->k, 1, ranks);
            if (extra < 1) continue;
            for (int j = 0; j < extra; j++) c->reserved[ranks[j]] = gr->task;
            g->grow_to = g->k + extra;
            reply_boundary(c, gr->task, DS_EREGANG, lw);
        }
    }
    for (int t = 0; t < p->ntasks; t++) // the other boundaries go on as they are
        if (c->gs[t].k && c->gs[t].at_boundary) reply_boundary(c, t, DS_OK, lw);
}

// Messages from the workers (results, boundaries) and from the local thread.
static int poll_messages(coordinator *c, local_worker *lw) {
    int active = 0, flag = 0;
    MPI_Status st;
    DS_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, TAG_RESULT, MPI_COMM_WORLD, &flag, &st));
    if (flag) {
        result_msg r;
        DS_MPI_CHECK(MPI_Recv(&r, (int)sizeof r, MPI_BYTE, st.MPI_SOURCE, TAG_RESULT,
                              MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        r.rank = st.MPI_SOURCE;
        handle_member_result(c, &r, lw);
        active = 1;
    }
    DS_MPI_CHECK(MPI_Iprobe(MPI_ANY_SOURCE, TAG_BOUNDARY, MPI_COMM_WORLD, &flag, &st));
    if (flag) {
        boundary_msg b;
        DS_MPI_CHECK(MPI_Recv(&b, (int)sizeof b, MPI_BYTE, st.MPI_SOURCE, TAG_BOUNDARY,
                              MPI_COMM_WORLD, MPI_STATUS_IGNORE));
        handle_boundary(c, &b);
        active = 1;
    }
    if (lw) {
        result_msg r;
        boundary_msg b;
        int got = 0, asks = 0;
        pthread_mutex_lock(&lw->mu);
        if (lw->has_result) {
            r = lw->res;
            lw->has_result = 0;
            got = 1;
        }
        if (lw->asks == 1) {
            b = lw->bnd;
            lw->asks = 2; // seen; the reply clears it
            asks = 1;
        }
        pthread_mutex_unlock(&lw->mu);
        if (got) {
            r.rank = 0;
            handle_member_result(c, &r, lw);
            active = 1;
        }
        if (asks) {
            handle_boundary(c, &b);
            active = 1;
        }
    }
    return active;
}

static int coordinate(coordinator *c, local_worker *lw) {
    double last_bar = 0;
    c->dirty = 1;
    for (;;) {
        if (stop_requested && !c->stopping) {
            say(&c->pr, "stop requested by a signal: no new tasks; trainings stop after their "
                "current epoch (checkpointed)");
            c->stopping = 1;
            c->dirty = 1;
            if (!c->exit_status) c->exit_status = 3;
        }
        if (c->stopping) c->dirty = 1; // answer every boundary with a stop
        schedule(c, lw);
        int active = poll_messages(c, lw);
        if (c->pr.nrunning == 0 && (c->stopping || c->nready == 0)) break;
        if (!active) {
            nap(2000);
            if (c->pr.bar && now_s() - last_bar > 1) {
                draw_bar(&c->pr);
                last_bar = now_s();
            }
        }
    }
    if (c->pr.bar_shown) {
        printf("\r\033[K");
        fflush(stdout);
    }
    return c->exit_status;
}

// ---- Setup: the job, the data, the run folder and the plan on every rank ----

// What a rank holds for the whole sweep.
typedef struct {
    int rank, size;
    ds_job job;
    ds_run run;            // rank 0: the run folder and its lock; the others: their data's CRC
    ds_dataset train, test;
    ds_plan plan;
    setup_msg s;           // rank 0's run folder and data, as every rank received them
    int threads;           // engine threads per worker
} sweep;

enum {
    SETUP_OK,     // every rank goes on to the tasks
    SETUP_FAILED, // the ranks agree to fail (message printed by rank 0), and leave together
    SETUP_LEAVE   // no job or no run folder: every rank leaves at once (message printed)
};

static void report_setup_failure(int rank, const char *msg) {
    if (rank == 0) fprintf(stderr, "distill_sweep: %s\n", msg);
}

// Rank 0 finds and loads the data and opens the run folder; w->s says how it went.
static void open_run(sweep *w, int new_run) {
    setup_msg *s = &w->s;
    int rc = ds_run_load_data(&w->job, &w->run, &w->train, &w->test, stdout);
    if (!rc) { // a job whose plan is impossible creates no run folder
        ds_plan check;
        rc = ds_plan_build(&check, &w->job, w->run.train_n, w->run.test_n);
        if (!rc) ds_plan_free(&check);
    }
    if (!rc) rc = ds_run_open(&w->job, &w->run, new_run, stdout);
    s->status = rc;
    if (rc) {
        report_setup_failure(0, ds_errmsg());
        return;
    }
    s->train_n = w->run.train_n;
    s->test_n = w->run.test_n;
    s->data_crc = w->run.data_crc;
    snprintf(s->dataset, sizeof s->dataset, "%s", w->run.dataset);
    snprintf(s->data_dir, sizeof s->data_dir, "%s", w->run.data_dir);
    snprintf(s->run_dir, sizeof s->run_dir, "%s", w->run.dir);
}

// Ranks 1..N-1 load the data rank 0 found and check that it is the same. 1 if they could.
static int load_worker_data(sweep *w) {
    ds_job j2 = w->job;
    snprintf(j2.dataset, sizeof j2.dataset, "%s", w->s.dataset);
    snprintf(j2.data_dir, sizeof j2.data_dir, "%s", w->s.data_dir);
    if (ds_run_load_data(&j2, &w->run, &w->train, &w->test, NULL)) {
        fprintf(stderr, "distill_sweep: rank %d: %s\n", w->rank, ds_errmsg());
        return 0;
    }
    if (w->run.data_crc != w->s.data_crc) {
        fprintf(stderr, "distill_sweep: rank %d: the data in %s differs from rank 0's\n",
                w->rank, w->s.data_dir);
        return 0;
    }
    return 1;
}

// Everything a rank needs before the first task. Returns SETUP_*.
static int setup(sweep *w, const ds_sweep_options *o) {
    if (share_job(o->job_path, w->rank, &w->job)) {
        report_setup_failure(w->rank, ds_errmsg());
        return SETUP_LEAVE;
    }
    ds_engine_set_default_kind(w->job.engine); // every engine of this rank computes as the job says
    if (w->rank == 0) open_run(w, o->new_run);
    quiet_bcast(&w->s, (int)sizeof w->s, MPI_BYTE);
    if (w->s.status) return SETUP_LEAVE;
    int ok = w->rank == 0 || load_worker_data(w), all_ok;
    DS_MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    int rc = DS_EIO;
    if (all_ok) {
        rc = ds_plan_build(&w->plan, &w->job, w->s.train_n, w->s.test_n);
        if (rc) report_setup_failure(w->rank, ds_errmsg());
    } else {
        report_setup_failure(w->rank, "a worker could not load the data (see its message above)");
    }
    w->threads = o->threads > 0 ? o->threads : w->job.threads;
    if (!rc && w->threads == 0) w->threads = auto_threads();
    return rc ? SETUP_FAILED : SETUP_OK;
}

static void sweep_free(sweep *w) {
    ds_plan_free(&w->plan);
    ds_run_close(&w->run);
    ds_dataset_free(&w->train);
    ds_dataset_free(&w->test);
    ds_job_free(&w->job);
}

// ---- Rank 0: the coordinator's state ----

static void out_of_memory(void) {
    fprintf(stderr, "distill_sweep: out of memory\n");
    MPI_Abort(MPI_COMM_WORLD, 1);
}

// The coordinator's arrays, progress and log (<run>/sweep.log), starting from the tasks the
// journal says are done. Returns 1 if the journal cannot be read (message printed), else 0.
static int coordinator_open(coordinator *c, const sweep *w, int progress_bar) {
    const ds_plan *plan = &w->plan;
    *c = (coordinator){.plan = plan, .run_dir = w->s.run_dir, .nranks = w->size};
    c->state = calloc((size_t)plan->ntasks, 1);
    c->waiting = calloc((size_t)plan->ntasks, sizeof(int));
    c->worker_task = calloc((size_t)w->size, sizeof(int));
    c->reserved = calloc((size_t)w->size, sizeof(int));
    c->gs = calloc((size_t)plan->ntasks, sizeof *c->gs);
    c->items = calloc((size_t)plan->ntasks, sizeof *c->items);
    c->grants = calloc((size_t)plan->ntasks, sizeof *c->grants);
    uint8_t *done = calloc((size_t)plan->ntasks, 1);
    if (!c->state || !c->waiting || !c->worker_task || !c->reserved || !c->gs || !c->items ||
        !c->grants || !done)
        out_of_memory();
    int status = 0;
    if (ds_journal_scan(plan, w->s.run_dir, done, stdout)) {
        fprintf(stderr, "distill_sweep: %s\n", ds_errmsg());
        status = 1;
    }
    char logpath[700];
    snprintf(logpath, sizeof logpath, "%s/sweep.log", w->s.run_dir);
    c->pr.log = fopen(logpath, "a");
    c->pr.t0 = now_s();
    c->pr.bar = progress_bar < 0 ? want_bar() : progress_bar;
    c->pr.ntasks = plan->ntasks - 1; // the reducer is not counted
    if (init_tasks(c, done)) out_of_memory();
    for (int i = 0; i < plan->ntasks; i++) {
        if (plan->tasks[i].kind != DS_TASK_REDUCE) c->pr.cost_total += plan->tasks[i].cost;
        if (done[i]) {
            c->pr.cost_done += plan->tasks[i].cost;
            c->pr.ndone++;
        }
    }
    for (int r = 0; r < w->size; r++) c->worker_task[r] = c->reserved[r] = -1;
    free(done);
    return status;
}

static void coordinator_close(coordinator *c) {
    if (c->pr.log) fclose(c->pr.log);
    free(c->state);
    free(c->waiting);
    free(c->rstart);
    free(c->rdep);
    free(c->ready);
    free(c->worker_task);
    free(c->reserved);
    free(c->gs);
    free(c->items);
    free(c->grants);
}

// ---- Rank 0: coordinating beside the local worker thread ----

static void announce(progress *p, const sweep *w, int local) {
    say(p, "distill_sweep %s: job %s, run %s, %s (%d training, %d test samples)",
        ds_code_version(), w->job.path, w->s.run_dir, w->s.dataset, w->s.train_n, w->s.test_n);
    say(p, "%d rank(s), %d worker(s)%s, %d engine thread(s) each; %d tasks, %d already done%s",
        w->size, w->size - 1 + local, local && w->size > 1 ? " (rank 0 too)" : "", w->threads,
        p->ntasks, p->ndone, p->ndone ? " (resuming)" : "");
    // A training's threads work on whole chunks: more threads than a member's chunks idle.
    int batch = w->job.batch < w->s.train_n ? w->job.batch : w->s.train_n;
    int chunks = ds_chunk_count(batch, w->job.chunk);
    if (w->threads > chunks)
        say(p, "note: a training uses at most %d of the %d engine threads of a rank (%d chunks of %d "
            "per batch of %d; a gang member uses at most its share of them); attacks use all",
            chunks, w->threads, chunks, w->job.chunk, batch);
}

// Runs the coordinator with the local worker thread beside it (if `local`) until the tasks are
// done or the sweep stops. Returns the exit status so far.
static int coordinate_with_local(coordinator *c, const ds_worker_ctx *ctx, int local,
                                 double gang_timeout) {
    local_worker lw = {.task = -1, .ctx = ctx, .gang_timeout = gang_timeout};
    pthread_t th;
    if (local && local_start(&lw, &th)) {
        say(&c->pr, "cannot start the local worker thread; rank 0 only coordinates");
        local = 0;
        c->worker_task[0] = -2;
        if (c->nranks == 1) MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int status = coordinate(c, local ? &lw : NULL);
    if (local) local_stop(&lw, th);
    return status;
}

// ---- Rank 0: finish ----

static void stop_workers(int size) {
    for (int r = 1; r < size; r++) {
        int none = -1;
        DS_MPI_CHECK(MPI_Send(&none, 1, MPI_INT, r, TAG_STOP, MPI_COMM_WORLD));
    }
}

// After the coordinator: the reducer if every task is done, else what is left. Returns the exit
// status.
static int finish(coordinator *c, const char *run_dir, int status) {
    if (!status) {
        say(&c->pr, "all %d tasks done; reducing into %s", c->pr.ntasks, run_dir);
        double t0 = now_s();
        if (ds_reduce_run(run_dir)) {
            say(&c->pr, "FAILED reduce: %s (the task results are complete; fix and run "
                "distill_sweep --reduce %s)", ds_errmsg(), run_dir);
            return 1;
        }
        say(&c->pr, "done   reduce (%.1f s): results in %s", now_s() - t0, run_dir);
        return 0;
    }
    int failed = 0, blocked = 0, done_n = 0;
    for (int i = 0; i < c->plan->ntasks; i++) {
        failed += c->state[i] == ST_FAILED;
        blocked += c->state[i] == ST_BLOCKED && c->plan->tasks[i].kind != DS_TASK_REDUCE;
        done_n += c->state[i] == ST_DONE;
    }
    say(&c->pr, "%s: %d of %d tasks done, %d failed, %d waiting on failed tasks. Completed "
        "results are kept; rerun the same command to resume.",
        status == 3 ? "stopped" : "incomplete", done_n, c->pr.ntasks, failed, blocked);
    return status;
}

static double gang_timeout(const ds_sweep_options *o) { return o->gang_timeout > 0 ? o->gang_timeout : 600; }

// Rank 0 from the journal to the reducer; the workers are told to stop in every case.
static int coordinator_main(const sweep *w, const ds_sweep_options *o, const ds_worker_ctx *ctx) {
    coordinator c;
    int status = coordinator_open(&c, w, o->progress_bar);
    int local = !o->coordinator_only || w->size == 1;
    if (!local) c.worker_task[0] = -2;
    int gang_max = o->gang_max > 0 ? o->gang_max : 16;
    c.pol = (ds_sched_policy){.gangs = gang_max > 1, .grow = 1, .gang_max = gang_max};
    c.rank0_gangs = o->rank0_gangs;
    c.comm_s = o->comm_s > 0 ? o->comm_s : 0.002;
    if (!status) {
        announce(&c.pr, w, local);
        status = coordinate_with_local(&c, ctx, local, gang_timeout(o));
    }
    stop_workers(w->size);
    status = finish(&c, w->s.run_dir, status);
    coordinator_close(&c);
    return status;
}

// ---- Entry point ----

int ds_sweep_run(const ds_sweep_options *o) {
    sweep w = {.run = {.lock_fd = -1}};
    DS_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &w.rank));
    DS_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &w.size));
    signal(SIGUSR1, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    int status = setup(&w, o);
    if (status == SETUP_LEAVE) {
        sweep_free(&w);
        return 1;
    }
    ds_worker_ctx ctx = {.job = &w.job, .plan = &w.plan, .run_dir = w.s.run_dir,
                         .train = &w.train, .test = &w.test, .threads = w.threads,
                         .stop = &stop_requested, .rank = w.rank};
    if (status == SETUP_OK && w.rank != 0) worker_loop(&ctx, gang_timeout(o));
    if (status == SETUP_OK && w.rank == 0) status = coordinator_main(&w, o, &ctx);
    sweep_free(&w);
    // Everybody leaves together, with rank 0's verdict.
    quiet_bcast(&status, 1, MPI_INT);
    return status;
}
