// The plan (ds_plan.h): tasks, dependencies, cost estimates and priorities from a job.
#include "ds_plan.h"

#include "ds_error.h"
#include "ds_nn.h"
#include "ds_rng.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *ds_task_kind_name(ds_task_kind k) {
    static const char *const names[] = {"train", "soft", "attack", "reduce"};
    return (unsigned)k < 4 ? names[k] : "?";
}

const char *ds_role_name(ds_role r) {
    static const char *const names[] = {"", "warmstart", "baseline", "teacher", "student"};
    return (unsigned)r < 5 ? names[r] : "?";
}

// FNV-1a: the task id as a number, so that a task's seed does not depend on its position.
static uint64_t fnv1a(const char *s) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

// ---- Cost model (MFLOP), from perf-notes.md: a training step ~60 MFLOP per sample, a forward
// ~20, forward + input gradient ~40. Only ratios matter (scheduling order and the ETA). ----

static double craft_cost(const ds_craft *c, int n) {
    switch (c->kind) {
    case DS_KIND_FGSM: return (20.0 + 20.0 * c->fgsm.n_eps) * n; // one gradient, a forward per eps
    case DS_KIND_PGD: // every step a forward and an input gradient (an upper bound: early stops)
        return 40.0 * n * c->pgd.steps * c->pgd.restarts * c->pgd.n_eps;
    case DS_KIND_JSMA: {
        double iters = (double)c->jsma.gamma * 784 / 2 / 2; // half the budget on average
        return 9.0 * n * iters * (20 + 10 * 20);         // forward + a 10-row Jacobian
    }
    case DS_KIND_CW_L2:
        // One Adam iteration = forward + input gradient. Measured on jobs/demo.job: with early
        // abort the attempts still run most of their iterations.
        return (c->cw.targets == DS_TARGETS_ALL ? 9.0 : 1.0) * n * c->cw.steps * c->cw.max_iterations * 40.0;
    case DS_KIND_SQUARE: // one forward per query, the whole budget (robust samples spend it)
        return 20.0 * n * c->square.queries * c->square.n_eps;
    default: return 40.0 * n;
    }
}

typedef struct {
    ds_plan *p;
    int cap_tasks, cap_deps, ndeps;
    int *dep_idx; // per task: offset into dep_pool (resolved into pointers at the end)
    int rep;      // the replicate being built
    int too_long; // a replicate's name did not fit its buffer
} builder;

// Seed of replicate rep (job->seeds[rep]; a job built without the list has only job->seed).
static uint64_t rep_seed(const ds_job *job, int rep) {
    return job->nseeds > 0 ? job->seeds[rep] : job->seed;
}

int ds_plan_rep_name(const ds_plan *plan, int rep, const char *base, char *out, size_t cap) {
    if (plan->job->nseeds > 1)
        return snprintf(out, cap, "s%llu/%s", (unsigned long long)rep_seed(plan->job, rep), base);
    return snprintf(out, cap, "%s", base);
}

// ds_plan_rep_name into a builder's buffer, noting a name that did not fit. (With a 20-digit
// seed the longest model name is about 42 characters, so this is a guard, not a limit.)
static void rep_name(builder *b, const char *base, char *out, size_t cap) {
    if (ds_plan_rep_name(b->p, b->rep, base, out, cap) >= (int)cap) b->too_long = 1;
}

// A task of replicate b->rep: id and model as named in the plan, base_id and base_model as a
// one-seed sweep names them. The seed comes from (the replicate's seed, base_id): the same
// as the task of a one-seed sweep with that seed.
static ds_task *add_task(builder *b, ds_task_kind kind, const char *id, const char *base_id,
                         const char *model, const char *base_model) {
    ds_plan *p = b->p;
    ds_task *t = &p->tasks[p->ntasks];
    memset(t, 0, sizeof *t);
    t->index = p->ntasks;
    t->kind = kind;
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->model, sizeof t->model, "%s", model);
    snprintf(t->base_model, sizeof t->base_model, "%s", base_model);
    t->rep = b->rep;
    t->attack = t->group = t->model_task = t->source_task = -1;
    t->temperature = 1;
    t->chunks = 1;
    b->dep_idx[p->ntasks] = b->ndeps;
    ds_rng r = ds_rng_stream(rep_seed(p->job, b->rep), fnv1a(base_id), 0);
    t->seed = ds_rng_u64(&r);
    p->ntasks++;
    return t;
}

