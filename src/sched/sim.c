// The simulator (ds_sched.h): the plan on identical ranks, event by event, with the real policy.
//
// Events are a min-heap of (time, task): each running task has exactly one, its end or (a
// training) its next epoch boundary. All events of one moment are handled, then the policy is
// called once over the ready tasks and the running trainings, and its grants applied.
#include "ds_sched.h"

#include "ds_error.h"

#include <stdlib.h>
#include <string.h>

enum { S_WAITING, S_READY, S_RUNNING, S_DONE };

typedef struct {
    double t;
    int task;
} event;

typedef struct {
    const ds_plan *plan;
    const ds_sim_input *in;
    const ds_sched_policy *pol;
    int nranks, used;     // ranks in the machine, ranks running a task
    unsigned char *state; // [ntasks] S_*
    unsigned char *done;  // [ntasks] 1 when S_DONE (the observer's view)
    int *waiting;         // [ntasks] unfinished dependencies
    int *rstart, *rdep;   // dependents of task i: rdep[rstart[i] .. rstart[i+1])
    int *ranks;           // [ntasks] gang of a running task
    int *epochs_done;     // [ntasks] trainings: epochs finished
    unsigned char *at_boundary;
    int *ready, nready;   // ready tasks, in the order they became ready
    int *train, ntrain;   // running trainings
    event *heap;
    int nheap;
    ds_sched_item *items;
    ds_sched_grant *grants;
    double *chain;        // [ntasks] longest chain of one-rank seconds ending with task i
    int left;             // tasks (not the reducer) not yet done
    double work_left;     // cost of the unfinished tasks (trainings: of their epochs left)
} sim;

static int simulated(const ds_task *t) { return t->kind != DS_TASK_REDUCE; }
static int by_epoch(const ds_task *t) { return t->kind == DS_TASK_TRAIN && t->epochs >= 1; }

// ---- Event heap ----

static int earlier(const event *a, const event *b) {
    return a->t < b->t || (a->t == b->t && a->task < b->task);
}

static void heap_push(sim *s, double t, int task) {
    int i = s->nheap++;
    s->heap[i] = (event){t, task};
    while (i > 0 && earlier(&s->heap[i], &s->heap[(i - 1) / 2])) {
        event e = s->heap[i];
        s->heap[i] = s->heap[(i - 1) / 2];
        s->heap[(i - 1) / 2] = e;
        i = (i - 1) / 2;
    }
}

static event heap_pop(sim *s) {
    event top = s->heap[0];
    s->heap[0] = s->heap[--s->nheap];
    for (int i = 0;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < s->nheap && earlier(&s->heap[l], &s->heap[m])) m = l;
        if (r < s->nheap && earlier(&s->heap[r], &s->heap[m])) m = r;
        if (m == i) break;
        event e = s->heap[i];
        s->heap[i] = s->heap[m];
        s->heap[m] = e;
        i = m;
    }
    return top;
}

// ---- Model of a task's time ----

// One epoch of training task i on a gang of k ranks.
static double epoch_seconds(const sim *s, int i, int k) {
    const ds_task *t = &s->plan->tasks[i];
    return (s->in->seconds[i] / t->epochs + t->steps * s->in->comm_s * (k - 1)) / k;
}

// ---- State changes ----

static void remove_from(int *list, int *n, int task) {
    for (int k = 0; k < *n; k++)
        if (list[k] == task) {
            memmove(list + k, list + k + 1, (size_t)(*n - k - 1) * sizeof *list);
            (*n)--;
            return;
        }
}

static void finish(sim *s, int i) {
    s->state[i] = S_DONE;
    s->done[i] = 1;
    s->used -= s->ranks[i];
    s->ranks[i] = 0;
    s->left--;
    if (s->plan->tasks[i].kind == DS_TASK_TRAIN) remove_from(s->train, &s->ntrain, i);
    for (int k = s->rstart[i]; k < s->rstart[i + 1]; k++) {
        int j = s->rdep[k];
        if (--s->waiting[j] == 0 && simulated(&s->plan->tasks[j])) {
            s->state[j] = S_READY;
            s->ready[s->nready++] = j;
        }
    }
}

