#!/usr/bin/env bash
# SLURM: slurm/distill_sweep.sbatch on a real one-node SLURM, started here from Debian's
# packages (munged, slurmctld, slurmd: tests/slurm/cluster.sh; installed by
# scripts/deps.sh --slurm) and stopped at the end.
#
#   A  jobs/smoke.job (on synthetic data at lr 0.05, see Data) through the sbatch script with
#      `sbatch --wait`: exit status 0, a complete summary (every model x attack of the job, rates
#      in [0, 1], summary.h5 readable by h5dump).
#   B  a tiny sweep whose trainings last 4 epochs, through the sbatch script with two
#      interruptions: SLURM's warning signal (scancel --signal=USR1 --batch, what
#      --signal=B:USR1@... does before the time limit) in the middle of the first allocation's
#      trainings, SIGTERM to the batch script (scancel, preemption) in the second allocation.
#      Each time the sweep stops gracefully (exit status 3, checkpoints), the script requeues
#      the job and the next allocation resumes; `sbatch --wait` returns 0 after the third
#      allocation, no completed task ran twice, a training resumed from its checkpoint, and
#      summary.csv is byte-identical to that of an uninterrupted run of the same job (plain
#      mpirun, at the same time).
#   C  scancel: the script sees the job is being cancelled (not at its time limit) and does not
#      requeue it.
#
# Data: smoke.job reads MNIST ($MNIST_DIR, else data/mnist); without it, a synthetic MNIST-format
# set of the same size (tests/tools/gen_idx.c) and smoke.job at lr 0.05: at its lr 0.1 with batch
# 8 the trainings on that set often collapse to chance or diverge (logits of 100-200 after a few
# hundred steps, then a spike that grows 10-1000x a step to inf: "T1/teacher: training diverged:
# loss is -nan"); at 0.05 every model learns on gen_idx seeds 3-7. Prints one PASS, FAIL or SKIP
# line; SKIP (exit 0) where SLURM cannot start (not root, packages missing, daemons do not come
# up).
# KEEP_WORK=1 keeps the work folder (logs, results).
set -u
TEST=it_slurm
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
start=$SECONDS

fail() {
    echo "FAIL: $TEST: $*"
    exit 1
}
skip() {
    echo "SKIP: $TEST: $*"
    exit 0
}

export DS_BIN=${DS_BIN:-$ROOT/bin/distill_sweep}
[ -x "$DS_BIN" ] || fail "$DS_BIN not built (make bin/distill_sweep)"
command -v h5dump >/dev/null || fail "h5dump not found (apt-get install hdf5-tools)"
command -v mpirun >/dev/null || command -v mpirun.openmpi >/dev/null || fail "no mpirun in PATH"

