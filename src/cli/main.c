// bin/distill_sweep: dispatches to the sub-commands of ds_cli.h.
#include "ds_cli.h"
#include "ds_sweep.h"

#include <stdio.h>
#include <string.h>

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} commands[] = {
    {"train", ds_cmd_train, "train one model and save it to HDF5"},
    {"eval", ds_cmd_eval, "test accuracy of a saved model"},
    {"attack", ds_cmd_attack, "FGSM, JSMA, C&W L2, Square or transfer attack on a saved model"},
    {"run", ds_cmd_sweep, "run or resume a sweep: mpirun -np N distill_sweep [run] JOB"},
};

static void usage(FILE *f) {
    fprintf(f, "usage: distill_sweep <command> [options]   (distill_sweep <command> --help)\n\n");
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    // The sweep: `distill_sweep JOB`, `--dry-run JOB`, `--reduce RUN_DIR`.
    if (!strcmp(argv[1], "--dry-run") || !strcmp(argv[1], "--reduce") || strchr(argv[1], '/') ||
        strstr(argv[1], ".job"))
        return ds_cmd_sweep(argc, argv);
    fprintf(stderr, "distill_sweep: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 2;
}
