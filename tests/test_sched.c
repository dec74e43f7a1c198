// Unit tests of the scheduling policy, the simulator, the calibration from sweep.log and the
// prediction table (ds_sched.h).
#include "ds_error.h"
#include "ds_job.h"
#include "ds_plan.h"
#include "ds_rng.h"
#include "ds_sched.h"
#include "testutil.h"

#include <math.h>

// ---- Hand-made plans ----

#define HMAX 64

typedef struct {
    ds_plan p;
    ds_task t[HMAX];
    int deps[HMAX][4];
} hplan;

static void hp_init(hplan *h) {
    memset(h, 0, sizeof *h);
    h->p.tasks = h->t;
}

// A task of kind with cost (one-rank seconds at rate 1); a training of `epochs` epochs of
// `steps` steps, splittable into `chunks`; deps: up to 4 earlier tasks (-1 ends the list).
static int hp_add(hplan *h, ds_task_kind kind, double cost, int epochs, int chunks, int steps,
                  int d0, int d1) {
    int i = h->p.ntasks++;
    ds_task *t = &h->t[i];
    t->index = i;
    t->kind = kind;
    snprintf(t->id, sizeof t->id, "t%d", i);
    t->cost = cost;
    t->epochs = epochs;
    t->chunks = chunks;
    t->steps = steps;
    t->attack = -1;
    t->deps = h->deps[i];
    if (d0 >= 0) h->deps[i][t->ndeps++] = d0;
    if (d1 >= 0) h->deps[i][t->ndeps++] = d1;
    return i;
}

static int hp_train(hplan *h, double cost, int epochs, int chunks, int steps, int dep) {
    return hp_add(h, DS_TASK_TRAIN, cost, epochs, chunks, steps, dep, -1);
}

static int hp_other(hplan *h, double cost, int d0, int d1) {
    return hp_add(h, DS_TASK_ATTACK, cost, 0, 1, 0, d0, d1);
}

// Priorities as the plan defines them: cost plus the costliest chain of tasks waiting for it.
static void hp_finish(hplan *h) {
    for (int i = 0; i < h->p.ntasks; i++) h->t[i].priority = h->t[i].cost;
    for (int j = h->p.ntasks - 1; j >= 0; j--)
        for (int k = 0; k < h->t[j].ndeps; k++) {
            ds_task *d = &h->t[h->t[j].deps[k]];
            if (d->cost + h->t[j].priority > d->priority) d->priority = d->cost + h->t[j].priority;
        }
}

static ds_sim_result run(const ds_plan *p, const double *sec, double comm, int nranks, int gangs,
                         int grow, int gang_max) {
    ds_sim_input in = {.seconds = sec, .comm_s = comm};
    ds_sched_policy pol = {.gangs = gangs, .grow = grow, .gang_max = gang_max};
    ds_sim_result r;
    int rc = ds_sim_run(p, &in, nranks, &pol, &r);
    ck_assert_msg(rc == DS_OK, "%s", ds_errmsg());
    return r;
}

// ---- ds_sched_decide ----

static ds_sched_item item(int task, double prio, double cost, double rem, int ranks, int max) {
    return (ds_sched_item){.task = task, .priority = prio, .cost = cost, .remaining = rem,
                           .ranks = ranks, .max_ranks = max};
}

START_TEST(decide_gangs_off) {
    // Priority order, ties by task index; running items and extra ranks: nothing.
    ds_sched_item it[5] = {item(4, 10, 10, 10, 0, 4), item(2, 30, 5, 5, 0, 1),
                           item(7, 10, 10, 10, 0, 1), item(1, 50, 50, 20, 2, 4),
                           item(3, 20, 20, 20, 0, 8)};
    ds_sched_policy pol = {.gangs = 0, .grow = 1, .gang_max = 16};
    ds_sched_grant g[5];
    int n = ds_sched_decide(&pol, 3, it, 5, g);
    ck_assert_int_eq(n, 3);
    // In item order: task 4 (10, index 4 beats task 7), task 2 (30), task 3 (20).
    ck_assert_int_eq(g[0].task, 4);
    ck_assert_int_eq(g[1].task, 2);
    ck_assert_int_eq(g[2].task, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(g[i].ranks, 1);
        ck_assert_int_eq(g[i].reserved, 0);
    }
    ck_assert_int_eq(ds_sched_decide(&pol, 10, it, 5, g), 4); // every ready item, one rank
    ck_assert_int_eq(ds_sched_decide(&pol, 0, it, 5, g), 0);
}
END_TEST

