// Job files (ds_job.h): INI text -> ds_job, with "file:line: problem" for every error.
//
// Parsing is two passes: libinih hands every key to collect(), which records (section, key,
// value, line); then interpret() reads the records, so that a key may come before or after the
// key that decides what it means (an attack's `kind`), and every check knows its line.
#include "ds_job.h"

#include "ds_attack.h"
#include "ds_error.h"
#include "ds_nn.h"
#include "ds_strbuf.h"

#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ENTRIES 1024
#define MAX_LINE 200 // inih's line buffer (INI_MAX_LINE), including the newline and the NUL

typedef struct {
    char section[DS_JOB_NAME + 8];
    char key[48];
    char value[MAX_LINE];
    int line;
    int used; // consumed by interpret(); an unused entry is an unknown key
} entry;

typedef struct {
    const char *path;
    const char *text, *pos; // the reader's input
    int line;               // line the reader returned last
    int err_line;           // first error found by collect() or the reader
    char err[512];
    entry *entries;
    int n;
    // section headers, for the lines of [attack NAME] sections
    int nsections;
    char sections[DS_JOB_MAX_ATTACKS + 8][DS_JOB_NAME + 8];
    int section_lines[DS_JOB_MAX_ATTACKS + 8];
} parser;

// Copies s into d[cap], truncating.
static void scopy(char *d, size_t cap, const char *s) {
    size_t n = strnlen(s, cap - 1);
    memcpy(d, s, n);
    d[n] = 0;
}

static void perr(parser *p, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void perr(parser *p, int line, const char *fmt, ...) {
    if (p->err_line) return; // keep the first
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
    p->err_line = line;
}

// fgets-like reader over the text: one line per call, so p->line is the current line number
// while inih calls collect() for it.
static char *reader(char *str, int num, void *stream) {
    parser *p = stream;
    if (!*p->pos) return NULL;
    const char *end = strchr(p->pos, '\n');
    size_t len = end ? (size_t)(end - p->pos) + 1 : strlen(p->pos);
    p->line++;
    if (len + 1 > (size_t)num || len + 1 > MAX_LINE) {
        perr(p, p->line, "line longer than %d characters", MAX_LINE - 3);
        len = (size_t)num - 2;
        memcpy(str, p->pos, len);
        str[len] = '\n';
        str[len + 1] = 0;
        p->pos = end ? end + 1 : p->pos + strlen(p->pos);
        return str;
    }
    memcpy(str, p->pos, len);
    str[len] = 0;
    p->pos += len;
    return str;
}

static void trim_hash_comment(char *v) {
    for (char *c = v; *c; c++)
        if (*c == '#' && (c == v || isspace((unsigned char)c[-1]))) {
            *c = 0;
            break;
        }
    size_t n = strlen(v);
    while (n && isspace((unsigned char)v[n - 1])) v[--n] = 0;
}

static int collect(void *user, const char *section, const char *name, const char *value) {
    parser *p = user;
    int line = p->line;
    if (strlen(section) >= sizeof p->entries[0].section || strlen(name) >= sizeof p->entries[0].key) {
        perr(p, line, "[%s] %s: name too long", section, name);
        return 0;
    }
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->entries[i].section, section) && !strcmp(p->entries[i].key, name)) {
            perr(p, line, "[%s] %s is set twice (first at line %d; an indented line continues the "
                 "previous key)", section, name, p->entries[i].line);
            return 0;
        }
    if (p->n == MAX_ENTRIES) {
        perr(p, line, "too many settings (at most %d)", MAX_ENTRIES);
        return 0;
    }
    entry *e = &p->entries[p->n++];
    scopy(e->section, sizeof e->section, section);
    scopy(e->key, sizeof e->key, name);
    scopy(e->value, sizeof e->value, value);
    trim_hash_comment(e->value);
    e->line = line;
    e->used = 0;
    return 1;
}

// Finds every "[section]" header line, as inih reads it (the text between '[' and ']',
// untrimmed), so that empty, unknown and repeated sections are errors with their lines.
static void scan_headers(parser *p) {
    int line = 1;
    for (const char *s = p->text; *s; line++) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        const char *a = s;
        while (len && isspace((unsigned char)*a)) a++, len--;
        if (len && *a == '[') {
            const char *close = memchr(a, ']', len);
            if (close) {
                size_t n = (size_t)(close - a - 1);
                char name[128];
                if (n >= 50 || n >= sizeof p->sections[0]) {
                    perr(p, line, "section name longer than 49 characters");
                    return;
                }
                memcpy(name, a + 1, n);
                name[n] = 0;
                for (int i = 0; i < p->nsections; i++)
                    if (!strcmp(p->sections[i], name)) {
                        perr(p, line, "section [%s] appears twice (first at line %d); keep one",
                             name, p->section_lines[i]);
                        return;
                    }
                if (strcmp(name, "run") && strcmp(name, "data") && strcmp(name, "train") &&
                    strcmp(name, "distill") && strncmp(name, "attack ", 7)) {
                    perr(p, line, "unknown section [%s] (expected run, data, train, distill or "
                         "'attack NAME')", name);
                    return;
                }
                if (p->nsections == (int)(sizeof p->sections / sizeof p->sections[0])) {
                    perr(p, line, "too many sections (at most %d attacks)", DS_JOB_MAX_ATTACKS);
                    return;
                }
                scopy(p->sections[p->nsections], sizeof p->sections[0], name);
                p->section_lines[p->nsections++] = line;
            }
        }
        if (!e) break;
        s = e + 1;
    }
}