static void add_dep(builder *b, ds_task *t, int dep) {
    if (dep < 0) return;
    for (int i = 0; i < t->ndeps; i++)
        if (b->p->dep_pool[b->dep_idx[t->index] + i] == dep) return;
    b->p->dep_pool[b->ndeps++] = dep;
    t->ndeps++;
}

// "T100/student" -> "T100-student" (file names)
static void flat_name(const char *model, char *out, size_t cap) {
    snprintf(out, cap, "%s", model);
    for (char *c = out; *c; c++)
        if (*c == '/') *c = '-';
}

static void train_task(builder *b, ds_role role, double T, int epochs, int warm, int after) {
    char tn[32], base[DS_JOB_NAME], model[DS_JOB_NAME], flat[DS_JOB_NAME];
    ds_temp_name(T, tn, sizeof tn);
    if (role == DS_ROLE_BASELINE || role == DS_ROLE_WARMSTART)
        snprintf(base, sizeof base, "%s", ds_role_name(role));
    else
        snprintf(base, sizeof base, "%s/%s", tn, ds_role_name(role));
    rep_name(b, base, model, sizeof model);
    flat_name(model, flat, sizeof flat);
    ds_task *t = add_task(b, DS_TASK_TRAIN, model, base, model, base);
    snprintf(t->file, sizeof t->file, "tasks/%s.h5", flat);
    t->role = role;
    t->temperature = T;
    t->epochs = epochs;
    t->source_task = warm;
    if (role == DS_ROLE_STUDENT) t->model_task = after;
    add_dep(b, t, warm);
    add_dep(b, t, after);
    t->cost = 60.0 * epochs * b->p->train_n;
    t->chunks = ds_chunk_count(b->p->job->batch < b->p->train_n ? b->p->job->batch : b->p->train_n,
                               b->p->job->chunk);
    t->steps = (b->p->train_n + b->p->job->batch - 1) / b->p->job->batch;
}

// Whether attack a targets the model (by its name in a one-seed sweep, "T100/student").
static int targets_model(const ds_job_attack *a, const char *model, ds_role role) {
    if (role == DS_ROLE_BASELINE && (a->targets & DS_TARGET_BASELINE)) return 1;
    if (role == DS_ROLE_TEACHER && (a->targets & DS_TARGET_TEACHERS)) return 1;
    if (role == DS_ROLE_STUDENT && (a->targets & DS_TARGET_STUDENTS)) return 1;
    for (int i = 0; i < a->nmodels; i++)
        if (!strcmp(a->models[i], model)) return 1;
    return 0;
}

static void attack_groups(builder *b, const ds_task *model_task) {
    ds_plan *p = b->p;
    const ds_job *job = p->job;
    for (int ai = 0; ai < job->nattacks; ai++) {
        const ds_job_attack *a = &job->attacks[ai];
        if (!targets_model(a, model_task->base_model, model_task->role)) continue;
        ds_attack_group *g = &p->groups[p->ngroups];
        memset(g, 0, sizeof *g);
        snprintf(g->model, sizeof g->model, "%s", model_task->model);
        snprintf(g->base_model, sizeof g->base_model, "%s", model_task->base_model);
        g->rep = model_task->rep;
        g->role = model_task->role;
        g->temperature = model_task->temperature;
        g->attack = ai;
        g->model_task = model_task->index;
        g->first = a->first;
        g->count = a->samples < 0 ? p->test_n - a->first : a->samples;
        g->first_task = p->ntasks;
        int source = a->kind == DS_KIND_TRANSFER ? ds_plan_rep_model_task(p, b->rep, a->source) : -1;
        char flat[DS_JOB_NAME];
        flat_name(g->model, flat, sizeof flat);
        for (int s = g->first; s < g->first + g->count; s += a->shard) {
            int n = a->shard < g->first + g->count - s ? a->shard : g->first + g->count - s;
            char id[DS_TASK_ID], base_id[DS_TASK_ID];
            snprintf(id, sizeof id, "attack/%s/%s/%d-%d", g->model, a->name, s, s + n);
            snprintf(base_id, sizeof base_id, "attack/%s/%s/%d-%d", g->base_model, a->name, s, s + n);
            ds_task *t = add_task(b, DS_TASK_ATTACK, id, base_id, g->model, g->base_model);
            snprintf(t->file, sizeof t->file, "tasks/atk-%s-%s-%06d.h5", flat, a->name, s);
            t->role = g->role;
            t->temperature = g->temperature;
            t->attack = ai;
            t->group = p->ngroups;
            t->first = s;
            t->count = n;
            t->model_task = g->model_task;
            t->source_task = source;
            add_dep(b, t, g->model_task);
            add_dep(b, t, source);
            t->cost = craft_cost(&a->craft, n) + (a->kind == DS_KIND_TRANSFER ? 20.0 * n : 0);
            g->ntasks++;
        }
        p->ngroups++;
    }
}