START_TEST(decide_water_filling) {
    // A: 100 left, B: 60, C: a shard of 10. Ranks go: A (100), A (value(1) = 100), B (60),
    // B (60), then A (value(2) = 50 beats B's 30 and C's 10).
    ds_sched_item it[3] = {item(0, 100, 100, 100, 0, 4), item(1, 60, 60, 60, 0, 4),
                           item(2, 10, 10, 10, 0, 1)};
    ds_sched_policy pol = {.gangs = 1, .grow = 1, .gang_max = 16};
    ds_sched_grant g[3];
    ck_assert_int_eq(ds_sched_decide(&pol, 5, it, 3, g), 2);
    ck_assert_int_eq(g[0].task, 0);
    ck_assert_int_eq(g[0].ranks, 3);
    ck_assert_int_eq(g[1].task, 1);
    ck_assert_int_eq(g[1].ranks, 2);
    // Then A 4 (33.3, its bound), B 3 (30), B 4 (20 beats C's 10), and only then C.
    ck_assert_int_eq(ds_sched_decide(&pol, 8, it, 3, g), 2);
    ck_assert_int_eq(g[0].ranks, 4);
    ck_assert_int_eq(g[1].ranks, 4);
    ck_assert_int_eq(ds_sched_decide(&pol, 9, it, 3, g), 3);
    ck_assert_int_eq(g[2].task, 2);
    ck_assert_int_eq(g[2].ranks, 1);
    // gang_max bounds max_ranks.
    pol.gang_max = 2;
    ck_assert_int_eq(ds_sched_decide(&pol, 8, it, 3, g), 3);
    ck_assert_int_eq(g[0].ranks, 2);
    ck_assert_int_eq(g[1].ranks, 2);
}
END_TEST

START_TEST(decide_ties) {
    // Equal value 50: X (a running gang of 2 with 100 left, priority 100) before the shard Y
    // (priority 50); equal everything: the lower task index.
    ds_sched_item it[3] = {item(9, 50, 50, 50, 0, 1), item(5, 100, 100, 100, 2, 4),
                           item(8, 50, 50, 50, 0, 1)};
    it[1].at_boundary = 1;
    ds_sched_policy pol = {.gangs = 1, .grow = 1, .gang_max = 16};
    ds_sched_grant g[3];
    ck_assert_int_eq(ds_sched_decide(&pol, 1, it, 3, g), 1);
    ck_assert_int_eq(g[0].task, 5);
    ck_assert_int_eq(g[0].ranks, 3);
    ck_assert_int_eq(ds_sched_decide(&pol, 2, it, 3, g), 2);
    ck_assert_int_eq(g[0].task, 5); // then 100/3 = 33.3 < 50: the shard of index 8
    ck_assert_int_eq(g[1].task, 8);
}
END_TEST

START_TEST(decide_boundaries_and_grow_off) {
    // A running gang of 2 not at a boundary: the ranks are reserved; at a boundary: it grows.
    ds_sched_item it[1] = {item(3, 80, 80, 80, 2, 4)};
    ds_sched_policy pol = {.gangs = 1, .grow = 1, .gang_max = 16};
    ds_sched_grant g[1];
    ck_assert_int_eq(ds_sched_decide(&pol, 5, it, 1, g), 1);
    ck_assert_int_eq(g[0].ranks, 4);
    ck_assert_int_eq(g[0].reserved, 2);
    it[0].at_boundary = 1;
    ck_assert_int_eq(ds_sched_decide(&pol, 5, it, 1, g), 1);
    ck_assert_int_eq(g[0].ranks, 4);
    ck_assert_int_eq(g[0].reserved, 0);
    // Grow off: a running training is no demand; a ready one still starts on a gang.
    pol.grow = 0;
    ck_assert_int_eq(ds_sched_decide(&pol, 5, it, 1, g), 0);
    it[0].ranks = 0;
    it[0].at_boundary = 0;
    ck_assert_int_eq(ds_sched_decide(&pol, 5, it, 1, g), 1);
    ck_assert_int_eq(g[0].ranks, 4);
    ck_assert_int_eq(g[0].reserved, 0);
}
END_TEST

START_TEST(decide_overhead_and_pool) {
    // value(k) = (64 + 4(k-1))/k = 4 + 60/k: 64, 34, 24, 19, ...: every rank up to 16 helps.
    ds_sched_item it[4] = {item(0, 64, 64, 64, 0, 16), item(1, 5, 5, 5, 0, 1),
                           item(2, 5, 5, 5, 0, 1), item(3, 5, 5, 5, 0, 1)};
    it[0].overhead = 4;
    ds_sched_policy pol = {.gangs = 1, .grow = 1, .gang_max = 16};
    ds_sched_grant g[4];
    ck_assert_int_eq(ds_sched_decide(&pol, 16, it, 1, g), 1);
    ck_assert_int_eq(g[0].ranks, 16);
    // Communication above the compute: value(k) = 80 - 16/k grows with k: one rank only.
    it[0].overhead = 80;
    ck_assert_int_eq(ds_sched_decide(&pol, 16, it, 1, g), 1);
    ck_assert_int_eq(g[0].ranks, 1);
    it[0].overhead = 4;
    // Pool 33: the gang takes ranks while its value is above it (value(2) = 34 earns a third,
    // value(3) = 24 no fourth) and the shards take theirs; the ranks nobody else wants then
    // go to the gang anyway.
    pol.pool = 33;
    ck_assert_int_eq(ds_sched_decide(&pol, 6, it, 4, g), 4);
    ck_assert_int_eq(g[0].ranks, 3);
    ck_assert_int_eq(g[1].ranks + g[2].ranks + g[3].ranks, 3);
    ck_assert_int_eq(ds_sched_decide(&pol, 5, it, 4, g), 3);
    ck_assert_int_eq(g[0].ranks, 3);
    ck_assert_int_eq(g[1].task, 1); // equal shards: the lower task indices
    ck_assert_int_eq(g[2].task, 2);
    ck_assert_int_eq(ds_sched_decide(&pol, 16, it, 4, g), 4);
    ck_assert_int_eq(g[0].ranks, 13);
}
END_TEST

