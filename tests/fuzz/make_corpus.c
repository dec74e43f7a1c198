// Writes the HDF5 seed files of tests/fuzz/corpus/h5 with the project's own writers:
//   make_corpus DIR
// model.h5 (group "baseline"), ckpt.h5 (a checkpoint), soft.h5 ("soft_labels" [4,10]) and
// attack.h5 (two sets, records and images). Weights are small multiples of 1/64 so that, after
// tests/fuzz/make_corpus.sh repacks the files with deflate, they stay a few KB.
#include "ds_attack.h"
#include "ds_error.h"
#include "ds_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int die(const char *what) {
    fprintf(stderr, "make_corpus: %s: %s\n", what, ds_errmsg());
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_corpus DIR\n");
        return 2;
    }
    char path[1024];
    ds_provenance prov = {"[run]\nname = fuzz\n", "fuzz-corpus", 1, "seed"};
    ds_model m;
    if (ds_model_alloc(&m)) return die("model");
    size_t n = ds_params_count();
    for (size_t i = 0; i < n; i++) m.mem[i] = (float)((int)(i % 7) - 3) / 64.0f;
    m.temperature = 20;
    snprintf(m.role, sizeof m.role, "teacher");
    m.epochs = 3;
    m.seed = 42;
    m.test_accuracy = 0.5;
    snprintf(path, sizeof path, "%s/model.h5", argv[1]);
    if (ds_store_save_model(path, "baseline", &m, &prov)) return die(path);
    float *v = calloc(n, sizeof *v);
    if (!v) return die("velocity");
    snprintf(path, sizeof path, "%s/ckpt.h5", argv[1]);
    if (ds_store_save_checkpoint(path, &m, v, &prov)) return die(path);
    free(v);
    ds_model_free(&m);

    float soft[40];
    for (int i = 0; i < 40; i++) soft[i] = i % 10 == i / 10 ? 0.91f : 0.01f;
    snprintf(path, sizeof path, "%s/soft.h5", argv[1]);
    if (ds_store_save_matrix(path, "soft_labels", soft, 4, 10, &prov)) return die(path);

    ds_attack_record rec[3];
    memset(rec, 0, sizeof rec);
    for (int i = 0; i < 3; i++) {
        rec[i].index = i;
        rec[i].label = i;
        rec[i].target = i == 2 ? -1 : i + 1;
        rec[i].adv_pred = i + 1;
        rec[i].success = 1;
        rec[i].iterations = 1;
        rec[i].l0 = 3;
        rec[i].l2 = 0.5f;
        rec[i].linf = 0.3f;
    }
    float img[3 * 4] = {0, 0.25f, 0.5f, 1, 0, 0, 0, 0, 1, 1, 1, 1};
    ds_attack_set sets[2];
    memset(sets, 0, sizeof sets);
    snprintf(sets[0].group, sizeof sets[0].group, "fgsm_eps0.3");
    snprintf(sets[0].attack, sizeof sets[0].attack, "fgsm");
    snprintf(sets[0].params, sizeof sets[0].params, "eps=0.3 space=softmax labels=true");
    snprintf(sets[0].model, sizeof sets[0].model, "tasks/baseline.h5:baseline");
    sets[0].first = 0;
    sets[0].count = 3;
    sets[0].n_records = 3;
    sets[0].records = rec;
    sets[0].n_in = 4;
    sets[0].images = img;
    sets[1] = sets[0];
    snprintf(sets[1].group, sizeof sets[1].group, "jsma");
    snprintf(sets[1].attack, sizeof sets[1].attack, "jsma");
    sets[1].n_records = 2;
    sets[1].images = NULL;
    sets[1].n_in = 0;
    snprintf(path, sizeof path, "%s/attack.h5", argv[1]);
    if (ds_attack_results_save(path, sets, 2, &prov)) return die(path);
    return 0;
}