// The event of task i at time now: its end, or an epoch boundary.
static void on_event(sim *s, int i) {
    const ds_task *t = &s->plan->tasks[i];
    s->work_left -= by_epoch(t) ? t->cost / t->epochs : t->cost;
    if (!by_epoch(t) || ++s->epochs_done[i] == t->epochs)
        finish(s, i);
    else
        s->at_boundary[i] = 1;
}

// (The ready list drops started tasks after each call: drop_started.)
static void start(sim *s, int i, int k, double now) {
    s->state[i] = S_RUNNING;
    s->ranks[i] = k;
    s->used += k;
    if (by_epoch(&s->plan->tasks[i])) {
        s->train[s->ntrain++] = i;
        heap_push(s, now + epoch_seconds(s, i, k), i);
    } else {
        heap_push(s, now + s->in->seconds[i], i);
    }
}

// The ready list without the tasks just started, in its order: one pass per call.
static void drop_started(sim *s) {
    int n = 0;
    for (int k = 0; k < s->nready; k++)
        if (s->state[s->ready[k]] == S_READY) s->ready[n++] = s->ready[k];
    s->nready = n;
}

// ---- One call of the policy ----

static ds_sched_item item_of(const sim *s, int i) {
    double sec = s->in->seconds[i], rate = sec > 0 ? s->plan->tasks[i].cost / sec : 0;
    return ds_sched_item_of(&s->plan->tasks[i], s->ranks[i], s->epochs_done[i], s->at_boundary[i],
                            s->pol->gang_max, s->in->comm_s, rate);
}

static int gather_items(const sim *s) {
    int n = 0;
    for (int k = 0; k < s->nready; k++) s->items[n++] = item_of(s, s->ready[k]);
    if (s->pol->gangs && s->pol->grow)
        for (int k = 0; k < s->ntrain; k++) s->items[n++] = item_of(s, s->train[k]);
    return n;
}

// Applies one grant; DS_EINVAL if the policy broke its contract (never, for ds_sched_decide).
static int apply(sim *s, const ds_sched_grant *g, double now) {
    int i = g->task;
    if (i < 0 || i >= s->plan->ntasks) return ds_fail(DS_EINVAL, "simulator: grant to task %d", i);
    if (s->state[i] == S_READY && g->ranks >= 1 && g->reserved == 0) {
        start(s, i, g->ranks, now);
    } else if (s->state[i] == S_RUNNING && g->ranks > s->ranks[i]) {
        if (s->at_boundary[i]) {
            s->used += g->ranks - s->ranks[i];
            s->ranks[i] = g->ranks;
        } // else: reserved, the ranks stay idle until the next call
    } else {
        return ds_fail(DS_EINVAL, "simulator: bad grant of %d ranks to %s", g->ranks,
                       s->plan->tasks[i].id);
    }
    return DS_OK;
}

static int decide(sim *s, double now) {
    int n = gather_items(s);
    int idle = s->nranks - s->used;
    ds_sched_policy pol = *s->pol;
    pol.pool = s->work_left / s->nranks;
    int ng = ds_sched_decide(&pol, idle, s->items, n, s->grants);
    if (ng < 0) return ng;
    if (s->in->observe) {
        ds_sim_step st = {now, s->nranks, idle, s->items, n, s->grants, ng, s->done, s->ranks};
        s->in->observe(s->in->observe_ctx, &st);
    }
    for (int k = 0; k < ng; k++) {
        int rc = apply(s, &s->grants[k], now);
        if (rc) return rc;
    }
    drop_started(s);
    if (s->used > s->nranks) return ds_fail(DS_EINVAL, "simulator: more ranks used than exist");
    // The trainings at a boundary run their next epoch on their (possibly grown) gang.
    for (int k = 0; k < s->ntrain; k++) {
        int i = s->train[k];
        if (!s->at_boundary[i]) continue;
        s->at_boundary[i] = 0;
        heap_push(s, now + epoch_seconds(s, i, s->ranks[i]), i);
    }
    return DS_OK;
}

// ---- Setup ----

