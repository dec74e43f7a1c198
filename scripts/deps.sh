#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages distill_sweep needs to build, test and benchmark.
#
#   scripts/deps.sh            as root: install the missing packages; otherwise print the
#                              'sudo apt-get install ...' command to run and exit 1
#   scripts/deps.sh --print    print only that command line (used by the Makefile's error message)
#   --torch                    also python3-torch and python3-h5py: scripts/ds_torch.py, its test
#                              tests/it_torch_bridge.sh (skipped without them) and the PyTorch
#                              twins of 'make bench'. Not by default: on Debian 12 they add 263
#                              packages, 208 MB to download and 865 MB installed (OpenCV, FFmpeg)
#   --bench                    the same as --torch
#   --slurm                    also munge slurmctld slurmd slurm-client (single-node SLURM tests)
#
# Only packages that dpkg does not report as installed are installed, so a second run is fast.
set -euo pipefail

usage() {
    sed -n '2,14s/^# \{0,1\}//p' "$0"
}

PACKAGES=(
    build-essential pkg-config git
    libopenmpi-dev openmpi-bin
    libhdf5-openmpi-dev hdf5-tools
    libopenblas-dev libdnnl-dev check zlib1g-dev libinih-dev
    gnuplot-nox time curl ca-certificates
    dataset-fashion-mnist
)
TORCH_PACKAGES=(python3-torch python3-h5py)
SLURM_PACKAGES=(munge slurmctld slurmd slurm-client)

print_only=0
for arg in "$@"; do
    case $arg in
        --print) print_only=1 ;;
        --torch|--bench) PACKAGES+=("${TORCH_PACKAGES[@]}") ;;
        --slurm) PACKAGES+=("${SLURM_PACKAGES[@]}") ;;
        -h|--help) usage; exit 0 ;;
        *) echo "deps.sh: unknown option '$arg'" >&2; usage >&2; exit 2 ;;
    esac
done

# is_installed PKG: dpkg says "installed" for it (for any architecture).
is_installed() {
    dpkg-query -W -f='${db:Status-Status}\n' "$1" 2>/dev/null | grep -qx installed
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
    for p in "${PACKAGES[@]}"; do
        is_installed "$p" || missing+=("$p")
    done
else
    missing=("${PACKAGES[@]}")  # not a dpkg system: name everything
fi

# The command line names only the missing packages, or all of them when none is missing (so that
# --print always gives a command that works).
if ((${#missing[@]})); then
    to_name=("${missing[@]}")
else
    to_name=("${PACKAGES[@]}")
fi
command_line="sudo apt-get install -y --no-install-recommends ${to_name[*]}"

if ((print_only)); then
    echo "$command_line"
    exit 0
fi

if ((${#missing[@]} == 0)); then
    echo "deps.sh: all ${#PACKAGES[@]} packages are installed"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages: ${missing[*]}" >&2
    echo "deps.sh: not root; run (after 'sudo apt-get update' on a fresh machine):" >&2
    echo "$command_line"
    exit 1
fi

echo "deps.sh: installing ${#missing[@]} missing packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}"

still=()
for p in "${missing[@]}"; do
    is_installed "$p" || still+=("$p")
done
if ((${#still[@]})); then
    echo "deps.sh: still not installed: ${still[*]}" >&2
    exit 1
fi
echo "deps.sh: done"