// The rule of ds_sched.h written the slow way (one scan over all items per rank), to check the
// heap on large random inputs.
static double ref_value(const ds_sched_item *it, int k) {
    k = k > 1 ? k : 1;
    return (it->remaining + it->overhead * (k - 1)) / k + it->priority - it->cost;
}

static int ref_wants(const ds_sched_policy *pol, const ds_sched_item *it, int have, double pool) {
    int cap = !pol->gangs ? 1 : it->max_ranks < pol->gang_max ? it->max_ranks : pol->gang_max;
    if (cap < 1) cap = 1;
    if (it->ranks > 0 && (!pol->gangs || !pol->grow)) return 0;
    if (have >= cap) return 0;
    if (have == 0) return 1;
    if (ref_value(it, have + 1) >= ref_value(it, have)) return 0;
    return !(pool > 0) || ref_value(it, have) > pool;
}

static void ref_decide(const ds_sched_policy *pol, int idle, const ds_sched_item *it, int n, int *got) {
    for (int pass = 0; pass < 2; pass++) {
        double pool = pass == 0 ? pol->pool : 0;
        if (pass == 1 && !(pol->pool > 0)) break;
        for (; idle > 0; idle--) {
            int best = -1;
            for (int i = 0; i < n; i++) {
                if (!ref_wants(pol, &it[i], it[i].ranks + got[i], pool)) continue;
                if (best < 0) { best = i; continue; }
                double v = ref_value(&it[i], it[i].ranks + got[i]);
                double bv = ref_value(&it[best], it[best].ranks + got[best]);
                if (v > bv || (v == bv && (it[i].priority > it[best].priority ||
                    (it[i].priority == it[best].priority && it[i].task < it[best].task))))
                    best = i;
            }
            if (best < 0) break;
            got[best]++;
        }
    }
}

START_TEST(decide_matches_the_slow_rule) {
    ds_rng r = ds_rng_stream(42, 0, 0);
    enum { N = 600 };
    static ds_sched_item it[N];
    static ds_sched_grant g[N];
    static int got[N];
    for (int round = 0; round < 24; round++) {
        for (int i = 0; i < N; i++) {
            int train = ds_rng_u64(&r) % 5 == 0;
            double cost = 1 + (double)(ds_rng_u64(&r) % 50); // small integers: many ties
            it[i] = item((int)((i * 7919) % N), cost + (double)(ds_rng_u64(&r) % 30), cost, cost,
                         0, train ? 1 + (int)(ds_rng_u64(&r) % 16) : 1);
            if (train && ds_rng_u64(&r) % 2) {
                it[i].ranks = 1 + (int)(ds_rng_u64(&r) % 4);
                it[i].remaining = cost * (double)(ds_rng_u64(&r) % 4 + 1) / 4;
                it[i].at_boundary = (int)(ds_rng_u64(&r) % 2);
            }
            if (train) it[i].overhead = (double)(ds_rng_u64(&r) % 3) / 4;
        }
        ds_sched_policy pol = {.gangs = round % 4 != 0, .grow = round % 3 != 0, .gang_max = 1 + round % 9,
                               .pool = round % 2 ? 20 + round : 0};
        int idle = 1 + (int)(ds_rng_u64(&r) % 900);
        memset(got, 0, sizeof got);
        ref_decide(&pol, idle, it, N, got);
        int n = ds_sched_decide(&pol, idle, it, N, g), k = 0, total = 0;
        for (int i = 0; i < N; i++) {
            if (!got[i]) continue;
            ck_assert_int_lt(k, n);
            ck_assert_int_eq(g[k].task, it[i].task);
            ck_assert_int_eq(g[k].ranks, it[i].ranks + got[i]);
            ck_assert_int_eq(g[k].reserved, it[i].ranks > 0 && !it[i].at_boundary ? got[i] : 0);
            total += got[i];
            k++;
        }
        ck_assert_int_eq(k, n);
        ck_assert_int_le(total, idle);
    }
}
END_TEST

// ---- The simulator on hand-made plans ----

