// Scheduling: the policy that decides who gets ranks (one pure function, used by the live
// coordinator in src/sweep/sweep.c and by the simulator below), the simulator, and the
// makespan prediction of `distill_sweep --dry-run JOB --ranks 16,64,256`.
//
// The policy, "latest finish first". Every task that is ready, and every running training whose
// gang can still grow, is a demand for one more rank; the value of a demand is the task's
// estimated finish if it had its current ranks (at least one):
//
//   value(k) = (remaining + overhead * (k - 1)) / k + after      (k = max(ranks, 1))
//              (after = priority - cost: the costliest chain of tasks waiting for it, ds_plan.h;
//               overhead: the communication one more gang rank adds to its steps, in cost
//               units; like the compute it is shared by the k members)
//
// Idle ranks go one at a time to the demand of highest value (ties: higher priority, then lower
// task index), until no rank or no demand is left. A task with max_ranks 1 (soft labels, attack
// shards, a training that cannot be split) demands one rank; a training demands up to
// max_ranks, but another rank only while it makes the training finish sooner (value(k+1) <
// value(k): beyond that, communication eats the gain). So a ready training is started on
// several ranks when ranks are idle, the critical path first, and a running training takes idle
// ranks before lower-priority tasks do. Two passes, when the caller gives the pool (the work of
// every unfinished task spread over all ranks: when the plan could end if nothing waited): first
// a training gets ranks beyond its first only while its value is above the pool (below, the
// plan's end is set by the total work, and a rank does more on a whole task than on a gang's
// communication); then the ranks nobody else took go to the trainings anyway (they would idle).
// A running training can only change its gang at an epoch boundary (where its checkpoint is):
// ranks that the policy gives to one that is not at a boundary are kept idle for it (reserved)
// until it gets there. With gangs off, every task gets one rank in priority order (the
// scheduler before gangs). With overhead 0 and pool 0 this is plain water-filling.
#ifndef DS_SCHED_H
#define DS_SCHED_H

#include <stdio.h>

#include "ds_plan.h"

typedef struct {
    int gangs;    // 0: one rank per task (today's policy); 1: trainings on gangs
    int grow;     // gangs grow at epoch boundaries (0: sized only when a training starts)
    int gang_max; // the most ranks of one gang (>= 1; a training's own bound is its chunk count)
    double pool;  // set per call: the cost of every unfinished task (running trainings: of their
                  //   epochs left; waiting tasks too) / all ranks, in cost units; 0: no bound
} ds_sched_policy;

// A task the policy may give ranks to: ready (ranks == 0) or a running training (ranks >= 1).
typedef struct {
    int task;          // index in the plan
    double priority;   // ds_task.priority
    double cost;       // ds_task.cost (priority - cost = the chain after it)
    double remaining;  // work left (same unit as cost): cost, or a running training's epochs left
    int ranks;         // its gang now (0: not started)
    int max_ranks;     // 1, or for a training min(chunks per batch, gang_max)
    int at_boundary;   // a running training at an epoch boundary, waiting for the decision
    double overhead;   // a training: what each extra rank of its gang adds to its finish, in cost
                       //   units (steps * comm_s * epochs left * cost / one-rank seconds); 0: none
} ds_sched_item;

// What the policy decided for one item: ready items that start (ranks >= 1), running items at a
// boundary that grow (ranks > their current size), running items not at a boundary that will
// grow at their next one (reserved > 0: ranks held idle for them).
typedef struct {
    int task;
    int ranks;    // the gang size to start with or grow to
    int reserved; // ranks held for a running training until its next boundary
} ds_sched_grant;

// The policy (pure: the result depends only on the arguments). idle: every rank without work
// (reservations are not kept between calls: each call decides them anew). items: any order; an
// item may have ranks but no demand (gangs off, grow off, or at its bound): it gets nothing.
// Writes at most n grants into out (one per item that gets ranks, in the order of items) and
// returns their number, or DS_ENOMEM (< 0, with a message). Items not listed in out get nothing
// now. For a running item not at a boundary, ranks = its size after the next boundary and
// reserved = ranks - its current size. The ranks granted (new gangs, growth and reservations)
// never exceed idle.
int ds_sched_decide(const ds_sched_policy *pol, int idle, const ds_sched_item *items, int n,
                    ds_sched_grant *out);

