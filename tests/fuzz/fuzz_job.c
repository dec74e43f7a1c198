// libFuzzer target: see fuzz_job in tests/fuzz/entry.h. Built by 'make fuzz' into build-fuzz/.
#include "entry.h"

#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (fuzz_job(data, size) < 0) {
        fprintf(stderr, "fuzz_job: %s\n", fuzz_why());
        abort();
    }
    return 0;
}