// ---- Values ----

static entry *find(parser *p, const char *section, const char *key) {
    for (int i = 0; i < p->n; i++)
        if (!strcmp(p->entries[i].section, section) && !strcmp(p->entries[i].key, key)) {
            p->entries[i].used = 1;
            return &p->entries[i];
        }
    return NULL;
}

static int get_int(parser *p, const char *sec, const char *key, int lo, int hi, int allow_all,
                   int *out) {
    entry *e = find(p, sec, key);
    if (!e) return 0;
    if (allow_all && !strcmp(e->value, "all")) {
        *out = -1;
        return 1;
    }
    char *end;
    errno = 0;
    long v = strtol(e->value, &end, 10);
    if (!*e->value || *end || errno || v < lo || v > hi) {
        perr(p, e->line, "[%s] %s: expected an integer in [%d, %d]%s, got '%s'", sec, key, lo, hi,
             allow_all ? " or 'all'" : "", e->value);
        return -1;
    }
    *out = (int)v;
    return 1;
}

// lo_open: the value must be > lo (else >= lo).
static int get_double(parser *p, const char *sec, const char *key, double lo, int lo_open,
                      double hi, double *out) {
    entry *e = find(p, sec, key);
    if (!e) return 0;
    char *end;
    errno = 0;
    double v = strtod(e->value, &end);
    if (!*e->value || *end || errno || !isfinite(v) || v < lo || (lo_open && v == lo) || v > hi) {
        perr(p, e->line, "[%s] %s: expected a number in %c%g, %g], got '%s'", sec, key,
             lo_open ? '(' : '[', lo, hi, e->value);
        return -1;
    }
    *out = v;
    return 1;
}

// Picks one of the words; *out is its index.
static int get_enum(parser *p, const char *sec, const char *key, const char *const *words,
                    int nwords, int *out) {
    entry *e = find(p, sec, key);
    if (!e) return 0;
    for (int i = 0; i < nwords; i++)
        if (!strcmp(e->value, words[i])) {
            *out = i;
            return 1;
        }
    char list[256] = "";
    for (int i = 0; i < nwords; i++) {
        strncat(list, words[i], sizeof list - strlen(list) - 1);
        if (i + 1 < nwords) strncat(list, " | ", sizeof list - strlen(list) - 1);
    }
    perr(p, e->line, "[%s] %s: expected %s, got '%s'", sec, key, list, e->value);
    return -1;
}

static int get_bool(parser *p, const char *sec, const char *key, int *out) {
    static const char *const words[] = {"false", "true", "no", "yes", "0", "1"};
    int i, r = get_enum(p, sec, key, words, 6, &i);
    if (r == 1) *out = i & 1;
    return r;
}

static int valid_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.') return 0;
    return 1;
}

void ds_temp_name(double t, char *out, size_t cap) { snprintf(out, cap, "T%g", t); }

// ---- Sections ----

// A seed: a non-negative decimal integer that fits in 64 bits. 0 on success.
static int seed_value(const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (!*s || *end || errno || s[0] == '-') return -1;
    *out = v;
    return 0;
}

