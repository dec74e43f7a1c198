# A private single-node SLURM for tests: munged, slurmctld and slurmd from Debian's packages
# (munge slurmctld slurmd slurm-client; scripts/deps.sh --slurm), started without systemd.
#
#   source tests/slurm/cluster.sh
#   slurm_start || echo "SKIP: $SLURM_WHY"   # sets SLURM_CONF for sbatch, squeue, scontrol...
#   ...
#   slurm_stop                                # also stops daemons left by an earlier attempt
#
# or by hand: bash tests/slurm/cluster.sh start|stop|status (then export the SLURM_CONF it
# prints to use sbatch, squeue, ... against it).
#
# Everything lives in one folder, $DS_SLURM_DIR (default ${TMPDIR:-/tmp}/distill_sweep-slurm):
# slurm.conf, munge's key, socket and log, the controller's state, slurmd's spool, the daemons'
# logs and pid files. Nothing in /etc, /var or /run is touched, the daemons use their own ports
# ($DS_SLURM_PORT and the next one, default 16817) and their own munge socket, so a SLURM or
# munged already installed and running on the machine is left alone. The folder has a fixed
# name so that a new start first stops the daemons an interrupted earlier run left behind (by
# their pid files); slurm_stop removes the folder.
#
# Needs root (slurmd starts jobs as their users; munged runs as user munge). The configuration
# follows /work/shared/docs/hpc-notes.md ("SLURM (single node, for tests)"): no cgroups
# (proctrack/linuxproc, task/none), node line from `slurmd -C`, quick scheduling and requeue
# (sched_interval=2, cred_expire=10: a requeued job runs again ~13 s later), KillWait=30 (the
# usual value: between SIGTERM and SIGKILL the batch script has time to see a cancel), and
# MinJobAge=4 (the smallest value that keeps `sbatch --wait` polling every 2 s instead of backing
# off to 32 s; 22.05 refuses less than 2; finished jobs stay visible for a few seconds only).

DS_SLURM_DIR=${DS_SLURM_DIR:-${TMPDIR:-/tmp}/distill_sweep-slurm}
DS_SLURM_PORT=${DS_SLURM_PORT:-16817}
SLURM_WHY=

_slurm_log() { echo "cluster.sh: $*" >&2; }

