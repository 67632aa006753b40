#!/usr/bin/env bash
# A throwaway single-node Slurm cluster for tests, without systemd.
#
#   slurm-local.sh install      install slurm + munge from Debian packages (idempotent; root)
#   slurm-local.sh start DIR    start munged, slurmctld -D, slurmd -D with all state in DIR;
#                               prints `export SLURM_CONF=DIR/slurm.conf`
#   slurm-local.sh stop DIR     stop exactly the processes started for DIR (by pid)
set -euo pipefail

cmd=${1:-}
case "$cmd" in
install)
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null && command -v munged >/dev/null; then
        exit 0
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq slurmctld slurmd slurm-client munge >/dev/null
    ;;
start)
    dir=$(realpath -m "${2:?usage: slurm-local.sh start DIR}")
    mkdir -p "$dir"/{state,spool,munge}
    chmod 700 "$dir/munge"
    host=$(hostname -s)
    # munge: our own socket, key and pid file; --force lets it run as root in a sandbox.
    if [ ! -f "$dir/munge/munge.key" ]; then
        dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
        chmod 600 "$dir/munge/munge.key"
    fi
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
        --pid-file="$dir/munge/munged.pid" --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed"
    # Free ports for this cluster's daemons.
    read -r p1 p2 < <(python3 -c 'import socket
ps=[]
for _ in range(2):
    s=socket.socket(); s.bind(("127.0.0.1",0)); ps.append(s)
print(*[s.getsockname()[1] for s in ps])')
    mem=$(awk '/MemTotal/ {print int($2/1024*0.8)}' /proc/meminfo)
    cpus=$(nproc)
    cat > "$dir/slurm.conf" <<CONF
ClusterName=nnqft-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldPort=$p1
SlurmdPort=$p2
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SlurmdTimeout=60
InactiveLimit=0
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
    export SLURM_CONF="$dir/slurm.conf"
    slurmctld -D -i -f "$SLURM_CONF" >"$dir/slurmctld.out" 2>&1 &
    echo $! > "$dir/slurmctld.bgpid"
    slurmd -D -f "$SLURM_CONF" >"$dir/slurmd.out" 2>&1 &
    echo $! > "$dir/slurmd.bgpid"
    # Wait for the node to come up.
    for _ in $(seq 1 60); do
        if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
            echo "export SLURM_CONF=$SLURM_CONF"
            exit 0
        fi
        sleep 0.5
    done
    echo "slurm-local: the node did not come up; logs in $dir" >&2
    tail -5 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
    exit 1
    ;;
stop)
    dir=$(realpath -m "${2:?usage: slurm-local.sh stop DIR}")
    for f in slurmd.bgpid slurmctld.bgpid munge/munged.pid; do
        if [ -f "$dir/$f" ]; then
            pid=$(cat "$dir/$f")
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
            kill -9 "$pid" 2>/dev/null || true
            rm -f "$dir/$f"
        fi
    done
    ;;
*)
    echo "usage: slurm-local.sh install | start DIR | stop DIR" >&2
    exit 2
    ;;
esac
