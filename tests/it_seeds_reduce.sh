#!/usr/bin/env bash
# The reducer over replicates end to end: a tiny sweep with `seeds = 3 4` on synthetic data.
# (tests/it_seeds.sh checks that each replicate's task files and summary.csv rows equal a
# one-seed sweep's.) Here: every row of summary-seeds.csv holds n_seeds 2 and the two replicates'
# rates' mean, sample sd, min, max and 95% t interval (t = tan(0.475 pi) for one degree of
# freedom), computed in awk from summary.csv's s3/ and s4/ rows; the seed column and the Wilson
# interval of every row; summary.md's seeds and interval column; Figure 1's data holds the two
# seeds' rates. About 12 s on 2 cores.
TEST=it_seeds_reduce
source "$(dirname "$0")/tools/sweep_env.sh"
start=$SECONDS

# job FILE NAME SEEDLINE
job() {
    cat >"$1" <<EOF
; it_seeds_reduce.sh: synthetic data, FGSM and JSMA on the baseline and the students
[run]
name = $2
results = $WORK/results
$3
threads = 1
[data]
dir = $WORK/data
test_samples = 32
[train]
epochs = 1
warm_start = 1
batch = 32
[distill]
temperatures = 1 20
[attack fgsm]
kind = fgsm
models = baseline students
samples = 32
shard = 16
[attack jsma]
kind = jsma
gamma = 0.04
models = baseline students
samples = 1
EOF
}
job "$WORK/two.job" two "seeds = 3 4"
run_sweep 2 "$WORK/two.job" "$WORK/two.log" || fail "the sweep failed: $(tail -5 "$WORK/two.log")"
two="$WORK/results/two"

# ---- Per seed: replicate s<seed>/'s rows, with their seed and a Wilson interval around the rate ----
for s in 3 4; do
    grep "^s$s/" "$two/summary.csv" | sed "s|^s$s/||" >"$WORK/one.$s"
    [ -s "$WORK/one.$s" ] || fail "seed $s: no rows"
    awk -F, -v s=$s '$10 != s || !(0 <= $11 && $11 <= $7 && $7 <= $12 && $12 <= 1) { print; bad = 1 }
                     END { exit bad }' "$WORK/one.$s" >"$WORK/wilson.check" ||
        fail "seed $s: seed or Wilson columns wrong: $(head -3 "$WORK/wilson.check")"
done
cut -d, -f1-4 "$WORK/one.3" | cmp -s - <(cut -d, -f1-4 "$WORK/one.4") || fail "the replicates have different rows"
[ $(($(wc -l <"$two/summary.csv") - 1)) -eq $((2 * $(wc -l <"$WORK/one.3"))) ] ||
    fail "summary.csv has other rows than the two replicates'"

# ---- Over seeds: the statistics of the two replicates' rows ----
# Fields of summary.csv: model temperature attack params n successes success_rate clean_accuracy
# ...; of summary-seeds.csv: model temperature attack params n_seeds seeds mean sd min max t_lo
# t_hi clean_mean clean_sd test_mean test_sd.
paste -d, <(cut -d, -f1-4,7,8 "$WORK/one.3") <(cut -d, -f7,8 "$WORK/one.4") \
    <(tail -n +2 "$two/summary-seeds.csv") | awk -F, '
    function near(x, y) { d = x - y; if (d < 0) d = -d; return d <= 1e-12 * (1 + (y < 0 ? -y : y)) }
    function check(what, got, want) { if (!near(got + 0, want)) { printf "%s %s: %s, expected %.17g\n", $1, what, got, want; bad = 1 } }
    {
        a = $5; b = $7; t = 12.706204736174707
        mean = (a + b) / 2; sd = (a > b ? a - b : b - a) / sqrt(2)
        if ($9 != $1 || $10 != $2 || $11 != $3 || $12 != $4) { print "rows out of step: " $0; bad = 1; next }
        if ($13 != 2 || $14 != "3 4") { print $1 ": n_seeds/seeds " $13 " " $14; bad = 1 }
        check("mean", $15, mean); check("sd", $16, sd)
        check("min", $17, a < b ? a : b); check("max", $18, a > b ? a : b)
        check("t_lo", $19, mean - t * sd / sqrt(2)); check("t_hi", $20, mean + t * sd / sqrt(2))
        check("clean mean", $21, ($6 + $8) / 2)
        c = $6 - $8; check("clean sd", $22, (c < 0 ? -c : c) / sqrt(2))
        n++
    }
    END { if (!n) { print "no rows"; bad = 1 } exit bad }' >"$WORK/agg.check" ||
    fail "summary-seeds.csv: $(head -5 "$WORK/agg.check" | tr '\n' ';')"
[ "$(wc -l <"$two/summary-seeds.csv")" -eq $(($(wc -l <"$WORK/one.3") + 1)) ] ||
    fail "summary-seeds.csv has not one row per model and configuration"

# ---- summary.md and Figure 1 ----
grep -qF '2 seeds (replicates s<seed>/): 3 4' "$two/summary.md" || fail "summary.md does not name the seeds"
grep -qF '| quantity | paper (%) | this run (%) | in our interval | notes |' "$two/summary.md" ||
    fail "summary.md's papers table has no interval column"
# T=20, fgsm: the two seeds' rates (%) in the last two columns.
want=$(for s in 3 4; do grep "^T20/student,20,fgsm," "$WORK/one.$s" | cut -d, -f7; done |
    awk '{ printf "%s%.10g", (NR > 1 ? " " : ""), 100 * $1 }')
awk '/^# index 0:/ { on = 1; next } /^# index/ { on = 0 } on && $1 == 20 { print $8, $9 }' "$two/figure1.dat" |
    grep -qxF "$want" || fail "figure1.dat: T=20 fgsm seeds' rates are not '$want': $(cat "$two/figure1.dat")"
if command -v gnuplot >/dev/null; then
    [ "$(head -c 4 "$two/figure1.png" | tail -c 3)" = PNG ] || fail "figure1.png is not a PNG"
    grep -q '<svg' "$two/figure1.svg" || fail "figure1.svg is not SVG"
fi

pass "$((SECONDS - start)) s, $(wc -l <"$WORK/one.3") rows per seed"
