// The reducer: aggregates a run's task outputs into weights.h5, soft_labels.h5, adversarial.h5,
// summary.h5, summary.csv, summary.md and figure1.png/.svg (layout: ds_plan.h).
#ifndef DS_REDUCE_H
#define DS_REDUCE_H

// Rebuilds the run's plan from <run_dir>/job.ini and <run_dir>/run.txt (ds_run_load_plan),
// reads every task output and writes the files above, atomically. Called by the sweep when all
// other tasks are done, and by `distill_sweep --reduce <run_dir>`. DS_OK or a negative DS_E*
// code with a message (ds_error.h).
int ds_reduce_run(const char *run_dir);

#endif