START_TEST(sim_one_rank_is_total_work) {
    hplan h;
    hp_init(&h);
    int a = hp_train(&h, 48, 4, 4, 3, -1);
    int b = hp_other(&h, 6, a, -1);
    hp_train(&h, 32, 2, 4, 3, b);
    hp_other(&h, 10.5, -1, -1);
    hp_other(&h, 3.25, a, -1);
    hp_finish(&h);
    double sec[HMAX];
    ds_sim_seconds_from_rate(&h.p, 1, sec);
    for (int mode = 0; mode < 3; mode++) {
        ds_sim_result r = run(&h.p, sec, 0.5, 1, mode > 0, mode > 1, 8);
        ck_assert_double_eq(r.makespan, 48 + 6 + 32 + 10.5 + 3.25);
        ck_assert_double_eq(r.work, 99.75);
        ck_assert_double_eq(r.critical_path, 48 + 6 + 32);
        ck_assert_double_eq(r.utilisation, 1);
    }
}
END_TEST

START_TEST(sim_chain_and_independent_tasks) {
    // Chain 4 -> 4 -> 4 and four tasks of 2 on 2 ranks: the chain on one rank, the others on
    // the other: 12, optimal (the critical path).
    hplan h;
    hp_init(&h);
    int a = hp_other(&h, 4, -1, -1), b = hp_other(&h, 4, a, -1);
    hp_other(&h, 4, b, -1);
    for (int i = 0; i < 4; i++) hp_other(&h, 2, -1, -1);
    hp_finish(&h);
    double sec[HMAX];
    ds_sim_seconds_from_rate(&h.p, 1, sec);
    ds_sim_result r = run(&h.p, sec, 0, 2, 0, 0, 1);
    ck_assert_double_eq(r.makespan, 12);
    ck_assert_double_eq(r.critical_path, 12);
    ck_assert_double_eq(r.work, 20);
    ck_assert_double_eq(r.utilisation, 20.0 / 24);
    // Five tasks of 2 more: 8 + 10 = 18 units on 2 ranks beside a chain of 12: 15 at best.
    for (int i = 0; i < 5; i++) hp_other(&h, 2, -1, -1);
    hp_finish(&h);
    ds_sim_seconds_from_rate(&h.p, 1, sec);
    r = run(&h.p, sec, 0, 2, 0, 0, 1);
    ck_assert_double_eq(r.makespan, 16); // list scheduling: the chain first, then 2-unit tasks
    ck_assert_double_ge(r.makespan, 15);
}
END_TEST

START_TEST(sim_more_ranks_than_tasks) {
    hplan h;
    hp_init(&h);
    double c[5] = {3, 7.5, 1, 2, 7.25};
    for (int i = 0; i < 5; i++) hp_other(&h, c[i], -1, -1);
    hp_other(&h, 1, 0, 3); // after the tasks of 3 and 2
    hp_finish(&h);
    double sec[HMAX];
    ds_sim_seconds_from_rate(&h.p, 1, sec);
    ds_sim_result r = run(&h.p, sec, 0, 10, 1, 1, 8);
    ck_assert_double_eq(r.makespan, 7.5);
    ck_assert_double_eq(r.critical_path, 7.5);
    ck_assert_double_eq(r.work, 21.75);
    ck_assert_double_eq(r.utilisation, 21.75 / 75);
}
END_TEST

// Gang sizes seen by an observer: the largest each task had.
typedef struct {
    int most[HMAX];
    int calls;
} gang_log;

static void log_gangs(void *ctx, const ds_sim_step *st) {
    gang_log *l = ctx;
    l->calls++;
    for (int g = 0; g < st->ngrants; g++)
        if (st->grants[g].reserved == 0 && st->grants[g].ranks > l->most[st->grants[g].task])
            l->most[st->grants[g].task] = st->grants[g].ranks;
}

START_TEST(sim_gang_epoch_time) {
    // One training alone: 64 s on one rank, 4 epochs of 2 steps, 0.25 s per step and extra rank:
    // on 4 ranks each epoch takes (64/4 + 2 * 0.25 * 3) / 4 = 4.375 s.
    hplan h;
    hp_init(&h);
    hp_train(&h, 64, 4, 4, 2, -1);
    hp_finish(&h);
    double sec[HMAX];
    ds_sim_seconds_from_rate(&h.p, 1, sec);
    ck_assert_double_eq(run(&h.p, sec, 0.25, 4, 1, 1, 16).makespan, 17.5);
    ck_assert_double_eq(run(&h.p, sec, 0.25, 8, 1, 0, 16).makespan, 17.5); // chunks bound it: 4
    ck_assert_double_eq(run(&h.p, sec, 0.25, 8, 1, 1, 2).makespan, 4 * (16 + 0.5) / 2); // gang_max
    ck_assert_double_eq(run(&h.p, sec, 0.25, 8, 0, 0, 16).makespan, 64);               // gangs off
    // Communication above the compute (40 s a step: each epoch's 16 s become (16 + 80)/2 on 2
    // ranks): the training stays on one rank.
    ck_assert_double_eq(run(&h.p, sec, 40, 8, 1, 1, 16).makespan, 64);
    // 16 chunks on 16 ranks: (64 + 2(k-1))/k falls all the way: the gang grows to 16.
    h.t[0].chunks = 16;
    gang_log l = {{0}, 0};
    ds_sim_input in = {.seconds = sec, .comm_s = 0.25, .observe = log_gangs, .observe_ctx = &l};
    ds_sched_policy pol = {.gangs = 1, .grow = 1, .gang_max = 16};
    ds_sim_result r;
    ck_assert_int_eq(ds_sim_run(&h.p, &in, 16, &pol, &r), DS_OK);
    ck_assert_int_eq(l.most[0], 16);
    ck_assert_double_eq_tol(r.makespan, 4 * (16.0 + 2 * 0.25 * 15) / 16, 1e-12);
}
END_TEST