// Checks the attacks' sample ranges and counts the plan's tasks and attack groups.
static int count_plan(const ds_job *job, int train_n, int test_n, long *ntasks, long *ngroups) {
    if (train_n < 1 || test_n < 1)
        return ds_fail(DS_EINVAL, "%s: empty training or test set (%d, %d samples)", job->path,
                       train_n, test_n);
    if (job->batch > train_n)
        return ds_fail(DS_EINVAL, "%s: [train] batch = %d is larger than the training set (%d)",
                       job->path, job->batch, train_n);
    int nmodels = 2 + 2 * job->ntemps; // warmstart, baseline, teachers, students
    long per_rep = nmodels + job->ntemps, rep_groups = 0; // one replicate's tasks and groups

    for (int ai = 0; ai < job->nattacks; ai++) {
        const ds_job_attack *a = &job->attacks[ai];
        int count = a->samples < 0 ? test_n - a->first : a->samples;
        if (a->first >= test_n || count < 1 || a->first + count > test_n)
            return ds_fail(DS_EINVAL, "%s:%d: [attack %s]: test samples [%d, %d) do not fit in "
                           "the test set of %d samples", job->path, a->range_line, a->name, a->first,
                           a->first + (count > 0 ? count : 0), test_n);
        long shards = (count + a->shard - 1) / a->shard;
        per_rep += shards * nmodels;
        rep_groups += nmodels;
    }
    int nrep = job->nseeds > 1 ? job->nseeds : 1;
    *ntasks = per_rep * nrep + 1; // and the reduce task
    *ngroups = rep_groups * nrep;
    if (*ntasks > 1000000)
        return ds_fail(DS_EINVAL, "%s: the plan would have %ld tasks; use larger shards",
                       job->path, *ntasks);
    return DS_OK;
}

// The trainings and soft labels: warm start, baseline, then per temperature teacher -> soft
// labels -> student.
static void training_tasks(builder *b, const ds_job *job) {
    char id[DS_TASK_ID], base_id[DS_TASK_ID];
    ds_plan *plan = b->p;
    int warm = -1;
    if (job->warm_start > 0) {
        train_task(b, DS_ROLE_WARMSTART, 1, job->warm_start, -1, -1);
        warm = plan->ntasks - 1;
    }
    train_task(b, DS_ROLE_BASELINE, 1, job->baseline_epochs, -1, -1);
    for (int i = 0; i < job->ntemps; i++) {
        double T = job->temps[i];
        char tn[32], rtn[DS_JOB_NAME], flat[DS_JOB_NAME];
        ds_temp_name(T, tn, sizeof tn);
        train_task(b, DS_ROLE_TEACHER, T, job->teacher_epochs, warm, -1);
        int teacher = plan->ntasks - 1;
        snprintf(base_id, sizeof base_id, "%s/soft", tn);
        rep_name(b, base_id, id, sizeof id);
        ds_task *s = add_task(b, DS_TASK_SOFT, id, base_id, plan->tasks[teacher].model,
                              plan->tasks[teacher].base_model);
        rep_name(b, tn, rtn, sizeof rtn);
        flat_name(rtn, flat, sizeof flat);
        snprintf(s->file, sizeof s->file, "tasks/%s-soft.h5", flat);
        s->role = DS_ROLE_TEACHER;
        s->temperature = T;
        s->model_task = teacher;
        add_dep(b, s, teacher);
        s->cost = 20.0 * plan->train_n;
        train_task(b, DS_ROLE_STUDENT, T, job->student_epochs, warm, plan->ntasks - 1);
    }
}

// The reduce task after every other; the dependency pointers; priorities: cost plus the
// costliest chain of tasks waiting for it (dependencies come first, so walking backwards sees
// every dependent before its dependencies).
static void finish_plan(builder *b) {
    ds_plan *plan = b->p;
    b->rep = 0;
    ds_task *r = add_task(b, DS_TASK_REDUCE, "reduce", "reduce", "", "");
    snprintf(r->file, sizeof r->file, "summary.h5");
    r->cost = 1;
    // Every other task: distinct by construction, so no duplicate check (add_dep's check made
    // this quadratic: a plan of a million tasks never finished building).
    for (int i = 0; i < plan->ntasks - 1; i++) plan->dep_pool[b->ndeps++] = i;
    r->ndeps = plan->ntasks - 1;
    for (int i = 0; i < plan->ntasks; i++) plan->tasks[i].deps = plan->dep_pool + b->dep_idx[i];
    for (int i = 0; i < plan->ntasks; i++) plan->tasks[i].priority = plan->tasks[i].cost;
    for (int j = plan->ntasks - 1; j >= 0; j--) {
        const ds_task *t = &plan->tasks[j];
        for (int k = 0; k < t->ndeps; k++) {
            ds_task *d = &plan->tasks[t->deps[k]];
            if (d->cost + t->priority > d->priority) d->priority = d->cost + t->priority;
        }
    }
}

