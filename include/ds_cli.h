// Sub-commands of bin/distill_sweep. Each parses its own arguments (argv[0] is the sub-command's
// name), prints errors as one line "distill_sweep: <message>" and returns the exit status.
#ifndef DS_CLI_H
#define DS_CLI_H

int ds_cmd_train(int argc, char **argv);  // train one model (baseline, teacher or student)
int ds_cmd_eval(int argc, char **argv);   // test accuracy of a saved model
int ds_cmd_attack(int argc, char **argv); // run an attack on a saved model (cmd_attack.c)

#endif