START_TEST(sim_growth_at_boundaries) {
    // 2 ranks. X (20 s, priority 100 through its dependent) starts beside training T (64 s,
    // 4 epochs of 16 s, 2 chunks). X ends at 20, mid-epoch: the freed rank is reserved for T,
    // which grows at its boundary at 32 and runs its last two epochs in 8 s: 48. Without growth
    // T ends at 64 on one rank.
    hplan h;
    hp_init(&h);
    int x = hp_other(&h, 20, -1, -1);
    hp_train(&h, 64, 4, 2, 1, -1);
    hp_finish(&h);
    h.t[x].priority = 100; // as if a long chain waited for it
    double sec[HMAX];
    ds_sim_seconds_from_rate(&h.p, 1, sec);
    ck_assert_double_eq(run(&h.p, sec, 0, 2, 1, 1, 8).makespan, 48);
    ck_assert_double_eq(run(&h.p, sec, 0, 2, 1, 0, 8).makespan, 64);
    ck_assert_double_eq(run(&h.p, sec, 0, 2, 0, 0, 8).makespan, 64);
}
END_TEST

START_TEST(sim_errors) {
    hplan h;
    hp_init(&h);
    hp_other(&h, 1, -1, -1);
    hp_finish(&h);
    double sec[HMAX] = {1};
    ds_sim_input in = {.seconds = sec};
    ds_sched_policy pol = {.gangs = 1, .grow = 1, .gang_max = 4};
    ds_sim_result r;
    ck_assert_int_eq(ds_sim_run(&h.p, &in, 0, &pol, &r), DS_EINVAL);
    sec[0] = -1;
    ck_assert_int_eq(ds_sim_run(&h.p, &in, 2, &pol, &r), DS_EINVAL);
    ck_assert_ptr_nonnull(strstr(ds_errmsg(), "t0"));
}
END_TEST

// ---- Invariants at every call of the policy, on the paper's plan ----

typedef struct {
    const ds_plan *plan;
    int gangs, gang_max;
    int prev[4096]; // gang of each task at the previous call
    int want[4096]; // what the last grant to it (not a reservation) made its gang
    int calls, starts;
    char bad[256];  // the first broken invariant ("" if none)
} inv_ctx;

