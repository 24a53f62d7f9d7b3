#!/usr/bin/env bash
# The executor benchmark's two loads under pacemaker, for the comparison in
# bench/README.md ("executor"): one node (corosync on 127.0.0.1, Debian's
# default corosync.conf), the same stamped Dummy agent, the same tables.
#
#   bench/executor/pacemaker.sh [RESOURCES] [SECONDS] [GROUP SIZE]   (500 60 50)
#
# Needs root and Debian's pacemaker package installed but not running. It
# starts corosync and pacemakerd itself, and stops exactly those (by pid)
# when it ends; the stamped agent it installs is removed too.
set -euo pipefail
resources=${1:-500} seconds=${2:-60} group=${3:-50}
dummy=/usr/lib/ocf/resource.d/heartbeat/Dummy
provider=/usr/lib/ocf/resource.d/hactlbench
for need in corosync pacemakerd cibadmin crm_mon crm_attribute "$dummy"; do
  command -v "$need" >/dev/null || [ -x "$need" ] || { echo "pacemaker.sh: $need is missing (apt-get install pacemaker resource-agents)" >&2; exit 1; }
done
if pgrep -x corosync >/dev/null || pgrep -x pacemakerd >/dev/null; then
  echo "pacemaker.sh: corosync or pacemakerd already runs here; this would measure that cluster" >&2
  exit 1
fi
if compgen -G "/var/lib/pacemaker/cib/cib*" >/dev/null; then
  echo "pacemaker.sh: a CIB exists in /var/lib/pacemaker/cib; this would replace it" >&2
  exit 1
fi
work=$(mktemp -d /tmp/hactl-pacemaker-bench-XXXXXX)
log=$work/calls.log
started=()
finish() {
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do
    for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$provider"
  rm -f /var/lib/pacemaker/cib/cib* # this run's own: there was none before it
  echo "pacemaker.sh: logs kept in $work"
}
trap finish EXIT

mkdir -p "$provider"
cat >"$provider/StampedDummy" <<EOF
#!/bin/sh
echo "\$OCF_RESOURCE_INSTANCE \$1 begin \$(date +%s%N)" >> "$log"
$dummy "\$1"
rc=\$?
echo "\$OCF_RESOURCE_INSTANCE \$1 end \$(date +%s%N)" >> "$log"
exit \$rc
EOF
chmod 755 "$provider/StampedDummy"

corosync -f >"$work/corosync.out" 2>&1 &
started+=($!)
sleep 2
pacemakerd >"$work/pacemakerd.out" 2>&1 &
started+=($!)
for _ in $(seq 120); do crm_mon -1 2>/dev/null | grep -q "Online:" && break; sleep 1; done
crm_attribute -t crm_config -n stonith-enabled -v false
crm_attribute -t crm_config -n no-quorum-policy -v ignore
version=$(pacemakerd --version | head -1)

wait_started() { # count of "start end" lines to reach
  for _ in $(seq 600); do
    local count
    count=$(grep -c ' start end ' "$log" 2>/dev/null) || count=0
    [ "$count" -ge "$1" ] && return 0
    sleep 0.5
  done
  echo "pacemaker.sh: not all started" >&2
  exit 1
}

# Overhead per call: a group started in order, no monitors.
xml="<group id=\"g\">"
for i in $(seq "$group"); do
  xml+="<primitive id=\"g$i\" class=\"ocf\" provider=\"hactlbench\" type=\"StampedDummy\"/>"
done
xml+="</group>"
cibadmin --create -o resources --xml-text "$xml"
wait_started "$group"
sleep 2
cp "$log" "$work/group.log"
cibadmin --delete -o resources --xml-text '<group id="g"/>' || crm_resource --resource g --set-parameter target-role --meta --parameter-value Stopped
for _ in $(seq 120); do crm_mon -1 2>/dev/null | grep -q "g1" || break; sleep 1; done
: >"$log"