// The most ranks task t can use: a training min(its chunks per batch, gang_max), else 1.
int ds_sched_max_ranks(const ds_task *t, int gang_max);
// Task t as the policy sees it: the one rule by which the live coordinator and the simulator
// both make their items. ranks: its gang now (0: ready); epochs_done, at_boundary: a running
// training's. remaining = its cost, or for a running training the cost of its epochs left;
// overhead = the communication of its epochs left (steps * comm_s per epoch and extra rank) in
// cost units at rate (cost units per second of one rank; 0: none); max_ranks =
// ds_sched_max_ranks(t, gang_max).
ds_sched_item ds_sched_item_of(const ds_task *t, int ranks, int epochs_done, int at_boundary,
                               int gang_max, double comm_s, double rate);

// ---- The simulator ----

// What the simulator passes to an observer at every call of the policy (tests check the
// invariants with it). Arrays are indexed by task and valid during the call only.
typedef struct {
    double now;                    // simulated seconds since the start
    int nranks;                    // ranks of the simulated machine
    int idle;                      // the idle ranks passed to the policy
    const ds_sched_item *items;    // the policy's input
    int nitems;
    const ds_sched_grant *grants;  // and its output
    int ngrants;
    const unsigned char *done;     // [ntasks] 1: finished before now
    const int *ranks;              // [ntasks] gang of every running task before the grants
} ds_sim_step;

typedef struct {
    const double *seconds; // [plan->ntasks]: each task's time on one rank (the reducer: ignored)
    double comm_s;         // communication per training step and extra gang rank (s): 0.002,
                           //   shared by the gang's members like the compute (the model the
                           //   issue's simulation used; the ordered reduction's bytes per
                           //   member shrink as k grows: ds_gang.h)
    // Optional (NULL: none): called after every call of the policy, before its grants apply.
    void (*observe)(void *ctx, const ds_sim_step *step);
    void *observe_ctx;
} ds_sim_input;

typedef struct {
    double makespan;      // seconds from start to the last task
    double work;          // sum of the tasks' one-rank seconds
    double critical_path; // the longest chain of one-rank seconds
    double utilisation;   // work / (ranks * makespan)
} ds_sim_result;

// Runs the plan on nranks ranks with the policy, event by event (task ends, epoch boundaries),
// calling ds_sched_decide exactly as the live coordinator does. A gang of k ranks runs a
// training epoch in (epoch_seconds + steps * comm_s * (k - 1)) / k (epoch_seconds =
// seconds / epochs); a training's items have max_ranks = min(chunks, gang_max) and, when it
// runs, remaining = cost * epochs left / epochs; every call gets pol with pool set (ignoring
// pol->pool) and items with their overhead. Other tasks run on one rank for their seconds;
// the reducer is not simulated. Events at the same moment are handled together, then the policy
// is called once: every training at a boundary then has at_boundary = 1, takes its growth and
// runs its next epoch; ranks reserved for a training stay idle until the next call. DS_EINVAL
// for nranks < 1 or a negative time, DS_ENOMEM.
int ds_sim_run(const ds_plan *plan, const ds_sim_input *in, int nranks, const ds_sched_policy *pol,
               ds_sim_result *out);

// ---- Rates ----

// seconds[t] = cost / rate (rate in MFLOP/s per rank) for every task.
void ds_sim_seconds_from_rate(const ds_plan *plan, double rate_mflops, double *seconds);
// From the finished work in a run folder's sweep.log (lines "done   <id> (rank R, [epochs
// E0-E1 of N, ]S s)" and "done|regang <id> (gang of K from rank R, epochs E0-E1 of N, S s)"):
// a rate per class of task (training, soft labels, each attack section) as work over
// rank-seconds; a class without lines gets the overall rate. A line's work: cost * (E1-E0)/N for
// a training with epochs, else the task's cost; its rank-seconds S*K (K = 1 for "rank R").
// Every session of a resumed run counts; lines of other ids and of the reducer do not. Fills
// seconds[] (the reducer: 0) and writes one line on how (classes, lines used) into how. DS_EIO
// if the log cannot be read, DS_EINVAL if it holds no finished task of this plan.
int ds_sim_calibrate(const ds_plan *plan, const char *sweep_log, double *seconds, char *how,
                     size_t cap);

// The prediction table: for each rank count, makespan, total work / ranks, critical path (as
// h:mm:ss) and utilisation (%, one decimal) under today's policy, gangs sized at start, and gangs
// that grow (gang_max), each from ds_sim_run. DS_OK, the simulator's error, or DS_EIO.
int ds_sim_print(const ds_plan *plan, const ds_sim_input *in, const int *ranks, int nranks,
                 int gang_max, FILE *out);

#endif