// Records the first broken invariant (plain tests: Check's assertions log every call, and
// there are millions here).
#define INV(cond)                                                                              \
    do {                                                                                       \
        if (!(cond) && !c->bad[0])                                                             \
            snprintf(c->bad, sizeof c->bad, "t=%g: %s (line %d)", st->now, #cond, __LINE__);    \
    } while (0)

static int gang_bound(const inv_ctx *c, const ds_task *t) {
    if (t->kind != DS_TASK_TRAIN || !c->gangs) return 1;
    return t->chunks < c->gang_max ? t->chunks : c->gang_max;
}

static void check_state(inv_ctx *c, const ds_sim_step *st) {
    const ds_plan *p = c->plan;
    int used = 0;
    for (int i = 0; i < p->ntasks; i++) {
        INV(st->ranks[i] <= gang_bound(c, &p->tasks[i]));
        if (st->ranks[i] > 0) INV(!st->done[i]);
        if (st->ranks[i] > 0 && c->prev[i] > 0) INV(st->ranks[i] >= c->prev[i]); // no shrinking
        // A gang changes only as granted (a reservation changes nothing until its boundary).
        if (st->ranks[i] > 0 && st->ranks[i] != c->prev[i]) INV(st->ranks[i] == c->want[i]);
        c->prev[i] = st->ranks[i];
        used += st->ranks[i];
    }
    INV(used + st->idle == st->nranks);
    for (int k = 0; k < st->nitems; k++) {
        const ds_sched_item *it = &st->items[k];
        const ds_task *t = &p->tasks[it->task];
        INV(!st->done[it->task]);
        INV(it->ranks == st->ranks[it->task]);
        if (it->ranks == 0)
            for (int d = 0; d < t->ndeps; d++) INV(st->done[t->deps[d]]);
        else
            INV(t->kind == DS_TASK_TRAIN);
    }
}

static void check_step(void *ctx, const ds_sim_step *st) {
    inv_ctx *c = ctx;
    const ds_plan *p = c->plan;
    c->calls++;
    check_state(c, st);
    int extra = 0;
    for (int g = 0; g < st->ngrants; g++) {
        const ds_sched_grant *gr = &st->grants[g];
        int k = 0;
        while (k < st->nitems && st->items[k].task != gr->task) k++;
        INV(k < st->nitems); // grants only to ready or running items
        if (k == st->nitems) return;
        for (int g2 = 0; g2 < g; g2++) INV(st->grants[g2].task != gr->task);
        const ds_sched_item *it = &st->items[k];
        const ds_task *t = &p->tasks[gr->task];
        INV(gr->ranks <= gang_bound(c, t));
        INV(gr->ranks > it->ranks); // a grant adds ranks: running items never shrink
        INV(gr->reserved == (it->ranks > 0 && !it->at_boundary ? gr->ranks - it->ranks : 0));
        if (it->ranks == 0) { // started: every dependency is done
            c->starts++;
            for (int d = 0; d < t->ndeps; d++) INV(st->done[t->deps[d]]);
        }
        extra += gr->ranks - it->ranks;
        if (!gr->reserved) c->want[gr->task] = gr->ranks;
    }
    INV(extra <= st->idle); // in use + new + reserved <= ranks
}

static char *read_text(const char *path) {
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    char *s = calloc(1, 1 << 16);
    size_t n = fread(s, 1, (1 << 16) - 1, f);
    fclose(f);
    s[n] = 0;
    return s;
}

// jobs/paper.job, with "chunk = <chunk>" in [train] when chunk > 0.
static void paper_plan(ds_job *job, ds_plan *plan, int chunk) {
    char *text = read_text("jobs/paper.job"), *out = calloc(1, (1 << 16) + 64);
    char *at = strstr(text, "[train]\n");
    ck_assert_ptr_nonnull(at);
    at += strlen("[train]\n");
    memcpy(out, text, (size_t)(at - text));
    size_t len = (size_t)(at - text);
    if (chunk > 0) len += (size_t)sprintf(out + len, "chunk = %d\n", chunk);
    strcpy(out + len, at);
    char *old = strstr(out + len - 1, "\nchunk ="); // the job's own chunk line gives way
    if (chunk > 0 && old) old[1] = ';';
    ck_assert_msg(ds_job_parse_text(job, out, "paper.job") == DS_OK, "%s", ds_errmsg());
    ck_assert_int_eq(ds_plan_build(plan, job, 60000, 10000), DS_OK);
    free(text);
    free(out);
}

START_TEST(sim_invariants_paper) {
    int chunks[2] = {32, 8};
    int nr[3] = {16, 64, 256};
    for (int ci = 0; ci < 2; ci++) {
        ds_job job;
        ds_plan plan;
        paper_plan(&job, &plan, chunks[ci]);
        ck_assert_int_lt(plan.ntasks, 4096);
        double *sec = malloc((size_t)plan.ntasks * sizeof(double));
        ds_sim_seconds_from_rate(&plan, 64000, sec);
        for (int k = 0; k < 3; k++)
            for (int mode = 0; mode < 3; mode++) {
                static inv_ctx c;
                memset(&c, 0, sizeof c);
                c.plan = &plan;
                c.gangs = mode > 0;
                c.gang_max = 16;
                ds_sim_input in = {.seconds = sec, .comm_s = 0.002, .observe = check_step,
                                   .observe_ctx = &c};
                ds_sched_policy pol = {.gangs = mode > 0, .grow = mode > 1, .gang_max = 16};
                ds_sim_result r;
                ck_assert_int_eq(ds_sim_run(&plan, &in, nr[k], &pol, &r), DS_OK);
                ck_assert_msg(!c.bad[0], "%d ranks, mode %d: %s", nr[k], mode, c.bad);
                ck_assert_int_gt(c.calls, 100);
                ck_assert_int_eq(c.starts, plan.ntasks - 1); // every task once (not the reducer)
                ck_assert_double_le(r.utilisation, 1);
                ck_assert_double_ge(r.makespan * nr[k], r.work);
                if (mode == 0) ck_assert_double_ge(r.makespan, r.critical_path);
            }
        free(sec);
        ds_plan_free(&plan);
        ds_job_free(&job);
    }
}
END_TEST

// Today's policy on the paper's plan at 64 GFLOP/s per rank: the figures (73% at 16,
// 23% at 64, 6% at 256; critical path 1.59 h).
START_TEST(sim_paper_today) {
    ds_job job;
    ds_plan plan;
    paper_plan(&job, &plan, 0);
    double *sec = malloc((size_t)plan.ntasks * sizeof(double));
    ds_sim_seconds_from_rate(&plan, 64000, sec);
    ds_sim_result r16 = run(&plan, sec, 0.002, 16, 0, 0, 1), r64 = run(&plan, sec, 0.002, 64, 0, 0, 1);
    ck_assert_double_eq_tol(r16.utilisation, 0.73, 0.01);
    ck_assert_double_eq_tol(r64.utilisation, 0.23, 0.01);
    ck_assert_double_eq_tol(r64.critical_path / 3600, 1.59, 0.01);
    // Gangs that grow (16 chunks per batch) beat it at 64 ranks.
    ds_sim_result g64 = run(&plan, sec, 0.002, 64, 1, 1, 16);
    ck_assert_double_lt(g64.makespan, r64.makespan);
    free(sec);
    ds_plan_free(&plan);
    ds_job_free(&job);
}
END_TEST

// ---- Calibration from sweep.log ----

static const char *const cal_job =
    "[run]\nname = cal\n[data]\ntrain_samples = 256\ntest_samples = 64\n"
    "[train]\nepochs = 2\nbatch = 32\n[distill]\ntemperatures = 100\n"
    "[attack fgsm]\nkind = fgsm\nsamples = 40\nshard = 16\n"
    "[attack tr]\nkind = transfer\ncraft = fgsm\nsamples = 8\n";

START_TEST(calibrate_rates) {
    ds_job job;
    ds_plan plan;
    ck_assert_int_eq(ds_job_parse_text(&job, cal_job, "cal.job"), DS_OK);
    ck_assert_int_eq(ds_plan_build(&plan, &job, 256, 64), DS_OK);
    int base = ds_plan_find(&plan, "baseline"), teach = ds_plan_find(&plan, "T100/teacher");
    int soft = ds_plan_find(&plan, "T100/soft"), a0 = ds_plan_find(&plan, "attack/baseline/fgsm/0-16");
    int a2 = ds_plan_find(&plan, "attack/baseline/fgsm/32-40");
    int tr = ds_plan_find(&plan, "attack/T100/student/tr/0-8");
    ck_assert(base >= 0 && teach >= 0 && soft >= 0 && a0 >= 0 && a2 >= 0 && tr >= 0);
    ck_assert_double_eq(plan.tasks[base].cost, 30720);
    char dir[256], path[300];
    tu_tempdir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/sweep.log", dir);
    const char *log =
        "2026-12-01T12:00:00Z [00:00:00] distill_sweep v1: job cal.job, run results/cal\n"
        "2026-12-01T12:00:00Z [00:00:00] start  baseline [train] on rank 1\n"
        "2026-12-01T12:00:10Z [00:00:10] done   baseline (rank 1, 10.0 s) | 1/9 done, 1 running | ETA 00:01:00\n"
        "2026-12-01T12:00:14Z [00:00:14] regang T100/teacher (gang of 2 from rank 1, epochs 0-1 of 2, 4.0 s): 2 more ranks\n"
        "2026-12-01T12:00:15Z [00:00:15] done   T100/teacher (gang of 4 from rank 1, epochs 1-2 of 2, 1.0 s) | 2/9 done, 0 running | ETA 00:00:40\n"
        "2026-12-01T12:00:16Z [00:00:16] done   nosuch/task (rank 1, 3.0 s) | 3/9 done\n"
        "2026-12-01T12:00:17Z [00:00:17] FAILED attack/baseline/fgsm/16-32 (rank 2, 9.0 s): boom\n"
        "2026-12-01T12:00:18Z [00:00:18] done   T100/soft (rank 0, 2.0 s) | 3/9 done, 0 running | ETA 00:00:30\n"
        "2026-12-01T12:00:19Z [00:00:19] done   attack/baseline/fgsm/0-16 (rank 1, 0.5 s) | 4/9 done\n"
        "2026-12-01T13:00:00Z [00:00:00] distill_sweep v1: job cal.job, run results/cal (resumed)\n"
        "2026-12-01T13:00:01Z [00:00:01] done   attack/baseline/fgsm/32-40 (rank 2, 0.5 s) | 5/9 done\n"
        "2026-12-01T13:00:02Z [00:00:02] done   reduce (1.0 s): results in results/cal\n";
    tu_write_file(path, log, strlen(log));
    double *sec = calloc((size_t)plan.ntasks, sizeof(double));
    char how[1024];
    ck_assert_msg(ds_sim_calibrate(&plan, path, sec, how, sizeof how) == DS_OK, "%s", ds_errmsg());
    // training: 30720 + 2 * 15360 MFLOP over 10 + 2*4 + 4*1 rank-seconds; soft 5120 / 2;
    // fgsm (640 + 320) / 1; transfer (no line): the overall rate.
    double train = 61440.0 / 22, softr = 5120.0 / 2, fgsm = 960.0 / 1;
    double overall = (61440.0 + 5120 + 960) / (22 + 2 + 1);
    ck_assert_double_eq(sec[base], 30720 / train);
    ck_assert_double_eq(sec[teach], 30720 / train);
    ck_assert_double_eq(sec[soft], 5120 / softr);
    ck_assert_double_eq(sec[a0], 640 / fgsm);
    ck_assert_double_eq(sec[a2], 320 / fgsm);
    ck_assert_double_eq(sec[tr], plan.tasks[tr].cost / overall);
    ck_assert_double_eq(sec[plan.ntasks - 1], 0); // the reducer
    ck_assert_msg(strstr(how, "(6 lines of this plan)") && strstr(how, "training 2.8 (3)") &&
                  strstr(how, "soft labels 2.6 (1)") && strstr(how, "attack fgsm 1.0 (2)") &&
                  strstr(how, "the others at the overall 2.7"), "%s", how);
    // No line of this plan: DS_EINVAL; no file: DS_EIO.
    const char *other = "2026-12-01T12:00:10Z [00:00:10] done   elsewhere (rank 1, 10.0 s) | x\n";
    tu_write_file(path, other, strlen(other));
    ck_assert_int_eq(ds_sim_calibrate(&plan, path, sec, how, sizeof how), DS_EINVAL);
    unlink(path);
    ck_assert_int_eq(ds_sim_calibrate(&plan, path, sec, how, sizeof how), DS_EIO);
    rmdir(dir);
    free(sec);
    ds_plan_free(&plan);
    ds_job_free(&job);
}
END_TEST

// ---- The prediction table prints what the simulator computes ----

static void hms(double s, char *out, size_t cap) {
    long t = (long)(s + 0.5);
    snprintf(out, cap, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

START_TEST(print_matches_sim) {
    hplan h;
    hp_init(&h);
    int w = hp_train(&h, 4000, 5, 8, 7, -1);
    int t = hp_train(&h, 9000, 9, 4, 11, w);
    int s = hp_other(&h, 700, t, -1);
    hp_train(&h, 8000, 6, 16, 5, s);
    for (int i = 0; i < 12; i++) hp_other(&h, 300 + 97 * i, i % 2 ? t : w, -1);
    hp_finish(&h);
    double sec[HMAX];
    ds_sim_seconds_from_rate(&h.p, 0.3, sec);
    ds_sim_input in = {.seconds = sec, .comm_s = 0.7};
    int ranks[3] = {1, 3, 7};
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_int_eq(ds_sim_print(&h.p, &in, ranks, 3, 6, f), DS_OK);
    fclose(f);
    const char *names[3] = {"one rank per task (today)", "gangs sized at start", "gangs that grow (<= 6)"};
    const char *at = buf;
    for (int k = 0; k < 3; k++) {
        char head[128];
        snprintf(head, sizeof head, "prediction on %d ranks (communication 700.0 ms per step", ranks[k]);
        at = strstr(at, head);
        ck_assert_msg(at != NULL, "%s", buf);
        for (int m = 0; m < 3; m++) {
            ds_sim_result r = run(&h.p, sec, 0.7, ranks[k], m > 0, m > 1, 6);
            char mk[32], wk[32], cp[32], row[256];
            hms(r.makespan, mk, sizeof mk);
            hms(r.work / ranks[k], wk, sizeof wk);
            hms(r.critical_path, cp, sizeof cp);
            snprintf(row, sizeof row, "  %-26s %10s %11s %14s %11.1f%%\n", names[m], mk, wk, cp,
                     100 * r.utilisation);
            at = strstr(at, row);
            ck_assert_msg(at != NULL, "no row '%s' in:\n%s", row, buf);
        }
    }
    // One rank: makespan = work, 100.0%.
    ds_sim_result one = run(&h.p, sec, 0.7, 1, 1, 1, 6);
    ck_assert_double_eq_tol(one.makespan, one.work, 1e-9 * one.work);
    free(buf);
}
END_TEST

static Suite *suite(void) {
    Suite *s = suite_create("sched");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, decide_gangs_off);
    tcase_add_test(tc, decide_water_filling);
    tcase_add_test(tc, decide_ties);
    tcase_add_test(tc, decide_boundaries_and_grow_off);
    tcase_add_test(tc, decide_overhead_and_pool);
    tcase_add_test(tc, decide_matches_the_slow_rule);
    tcase_add_test(tc, sim_one_rank_is_total_work);
    tcase_add_test(tc, sim_chain_and_independent_tasks);
    tcase_add_test(tc, sim_more_ranks_than_tasks);
    tcase_add_test(tc, sim_gang_epoch_time);
    tcase_add_test(tc, sim_growth_at_boundaries);
    tcase_add_test(tc, sim_errors);
    tcase_add_test(tc, sim_invariants_paper);
    tcase_add_test(tc, sim_paper_today);
    tcase_add_test(tc, calibrate_rates);
    tcase_add_test(tc, print_matches_sim);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tu_run(suite()); }
