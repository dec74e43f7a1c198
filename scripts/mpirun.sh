#!/usr/bin/env bash
# mpirun with what single machines and containers need: usage as mpirun's,
#   scripts/mpirun.sh -np 2 bin/distill_sweep jobs/demo.job
# Finds mpirun (or mpirun.openmpi / orterun), allows root (Open MPI refuses it otherwise), allows
# more ranks than cores, silences the missing-fabric warnings and pins one BLAS thread per rank.
# On a cluster, use your site's mpirun or srun directly (see slurm/).
set -euo pipefail
mpirun=$(command -v mpirun || command -v mpirun.openmpi || command -v orterun || true)
if [[ -z $mpirun ]]; then
    echo "scripts/mpirun.sh: no mpirun found; install Open MPI: sudo apt-get install openmpi-bin" >&2
    exit 127
fi
if [[ $(id -u) -eq 0 ]]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
export OMPI_MCA_rmaps_base_oversubscribe=${OMPI_MCA_rmaps_base_oversubscribe:-1}
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
export OMPI_MCA_mtl=${OMPI_MCA_mtl:-^ofi,psm,psm2}
export OMPI_MCA_btl=${OMPI_MCA_btl:-^ofi,openib,usnic}
if ! command -v ssh >/dev/null 2>&1 && ! command -v rsh >/dev/null 2>&1; then
    export OMPI_MCA_plm_rsh_agent=${OMPI_MCA_plm_rsh_agent:-false}
fi
# Open MPI pins ranks to cores when -np <= 2; on a shared machine a pinned rank waits behind
# others on its core (measured: 3x slower), so do not bind unless asked.
export OMPI_MCA_hwloc_base_binding_policy=${OMPI_MCA_hwloc_base_binding_policy:-none}
export OPENBLAS_NUM_THREADS=1
exec "$mpirun" "$@"
