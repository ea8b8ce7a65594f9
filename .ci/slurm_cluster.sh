#!/usr/bin/env bash
# A disposable one-node SLURM cluster for CI on Debian 12, run as root without systemd:
# munged, MariaDB + slurmdbd (so that `sacct`, the SLURM executor plugin's status command, works), slurmctld and
# slurmd, with one fake GPU declared as a gres. Usage: slurm_cluster.sh start | stop | status
#
# Daemons are started detached and their PIDs recorded in $STATE; `stop` signals only those PIDs (after checking
# /proc/PID/comm), never processes by name. `start` refuses if a port it needs is held by a process it did not
# start. Debian's packages ship init scripts; none is used (a policy-rc.d keeps apt from starting services).
set -euo pipefail

STATE=${SLURM_CI_STATE:-/run/privfair-slurm-ci}
LOGDIR=${SLURM_CI_LOGDIR:-/var/log/privfair-slurm-ci}
CONF=/etc/slurm
DB_PASS=privfair-ci        # MariaDB account of slurmdbd; MariaDB listens on 127.0.0.1 only
HOST=$(hostname -s)

say() { printf '[slurm-ci %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
fail() { say "ERROR: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "run as root"

# ------------------------------------------------------------------ processes this script owns
owned_pid() { cat "$STATE/$1.pid" 2>/dev/null || true; }
alive() { [ -n "$1" ] && [ "$(cat "/proc/$1/comm" 2>/dev/null)" = "$2" ]; }   # alive PID COMM
running() { alive "$(owned_pid "$1")" "$1"; }

stop_daemon() {   # TERM the recorded PID, wait up to 20 s, then KILL that PID only
  local name=$1 pid
  pid=$(owned_pid "$name")
  if alive "$pid" "$name"; then
    say "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 40); do alive "$pid" "$name" || break; sleep 0.5; done
    alive "$pid" "$name" && { say "$name still up: SIGKILL $pid"; kill -KILL "$pid" 2>/dev/null || true; }
  fi
  rm -f "$STATE/$name.pid"
}

port_owner() { ss -Hltnp "sport = :$1" 2>/dev/null | grep -o 'users:(("[^"]*",pid=[0-9]*' | head -1 || true; }
need_free_port() { local o; o=$(port_owner "$1"); [ -z "$o" ] || fail "port $1 is held by ${o#users:((} (not started here)"; }

launch() {   # launch NAME PIDFILE_THE_DAEMON_WRITES COMMAND...: start detached and record the daemon's PID
  local name=$1 pidfile=$2 pid=""; shift 2
  rm -f "$pidfile"
  setsid "$@" </dev/null >>"$LOGDIR/$name.out" 2>&1 &
  local started=$!
  for _ in $(seq 60); do
    pid=$(cat "$pidfile" 2>/dev/null || true)
    alive "$pid" "$name" && break
    pid=""; sleep 0.25
  done
  [ -n "$pid" ] || pid=$started
  alive "$pid" "$name" || { tail -20 "$LOGDIR/$name.out" >&2; fail "$name did not start (log: $LOGDIR/$name.out)"; }
  echo "$pid" > "$STATE/$name.pid"
  say "$name started (pid $pid)"
}

wait_listening() { for _ in $(seq $(( $1 * 2 ))); do [ -n "$(port_owner "$2")" ] && return 0; sleep 0.5; done; return 1; }

# ------------------------------------------------------------------ install and configure
install() {
  local want=(slurm-wlm slurmctld slurmd slurm-client munge slurmdbd mariadb-server) missing=() p
  for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  local policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  [ $policy = 0 ] || rm -f /usr/sbin/policy-rc.d
}

configure() {
  local mem_mb
  mem_mb=$(awk '/^MemTotal:/ {print int($2 / 1024 * 0.85)}' /proc/meminfo)   # a little under what slurmd finds
  mkdir -p "$CONF" /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /run/slurm
  cat > "$CONF/slurm.conf" <<EOF
# privfair CI cluster (.ci/slurm_cluster.sh): one node, one fake GPU, accounting through slurmdbd
ClusterName=privfair-ci
SlurmctldHost=${HOST}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
CredType=cred/munge
CommunicationParameters=NoInAddrAny
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurm/slurmctld.pid
SlurmdPidFile=/run/slurm/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
GresTypes=gpu
SchedulerType=sched/backfill
# Backfill every 2 s (default 30 s): CPU jobs start beside a GPU job instead of waiting in the queue
SchedulerParameters=bf_interval=2
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=6819
# ReqTRES/AllocTRES in sacct then show gres/gpu=1; the comment holds Snakemake's rule and wildcards
AccountingStorageTRES=gres/gpu
AccountingStoreFlags=job_comment
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
NodeName=${HOST} NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=${mem_mb} Gres=gpu:fake:1 State=UNKNOWN
PartitionName=debug Nodes=${HOST} Default=YES MaxTime=INFINITE State=UP
EOF
  # slurmd drops a GPU gres that has no device file; /dev/null stands in for one.
  echo "NodeName=${HOST} Name=gpu Type=fake File=/dev/null" > "$CONF/gres.conf"
  ( umask 077; cat > "$CONF/slurmdbd.conf" ) <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
LogFile=/var/log/slurm/slurmdbd.log
PidFile=/run/slurm/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=localhost
StoragePort=3306
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=$DB_PASS
EOF
}

# ------------------------------------------------------------------ daemons
start_munge() {
  running munged && return 0
  if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then say "using a munged already running"; return 0; fi
  [ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key; chmod 0400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  launch munged /run/munge/munged.pid setpriv --reuid=munge --regid=munge --clear-groups /usr/sbin/munged --foreground
  munge -n | unmunge >/dev/null || fail "munge round trip failed"
}

start_mariadb() {
  local sock=/run/mysqld/mysqld.sock
  if ! running mariadbd && ! mariadb-admin --socket=$sock ping >/dev/null 2>&1; then
    need_free_port 3306
    mkdir -p /run/mysqld; chown mysql:root /run/mysqld
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
    launch mariadbd /run/mysqld/mysqld.pid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
      --socket=$sock --pid-file=/run/mysqld/mysqld.pid
  fi
  for _ in $(seq 60); do mariadb-admin --socket=$sock ping >/dev/null 2>&1 && break; sleep 0.5; done
  mariadb --socket=$sock -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
    CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    ALTER USER 'slurm'@'localhost' IDENTIFIED BY '$DB_PASS';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
}

start_slurm() {
  if ! running slurmdbd; then
    need_free_port 6819
    launch slurmdbd /run/slurm/slurmdbd.pid /usr/sbin/slurmdbd -D
    wait_listening 30 6819 || fail "slurmdbd is not listening (see /var/log/slurm/slurmdbd.log)"
  fi
  if ! running slurmctld; then
    need_free_port 6817
    # -c: a clean state, so no job or drained node survives from an earlier run
    launch slurmctld /run/slurm/slurmctld.pid /usr/sbin/slurmctld -D -c
    wait_listening 30 6817 || fail "slurmctld is not listening (see /var/log/slurm/slurmctld.log)"
  fi
  if ! running slurmd; then
    need_free_port 6818
    launch slurmd /run/slurm/slurmd.pid /usr/sbin/slurmd -D
  fi
  local state=""
  for i in $(seq 120); do
    state=$(sinfo -h -n "$HOST" -o %T 2>/dev/null | head -1 || true)
    case $state in idle|mixed|allocated) break ;; esac
    [ $(( i % 10 )) = 0 ] && scontrol update nodename="$HOST" state=resume >/dev/null 2>&1 || true
    sleep 0.5
  done
  case $state in idle|mixed|allocated) ;; *) fail "node $HOST is '${state:-unknown}', not idle (see /var/log/slurm/)" ;; esac
}

