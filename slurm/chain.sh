#!/bin/bash
# Submits a sweep as a chain of N jobs linked with --dependency=afternotok, for sites where jobs
# may not requeue themselves. Each link runs slurm/distill_sweep.sbatch with DS_REQUEUE=0: when
# the time limit comes it stops the sweep gracefully and exits with status 3 ("not ok"), which
# starts the next link, which resumes the sweep. Once a link completes the sweep (status 0), the
# links still waiting can never start and SLURM removes them (--kill-on-invalid-dep=yes).
#
#   slurm/chain.sh N [sbatch options --] JOB [RESULTS [distill_sweep options]]
#
# e.g. slurm/chain.sh 5 --time=08:00:00 --ntasks=16 -- jobs/paper.job /scratch/$USER/ds
# Prints the job ids. DS_SBATCH_SCRIPT: another sbatch script (e.g. the multi-node one).
set -euo pipefail

usage() {
    sed -n '8,9s/^# \{0,1\}//p' "$0" >&2
    exit 2
}
[[ ${1:-} =~ ^[1-9][0-9]*$ ]] || usage
n=$1
shift
opts=()
if printf '%s\n' "$@" | grep -qx -- '--'; then
    while [[ $1 != -- ]]; do
        opts+=("$1")
        shift
    done
    shift
fi
(($# >= 1)) || usage
script=${DS_SBATCH_SCRIPT:-$(dirname "$0")/distill_sweep.sbatch}

prev=
for ((i = 1; i <= n; i++)); do
    dep=()
    [[ -n $prev ]] && dep=(--dependency="afternotok:$prev" --kill-on-invalid-dep=yes)
    id=$(sbatch --parsable --export=ALL,DS_REQUEUE=0 "${dep[@]}" "${opts[@]}" "$script" "$@")
    prev=${id%%;*}
    echo "link $i of $n: job $prev${dep:+ (after job ${dep[0]##*:} ends not ok)}"
done