int ds_plan_build(ds_plan *plan, const ds_job *job, int train_n, int test_n) {
    memset(plan, 0, sizeof *plan);
    plan->job = job;
    plan->train_n = train_n;
    plan->test_n = test_n;
    long ntasks = 0, ngroups = 0;
    int rc = count_plan(job, train_n, test_n, &ntasks, &ngroups);
    if (rc) return rc;
    builder b = {.p = plan};
    plan->tasks = calloc((size_t)ntasks, sizeof(ds_task));
    plan->groups = calloc((size_t)ngroups + 1, sizeof(ds_attack_group));
    // At most 2 dependencies per task, plus the reduce task's (every other task).
    plan->dep_pool = calloc((size_t)ntasks * 3, sizeof(int));
    b.dep_idx = calloc((size_t)ntasks, sizeof(int));
    if (!plan->tasks || !plan->groups || !plan->dep_pool || !b.dep_idx) {
        rc = ds_fail(DS_ENOMEM, "plan: out of memory");
        goto fail;
    }
    // Replicate by replicate: its trainings, then its attacks (so groups come by replicate).
    for (b.rep = 0; b.rep < (job->nseeds > 1 ? job->nseeds : 1); b.rep++) {
        int first_train = plan->ntasks;
        training_tasks(&b, job);
        // Check the transfer sources now that the models exist.
        for (int ai = 0; ai < job->nattacks; ai++) {
            const ds_job_attack *a = &job->attacks[ai];
            if (a->kind == DS_KIND_TRANSFER && ds_plan_rep_model_task(plan, b.rep, a->source) < 0) {
                rc = ds_fail(DS_EINVAL, "%s:%d: [attack %s] source: no model '%s' in this sweep",
                             job->path, a->line, a->name, a->source);
                goto fail;
            }
        }
        int last_train = plan->ntasks;
        for (int i = first_train; i < last_train; i++)
            if (plan->tasks[i].kind == DS_TASK_TRAIN && plan->tasks[i].role != DS_ROLE_WARMSTART)
                attack_groups(&b, &plan->tasks[i]);
    }
    if (b.too_long) {
        rc = ds_fail(DS_EINVAL, "%s: [run] seeds: a model name with its seed is longer than %d "
                     "characters", job->path, DS_JOB_NAME - 1);
        goto fail;
    }
    finish_plan(&b);
    free(b.dep_idx);
    return DS_OK;
fail:
    free(b.dep_idx);
    ds_plan_free(plan);
    return rc;
}

void ds_plan_free(ds_plan *plan) {
    free(plan->tasks);
    free(plan->groups);
    free(plan->dep_pool);
    plan->tasks = NULL;
    plan->groups = NULL;
    plan->dep_pool = NULL;
    plan->ntasks = plan->ngroups = 0;
}

int ds_plan_find(const ds_plan *plan, const char *id) {
    for (int i = 0; i < plan->ntasks; i++)
        if (!strcmp(plan->tasks[i].id, id)) return i;
    return -1;
}

int ds_plan_model_task(const ds_plan *plan, const char *model) {
    for (int i = 0; i < plan->ntasks; i++)
        if (plan->tasks[i].kind == DS_TASK_TRAIN && !strcmp(plan->tasks[i].model, model)) return i;
    return -1;
}

int ds_plan_rep_model_task(const ds_plan *plan, int rep, const char *base_model) {
    for (int i = 0; i < plan->ntasks; i++) {
        const ds_task *t = &plan->tasks[i];
        if (t->kind == DS_TASK_TRAIN && t->rep == rep && !strcmp(t->base_model, base_model)) return i;
    }
    return -1;
}

uint64_t ds_plan_attack_seed(const ds_plan *plan, const ds_task *t) {
    if (t->attack < 0) return 0;
    const char *name = plan->job->attacks[t->attack].name;
    ds_rng r = ds_rng_stream(rep_seed(plan->job, t->rep), fnv1a(name), DS_STREAM_ATTACK);
    return ds_rng_u64(&r);
}