cmd_start() {
  local t0=$SECONDS
  mkdir -p "$STATE" "$LOGDIR"
  install
  if running slurmctld && running slurmd && running slurmdbd; then say "already running"; return 0; fi
  for d in slurmd slurmctld slurmdbd; do stop_daemon $d; done   # a half-started cluster from an earlier run
  configure
  start_munge
  start_mariadb
  start_slurm
  # The plugin checks a job's account against sacctmgr; give root an account of its own besides "root".
  sacctmgr -n -P list account ci format=account | grep -qx ci || sacctmgr -i add account ci Description=ci Organization=ci >/dev/null
  sacctmgr -n -P -s list user root format=account | grep -qx ci || sacctmgr -i add user root account=ci >/dev/null
  say "cluster up in $(( SECONDS - t0 )) s: $(sinfo -h -o '%P %D %T %G' | tr '\n' ' ')"
}

cmd_stop() {
  if running slurmctld; then
    local jobs; jobs=$(squeue -h -o %i 2>/dev/null || true)
    [ -z "$jobs" ] || { say "cancelling jobs $(echo $jobs)"; scancel $jobs || true; sleep 2; }
  fi
  for d in slurmd slurmctld slurmdbd mariadbd munged; do stop_daemon $d; done
}

cmd_status() {
  for d in munged mariadbd slurmdbd slurmctld slurmd; do
    running $d && echo "$d: pid $(owned_pid $d)" || echo "$d: not running (here)"
  done
  sinfo 2>&1 || true
}

case ${1:-} in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
