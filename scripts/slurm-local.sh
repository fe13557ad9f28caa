#!/usr/bin/env bash
# A real one-node SLURM cluster on loopback, for the `slurm` tests and for trying sweeps locally.
#
#   scripts/slurm-local.sh up       install (Debian packages, first time) and start the cluster
#   scripts/slurm-local.sh down     stop the daemons this script started (by PID, nothing by name)
#   scripts/slurm-local.sh status   which of them are alive
#
# Daemons: munged, mariadbd (unix socket only) + slurmdbd (submitit needs `sacct` to see jobs that
# died without a result), slurmctld and slurmd, all as root, no systemd, no cgroups. Needs root.
# State, logs and PID files live in $SLURM_LOCAL_DIR (default /tmp/mumo-slurm). Set
# SLURM_LOCAL_CPUS=N to advertise N CPUs (default: what the machine has).
set -euo pipefail

DIR=${SLURM_LOCAL_DIR:-/tmp/mumo-slurm}
CONF=/etc/slurm
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)
DAEMONS=(slurmd slurmctld slurmdbd mariadb munged)   # stop order

log() { echo "slurm-local: $*" >&2; }
die() { log "$*"; exit 1; }
pid_of() { local f="$DIR/$1.pid"; [[ -s $f ]] && cat "$f"; }
alive() { local pid; pid=$(pid_of "$1") && kill -0 "$pid" 2>/dev/null; }
wait_for() {  # wait_for SECONDS DESCRIPTION COMMAND...
  local seconds=$1 what=$2; shift 2
  for ((i = 0; i < seconds * 10; i++)); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  die "timed out waiting for $what (logs in $DIR)"
}

install() {
  local missing=()
  for p in "${PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  ((${#missing[@]} == 0)) && return
  log "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

write_configs() {
  local hw node mem cpus
  hw=$(slurmd -C | head -1)
  node=$(hostname -s)
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  cpus=${SLURM_LOCAL_CPUS:-$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")}
  local layout
  layout=$(grep -o 'Boards=[0-9]* SocketsPerBoard=[0-9]* CoresPerSocket=[0-9]* ThreadsPerCore=[0-9]*' <<<"$hw")
  local extra=""
  if [[ -n ${SLURM_LOCAL_CPUS:-} ]]; then layout=""; extra="SlurmdParameters=config_overrides"; fi
  mkdir -p "$CONF"
  cat >"$CONF/slurm.conf" <<EOF
# Written by mumo scripts/slurm-local.sh: one node on loopback.
ClusterName=mumo
SlurmctldHost=localhost
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$DIR/ctld
SlurmdSpoolDir=$DIR/slurmd
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
MailProg=/bin/true
KillWait=5
MinJobAge=300
ReturnToService=2
$extra
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus $layout RealMemory=$((mem * 9 / 10)) State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat >"$CONF/slurmdbd.conf" <<EOF
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=slurm
StoragePass=mumo-slurm
StorageLoc=slurm_acct_db
PidFile=$DIR/slurmdbd.pid
LogFile=$DIR/slurmdbd.log
EOF
  chmod 600 "$CONF/slurmdbd.conf"
}

start_munge() {
  alive munged && return
  mkdir -p /run/munge && chown munge:munge /run/munge
  [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 munged test -s /run/munge/munged.pid
  cp /run/munge/munged.pid "$DIR/munged.pid"
}

start_mariadb() {
  alive mariadb && return
  mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
  touch "$DIR/mariadb.err" && chown mysql "$DIR/mariadb.err"
  mariadbd --user=mysql --skip-networking --socket=/run/mysqld/mysqld.sock \
    --pid-file=/run/mysqld/mumo.pid --log-error="$DIR/mariadb.err" >/dev/null 2>&1 &
  wait_for 30 mariadb mariadb --socket=/run/mysqld/mysqld.sock -e "SELECT 1"
  wait_for 10 "mariadb pid file" test -s /run/mysqld/mumo.pid
  cp /run/mysqld/mumo.pid "$DIR/mariadb.pid"
  local fresh=""
  [[ -e $DIR/ctld/job_state ]] || fresh="DROP DATABASE IF EXISTS slurm_acct_db;"  # job ids restart at 1
  mariadb --socket=/run/mysqld/mysqld.sock -e "$fresh CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'mumo-slurm';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_slurm() {
  alive slurmdbd || { slurmdbd; wait_for 30 slurmdbd sacctmgr -n show cluster; }
  alive slurmctld || { slurmctld; wait_for 30 slurmctld scontrol ping; }
  alive slurmd || slurmd
  wait_for 30 "an idle node" bash -c "sinfo -h -o %T | grep -qE '^(idle|mixed)'"
}

smoke_test() {
  local id
  srun -N1 -t 1 true
  id=$(sbatch --parsable -t 1 -o /dev/null --wrap true)
  wait_for 60 "job $id in sacct" bash -c "sacct -n -X -j $id -o State | grep -q COMPLETED"
}

up() {
  [[ $EUID -eq 0 ]] || die "needs root (daemons run as root, configs go to $CONF)"
  install
  mkdir -p "$DIR/ctld" "$DIR/slurmd"
  write_configs
  start_munge
  start_mariadb
  start_slurm
  for d in munged mariadb slurmdbd slurmctld slurmd; do alive "$d" || die "$d is not running (see $DIR)"; done
  smoke_test
  log "up: $(sinfo -h -o '%P %D nodes %c cpus %m MB %T')"
}

down() {
  for d in "${DAEMONS[@]}"; do
    local pid
    pid=$(pid_of "$d") || continue
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    fi
    rm -f "$DIR/$d.pid"
  done
  log "down"
}

status() {
  for d in munged mariadb slurmdbd slurmctld slurmd; do
    if alive "$d"; then echo "$d running (pid $(pid_of "$d"))"; else echo "$d stopped"; fi
  done
}

case ${1:-} in
  up) up ;;
  down) down ;;
  status) status ;;
  *) die "usage: $0 up|down|status" ;;
esac