int ds_plan_dependents(const ds_plan *plan, int **rstart, int **rdep) {
    int n = plan->ntasks, total = 0;
    for (int i = 0; i < n; i++) total += plan->tasks[i].ndeps;
    int *start = calloc((size_t)n + 1, sizeof(int)), *dep = calloc((size_t)total + 1, sizeof(int));
    int *fill = calloc((size_t)n + 1, sizeof(int));
    if (!start || !dep || !fill) {
        free(start), free(dep), free(fill);
        return ds_fail(DS_ENOMEM, "plan: out of memory for the dependents of %d tasks", n);
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; k < plan->tasks[i].ndeps; k++) start[plan->tasks[i].deps[k] + 1]++;
    for (int i = 0; i < n; i++) start[i + 1] += start[i];
    for (int i = 0; i < n; i++)
        for (int k = 0; k < plan->tasks[i].ndeps; k++) {
            int d = plan->tasks[i].deps[k];
            dep[start[d] + fill[d]++] = i;
        }
    free(fill);
    *rstart = start;
    *rdep = dep;
    return DS_OK;
}

void ds_plan_task_path(const ds_plan *plan, int task, const char *run_dir, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", run_dir, plan->tasks[task].file);
}

static void print_cost(FILE *f, double mflop) {
    if (mflop >= 1e6) fprintf(f, "%7.1f TF", mflop / 1e6);
    else if (mflop >= 1e3) fprintf(f, "%7.1f GF", mflop / 1e3);
    else fprintf(f, "%7.1f MF", mflop);
}

// One line per replicate: its tasks by kind and its estimated work (the reduce task is shared).
static void print_replicates(const ds_plan *plan, FILE *f) {
    const ds_job *job = plan->job;
    for (int r = 0; r < job->nseeds; r++) {
        int n[4] = {0};
        double work = 0;
        for (int i = 0; i < plan->ntasks; i++) {
            const ds_task *t = &plan->tasks[i];
            if (t->rep != r || t->kind == DS_TASK_REDUCE) continue;
            n[t->kind]++;
            work += t->cost;
        }
        fprintf(f, "  seed %llu (s%llu/): %d tasks (%d trainings, %d soft labels, %d attack shards), "
                "estimated work ", (unsigned long long)job->seeds[r], (unsigned long long)job->seeds[r],
                n[0] + n[1] + n[2], n[0], n[1], n[2]);
        print_cost(f, work);
        fprintf(f, "LOP\n");
    }
    fprintf(f, "  total: %d replicates, %d tasks with the reduce task\n", job->nseeds, plan->ntasks);
}

void ds_plan_print(const ds_plan *plan, FILE *f) {
    const ds_job *job = plan->job;
    double total = 0;
    for (int i = 0; i < plan->ntasks; i++) total += plan->tasks[i].cost;
    fprintf(f, "plan of %s: %d tasks, %d model/attack rows, %d training and %d test samples, "
            "estimated work ", job->path, plan->ntasks, plan->ngroups, plan->train_n, plan->test_n);
    print_cost(f, total);
    fprintf(f, "LOP\n");
    if (job->nseeds > 1) print_replicates(plan, f);
    fprintf(f, "%5s  %-44s %-7s %10s  %-14s %s\n", "task", "id", "kind", "cost", "after", "output");
    for (int i = 0; i < plan->ntasks; i++) {
        const ds_task *t = &plan->tasks[i];
        char deps[64] = "-";
        if (t->kind == DS_TASK_REDUCE) {
            snprintf(deps, sizeof deps, "all");
        } else if (t->ndeps) {
            size_t n = 0;
            for (int k = 0; k < t->ndeps && n < sizeof deps; k++)
                n += (size_t)snprintf(deps + n, sizeof deps - n, "%s%d", k ? "," : "", t->deps[k]);
        }
        fprintf(f, "%5d  %-44s %-7s ", i, t->id, ds_task_kind_name(t->kind));
        print_cost(f, t->cost);
        fprintf(f, "  %-14s %s", deps, t->file);
        if (t->kind == DS_TASK_ATTACK)
            fprintf(f, "  [%s %s]", ds_attack_kind_name(job->attacks[t->attack].kind),
                    job->attacks[t->attack].params);
        if (t->kind == DS_TASK_TRAIN)
            fprintf(f, "  [%d epochs at T=%g]", t->epochs, t->temperature);
        fputc('\n', f);
    }
}
