// Job files: what a sweep trains and attacks, parsed from an INI file with libinih.
//
//   [run]      name = paper          ; the run folder is <results>/<name>/ (default: the file's
//              results = results     ;   base name without .job, and "results")
//              seed = 1              ; every random stream derives from (seed, task id, purpose)
//              seeds = 1 2 3         ; or replicates: one full sweep per seed (distinct,
//                                    ;   at most DS_JOB_MAX_SEEDS; not with `seed`); task
//                                    ;   names carry "s<seed>/" (ds_plan.h)
//              threads = 1           ; engine threads per worker: a number or "auto"
//                                    ;   (cores of the node / ranks on the node)
//              engine = onednn       ; onednn | gemm: how convolutions are computed (ds_nn.h);
//                                    ;   part of the results (the kinds round differently);
//                                    ;   gemm is the engine of runs made before onednn existed
//   [data]     dataset = mnist       ; mnist | fashion-mnist | auto (MNIST if found, else
//                                    ;   Fashion-MNIST, saying so)
//              dir = path            ; optional; otherwise ds_data_locate ($MNIST_DIR, data/mnist)
//              train_samples = all   ; the first N training samples (or "all")
//              test_samples = all    ; the first N test samples (or "all")
//   [train]    epochs = 50           ; default for the three below
//              baseline_epochs, teacher_epochs, student_epochs
//              warm_start = 0        ; epochs at T=1 shared by every teacher and student
//                                    ;   (Carlini's recipe); 0 = from scratch (the paper)
//              batch = 128, lr = 0.1, momentum = 0.5, dropout = 0.5
//              chunk = 32            ; samples per chunk, a multiple of 4 (ds_nn.h): fixes the
//                                    ;   gradient's summation order (part of the results) and
//                                    ;   bounds a gang at ceil(batch/chunk) ranks
//              lr_decay = 1          ; the last lr_decay_last share of every training's epochs
//              lr_decay_last = 0.25  ;   runs at lr * lr_decay (1 = constant lr: the paper)
//              init = pytorch        ; a training from scratch starts from PyTorch's default
//                                    ;   (U(+-1/sqrt(fan_in)) weights and biases) or glorot
//                                    ;   (Glorot-uniform weights, zero biases: Keras'); ds_nn.h
//   [distill]  temperatures = 1 2 5 10 20 30 40 50 100
//   [attack NAME]                    ; one section per attack configuration, NAME unique
//              kind = fgsm | jsma | cw-l2 | pgd | square | transfer
//              models = baseline students   ; any of baseline, teachers, students, all, or
//                                           ;   model names like T100/student
//              first = 0             ; first test sample (default 0)
//              samples = 100         ; how many test samples (or "all": the rest of the set)
//              shard = 1000          ; samples per task (default: fgsm 1000, pgd 500, square 250,
//                                    ;   else 10)
//              fgsm:     eps = 0.3, space = softmax|logits|logits_T, labels = true|predicted
//              fgsm, pgd, square: eps is a list: eps = 0.05 0.1 0.2 0.3 (spaces or commas, distinct,
//                        1 to DS_FGSM_MAX_EPS values, in (0, 1]; pgd l2: any > 0), records
//                        eps-major in the order written, one summary row per eps
//              pgd:      norm = linf|l2, step = 0.01, steps = 100, random_start = true|false,
//                        restarts = 1 (more need random_start), loss = ce|margin,
//                        space = softmax|logits|logits_T, labels = true|predicted
//              jsma:     theta = 1, gamma = 0.145, space = softmax|logits|logits_T
//              fgsm, jsma, pgd: denormals = keep|flush, gradient = stable|framework,
//                        precision = float32|float64 (how the gradients are rounded: ds_attack.h)
//              cw-l2:    targeted = true|false, c, search_steps, iterations, lr, kappa,
//                        abort_early = true|false, denormals = keep|flush
//              square:   eps = 0.3 (a list: 0.1 0.2 0.3), queries = 1000, p_init = 0.8,
//                        space = logits|softmax|logits_T, labels = true|predicted,
//                        denormals = keep|flush; shard default 250
//              Defaults of the attack keys are the attack library's (ds_attack.h):
//              eps 0.3, space softmax, labels true, theta 1, gamma 0.145, denormals keep,
//              gradient stable, precision float32; C&W targeted at every other class, c 0.01,
//              6 search steps, 200 iterations, lr 0.1, kappa 0; PGD linf, 100 steps of 0.01,
//              random start, 1 restart, loss ce (MadryLab/mnist_challenge); Square on the logits.
//              transfer: source = baseline, craft = fgsm|jsma|cw-l2|pgd|square and that kind's keys
//
// Comments start with ';' or '#' (at the start of a line or after a blank). Every error —
// unknown section or key, bad value, impossible combination — names the file and line:
// "jobs/x.job:12: [train] epochs: expected a positive integer, got 'ten'".
#ifndef DS_JOB_H
#define DS_JOB_H

#include <stddef.h>
#include <stdint.h>

#include "ds_attack.h"