// [run] seed = N (the list {N}) or seeds = N1 N2 ... (distinct), never both.
static void parse_seeds(parser *p, ds_job *job) {
    entry *one = find(p, "run", "seed"), *list = find(p, "run", "seeds");
    if (one && list) {
        entry *later = one->line > list->line ? one : list, *first = later == one ? list : one;
        perr(p, later->line, "[run] %s: the job already sets %s at line %d; use one of seed = N "
             "and seeds = N1 N2 ...", later->key, first->key, first->line);
        return;
    }
    if (one) {
        if (seed_value(one->value, &job->seeds[0]))
            perr(p, one->line, "[run] seed: expected a non-negative integer, got '%s'", one->value);
        job->seed = job->seeds[0];
        return;
    }
    if (!list) return;
    char buf[MAX_LINE];
    scopy(buf, sizeof buf, list->value);
    int n = 0;
    for (char *tok = strtok(buf, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        uint64_t v;
        if (seed_value(tok, &v)) {
            perr(p, list->line, "[run] seeds: expected non-negative integers, got '%s'", tok);
            return;
        }
        for (int i = 0; i < n; i++)
            if (job->seeds[i] == v) {
                perr(p, list->line, "[run] seeds: %llu appears twice", (unsigned long long)v);
                return;
            }
        if (n == DS_JOB_MAX_SEEDS) {
            perr(p, list->line, "[run] seeds: at most %d", DS_JOB_MAX_SEEDS);
            return;
        }
        job->seeds[n++] = v;
    }
    if (!n) {
        perr(p, list->line, "[run] seeds: empty (expected seeds = N1 N2 ...)");
        return;
    }
    job->nseeds = n;
    job->seed = job->seeds[0];
}

// A word that parse (a ds_*_parse function) turns into *out; its message on failure.
#define GET_WORD(p, sec, key, parse, out)                                                          \
    do {                                                                                           \
        entry *e_ = find(p, sec, key);                                                             \
        if (e_ && parse(e_->value, out)) perr(p, e_->line, "[%s] %s: %s", sec, key, ds_errmsg());  \
    } while (0)

static void parse_run(parser *p, ds_job *job) {
    const char *s = "run";
    entry *e;
    if ((e = find(p, s, "name"))) {
        if (!valid_name(e->value) || strlen(e->value) >= sizeof job->name)
            perr(p, e->line, "[run] name: expected letters, digits, '_', '-' or '.', got '%s'",
                 e->value);
        else
            scopy(job->name, sizeof job->name, e->value);
    }
    if ((e = find(p, s, "results"))) {
        if (!*e->value || strlen(e->value) >= sizeof job->results)
            perr(p, e->line, "[run] results: expected a folder");
        else
            scopy(job->results, sizeof job->results, e->value);
    }
    parse_seeds(p, job);
    GET_WORD(p, s, "engine", ds_engine_kind_parse, &job->engine);
    if ((e = find(p, s, "threads"))) {
        if (!strcmp(e->value, "auto")) {
            job->threads = 0;
        } else {
            e->used = 0;
            get_int(p, s, "threads", 1, 1024, 0, &job->threads);
        }
    }
}

static void parse_data(parser *p, ds_job *job) {
    const char *s = "data";
    static const char *const sets[] = {"mnist", "fashion-mnist", "auto"};
    int i;
    if (get_enum(p, s, "dataset", sets, 3, &i) == 1) scopy(job->dataset, sizeof job->dataset, sets[i]);
    entry *e = find(p, s, "dir");
    if (e) scopy(job->data_dir, sizeof job->data_dir, e->value);
    get_int(p, s, "train_samples", 1, 1000000000, 1, &job->train_samples);
    get_int(p, s, "test_samples", 1, 1000000000, 1, &job->test_samples);
}

// A word parsed by its library's own parser (ds_space_parse, ds_init_parse, ...), its message behind the
// file, line, section and key.
static void parse_train(parser *p, ds_job *job) {
    const char *s = "train";
    int epochs = 50;
    get_int(p, s, "epochs", 1, 100000, 0, &epochs);
    job->baseline_epochs = job->teacher_epochs = job->student_epochs = epochs;
    get_int(p, s, "baseline_epochs", 1, 100000, 0, &job->baseline_epochs);
    get_int(p, s, "teacher_epochs", 1, 100000, 0, &job->teacher_epochs);
    get_int(p, s, "student_epochs", 1, 100000, 0, &job->student_epochs);
    get_int(p, s, "warm_start", 0, 100000, 0, &job->warm_start);
    get_int(p, s, "batch", 1, 65536, 0, &job->batch);
    get_int(p, s, "chunk", DS_GROUP, 65536, 0, &job->chunk);
    if (job->chunk % DS_GROUP) {
        entry *e = find(p, s, "chunk");
        perr(p, e ? e->line : 0, "[train] chunk: %d is not a multiple of %d (the engine's group)",
             job->chunk, DS_GROUP);
    }
    get_double(p, s, "lr", 0, 1, 1e6, &job->lr);
    get_double(p, s, "momentum", 0, 0, 0.999999, &job->momentum);
    get_double(p, s, "dropout", 0, 0, 0.99, &job->dropout);
    get_double(p, s, "lr_decay", 0, 1, 1, &job->lr_decay);
    get_double(p, s, "lr_decay_last", 0, 0, 1, &job->lr_decay_last);
    GET_WORD(p, s, "init", ds_init_parse, &job->init);
    if (job->train_samples > 0 && job->batch > job->train_samples) {
        entry *e = find(p, s, "batch");
        perr(p, e ? e->line : 0, "[train] batch: %d is larger than [data] train_samples = %d",
             job->batch, job->train_samples);
    }
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

// "none": no teachers and students, only the baseline (and its attacks).
static int no_distillation(parser *p) {
    entry *e = find(p, "distill", "temperatures");
    return e && !strcmp(e->value, "none");
}

static void parse_distill(parser *p, ds_job *job) {
    entry *e = find(p, "distill", "temperatures");
    if (!e || no_distillation(p)) return;
    char buf[MAX_LINE];
    scopy(buf, sizeof buf, e->value);
    for (char *tok = strtok(buf, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        char *end;
        errno = 0;
        double t = strtod(tok, &end);
        if (*end || errno || !isfinite(t) || t <= 0 || t > 1e6) {
            perr(p, e->line, "[distill] temperatures: expected positive numbers, got '%s'", tok);
            return;
        }
        if (job->ntemps == DS_JOB_MAX_TEMPS) {
            perr(p, e->line, "[distill] temperatures: at most %d", DS_JOB_MAX_TEMPS);
            return;
        }
        job->temps[job->ntemps++] = t;
    }
    qsort(job->temps, (size_t)job->ntemps, sizeof(double), cmp_double);
    for (int i = 1; i < job->ntemps; i++) {
        char a[32], b[32];
        ds_temp_name(job->temps[i - 1], a, sizeof a);
        ds_temp_name(job->temps[i], b, sizeof b);
        if (!strcmp(a, b)) {
            perr(p, e->line, "[distill] temperatures: %s appears twice", a + 1);
            return;
        }
    }
}

// Whether `model` names a model of this job: baseline or T<t>/teacher or T<t>/student.
static int model_exists(const ds_job *job, const char *model) {
    if (!strcmp(model, "baseline")) return 1;
    for (int i = 0; i < job->ntemps; i++) {
        char t[32], m[DS_JOB_NAME];
        ds_temp_name(job->temps[i], t, sizeof t);
        snprintf(m, sizeof m, "%s/teacher", t);
        if (!strcmp(model, m)) return 1;
        snprintf(m, sizeof m, "%s/student", t);
        if (!strcmp(model, m)) return 1;
    }
    return 0;
}

// A float setting, read as a double and checked like one, then stored as the attack library's
// float (so 0.145 written or defaulted is the same 0.145f).
static void get_float(parser *p, const char *sec, const char *key, double lo, int lo_open,
                      double hi, float *out) {
    double v;
    if (get_double(p, sec, key, lo, lo_open, hi, &v) == 1) *out = (float)v;
}


// `eps = 0.05 0.1 0.3` (spaces or commas): 1 to DS_FGSM_MAX_EPS distinct values in (0, hi], in
// the order written (the records' order).
static void get_eps_list(parser *p, const char *sec, double hi, float *eps, int *n) {
    entry *e = find(p, sec, "eps");
    if (!e) return;
    char buf[MAX_LINE];
    scopy(buf, sizeof buf, e->value);
    int k = 0;
    for (char *tok = strtok(buf, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        char *end;
        errno = 0;
        double v = strtod(tok, &end);
        if (*end || errno || !isfinite(v) || v <= 0 || v > hi) {
            perr(p, e->line, "[%s] eps: expected numbers in (0, %g], got '%s'", sec, hi, tok);
            return;
        }
        if (k == DS_FGSM_MAX_EPS) {
            perr(p, e->line, "[%s] eps: at most %d values", sec, DS_FGSM_MAX_EPS);
            return;
        }
        for (int i = 0; i < k; i++)
            if (eps[i] == (float)v) {
                perr(p, e->line, "[%s] eps: %s appears twice", sec, tok);
                return;
            }
        eps[k++] = (float)v;
    }
    if (!k) perr(p, e->line, "[%s] eps: empty", sec);
    else *n = k;
}

static void parse_numerics(parser *p, const char *s, ds_numerics *n, int softmax_keys) {
    GET_WORD(p, s, "denormals", ds_denormals_parse, &n->denormals);
    if (!softmax_keys) return;
    GET_WORD(p, s, "gradient", ds_gradient_parse, &n->gradient);
    GET_WORD(p, s, "precision", ds_precision_parse, &n->precision);
}

// ---- Square Attack (kind = square) ----

static void parse_square(parser *p, const char *s, ds_square_params *q) {
    get_eps_list(p, s, 1, q->eps, &q->n_eps);
    get_int(p, s, "queries", 1, 100000000, 0, &q->queries);
    get_float(p, s, "p_init", 0, 1, 1, &q->p_init);
    GET_WORD(p, s, "space", ds_space_parse, &q->space);
    GET_WORD(p, s, "labels", ds_label_mode_parse, &q->labels);
    GET_WORD(p, s, "denormals", ds_denormals_parse, &q->denormals);
}

static void parse_craft(parser *p, const char *s, ds_craft *c) {
    int v;
    switch (c->kind) {
    case DS_KIND_FGSM:
        get_eps_list(p, s, 1, c->fgsm.eps, &c->fgsm.n_eps);
        GET_WORD(p, s, "space", ds_space_parse, &c->fgsm.space);
        GET_WORD(p, s, "labels", ds_label_mode_parse, &c->fgsm.labels);
        parse_numerics(p, s, &c->fgsm.num, 1);
        break;
    case DS_KIND_JSMA:
        get_float(p, s, "theta", -1, 0, 1, &c->jsma.theta);
        if (c->jsma.theta == 0) {
            entry *e = find(p, s, "theta");
            perr(p, e ? e->line : 0, "[%s] theta: must not be 0", s);
        }
        get_float(p, s, "gamma", 0, 1, 1, &c->jsma.gamma);
        GET_WORD(p, s, "space", ds_space_parse, &c->jsma.space);
        parse_numerics(p, s, &c->jsma.num, 1);
        break;
    case DS_KIND_CW_L2:
        get_float(p, s, "c", 0, 1, 1e10, &c->cw.c0);
        get_int(p, s, "search_steps", 1, 100, 0, &c->cw.steps);
        get_int(p, s, "iterations", 1, 1000000, 0, &c->cw.max_iterations);
        get_float(p, s, "lr", 0, 1, 10, &c->cw.lr);
        get_float(p, s, "kappa", 0, 0, 1e6, &c->cw.kappa);
        if (get_bool(p, s, "targeted", &v) == 1) c->cw.targets = v ? DS_TARGETS_ALL : DS_TARGETS_NONE;
        get_bool(p, s, "abort_early", &c->cw.abort_early);
        GET_WORD(p, s, "denormals", ds_denormals_parse, &c->cw.denormals);
        break;
    case DS_KIND_SQUARE:
        parse_square(p, s, &c->square);
        break;
    // ---- pgd ----
    case DS_KIND_PGD: {
        ds_pgd_params *g = &c->pgd;
        GET_WORD(p, s, "norm", ds_norm_parse, &g->norm);
        get_eps_list(p, s, g->norm == DS_NORM_LINF ? 1 : 1e6, g->eps, &g->n_eps);
        get_float(p, s, "step", 0, 1, 1e6, &g->step);
        get_int(p, s, "steps", 1, 1000000, 0, &g->steps);
        get_bool(p, s, "random_start", &g->random_start);
        get_int(p, s, "restarts", 1, 10000, 0, &g->restarts);
        GET_WORD(p, s, "loss", ds_loss_parse, &g->loss);
        GET_WORD(p, s, "space", ds_space_parse, &g->space);
        GET_WORD(p, s, "labels", ds_label_mode_parse, &g->labels);
        parse_numerics(p, s, &g->num, 1);
        entry *e = find(p, s, "restarts");
        if (!p->err[0] && g->restarts > 1 && !g->random_start)
            perr(p, e->line, "[%s] restarts: %d restarts need random_start = true (else they "
                 "repeat one start)", s, g->restarts);
        if (!p->err[0] && ds_pgd_params_check(g)) { // steps x restarts too many
            e = e ? e : find(p, s, "steps");
            perr(p, e ? e->line : 0, "[%s] %s", s, ds_errmsg());
        }
        break;
    }
    default:
        break;
    }
}

static int default_shard(ds_attack_kind k) {
    switch (k) {
    case DS_KIND_FGSM: return 1000;
    case DS_KIND_JSMA: return 10;
    case DS_KIND_SQUARE: return 250; // 1000 queries of ~20 MFLOP: ~5 TFLOP a task, as C&W's 10
    case DS_KIND_PGD: return 500; // 100 steps: ~100 FGSM per sample
    default: return 10;
    }
}

static void parse_models(parser *p, const char *s, const ds_job *job, ds_job_attack *a) {
    entry *e = find(p, s, "models");
    if (!e) return;
    a->targets = 0;
    a->nmodels = 0;
    char buf[MAX_LINE];
    scopy(buf, sizeof buf, e->value);
    for (char *tok = strtok(buf, " \t,"); tok; tok = strtok(NULL, " \t,")) {
        if (!strcmp(tok, "baseline")) a->targets |= DS_TARGET_BASELINE;
        else if (!strcmp(tok, "teachers")) a->targets |= DS_TARGET_TEACHERS;
        else if (!strcmp(tok, "students")) a->targets |= DS_TARGET_STUDENTS;
        else if (!strcmp(tok, "all"))
            a->targets |= DS_TARGET_BASELINE | DS_TARGET_TEACHERS | DS_TARGET_STUDENTS;
        else if (model_exists(job, tok)) {
            if (a->nmodels == DS_JOB_MAX_MODELS) {
                perr(p, e->line, "[%s] models: at most %d model names", s, DS_JOB_MAX_MODELS);
                return;
            }
            scopy(a->models[a->nmodels++], DS_JOB_NAME, tok);
        } else {
            perr(p, e->line, "[%s] models: '%s' is not baseline, teachers, students, all or a "
                 "model of this job (like T%g/student)", s, tok,
                 job->ntemps ? job->temps[job->ntemps - 1] : 100.0);
            return;
        }
    }
    if (!a->targets && !a->nmodels) perr(p, e->line, "[%s] models: empty", s);
}

// kind (and for transfer: craft and source) of section s into a; 0 on an error.
static int parse_kind(parser *p, const ds_job *job, const char *s, int header, ds_job_attack *a) {
    // The kinds a job runs, and those a transfer section may craft with.
    static const ds_attack_kind kinds[] = {DS_KIND_FGSM, DS_KIND_JSMA, DS_KIND_CW_L2,
                                           DS_KIND_TRANSFER, DS_KIND_PGD, DS_KIND_SQUARE};
    enum { NK = sizeof kinds / sizeof kinds[0] };
    const char *names[NK], *crafts[NK];
    ds_attack_kind craft_kinds[NK];
    int ncraft = 0;
    for (int i = 0; i < NK; i++) {
        names[i] = ds_attack_kind_name(kinds[i]);
        if (kinds[i] != DS_KIND_TRANSFER) {
            craft_kinds[ncraft] = kinds[i];
            crafts[ncraft++] = names[i];
        }
    }
    int k;
    int r = get_enum(p, s, "kind", names, NK, &k);
    if (r == 0) perr(p, header, "[%s]: missing 'kind = fgsm | jsma | cw-l2 | transfer | pgd | square'", s);
    if (r <= 0) return 0;
    a->kind = kinds[k];
    ds_attack_kind craft = a->kind;
    if (a->kind == DS_KIND_TRANSFER) {
        int c = 0;
        if (get_enum(p, s, "craft", crafts, ncraft, &c) < 0) return 0;
        craft = craft_kinds[c];
        snprintf(a->source, sizeof a->source, "baseline");
        entry *e = find(p, s, "source");
        if (e) {
            if (!model_exists(job, e->value)) {
                perr(p, e->line, "[%s] source: '%s' is not a model of this job (baseline or "
                     "T<t>/teacher or T<t>/student with t in [distill] temperatures)", s, e->value);
                return 0;
            }
            scopy(a->source, sizeof a->source, e->value);
        }
    }
    ds_craft_default(&a->craft, craft);
    return 1;
}

// first, samples, shard of section s, checked against the job's test set.
static void parse_range(parser *p, const ds_job *job, const char *s, int header, ds_job_attack *a) {
    a->first = 0;
    a->samples = -1;
    a->shard = default_shard(a->craft.kind);
    get_int(p, s, "first", 0, 1000000000, 0, &a->first);
    get_int(p, s, "samples", 1, 1000000000, 1, &a->samples);
    entry *rs = find(p, s, "samples"), *rf = find(p, s, "first");
    a->range_line = rs ? rs->line : rf ? rf->line : header;
    get_int(p, s, "shard", 1, 1000000000, 0, &a->shard);
    if (job->test_samples > 0) {
        int end = a->samples < 0 ? job->test_samples : a->first + a->samples;
        if (a->first >= job->test_samples || end > job->test_samples) {
            entry *e = find(p, s, a->samples < 0 ? "first" : "samples");
            perr(p, e ? e->line : header, "[%s]: test samples [%d, %d) do not fit in [data] "
                 "test_samples = %d", s, a->first, end, job->test_samples);
        }
    }
}

static void parse_attack(parser *p, ds_job *job, const char *s, int header) {
    if (job->nattacks == DS_JOB_MAX_ATTACKS) {
        perr(p, header, "too many attack sections (at most %d)", DS_JOB_MAX_ATTACKS);
        return;
    }
    ds_job_attack *a = &job->attacks[job->nattacks];
    memset(a, 0, sizeof *a);
    const char *name = s + strlen("attack ");
    while (*name == ' ') name++;
    if (!valid_name(name) || strlen(name) >= sizeof a->name) {
        perr(p, header, "[%s]: the attack name must be letters, digits, '_', '-' or '.'", s);
        return;
    }
    for (int i = 0; i < job->nattacks; i++)
        if (!strcmp(job->attacks[i].name, name)) {
            perr(p, header, "[%s]: attack name '%s' used twice (first at line %d)", s, name,
                 job->attacks[i].line);
            return;
        }
    scopy(a->name, sizeof a->name, name);
    a->line = header;
    if (!parse_kind(p, job, s, header, a)) return;
    parse_craft(p, s, &a->craft);
    a->targets = a->kind == DS_KIND_TRANSFER ? DS_TARGET_STUDENTS
                                             : DS_TARGET_BASELINE | DS_TARGET_STUDENTS;
    parse_models(p, s, job, a);
    parse_range(p, job, s, header, a);
    char full[640];
    if (ds_job_attack_params(a, &a->craft, full, sizeof full) >= (int)sizeof a->params) {
        entry *e = find(p, s, "eps"); // the params column and attribute hold 255
        perr(p, e ? e->line : header, "[%s]: the settings string '%s' is longer than %d "
             "characters; use fewer eps values", s, full, (int)sizeof a->params - 1);
        return;
    }
    scopy(a->params, sizeof a->params, full);
    job->nattacks++;
}

int ds_job_attack_params(const ds_job_attack *a, const ds_craft *c, char *out, size_t cap) {
    char cp[512], src[DS_JOB_NAME];
    ds_craft_string(c, DS_PIXELS, cp, sizeof cp);
    scopy(src, sizeof src, a->source);
    if (a->kind == DS_KIND_TRANSFER)
        return snprintf(out, cap, "source=%s craft=%s %s", src, ds_attack_kind_name(c->kind),
                        cp);
    return snprintf(out, cap, "%s", cp);
}

static void set_defaults(ds_job *job, const char *path) {
    memset(job, 0, sizeof *job);
    scopy(job->path, sizeof job->path, path);
    // Run name: the file's base name without ".job".
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    scopy(job->name, sizeof job->name, base);
    char *dot = strrchr(job->name, '.');
    if (dot && dot != job->name) *dot = 0;
    if (!valid_name(job->name)) snprintf(job->name, sizeof job->name, "run");
    snprintf(job->results, sizeof job->results, "results");
    job->seed = job->seeds[0] = 1;
    job->nseeds = 1;
    job->threads = 1;
    job->engine = DS_ENGINE_ONEDNN;
    snprintf(job->dataset, sizeof job->dataset, "mnist");
    job->train_samples = job->test_samples = -1;
    job->baseline_epochs = job->teacher_epochs = job->student_epochs = 50;
    job->warm_start = 0;
    job->batch = 128;
    job->chunk = DS_CHUNK;
    job->lr = 0.1;
    job->momentum = 0.5;
    job->dropout = 0.5;
    job->lr_decay = 1;
    job->lr_decay_last = 0.25;
}

int ds_job_lr_decay_from(const ds_job *job, int epochs) {
    return epochs - (int)lround(epochs * job->lr_decay_last);
}

int ds_job_parse_text(ds_job *job, const char *text, const char *path) {
    set_defaults(job, path);
    parser p = {.path = path, .text = text, .pos = text};
    p.entries = calloc(MAX_ENTRIES, sizeof(entry));
    if (!p.entries) return ds_fail(DS_ENOMEM, "%s: out of memory", path);
    scan_headers(&p);
    int r = p.err[0] ? 0 : ini_parse_stream(reader, &p, collect, &p);
    if (r < 0) perr(&p, 0, "cannot parse (inih error %d)", r);
    if (r > 0) perr(&p, r, "expected '[section]' or 'key = value'");
    if (!p.err[0]) {
        for (int i = 0; i < p.n; i++)
            if (!p.entries[i].section[0]) {
                perr(&p, p.entries[i].line, "'%s' comes before the first [section]", p.entries[i].key);
                break;
            }
    }
    if (!p.err_line && !p.err[0]) {
        parse_run(&p, job);
        parse_data(&p, job);
        parse_train(&p, job);
        parse_distill(&p, job);
        for (int i = 0; i < p.nsections && !p.err[0]; i++)
            if (!strncmp(p.sections[i], "attack ", 7))
                parse_attack(&p, job, p.sections[i], p.section_lines[i]);
    }
    if (!p.err[0]) {
        int line = p.line;
        for (int i = 0; i < p.nsections; i++)
            if (!strcmp(p.sections[i], "distill")) line = p.section_lines[i];
        if (!job->ntemps && !no_distillation(&p))
            perr(&p, line, "missing [distill] temperatures = ... (e.g. 1 2 5 10 20 30 40 50 100, "
                 "or none for the baseline alone)");
    }
    if (!p.err[0]) {
        for (int i = 0; i < p.n; i++)
            if (!p.entries[i].used) {
                entry *e = &p.entries[i];
                const char *hint = "";
                if (!strncmp(e->section, "attack ", 7))
                    hint = " (keys depend on the attack's kind; see ds_job.h or the README)";
                perr(&p, e->line, "[%s] unknown key '%s'%s", e->section, e->key, hint);
                break;
            }
    }
    free(p.entries);
    if (p.err[0]) {
        if (p.err_line > 0) return ds_fail(DS_EINVAL, "%s:%d: %s", path, p.err_line, p.err);
        return ds_fail(DS_EINVAL, "%s: %s", path, p.err);
    }
    job->text = strdup(text);
    if (!job->text) return ds_fail(DS_ENOMEM, "%s: out of memory", path);
    return DS_OK;
}

int ds_job_parse(ds_job *job, const char *path) {
    memset(job, 0, sizeof *job);
    FILE *f = fopen(path, "rb");
    if (!f) return ds_fail(DS_EIO, "%s: cannot open the job file: %s", path, strerror(errno));
    char *text = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap ? cap * 2 : 8192;
            if (cap > (1u << 24)) {
                free(text);
                fclose(f);
                return ds_fail(DS_EINVAL, "%s: larger than 16 MB; not a job file", path);
            }
            char *t = realloc(text, cap);
            if (!t) {
                free(text);
                fclose(f);
                return ds_fail(DS_ENOMEM, "%s: out of memory", path);
            }
            text = t;
        }
        size_t got = fread(text + len, 1, 4096, f);
        len += got;
        if (got < 4096) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(text);
        return ds_fail(DS_EIO, "%s: read error", path);
    }
    text[len] = 0;
    if (strlen(text) != len) {
        free(text);
        return ds_fail(DS_EINVAL, "%s: contains a NUL byte; not a job file", path);
    }
    int rc = ds_job_parse_text(job, text, path);
    free(text);
    return rc;
}

void ds_job_free(ds_job *job) {
    free(job->text);
    job->text = NULL;
}

void ds_job_run_dir(const ds_job *job, char *out, size_t cap) {
    snprintf(out, cap, "%s/%s", job->results, job->name);
}

// ---- Canonical text ----

char *ds_job_canonical(const ds_job *job) {
    ds_strbuf b = {0};
    if (job->nseeds > 1) { // one seed: the text from before the list existed (the same job)
        ds_sb_printf(&b, "run.seeds =");
        for (int i = 0; i < job->nseeds; i++) ds_sb_printf(&b, " %llu", (unsigned long long)job->seeds[i]);
        ds_sb_printf(&b, "\n");
    } else {
        ds_sb_printf(&b, "run.seed = %llu\n", (unsigned long long)job->seed);
    }
    // Runs made before the oneDNN engine existed computed with the GEMM engine and have no engine
    // line: gemm keeps their text (and resumes them), onednn is a different job.
    if (job->engine != DS_ENGINE_GEMM) ds_sb_printf(&b, "run.engine = %s\n", ds_engine_kind_name(job->engine));
    ds_sb_printf(&b, "data.dataset = %s\n", job->dataset);
    ds_sb_printf(&b, "data.train_samples = %d\n", job->train_samples);
    ds_sb_printf(&b, "data.test_samples = %d\n", job->test_samples);
    ds_sb_printf(&b, "train.baseline_epochs = %d\n", job->baseline_epochs);
    ds_sb_printf(&b, "train.teacher_epochs = %d\n", job->teacher_epochs);
    ds_sb_printf(&b, "train.student_epochs = %d\n", job->student_epochs);
    ds_sb_printf(&b, "train.warm_start = %d\n", job->warm_start);
    ds_sb_printf(&b, "train.batch = %d\n", job->batch);
    ds_sb_printf(&b, "train.lr = %.17g\n", job->lr);
    ds_sb_printf(&b, "train.momentum = %.17g\n", job->momentum);
    ds_sb_printf(&b, "train.dropout = %.17g\n", job->dropout);
    if (job->lr_decay != 1) // only when set: runs made before the key existed stay the same job
        ds_sb_printf(&b, "train.lr_decay = %.17g last %.17g\n", job->lr_decay, job->lr_decay_last);
    if (job->chunk != DS_CHUNK) // likewise: only when not the default
        ds_sb_printf(&b, "train.chunk = %d\n", job->chunk);
    if (job->init != DS_INIT_PYTORCH) // likewise: only when not the default
        ds_sb_printf(&b, "train.init = %s\n", ds_init_name(job->init));
    ds_sb_printf(&b, "distill.temperatures =");
    for (int i = 0; i < job->ntemps; i++) ds_sb_printf(&b, " %.17g", job->temps[i]);
    ds_sb_printf(&b, "\n");
    for (int i = 0; i < job->nattacks; i++) {
        const ds_job_attack *a = &job->attacks[i];
        ds_sb_printf(&b, "attack.%s.kind = %s\n", a->name, ds_attack_kind_name(a->kind));
        ds_sb_printf(&b, "attack.%s.params = %s\n", a->name, a->params);
        ds_sb_printf(&b, "attack.%s.models = %u", a->name, a->targets);
        for (int j = 0; j < a->nmodels; j++) ds_sb_printf(&b, " %s", a->models[j]);
        ds_sb_printf(&b, "\n");
        ds_sb_printf(&b, "attack.%s.samples = %d %d shard %d\n", a->name, a->first, a->samples,
                     a->shard);
        // Every float in full (%.9g round-trips a float), in case %g in params rounds two values
        // together.
        const ds_craft *c = &a->craft;
        const float *eps;
        int n_eps = ds_craft_eps(c, &eps);
        if (n_eps > 0) { // one eps: the line as before lists existed
            ds_sb_printf(&b, "attack.%s.exact = eps", a->name);
            for (int e = 0; e < n_eps; e++) ds_sb_printf(&b, " %.9g", (double)eps[e]);
            if (c->kind == DS_KIND_PGD) ds_sb_printf(&b, " step %.9g", (double)c->pgd.step);
            if (c->kind == DS_KIND_SQUARE) ds_sb_printf(&b, " p_init %.9g", (double)c->square.p_init);
            ds_sb_printf(&b, "\n");
        } else if (c->kind == DS_KIND_JSMA)
            ds_sb_printf(&b, "attack.%s.exact = theta %.9g gamma %.9g\n", a->name,
                         (double)c->jsma.theta, (double)c->jsma.gamma);
        else
            ds_sb_printf(&b, "attack.%s.exact = c %.9g lr %.9g kappa %.9g\n", a->name,
                         (double)c->cw.c0, (double)c->cw.lr, (double)c->cw.kappa);
    }
    if (b.failed) {
        ds_sb_free(&b);
        return NULL;
    }
    return b.s;
}
