#!/usr/bin/env bash
# Valgrind (memcheck) over the unit tests and a tiny sweep on one rank: no invalid read or
# write, no use of uninitialised memory, no definite or indirect leak. Run by
# 'make check-valgrind', which builds everything without -march=native into build-vg/
# (valgrind cannot execute AVX-512). Open MPI's own reports are suppressed with the
# suppression file it ships and tests/tools/valgrind.supp (its leaks that file misses). test_nn runs its layers case (every layer's forward and backward) and
# its network case (the engine's forward and input gradient). Its gradients case (finite
# differences of the engine's training pass: ~2,400 passes at ~10 s each under valgrind) and its
# training case (minutes of SGD natively) would take hours; the engine's training pass runs
# under valgrind in the tiny sweep below instead (hard and soft labels, dropout, T = 20).
#   tests/valgrind.sh BUILD_DIR
TEST=valgrind
B=${1:?usage: tests/valgrind.sh BUILD_DIR}
command -v valgrind >/dev/null || { echo "FAIL: valgrind: not installed (apt-get install valgrind)"; exit 1; }
source "$(dirname "$0")/tools/sweep_env.sh"
BIN=$ROOT/$B/bin/distill_sweep
start=$SECONDS
SUPP=()
for f in /usr/share/openmpi/openmpi-valgrind.supp "$ROOT/tests/tools/valgrind.supp"; do
    [ -f "$f" ] && SUPP+=(--suppressions="$f")
done
# --num-callers=40: deep enough that Open MPI's leaks show the library frame the suppressions match.
VG=(valgrind -q --error-exitcode=99 --num-callers=40 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect --track-origins=yes "${SUPP[@]}")
# Valgrind runs one thread at a time: an OpenMP thread spinning at a barrier (libgomp's default
# wait policy) burns whole time slices while the thread it waits for cannot run: wait passively.
export OMP_WAIT_POLICY=PASSIVE
ran=
for t in "$ROOT/$B"/tests/test_*; do
    name=$(basename "$t")
    env=(CK_FORK=no OPENBLAS_NUM_THREADS=1)
    cases=("")
    [ "$name" = test_nn ] && cases=(layers network-onednn network-gemm)
    for c in "${cases[@]}"; do
        env "${env[@]}" ${c:+CK_RUN_CASE=$c} "${VG[@]}" --log-file="$WORK/$name$c.vg" "$t" >"$WORK/$name$c.out" 2>&1 ||
            fail "$name${c:+ ($c)}: $(grep -m5 -E 'Invalid|uninitiali|definitely|indirectly|Failures|FAIL' "$WORK/$name$c.vg" "$WORK/$name$c.out" | tr '\n' ' ')"
        ran="$ran $name${c:+/$c}"
    done
done
# A tiny sweep (training, soft labels, every attack, the reducer) on one rank, without mpirun
# (a singleton MPI process). The integration tests' job, shrunk: under valgrind one sample's
# training pass takes about a second, and JSMA's Jacobian is ten input gradients per iteration.
# 32 training and 8 test samples, FGSM on 4-8, JSMA and C&W on one sample (9 targets each),
# JSMA's budget one iteration (gamma 0.005), C&W 2 iterations per search step.
write_job "$WORK/v.job" v
sed -i -e 's/^\[data\]$/[data]\ntrain_samples = 32\ntest_samples = 8/' \
    -e 's/^samples = 64$/samples = 8/' -e 's/^shard = 16$/shard = 4/' -e 's/^samples = 32$/samples = 4/' \
    -e 's/^samples = 2$/samples = 1/' -e 's/^gamma = 0.04$/gamma = 0.005/' \
    -e 's/^iterations = 10$/iterations = 2/' "$WORK/v.job"
"${VG[@]}" --log-file="$WORK/sweep.vg" "$BIN" "$WORK/v.job" --no-progress >"$WORK/sweep.out" 2>&1 ||
    fail "sweep -np 1: $(grep -m5 -E 'Invalid|uninitiali|definitely|indirectly|distill_sweep:' "$WORK/sweep.vg" "$WORK/sweep.out" | tr '\n' ' ')"
[ -s "$WORK/results/v/summary.csv" ] || fail "sweep -np 1: no summary.csv: $(tail -3 "$WORK/sweep.out")"
pass "$((SECONDS - start)) s; clean:$ran, sweep -np 1 ($(wc -l <"$WORK/results/v/tasks/done.log") tasks)"