static int sim_alloc(sim *s, const ds_plan *p) {
    size_t n = (size_t)p->ntasks + 1;
    if (ds_plan_dependents(p, &s->rstart, &s->rdep)) return DS_ENOMEM;
    s->state = calloc(n, 1);
    s->done = calloc(n, 1);
    s->at_boundary = calloc(n, 1);
    s->waiting = calloc(n, sizeof(int));
    s->ranks = calloc(n, sizeof(int));
    s->epochs_done = calloc(n, sizeof(int));
    s->ready = calloc(n, sizeof(int));
    s->train = calloc(n, sizeof(int));
    s->heap = calloc(n, sizeof(event));
    s->items = calloc(n, sizeof(ds_sched_item));
    s->grants = calloc(n, sizeof(ds_sched_grant));
    s->chain = calloc(n, sizeof(double));
    if (!s->state || !s->done || !s->at_boundary || !s->waiting || !s->ranks || !s->epochs_done || !s->ready || !s->train || !s->heap || !s->items ||
        !s->grants || !s->chain)
        return ds_fail(DS_ENOMEM, "simulator: out of memory");
    return DS_OK;
}

static void sim_free(sim *s) {
    free(s->state);
    free(s->done);
    free(s->at_boundary);
    free(s->waiting);
    free(s->rstart);
    free(s->rdep);
    free(s->ranks);
    free(s->epochs_done);
    free(s->ready);
    free(s->train);
    free(s->heap);
    free(s->items);
    free(s->grants);
    free(s->chain);
}

// Dependency counts and the first ready tasks.
static void sim_init(sim *s) {
    const ds_plan *p = s->plan;
    for (int i = 0; i < p->ntasks; i++) {
        s->waiting[i] = p->tasks[i].ndeps;
        if (!simulated(&p->tasks[i])) continue;
        s->left++;
        s->work_left += p->tasks[i].cost;
        if (s->waiting[i] == 0) {
            s->state[i] = S_READY;
            s->ready[s->nready++] = i;
        }
    }
}

// Work and critical path in one-rank seconds (dependencies come first in the plan).
static void totals(const ds_plan *p, const double *sec, double *chain, ds_sim_result *out) {
    out->work = out->critical_path = 0;
    for (int i = 0; i < p->ntasks; i++) {
        const ds_task *t = &p->tasks[i];
        chain[i] = 0;
        if (!simulated(t)) continue;
        for (int k = 0; k < t->ndeps; k++)
            if (chain[t->deps[k]] > chain[i]) chain[i] = chain[t->deps[k]];
        chain[i] += sec[i];
        if (chain[i] > out->critical_path) out->critical_path = chain[i];
        out->work += sec[i];
    }
}

static int check_input(const ds_plan *plan, const ds_sim_input *in, int nranks,
                       const ds_sched_policy *pol) {
    if (nranks < 1) return ds_fail(DS_EINVAL, "simulator: %d ranks", nranks);
    if (pol->gang_max < 1) return ds_fail(DS_EINVAL, "simulator: gang_max %d", pol->gang_max);
    if (!(in->comm_s >= 0)) return ds_fail(DS_EINVAL, "simulator: communication time %g", in->comm_s);
    for (int i = 0; i < plan->ntasks; i++)
        if (!(in->seconds[i] >= 0) && simulated(&plan->tasks[i]))
            return ds_fail(DS_EINVAL, "simulator: %s takes %g s", plan->tasks[i].id, in->seconds[i]);
    return DS_OK;
}

int ds_sim_run(const ds_plan *plan, const ds_sim_input *in, int nranks, const ds_sched_policy *pol,
               ds_sim_result *out) {
    memset(out, 0, sizeof *out);
    int rc = check_input(plan, in, nranks, pol);
    if (rc) return rc;
    sim s = {.plan = plan, .in = in, .pol = pol, .nranks = nranks};
    if (!(rc = sim_alloc(&s, plan))) {
        sim_init(&s);
        double now = 0;
        rc = decide(&s, now);
        while (!rc && s.nheap > 0) {
            now = s.heap[0].t;
            while (s.nheap > 0 && s.heap[0].t == now) on_event(&s, heap_pop(&s).task);
            rc = decide(&s, now);
        }
        if (!rc && s.left > 0)
            rc = ds_fail(DS_EINVAL, "simulator: %d tasks never started", s.left);
        out->makespan = now;
        if (!rc) totals(plan, in->seconds, s.chain, out);
    }
    sim_free(&s);
    if (rc) return rc;
    out->utilisation = out->makespan > 0 ? out->work / (nranks * out->makespan) : 1;
    return DS_OK;
}