source "$ROOT/tests/slurm/cluster.sh"
WORK=$(mktemp -d "${TMPDIR:-/tmp}/ds_it_slurm_XXXXXX")
cleanup() {
    slurm_stop
    [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# MPI in containers and as root (the sbatch script adds the root settings itself; these travel
# with the job's environment).
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
export OMPI_MCA_mtl=${OMPI_MCA_mtl:-^ofi,psm,psm2}
export OMPI_MCA_btl=${OMPI_MCA_btl:-^ofi,openib,usnic}
if ! command -v ssh >/dev/null 2>&1 && ! command -v rsh >/dev/null 2>&1; then
    export OMPI_MCA_plm_rsh_agent=${OMPI_MCA_plm_rsh_agent:-false}
fi
export HDF5_USE_FILE_LOCKING=FALSE

slurm_start || skip "SLURM cannot start here: $SLURM_WHY"

${CC:-cc} -O2 -o "$WORK/gen_idx" "$ROOT/tests/tools/gen_idx.c" || fail "cannot build gen_idx"
data_note="real MNIST"
smoke_job=jobs/smoke.job
if [ -z "${MNIST_DIR:-}" ] && ! ls "$ROOT"/data/mnist/train-images-idx3-ubyte* >/dev/null 2>&1; then
    mkdir -p "$WORK/mnist" && "$WORK/gen_idx" "$WORK/mnist" 2000 500 7 ||
        fail "cannot write the synthetic dataset"
    export MNIST_DIR=$WORK/mnist
    smoke_job=$WORK/smoke.job
    sed 's/^\[train\]$/[train]\nlr = 0.05            ; it_slurm, synthetic data: lr 0.1 diverges there/' \
        "$ROOT/jobs/smoke.job" >"$smoke_job" && grep -q '^lr = 0.05 ' "$smoke_job" ||
        fail "cannot write $smoke_job"
    data_note="synthetic MNIST (no \$MNIST_DIR, no data/mnist; lr 0.05)"
fi
mkdir -p "$WORK/tiny" && "$WORK/gen_idx" "$WORK/tiny" 384 128 7 || fail "cannot write the synthetic dataset"

# submit NAME [sbatch options] -- JOB RESULTS: sbatch --wait from the repository, log in
# $WORK/NAME.out; returns sbatch's exit status (the job's). A job that hangs is ended by its
# --time limit; `timeout` guards against a scheduler that never starts it. The warning comes
# 30 s before the 5-minute limit (the script's default, 300 s, would come at once).
submit() {
    local name=$1 opts=()
    shift
    while [ "$1" != -- ]; do
        opts+=("$1")
        shift
    done
    shift
    (cd "$ROOT" && timeout 400 sbatch --wait --job-name="$name" --output="$WORK/$name.out" \
        --time=5 --signal=B:USR1@30 --ntasks=2 "${opts[@]}" slurm/distill_sweep.sbatch "$@") >"$WORK/$name.sbatch" 2>&1
}
# job_id NAME: the id of the (pending or running) job NAME.
job_id() { squeue -h -n "$1" -o %i 2>/dev/null | head -n 1; }
# wait_until SECONDS CMD...: polls CMD every 0.2 s; 1 if it never succeeds.
wait_until() {
    local n=$(($1 * 5))
    shift
    while ((n-- > 0)); do
        "$@" && return 0
        sleep 0.2
    done
    return 1
}
tail_log() { grep -v '^\[rank' "$1" 2>/dev/null | tail -n "${2:-25}"; }

# ---- A: jobs/smoke.job with sbatch --wait ----
submit ds-smoke -- "$smoke_job" "$WORK/results-smoke" ||
    fail "A: sbatch --wait $smoke_job: exit status $?: $(cat "$WORK/ds-smoke.sbatch"; tail_log "$WORK/ds-smoke.out")"
run=$WORK/results-smoke/smoke
grep -q "received: stopping the sweep" "$WORK/ds-smoke.out" && fail "A: the smoke run was interrupted: $(grep "received: stopping" "$WORK/ds-smoke.out")"
grep -q "sweep complete (exit status 0)" "$WORK/ds-smoke.out" || fail "A: the log does not say the sweep completed: $(tail_log "$WORK/ds-smoke.out")"
grep -q "done   reduce" "$WORK/ds-smoke.out" || fail "A: the sweep did not reduce: $(tail_log "$WORK/ds-smoke.out")"
[ -s "$run/summary.csv" ] || fail "A: no $run/summary.csv"
h5dump -H "$run/summary.h5" >/dev/null 2>&1 || fail "A: h5dump cannot read $run/summary.h5"
# Every model of smoke.job (baseline, T1 and T100 students) with every attack configuration
# that applies to it (transfer attacks: students only), each once, with a rate in [0, 1].
awk -F, '
    NR == 1 {
        for (i = 1; i <= NF; i++) col[$i] = i
        if (!col["model"] || !col["attack"] || !col["params"] || !col["success_rate"]) { print "header: " $0; bad = 1; exit }
        next
    }
    {
        r = $col["success_rate"] + 0
        if (r < 0 || r > 1) print "rate out of range: " $0
        key = $col["model"] " " $col["attack"] " " $col["params"]
        if (seen[key]++) print "twice: " key
        n[$col["model"] " " $col["attack"]]++
    }
    END {
        if (bad) exit
        split("baseline T1/student T100/student", models, " ")
        for (m in models) {
            if (n[models[m] " fgsm"] != 3) print models[m] ": " n[models[m] " fgsm"] + 0 " fgsm rows, expected 3"
            if (n[models[m] " jsma"] != 2) print models[m] ": " n[models[m] " jsma"] + 0 " jsma rows, expected 2"
            if (n[models[m] " cw-l2"] != 1) print models[m] ": " n[models[m] " cw-l2"] + 0 " cw-l2 rows, expected 1"
            want = models[m] == "baseline" ? 0 : 2
            if (n[models[m] " transfer"] != want) print models[m] ": " n[models[m] " transfer"] + 0 " transfer rows, expected " want
        }
    }' "$run/summary.csv" >"$WORK/smoke.check"
[ -s "$WORK/smoke.check" ] && fail "A: summary.csv of smoke.job: $(head -5 "$WORK/smoke.check" | tr '\n' ';')"
smoke_s=$((SECONDS - start))

# ---- B: requeue after a graceful stop, twice; results equal an uninterrupted run's ----
cat >"$WORK/tiny.job" <<EOF
; it_slurm: trainings of 4 epochs (checkpoints to resume from), every task kind but C&W
[run]
seed = 5
threads = 1
[data]
dir = $WORK/tiny
[train]
epochs = 4
warm_start = 1
batch = 32
[distill]
temperatures = 1 20
[attack fgsm]
kind = fgsm
samples = 64
shard = 32
[attack jsma]
kind = jsma
gamma = 0.04
first = 3
samples = 2
shard = 1
[attack transfer]
kind = transfer
craft = fgsm
samples = 32
EOF
# The uninterrupted reference runs outside SLURM (plain mpirun, same job, its own results
# folder) at the same time as the interrupted one: it fills the pauses between allocations.
MPIRUN=$(command -v mpirun || command -v mpirun.openmpi)
mkdir -p "$WORK/ref" && sed "s|^\[run\]|[run]\nresults = $WORK/results-ref|" "$WORK/tiny.job" >"$WORK/ref/tiny.job" ||
    fail "cannot write $WORK/ref/tiny.job"
(
    [ "$(id -u)" = 0 ] && export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    OPENBLAS_NUM_THREADS=1 "$MPIRUN" -np 2 "$DS_BIN" "$WORK/ref/tiny.job" --no-progress >"$WORK/ref.log" 2>&1
) &
refpid=$!
submit ds-int -- "$WORK/tiny.job" "$WORK/results-int" &
sub=$!
runb=$WORK/results-int/tiny
log=$WORK/ds-int.out
# First allocation: the warning signal once a task is done and a training has a checkpoint
# (it has finished an epoch and has more to go).
has_ckpt() { [ "$(cat "$runb/tasks/done.log" 2>/dev/null | wc -l)" -ge 1 ] && ls "$runb"/tasks/*.ckpt.h5 >/dev/null 2>&1; }
wait_until 120 has_ckpt || fail "B: no checkpoint within 120 s: $(tail_log "$log")"
id=$(job_id ds-int)
[ -n "$id" ] || fail "B: job ds-int not found in squeue"
scancel --signal=USR1 --batch "$id" || fail "B: scancel --signal=USR1 --batch $id failed"
wait_until 60 grep -qs "restart 1: resuming" "$log" || fail "B: the job did not come back after the warning signal: $(tail_log "$log")"
# Second allocation: SIGTERM to the batch script once the sweep is running again.
wait_until 30 grep -qs "already done (resuming)" "$log" || fail "B: the rerun did not resume: $(tail_log "$log")"
sleep 1
scancel --signal=TERM --batch "$id" || fail "B: scancel --signal=TERM --batch $id failed"
wait "$sub"
rc=$?
[ $rc = 0 ] || fail "B: sbatch --wait of the interrupted job: exit status $rc: $(tail_log "$log" 40)"
wait "$refpid" || fail "B: the uninterrupted run failed: $(tail_log "$WORK/ref.log")"
ref=$WORK/results-ref/tiny
[ -s "$ref/summary.csv" ] || fail "B: the uninterrupted run wrote no summary.csv: $(tail_log "$WORK/ref.log")"
ntasks=$(wc -l <"$ref/tasks/done.log")

# What the log must show: two graceful stops, two requeues, three allocations.
for line in "SIGUSR1 received: stopping the sweep" "SIGTERM received: stopping the sweep" \
    "requeueing job $id (restart 1)" "requeueing job $id (restart 2)" "restart 2: resuming" \
    "sweep complete (exit status 0)"; do
    grep -qF "$line" "$log" || fail "B: no '$line' in the log: $(tail_log "$log" 40)"
done
[ "$(grep -c "stop requested by a signal" "$log")" = 2 ] || fail "B: expected 2 stops of the sweep: $(grep "stop requested" "$log")"
[ "$(grep -c "sweep stopped before the end (exit status 3, after SIG" "$log")" = 2 ] ||
    fail "B: the sweep did not exit with status 3 both times: $(grep "sweep stopped" "$log")"
grep -q "stopped after epoch .* (checkpoint saved)" "$log" || fail "B: no training stopped at an epoch with its checkpoint"
grep -q "resuming from the checkpoint after epoch" "$log" || fail "B: no training resumed from its checkpoint"
# No completed task started again; every task done once.
again=$(awk '/\] done   / { id = $3; if (done[id]++) print "done twice: " id }
             /\] start  / { if (done[$3]) print "started again: " $3 }' "$log")
[ -z "$again" ] || fail "B: $again"
[ "$(wc -l <"$runb/tasks/done.log")" = "$ntasks" ] || fail "B: $(wc -l <"$runb/tasks/done.log") journal lines, expected $ntasks"
ls "$runb"/tasks/*.ckpt.h5 "$runb"/tasks/*.tmp >/dev/null 2>&1 && fail "B: checkpoints or temporary files left: $(ls "$runb/tasks")"
cmp -s "$ref/summary.csv" "$runb/summary.csv" || fail "B: summary.csv differs from the uninterrupted run's: $(diff "$ref/summary.csv" "$runb/summary.csv" | head -5)"

# ---- C: scancel ends the job for good: the script does not requeue it ----
submit ds-cancel -- "$WORK/tiny.job" "$WORK/results-cancel" &
sub=$!
log=$WORK/ds-cancel.out
wait_until 60 grep -qs "already done" "$log" || fail "C: the job did not start: $(tail_log "$log")"
id=$(job_id ds-cancel)
scancel "$id" || fail "C: scancel $id failed"
wait "$sub" # (its status for a cancelled job means nothing, and it may return before the
# batch script, which has KillWait seconds to finish, has decided)
wait_until 40 grep -q "requeueing" "$log"
grep -q "being cancelled (scancel or preemption), not at its time limit: not requeueing" "$log" ||
    fail "C: the script did not see the cancel: $(tail_log "$log")"
grep -q "requeueing job" "$log" && fail "C: a cancelled job was requeued: $(tail_log "$log")"
[ -z "$(squeue -h -j "$id" -t PD,R 2>/dev/null)" ] || fail "C: job $id is back in the queue after scancel"

pass_msg="$((SECONDS - start)) s: smoke.job ($data_note) in ${smoke_s} s; tiny sweep stopped by USR1 and TERM, requeued twice, summary.csv identical to the uninterrupted run's ($ntasks tasks); scancel not undone"
echo "PASS: $TEST ($pass_msg)"
exit 0
