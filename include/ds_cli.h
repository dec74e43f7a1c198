// Sub-commands of bin/distill_sweep. Each parses its own arguments (argv[0] is the sub-command's
// name), prints errors as one line "distill_sweep: <message>" and returns the exit status.
#ifndef DS_CLI_H
#define DS_CLI_H

#include <stddef.h>

int ds_cmd_train(int argc, char **argv);  // train one model (baseline, teacher or student)
int ds_cmd_eval(int argc, char **argv);   // test accuracy of a saved model
int ds_cmd_attack(int argc, char **argv); // run an attack on a saved model (cmd_attack.c)

// Option values: DS_EINVAL naming the option when v is not an integer >= lo / a finite number.
int ds_cli_int(const char *name, const char *v, int lo, int *out);
int ds_cli_double(const char *name, const char *v, double *out);
// --engine onednn|gemm: sets the process's engine kind (ds_engine_set_default_kind).
int ds_cli_engine(const char *name, const char *v);
#define DS_CLI_ENGINE_HELP                                                                          \
    "  --engine onednn|gemm  how convolutions are computed (default onednn; gemm: the engine of\n"   \
    "                        runs made before onednn; the two round differently: ds_nn.h)\n"
// "FILE[:GROUP]": the whole spec if it names an existing file, else split at the last ':'
// (group "" when there is none).
void ds_cli_split_spec(const char *spec, char *file, size_t fcap, char *group, size_t gcap);
// Loads the model named "FILE[:GROUP]" (GROUP defaults to the first model group in FILE) into m;
// resolved receives "FILE:GROUP".
typedef struct ds_model ds_model;
int ds_cli_load_model(const char *spec, ds_model *m, char *resolved, size_t cap);
// A model without our attributes (role "external", T=1) takes the temperature of --temperature T
// when T > 0; other models keep theirs.
void ds_cli_external_temperature(ds_model *m, double T);

#endif
