// Fuzz entry points shared by the libFuzzer targets (tests/fuzz/fuzz_*.c) and the regression
// test that replays their corpora (tests/test_fuzz_regress.c).
//
// Each entry writes the bytes to a temporary file (in $TMPDIR, else /tmp), runs the library's
// loaders on it and checks the contract of ds_error.h for every call: DS_OK, or a DS_E* code
// with a one-line message that names the file. It returns a bitmask of the calls that
// succeeded (>= 0), or -1 when a call broke the contract (fuzz_why() says how): the fuzzers
// abort on -1, the regression test fails.
//
//   fuzz_idx  ds_idx_read_images (bit 0 of the result) and ds_idx_read_labels (bit 1) on the
//             bytes as they are, then on their gzip-compressed copy (bits 2, 3)
//   fuzz_job  the text -> ds_job_parse (bit 0); if it parses, ds_job_canonical (must parse
//             again to the same canonical text) and ds_plan_build for MNIST's sizes and a
//             small set (bits 1, 2), and ds_plan_print
//   fuzz_h5   ds_store_load_model "baseline" (bit 0), ds_store_load_checkpoint (bit 1),
//             ds_store_load_matrix "soft_labels" [*,10] (bit 2), ds_attack_results_load (bit 3)
#ifndef DS_FUZZ_ENTRY_H
#define DS_FUZZ_ENTRY_H

#include <stddef.h>
#include <stdint.h>

int fuzz_idx(const uint8_t *data, size_t n);
int fuzz_job(const uint8_t *data, size_t n);
int fuzz_h5(const uint8_t *data, size_t n);
// Why the last entry returned -1.
const char *fuzz_why(void);
// The temporary file the entries write (for messages and tests).
const char *fuzz_path(const char *ext);

#endif