# Monitor throughput: every resource monitored every 10 s.
xml=""
for i in $(seq "$resources"); do
  xml+="<primitive id=\"d$i\" class=\"ocf\" provider=\"hactlbench\" type=\"StampedDummy\"><operations>"
  xml+="<op id=\"d$i-monitor\" name=\"monitor\" interval=\"10s\" timeout=\"20s\"/></operations></primitive>"
done
begun=$(date +%s%N)
cibadmin --modify -o resources --xml-text "<resources>$xml</resources>"
wait_started "$resources"
all_running=$(( ($(date +%s%N) - begun) / 1000000000 ))
sleep 15 # the first monitors begin 10 s after each start
pids=$(pgrep -d ' ' -f 'pacemaker-|corosync|pacemakerd' || true)
cpu() { local total=0; for pid in $pids; do
  [ -r "/proc/$pid/stat" ] && total=$((total + $(awk '{print $14 + $15}' "/proc/$pid/stat"))); done; echo "$total"; }
from=$(date +%s%N) before=$(cpu)
sleep "$seconds"
to=$(date +%s%N) after=$(cpu)

python3 - "$work/group.log" "$log" "$from" "$to" "$before" "$after" "$(getconf CLK_TCK)" "$resources" "$all_running" "$version" <<'PY'
import sys, statistics
group_log, log, t0, t1, c0, c1, tck, n, all_running, version = sys.argv[1:]
t0, t1, c0, c1, tck, n = int(t0), int(t1), int(c0), int(c1), int(tck), int(n)
def read(path):
    calls = {}
    for line in open(path):
        rid, action, edge, ns = line.split()
        calls.setdefault((rid, action), []).append((edge, int(ns)))
    return calls
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
calls = read(group_log)
members = sorted({rid for rid, action in calls if rid.startswith("g") and action == "start"}, key=lambda r: int(r[1:]))
gaps, runs = [], []
for a, b in zip(members, members[1:]):
    end = [ns for edge, ns in calls[(a, "start")] if edge == "end"][0]
    begin = [ns for edge, ns in calls[(b, "start")] if edge == "begin"][0]
    gaps.append((begin - end) / 1e6)
for m in members:
    stamps = dict(calls[(m, "start")])
    runs.append((stamps["end"] - stamps["begin"]) / 1e6)
print(f"{version}, one node, release packages, {len(members)} group members")
print("| per call, a group started in order (ms) | n | median | p99 | max |")
print("|---|---|---|---|---|")
print(f"| pacemaker: one start's end → the next start's begin | {len(gaps)} | {statistics.median(gaps):.2f} | {pct(gaps, 99):.2f} | {max(gaps):.2f} |")
print(f"| the agent itself | {len(runs)} | {statistics.median(runs):.2f} | {pct(runs, 99):.2f} | {max(runs):.2f} |")
calls = read(log)
late, done = [], 0
for (rid, action), stamps in calls.items():
    if action != "monitor":
        continue
    begins = [ns for edge, ns in stamps if edge == "begin"]
    done += sum(1 for ns in begins if t0 <= ns < t1)
    for a, b in zip(begins, begins[1:]):
        if t0 <= b < t1:
            late.append((b - a) / 1e6 - 10_000)
seconds = (t1 - t0) / 1e9
cpu = (c1 - c0) / tck / seconds * 100
print()
print("| resources, monitor every 10 s | monitors/s done | expected | pacemaker CPU (% of a core) | late by (ms): median | p99 | max | later than 1 s | start to all running (s) |")
print("|---|---|---|---|---|---|---|---|---|")
print(f"| {n} | {done / seconds:.1f} | {n / 10:.1f} | {cpu:.1f} | {statistics.median(late):.0f} | {pct(late, 99):.0f} | {max(late):.0f} | {sum(1 for x in late if x > 1000)} of {len(late)} | {all_running} |")
PY
