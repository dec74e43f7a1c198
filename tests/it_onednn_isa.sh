#!/usr/bin/env bash
# The oneDNN engine on the instruction sets below this machine's: test_nn's oneDNN cases (layers,
# forward against a naive one, finite-difference gradients, a sample's bits in any group, thread
# and chunk invariance) with oneDNN capped by DNNL_MAX_CPU_ISA at AVX2 (8-lane blocked layouts,
# the AVX2 machines the issue measured on) and, where the CPU has more, at the machine's own. No
# primitive may fall back to oneDNN's reference implementation (the engine warns when one does).
# Prints one PASS or FAIL line.
set -u
TEST=it_onednn_isa
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
NN=$ROOT/${B:-build}/tests/test_nn
fail() {
    echo "FAIL: $TEST: $*"
    exit 1
}
[ -x "$NN" ] || fail "$NN not built (make build/tests/test_nn)"
start=$SECONDS
ran=
for isa in AVX2 ALL; do
    if [ "$isa" = AVX2 ] && ! grep -qw avx2 /proc/cpuinfo 2>/dev/null; then continue; fi
    for c in layers network-onednn gradients-onednn chunks-onednn; do
        out=$(DNNL_MAX_CPU_ISA=$isa CK_RUN_CASE=$c "$NN" 2>&1) || fail "DNNL_MAX_CPU_ISA=$isa $c: $(echo "$out" | grep -m3 -E 'Failures|:F:|:E:' | tr '\n' ' ')"
        ! echo "$out" | grep -q "reference implementation" ||
            fail "DNNL_MAX_CPU_ISA=$isa $c: $(echo "$out" | grep -m1 'reference implementation')"
        echo "$out" | grep -q "100%: Checks: [1-9]" || fail "DNNL_MAX_CPU_ISA=$isa $c ran no checks: $out"
    done
    ran="$ran $isa"
done
[ -n "$ran" ] || fail "no instruction set tried"
echo "PASS: $TEST (oneDNN cases of test_nn at DNNL_MAX_CPU_ISA=${ran# }; no reference implementation; $((SECONDS - start)) s)"