#define DS_JOB_MAX_TEMPS 64
#define DS_JOB_MAX_ATTACKS 32
#define DS_JOB_MAX_MODELS 16 // explicit model names in one attack's `models`
#define DS_JOB_NAME 64
#define DS_JOB_MAX_SEEDS 64

// Which models an attack configuration targets (bits), plus explicit names.
enum { DS_TARGET_BASELINE = 1, DS_TARGET_TEACHERS = 2, DS_TARGET_STUDENTS = 4 };

typedef struct {
    char name[DS_JOB_NAME]; // section [attack NAME]: [A-Za-z0-9_.-]+, unique; used in file names
    int line;               // line of the section header
    int range_line;         // line of `samples` (or `first`, or the header), for errors
    ds_attack_kind kind;    // fgsm, jsma, cw-l2, pgd, square or transfer
    ds_craft craft;         // the attack library's settings of the kind, or for transfer of the
                            //   crafting attack (ds_attack.h)
    char source[DS_JOB_NAME]; // transfer: the model the examples are crafted on ("baseline")
    unsigned targets;       // DS_TARGET_* bits
    int nmodels;            // explicit model names ("T100/student")
    char models[DS_JOB_MAX_MODELS][DS_JOB_NAME];
    int first;              // first test sample (default 0)
    int samples;            // number of test samples; -1 = all from first to the end
    int shard;              // samples per task
    // The summary's `params` column: ds_craft_string, e.g. "eps=0.3 space=softmax labels=true
    // denormals=keep gradient=stable precision=float32", for transfer behind
    // "source=baseline craft=fgsm ". At most 255 characters (a longer one, from many eps
    // values, is an error naming the eps line).
    char params[256];
} ds_job_attack;

typedef struct {
    char path[512];        // the file it was read from
    char *text;            // the file's text (malloc'ed; provenance and results/<run>/job.ini)
    // [run]
    char name[DS_JOB_NAME];
    char results[512];
    uint64_t seed;         // seeds[0]
    int nseeds;            // [run] seeds = 1 2 3 (a list; `seed = N` is the list {N}); >= 1
    uint64_t seeds[DS_JOB_MAX_SEEDS]; // distinct, as written
    int threads;           // >= 1, or 0 = auto
    ds_engine_kind engine; // [run] engine (DS_ENGINE_ONEDNN)
    // [data]
    char dataset[32];      // "mnist", "fashion-mnist" or "auto"
    char data_dir[512];    // "" = ds_data_locate's search
    int train_samples;     // -1 = all
    int test_samples;      // -1 = all
    // [train]
    int baseline_epochs, teacher_epochs, student_epochs;
    int warm_start;        // epochs at T=1 shared by teachers and students; 0 = none
    int batch;
    int chunk;             // [train] chunk (DS_CHUNK): samples per gradient chunk
    double lr, momentum, dropout;
    double lr_decay, lr_decay_last; // step decay: the last share of epochs at lr * lr_decay
    ds_init init;          // [train] init = pytorch (default) | glorot (ds_nn.h)
    // [distill]
    int ntemps;
    double temps[DS_JOB_MAX_TEMPS]; // as written, distinct, in increasing order
    // [attack NAME] in file order
    int nattacks;
    ds_job_attack attacks[DS_JOB_MAX_ATTACKS];
} ds_job;

// Parses the job file at path. DS_EIO if unreadable; DS_EINVAL with "path:line: problem" for
// any error in the content. On failure job holds nothing that needs freeing.
int ds_job_parse(ds_job *job, const char *path);
// Same from text in memory; `path` only names it in messages.
int ds_job_parse_text(ds_job *job, const char *text, const char *path);
void ds_job_free(ds_job *job);
// The `params` string of configuration a with crafting settings c (a->craft, or a copy of it at
// one ε of its list: the reducer's per-ε rows): ds_craft_string, for transfer behind
// "source=<source> craft=<kind> ". The one place that builds it. Returns the string's full
// length (as snprintf): a result >= cap was truncated (the parser refuses a->params over 255).
int ds_job_attack_params(const ds_job_attack *a, const ds_craft *c, char *out, size_t cap);

// The job as canonical text: every setting with defaults filled in, one "section.key = value"
// per line, without comments, the run name, the results folder and threads. Two jobs compute
// the same results if and only if their canonical texts are equal. Settings added later appear
// only when not at their defaults, so a job written before keeps its text: one seed is
// "run.seed = N" (several: "run.seeds = N1 N2 ..."). Returns malloc'ed text.
char *ds_job_canonical(const ds_job *job);

// 0-based epoch from which a training of `epochs` epochs runs at the decayed learning rate:
// epochs - round(epochs * lr_decay_last).
int ds_job_lr_decay_from(const ds_job *job, int epochs);

// The run folder: <results>/<name>.
void ds_job_run_dir(const ds_job *job, char *out, size_t cap);

// "T100", "T2.5": a temperature in model, group and file names (%g).
void ds_temp_name(double t, char *out, size_t cap);

#endif
