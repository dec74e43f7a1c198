# Shared by the sweep integration tests (tests/it_sweep_*.sh); source it, then set TEST.
#
# Gives: MPI settings for root and containers, $WORK (removed at exit), a tiny synthetic
# MNIST-format dataset in $WORK/data (256 training, 128 test images), write_job, run_sweep,
# digest, and pass/fail that print one PASS/FAIL line.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BIN=${DS_BIN:-$ROOT/bin/distill_sweep}
TEST=${TEST:-$(basename "$0" .sh)}

export OMPI_ALLOW_RUN_AS_ROOT=${OMPI_ALLOW_RUN_AS_ROOT:-1}
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
export OMPI_MCA_mtl=${OMPI_MCA_mtl:-^ofi,psm,psm2}
export OMPI_MCA_btl=${OMPI_MCA_btl:-^ofi,openib,usnic}
# No core binding: on a shared machine a rank pinned to a busy core cannot move to an idle one.
export OMPI_MCA_hwloc_base_binding_policy=${OMPI_MCA_hwloc_base_binding_policy:-none}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
export HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-FALSE}
unset MNIST_DIR FASHION_MNIST_DIR

MPIRUN=$(command -v mpirun || command -v mpirun.openmpi || command -v orterun || true)

fail() {
    echo "FAIL: $TEST: $*"
    exit 1
}
pass() {
    echo "PASS: $TEST${1:+ ($1)}"
    exit 0
}

[ -x "$BIN" ] || fail "$BIN not built (make bin/distill_sweep)"
[ -n "$MPIRUN" ] || fail "no mpirun in PATH"
command -v h5dump >/dev/null || fail "h5dump not found (apt-get install hdf5-tools)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/ds_it_XXXXXX")
trap '[ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"' EXIT

${CC:-cc} -O2 -o "$WORK/gen_idx" "$ROOT/tests/tools/gen_idx.c" || fail "cannot build gen_idx"
mkdir -p "$WORK/data" && "$WORK/gen_idx" "$WORK/data" 256 128 7 || fail "cannot write the synthetic dataset"

# write_job FILE NAME [EPOCHS]: a small full DAG on the synthetic data: warm start, baseline,
# T in {1, 20} teachers and students, FGSM (softmax and logits_T), JSMA, C&W L2, transfer.
write_job() {
    cat >"$1" <<EOF
; integration-test job: synthetic data, every task kind
[run]
name = $2
results = $WORK/results
seed = 11
threads = 1
[data]
dir = $WORK/data
[train]
epochs = ${3:-1}
warm_start = 1
batch = 32
[distill]
temperatures = 1 20
[attack fgsm]
kind = fgsm
samples = 64
shard = 16
[attack fgsm-logits_T]
kind = fgsm
space = logits_T
samples = 32
[attack jsma]
kind = jsma
gamma = 0.04
first = 3
samples = 2
shard = 1
[attack cw]
kind = cw-l2
search_steps = 2
iterations = 10
samples = 2
[attack transfer]
kind = transfer
craft = fgsm
samples = 32
EOF
}

# reference_run [EPOCHS]: the uninterrupted run every fault is compared with: job $WORK/ref.job
# (write_job ... ref EPOCHS), results in $WORK/results/ref, digest in $WORK/ref.digest, and
# $ntasks, the number of journaled tasks.
reference_run() {
    write_job "$WORK/ref.job" ref "${1:-1}"
    run_sweep 2 "$WORK/ref.job" "$WORK/ref.log" || fail "reference run failed: $(tail -20 "$WORK/ref.log")"
    digest "$WORK/results/ref" >"$WORK/ref.digest"
    ntasks=$(wc -l <"$WORK/results/ref/tasks/done.log")
}

# run_sweep NP JOB LOG [args...]: runs the sweep, output to LOG; returns the exit status
# (a hang is killed after 5 minutes and fails the test).
run_sweep() {
    local np=$1 job=$2 log=$3 st=0 t0=$SECONDS
    shift 3
    timeout -k 10 300 "$MPIRUN" -np "$np" "$BIN" "$job" --no-progress "$@" >"$log" 2>&1 || st=$?
    if [ $((SECONDS - t0)) -ge 300 ]; then fail "the sweep hung (-np $np $job): $(tail "$log")"; fi
    return $st
}

# digest RUN_DIR: one line per task output with the hash of its data (h5dump without
# attributes, so provenance such as time and host does not count), then the hash of the
# summary table (summary.csv, written by the reducer).
digest() {
    local f
    for f in $(cd "$1/tasks" && ls *.h5 | sort); do
        echo "$f $(h5dump -A 0 "$1/tasks/$f" | tail -n +2 | md5sum | cut -d' ' -f1)"
    done
    [ -s "$1/summary.csv" ] || fail "no summary.csv in $1"
    echo "summary.csv $(md5sum <"$1/summary.csv" | cut -d' ' -f1)"
}

# kill_run PID: kill -9 an mpirun started in the background and its ranks (its children, by
# pid), and wait until all are gone.
kill_run() {
    local pid=$1 ranks p alive
    ranks=$(pgrep -P "$pid" || true)
    kill -9 "$pid" $ranks 2>/dev/null
    wait "$pid" 2>/dev/null
    for _ in $(seq 100); do
        alive=0
        for p in $ranks; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive = 0 ] && return 0
        sleep 0.1
    done
}
