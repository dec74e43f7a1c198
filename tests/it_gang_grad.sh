#!/usr/bin/env bash
# Gangs of ranks (ds_gang.h) through build/tests/mpi/gang_check: a batch's gradient and losses
# through the gang's ordered reduction, its fixed-point alternative and a few training steps,
# each run compared bit for bit with one process; then the checksums every run prints must be
# equal across rank counts 1, 2, 3, 5 (oversubscribed) and thread counts 1, 2, 8. Batch 40 in
# chunks of 8 is 5 chunks (at -np 5 one per member); batch 24 is 3 chunks on 4 ranks (a member
# without chunks). Last, a member that never reduces (--hang-member) must end the job within the
# gang's timeout with its one-line message. Prints one PASS or FAIL line.
set -u
TEST=it_gang_grad
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
GC=${GANG_CHECK:-$ROOT/build/tests/mpi/gang_check}
# Ranks outnumber cores here: idle MPI waits yield, OpenMP threads sleep instead of spinning.
export OMPI_MCA_mpi_yield_when_idle=1 OMP_WAIT_POLICY=PASSIVE OMP_NUM_THREADS=1

fail() {
    echo "FAIL: $TEST: $*"
    exit 1
}
[ -x "$GC" ] || fail "$GC not built (make build/tests/mpi/gang_check)"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ds_it_gang_XXXXXX")
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT
start=$SECONDS

# check NP ARGS...: runs gang_check on NP ranks, which must pass; sets sums to its checksums
# ("grad X losses X fixed X weights X").
n=0
sums=
check() {
    local np=$1 out=$WORK/run$n line
    shift
    n=$((n + 1))
    timeout 120 bash "$ROOT/scripts/mpirun.sh" -np "$np" "$GC" "$@" >"$out.out" 2>"$out.err" ||
        fail "-np $np $*: exit status $?: $(grep -m 3 gang_check "$out.err")"
    line=$(grep '^gang_check: ok ' "$out.out") || fail "-np $np $*: no ok line: $(cat "$out.out")"
    sums=${line#* grad }
}

# same_sums REF NP ARGS...: a run whose checksums must be REF's.
same_sums() {
    local ref=$1
    shift
    check "$@"
    [ "$sums" = "$ref" ] || fail "-np $*: checksums '$sums' differ from '$ref'"
}

check 1 --threads 1 --batch 40 --chunk 8
a=$sums
for np in 2 3 5; do same_sums "$a" $np --threads 1 --batch 40 --chunk 8; done
for t in 2 8; do same_sums "$a" 2 --threads $t --batch 40 --chunk 8; done
check 4 --threads 1 --batch 24 --chunk 8
b=$sums
same_sums "$b" 1 --threads 2 --batch 24 --chunk 8
[ "$a" != "$b" ] || fail "batches of 40 and 24 gave the same checksums '$a'"

# The timeout: member 2 sleeps forever; ranks 0 and 1 give up after 3 s and abort the job.
t0=$SECONDS
timeout 20 bash "$ROOT/scripts/mpirun.sh" -np 3 "$GC" --hang-member 2 --timeout 3 >"$WORK/hang.out" 2>"$WORK/hang.err"
rc=$?
[ $rc -ne 124 ] || fail "--hang-member 2 --timeout 3: still running after 20 s"
[ $rc -ne 0 ] || fail "--hang-member 2 --timeout 3: exit status 0"
msg='^distill_sweep: rank [01]: gang gang_check \(3 ranks\): gradient exchange got no answer from its members within 3 s; aborting the job \(a rerun resumes from the last checkpoint\)$'
grep -Eq "$msg" "$WORK/hang.err" || fail "--hang-member: no gang timeout line on stderr: $(head -5 "$WORK/hang.err")"
echo "PASS: $TEST ($((SECONDS - start)) s: 8 runs bit-identical at -np 1-5, threads 1-8; a hung member aborts the job in $((SECONDS - t0)) s)"
