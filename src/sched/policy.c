// The scheduling policy (ds_sched.h): "latest finish first" water-filling of idle ranks.
//
// Every item is one demand in a max-heap keyed by (value, priority, -task). Each idle rank pops
// the top demand, grants it one rank and, if the item can take another, pushes it back with its
// new value. Items that can take one rank only keep value = priority, so with gangs off this is
// exactly the scheduler before gangs: one rank per ready task, highest priority first. With a
// pool bound, a second pass hands the ranks left over to the gangs without the bound.
// Cost: O(n) to build the heap (twice at most), O(log n) per rank handed out.
#include "ds_sched.h"

#include "ds_error.h"

#include <stdlib.h>

typedef struct {
    double value;    // value_of(its item, ranks)
    double priority;
    int task;
    int item;        // index in items
    int ranks;       // its gang with the grants so far
    int cap;         // the most ranks it may have
} demand;

// a before b: higher value, then higher priority, then lower task index.
static int before(const demand *a, const demand *b) {
    if (a->value != b->value) return a->value > b->value;
    if (a->priority != b->priority) return a->priority > b->priority;
    return a->task < b->task;
}

static void sift_down(demand *h, int n, int i) {
    for (;;) {
        int l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && before(&h[l], &h[m])) m = l;
        if (r < n && before(&h[r], &h[m])) m = r;
        if (m == i) return;
        demand t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static double value_of(const ds_sched_item *it, int ranks) {
    int k = ranks > 1 ? ranks : 1;
    return (it->remaining + it->overhead * (k - 1)) / k + (it->priority - it->cost);
}

// Whether an item holding `ranks` (>= 1) of at most cap wants one more: only if the rank makes
// it finish sooner and (with a pool bound) it would finish after the pool.
static int wants_more(const ds_sched_item *it, int ranks, int cap, double pool) {
    if (ranks >= cap) return 0;
    double v = value_of(it, ranks);
    if (value_of(it, ranks + 1) >= v) return 0; // communication would eat the gain
    return !(pool > 0) || v > pool;
}

// The most ranks an item may hold under the policy (0: it cannot be granted any).
static int item_cap(const ds_sched_policy *pol, const ds_sched_item *it) {
    if (it->ranks == 0 && !pol->gangs) return 1;
    if (it->ranks > 0 && (!pol->gangs || !pol->grow)) return 0; // only gangs that grow grow
    int cap = it->max_ranks < pol->gang_max ? it->max_ranks : pol->gang_max;
    return cap > 1 ? cap : 1;
}

// The demands of items (holding ranks + got[i]) into h; returns their number.
static int build_heap(const ds_sched_policy *pol, const ds_sched_item *items, int n,
                      const int *got, double pool, demand *h) {
    int m = 0;
    for (int i = 0; i < n; i++) {
        int cap = item_cap(pol, &items[i]), k = items[i].ranks + got[i];
        if (k >= cap || (k > 0 && !wants_more(&items[i], k, cap, pool))) continue;
        h[m++] = (demand){value_of(&items[i], k), items[i].priority, items[i].task, i, k, cap};
    }
    for (int i = m / 2 - 1; i >= 0; i--) sift_down(h, m, i);
    return m;
}

// Water-filling: idle ranks one at a time to the top demand. Returns the ranks left over.
static int fill(const ds_sched_policy *pol, int idle, const ds_sched_item *items, int n,
                double pool, demand *h, int *got) {
    int m = build_heap(pol, items, n, got, pool, h);
    while (idle > 0 && m > 0) {
        demand *d = &h[0];
        got[d->item]++;
        idle--;
        if (++d->ranks < d->cap && wants_more(&items[d->item], d->ranks, d->cap, pool))
            d->value = value_of(&items[d->item], d->ranks);
        else
            h[0] = h[--m];
        sift_down(h, m, 0);
    }
    return idle;
}

// One grant per item that got ranks, in item order.
static int write_grants(const ds_sched_item *items, int n, const int *got, ds_sched_grant *out) {
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (!got[i]) continue;
        const ds_sched_item *it = &items[i];
        int waits = it->ranks > 0 && !it->at_boundary; // grows only at its next boundary
        out[k++] = (ds_sched_grant){it->task, it->ranks + got[i], waits ? got[i] : 0};
    }
    return k;
}

int ds_sched_decide(const ds_sched_policy *pol, int idle, const ds_sched_item *items, int n,
                    ds_sched_grant *out) {
    if (idle <= 0 || n <= 0) return 0;
    demand *h = malloc((size_t)n * sizeof *h);
    int *got = calloc((size_t)n, sizeof *got);
    if (!h || !got) {
        free(h);
        free(got);
        return ds_fail(DS_ENOMEM, "scheduler: out of memory for %d items", n);
    }
    // Up to the pool bound first; ranks nobody else wants then go to gangs regardless of it.
    idle = fill(pol, idle, items, n, pol->pool, h, got);
    if (idle > 0 && pol->pool > 0) fill(pol, idle, items, n, 0, h, got);
    int k = write_grants(items, n, got, out);
    free(h);
    free(got);
    return k;
}

static int by_epoch(const ds_task *t) { return t->kind == DS_TASK_TRAIN && t->epochs >= 1; }

int ds_sched_max_ranks(const ds_task *t, int gang_max) {
    if (!by_epoch(t)) return 1;
    int c = t->chunks > 1 ? t->chunks : 1;
    return c < gang_max ? c : gang_max;
}

ds_sched_item ds_sched_item_of(const ds_task *t, int ranks, int epochs_done, int at_boundary,
                               int gang_max, double comm_s, double rate) {
    int left = t->epochs - epochs_done;
    double rem = ranks > 0 && by_epoch(t) ? t->cost * left / t->epochs : t->cost;
    double over = by_epoch(t) ? t->steps * comm_s * left * rate : 0;
    return (ds_sched_item){.task = t->index, .priority = t->priority, .cost = t->cost,
                           .remaining = rem, .ranks = ranks, .max_ranks = ds_sched_max_ranks(t, gang_max),
                           .at_boundary = at_boundary, .overhead = over};
}
