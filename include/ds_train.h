// The resumable training driver: one model from its start to cfg->epochs, with a checkpoint after
// every epoch but the last, a test-set evaluation, and the final model saved. `distill_sweep
// train` (src/cli/cmd_train.c) and the sweep's training tasks (src/sweep/task.c) both run it; they
// differ only in the arguments below (what they print, what a damaged checkpoint gets, the stop
// flag).
//
// Resuming. A checkpoint at ckpt->path that exists and loads belongs to this training when its
// seed and temperature equal cfg's and its epoch count is in [1, cfg->epochs]; the training then
// continues from it, bit-identically to one never interrupted (ds_trainer_epoch). Any other
// checkpoint is a foreign one: DS_EINVAL, naming the file, the checkpoint's training and this one
// ("x.ckpt.h5: checkpoint of a training at T=100 seed 7 (epoch 3), not of this one (T=10 seed 7,
// 4 epochs); remove it or choose another checkpoint"), and nothing is trained or written. A
// checkpoint that does not load (truncated, damaged, not HDF5) is the policy's choice.
#ifndef DS_TRAIN_H
#define DS_TRAIN_H

#include "ds_data.h"
#include "ds_nn.h"
#include "ds_store.h"

// What an unreadable or damaged checkpoint gets.
typedef enum {
    DS_CKPT_DAMAGED_FAILS,    // its load error (DS_EIO / DS_EFORMAT naming the file): distill_sweep train
    DS_CKPT_DAMAGED_RESTARTS, // a DS_TRAIN_DAMAGED event, then a start from scratch: sweep tasks
} ds_ckpt_damaged;

typedef struct {
    const char *path;        // checkpoint file, or NULL: no resuming, no checkpoints
    ds_ckpt_damaged damaged;
} ds_ckpt_policy;

// Where a training that resumes no checkpoint starts.
typedef struct {
    const ds_model *source; // weights to start from (copied; caller-owned), or NULL:
    uint64_t init_seed;     // a fresh ds_model_init_as(init_seed, init)
    ds_init init;           // DS_INIT_PYTORCH (0, the default) or DS_INIT_GLOROT (ds_nn.h)
} ds_train_start;

// The trained model: saved as group `group` of a new file `path` (ds_store_save_model) with
// attributes role, cfg's temperature and seed, the epochs and the test accuracy; prov is also
// written into every checkpoint. `name` prefixes errors of the training itself ("T100/teacher:
// training diverged: ...", "T100/teacher: stopped after epoch 3 (checkpoint saved)").
typedef struct {
    const char *path, *group, *role, *name;
    const ds_provenance *prov;
} ds_train_output;

typedef enum {
    DS_TRAIN_DAMAGED,   // the checkpoint did not load (message: why); starting from scratch
    DS_TRAIN_START,     // the model is ready; resumed: from the checkpoint after `epoch` epochs
    DS_TRAIN_EPOCH,     // epoch `epoch` of `epochs` done: loss, seconds, accuracy (-1 if not evaluated)
    DS_TRAIN_EVALUATED, // the final test accuracy (accuracy), before the save
    DS_TRAIN_SAVED,     // the model is saved (accuracy); the checkpoint is removed next
} ds_train_event_kind;

typedef struct {
    ds_train_event_kind kind;
    int resumed;            // DS_TRAIN_START: 1 from the checkpoint, 0 from source or init_seed
    int epoch, epochs;      // epochs completed, cfg->epochs
    double loss, seconds;   // DS_TRAIN_EPOCH: mean training loss, time of the epoch's training
    double accuracy;        // test accuracy in [0,1], or -1
    const char *message;    // DS_TRAIN_DAMAGED: the load error
} ds_train_event;

typedef struct {
    void (*fn)(void *user, const ds_train_event *e); // called on each event, or NULL
    void *user;
    int evaluate_each_epoch; // also evaluate on the test set after every epoch (distill_sweep train)
} ds_train_progress;

// A training on a gang of ranks (ds_gang.h; src/sweep): every member runs ds_train_run with the
// same arguments and its own reducer. Only the writer (the gang's leader) writes checkpoints and
// the model and evaluates; the others read the checkpoint when they start. After each epoch but
// the last (the writer's checkpoint saved), every member calls at_boundary, which returns the
// gang's common decision: DS_OK to go on, DS_EREGANG to end here (the coordinator hands the
// training out again, possibly to more ranks, and it resumes from that checkpoint), DS_ESTOP, or
// an error. The members' own stop flags are not read: the decision is the stop. DS_EREGANG and
// DS_ESTOP are returned with "<name>: segment ended after epoch E (checkpoint saved)" and
// "<name>: stopped after epoch E (checkpoint saved)", any other error as at_boundary left it. A
// member that is not the writer returns DS_OK after the last epoch: no evaluation (not even with
// evaluate_each_epoch: its DS_TRAIN_EPOCH accuracy is -1), no save, no EVALUATED/SAVED events.
typedef struct {
    const ds_grad_reducer *reducer;
    int writer;
    // epoch: epochs completed; status: this member's checkpoint result (DS_OK, or the writer's
    // save error with its message), so that a writer that failed ends the gang's training too
    // instead of leaving the others waiting.
    int (*at_boundary)(void *user, int epoch, int status);
    // Called by every member before the first epoch: must give every member the writer's
    // weights [n], velocity [n] and *state (the epochs its model has, or the writer's negative
    // DS_E* code if it could not start: the others then fail too). With it, only the writer
    // reads the checkpoint, so members never depend on seeing the writer's files (a shared file
    // system may show a new member a stale one). NULL: every member starts on its own.
    void (*share_start)(void *user, float *weights, float *velocity, size_t n, int *state);
    void *user;
} ds_train_gang;

// Trains on train (soft: [train->n, 10] soft labels, or NULL for hard labels), evaluates on test,
// saves out, then removes the checkpoint. After each checkpoint write: ds_fault("epoch-end", path),
// and DS_ESTOP ("<name>: stopped after epoch E (checkpoint saved)") if stop && *stop. Returns
// DS_OK or the first error (a negative DS_E* code with its one-line message); on an error the
// checkpoint on disk is left as it is (the last completed epoch's, the foreign or the damaged
// one). gang: NULL for a training on this process alone. All pointers stay caller-owned.
int ds_train_run(const ds_train_config *cfg, const ds_dataset *train, const float *soft,
                 const ds_dataset *test, const ds_train_start *start, const ds_train_output *out,
                 const ds_ckpt_policy *ckpt, const volatile int *stop,
                 const ds_train_progress *progress, const ds_train_gang *gang);

#endif