# _slurm_kill_pidfiles FILE:NAME...: stops the processes in these pid files, those alive whose
# command is NAME (a recycled pid is never killed): SIGTERM to all, SIGKILL to those still
# there 10 s later.
_slurm_kill_pidfiles() {
    local fn pid comm pids=() names=() i k
    for fn in "$@"; do
        [ -s "${fn%%:*}" ] || continue
        pid=$(tr -dc 0-9 <"${fn%%:*}")
        [ -n "$pid" ] || continue
        comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
        [ "$comm" = "${fn##*:}" ] || continue
        kill -TERM "$pid" 2>/dev/null && pids+=("$pid") && names+=("$comm")
    done
    for i in $(seq 100); do
        for k in "${!pids[@]}"; do
            kill -0 "${pids[$k]}" 2>/dev/null || unset "pids[$k]"
        done
        [ ${#pids[@]} = 0 ] && return 0
        sleep 0.1
    done
    for k in "${!pids[@]}"; do
        _slurm_log "${names[$k]} (pid ${pids[$k]}) ignored SIGTERM for 10 s: SIGKILL"
        kill -KILL "${pids[$k]}" 2>/dev/null
    done
}

# slurm_stop: cancels the jobs of this cluster, stops slurmd, slurmctld and munged (started here
# or by an earlier attempt), removes the folder. Never fails.
slurm_stop() {
    local d=$DS_SLURM_DIR i pid
    [ -d "$d" ] || return 0
    if [ -s "$d/slurmctld.pid" ] && command -v scancel >/dev/null 2>&1 &&
        SLURM_CONF=$d/slurm.conf timeout 5 scontrol ping 2>/dev/null | grep -q UP; then
        SLURM_CONF=$d/slurm.conf timeout 10 scancel --quiet --partition=debug >/dev/null 2>&1
        for i in $(seq 75); do
            [ -z "$(SLURM_CONF=$d/slurm.conf timeout 5 squeue -h -o %i 2>/dev/null)" ] && break
            sleep 0.2
        done
    fi
    _slurm_kill_pidfiles "$d/slurmd.pid:slurmd" "$d/slurmctld.pid:slurmctld" "$d/munge/munged.pid:munged"
    # A job step that outlived its slurmd (an attempt killed with -9): its slurmstepd has files
    # open in our spool folder.
    for pid in $(pgrep -x slurmstepd 2>/dev/null); do
        if ls -l "/proc/$pid/fd" 2>/dev/null | grep -q -- "-> $d/"; then
            pkill -KILL -P "$pid" 2>/dev/null
            kill -KILL "$pid" 2>/dev/null
        fi
    done
    rm -rf "$d"
}

# _slurm_missing: the first missing program, or nothing.
_slurm_missing() {
    local p
    for p in munged mungekey munge slurmctld slurmd sbatch squeue sinfo scontrol scancel runuser; do
        command -v "$p" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin:/sbin command -v "$p" >/dev/null 2>&1 || {
            echo "$p"
            return
        }
    done
}

# slurm_conf FILE: writes the configuration of the one-node cluster.
slurm_conf() {
    local d=$DS_SLURM_DIR host node
    host=$(hostname -s)
    # The node exactly as slurmd sees it (declaring more than exists drains the node).
    node=$(slurmd -C 2>/dev/null | head -n 1 | sed 's/ *UpTime=.*//')
    case $node in
        NodeName=*) ;;
        *) return 1 ;;
    esac
    cat >"$1" <<EOF
# Written by tests/slurm/cluster.sh: a private one-node cluster for the distill_sweep tests.
ClusterName=dstest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$DS_SLURM_PORT
SlurmdPort=$((DS_SLURM_PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$d/munge/munge.socket,cred_expire=10
StateSaveLocation=$d/ctld
SlurmdSpoolDir=$d/spool
SlurmctldPidFile=$d/slurmctld.pid
SlurmdPidFile=$d/slurmd.pid
SlurmctldLogFile=$d/slurmctld.log
SlurmdLogFile=$d/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SchedulerParameters=sched_interval=2,bf_interval=1
KillWait=30
MinJobAge=4
MailProg=/bin/true
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

# slurm_start: starts munged, slurmctld and slurmd and waits until the node is idle (30 s at
# most). On success exports SLURM_CONF and returns 0; otherwise stops what it started, sets
# SLURM_WHY (why SLURM cannot run here, with the daemons' last log lines) and returns 1.
slurm_start() {
    local d=$DS_SLURM_DIR missing host i state
    PATH=$PATH:/usr/sbin:/sbin
    if [ "$(id -u)" != 0 ]; then
        SLURM_WHY="needs root to start munged, slurmctld and slurmd"
        return 1
    fi
    missing=$(_slurm_missing)
    if [ -n "$missing" ]; then
        SLURM_WHY="$missing not installed (install SLURM with: scripts/deps.sh --slurm)"
        return 1
    fi
    id munge >/dev/null 2>&1 || {
        SLURM_WHY="no user munge (reinstall the munge package)"
        return 1
    }
    slurm_stop # daemons of an interrupted earlier attempt, and its folder
    mkdir -p "$d/ctld" "$d/spool" "$d/munge" || {
        SLURM_WHY="cannot create $d"
        return 1
    }
    chmod 0755 "$d"
    export SLURM_CONF=$d/slurm.conf
    if ! slurm_conf "$SLURM_CONF"; then
        SLURM_WHY="slurmd -C does not describe this node: $(slurmd -C 2>&1 | head -n 2 | tr '\n' ' ')"
        slurm_stop
        return 1
    fi

    # munged, as user munge, with a key, socket, pid, seed and log file of its own.
    chown munge:munge "$d/munge" && chmod 0755 "$d/munge" &&
        mungekey --create --keyfile="$d/munge/munge.key" 2>"$d/munge/mungekey.err" &&
        chown munge:munge "$d/munge/munge.key" && chmod 0600 "$d/munge/munge.key" || {
        SLURM_WHY="cannot create a munge key: $(cat "$d/munge/mungekey.err" 2>/dev/null)"
        slurm_stop
        return 1
    }
    if ! runuser -u munge -- munged --socket="$d/munge/munge.socket" --key-file="$d/munge/munge.key" \
        --pid-file="$d/munge/munged.pid" --log-file="$d/munge/munged.log" \
        --seed-file="$d/munge/munged.seed" >"$d/munge/start.err" 2>&1; then
        SLURM_WHY="munged does not start: $(cat "$d/munge/start.err") $(tail -n 3 "$d/munge/munged.log" 2>/dev/null)"
        slurm_stop
        return 1
    fi
    for i in $(seq 50); do
        munge -S "$d/munge/munge.socket" -n </dev/null 2>/dev/null | unmunge -S "$d/munge/munge.socket" >/dev/null 2>&1 && break
        sleep 0.1
    done
    if ! munge -S "$d/munge/munge.socket" -n </dev/null 2>/dev/null | unmunge -S "$d/munge/munge.socket" >/dev/null 2>&1; then
        SLURM_WHY="munged runs but does not answer: $(tail -n 3 "$d/munge/munged.log" 2>/dev/null)"
        slurm_stop
        return 1
    fi

    if ! slurmctld -f "$SLURM_CONF" >"$d/slurmctld.start" 2>&1; then
        SLURM_WHY="slurmctld does not start: $(cat "$d/slurmctld.start") $(tail -n 5 "$d/slurmctld.log" 2>/dev/null)"
        slurm_stop
        return 1
    fi
    for i in $(seq 100); do
        scontrol ping 2>/dev/null | grep -q UP && break
        sleep 0.2
    done
    if ! scontrol ping 2>/dev/null | grep -q UP; then
        SLURM_WHY="slurmctld does not answer: $(tail -n 5 "$d/slurmctld.log" 2>/dev/null)"
        slurm_stop
        return 1
    fi
    host=$(sed -n 's/^NodeName=\([^ ]*\).*/\1/p' "$SLURM_CONF")
    if ! slurmd -f "$SLURM_CONF" -N "$host" >"$d/slurmd.start" 2>&1; then
        SLURM_WHY="slurmd does not start: $(cat "$d/slurmd.start") $(tail -n 5 "$d/slurmd.log" 2>/dev/null)"
        slurm_stop
        return 1
    fi
    state=
    for i in $(seq 150); do
        state=$(sinfo -h -o %T 2>/dev/null | head -n 1)
        [ "$state" = idle ] && return 0
        sleep 0.2
    done
    SLURM_WHY="the node is '${state:-unknown}', not idle, after 30 s: $(sinfo -h -R 2>/dev/null | head -n 1) $(tail -n 5 "$d/slurmd.log" 2>/dev/null)"
    slurm_stop
    return 1
}

# By hand: bash tests/slurm/cluster.sh start|stop|status
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    case ${1:-} in
        start)
            if slurm_start; then
                echo "SLURM is up: export SLURM_CONF=$SLURM_CONF"
            else
                echo "cluster.sh: SLURM cannot start: $SLURM_WHY" >&2
                exit 1
            fi
            ;;
        stop) slurm_stop ;;
        status)
            export SLURM_CONF=$DS_SLURM_DIR/slurm.conf
            [ -f "$SLURM_CONF" ] || { echo "not started ($SLURM_CONF missing)"; exit 1; }
            scontrol ping && sinfo && squeue
            ;;
        *)
            echo "usage: bash tests/slurm/cluster.sh start|stop|status" >&2
            exit 2
            ;;
    esac
fi
