#!/bin/bash
# GET /metrics of `treadle api` on a single-machine cell (node and master on this host): the cell view,
# the node's containers by state and each instance's cgroup counters (memory and its limit, CPU time,
# throttling, I/O, OOM kills, restarts), the master's leader state, pass count and duration histogram and
# store events (its --metrics file), all correct by `promtool check metrics`; values checked against the
# cell (the limit is the manifest's, usage is non-zero, counts follow a stop).
. "$(dirname "$0")/../lib/cell.sh"
cell_require
command -v curl >/dev/null || skip "curl not installed"
command -v promtool >/dev/null || skip "promtool not installed (Debian prometheus)"
cell_setup
S=$R/api.sock
wait_for 10 test -S "$S" || fail "no API socket $S"
metrics() { curl -sf --unix-socket "$S" http://x/metrics >"$R/metrics" || fail "GET /metrics"; }
val() { awk -v k="$1" '$1 == k { print $2 }' "$R/metrics"; }

note "an instance with a 100M memory limit that uses some memory and CPU"
man='{"services":[{"name":"s","command":"exec sh -c \"i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000\"","restart":{"limit":0,"interval":60}}],"memory":"100M","cpu":"20%","disk":"100M"}'
out=$(curl -sf -X POST --unix-socket "$S" -d "$man" "http://x/instance/nobody.itmetrics") || fail "create"
I=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["instances"][0])' "$out")
wait_for 30 sh -c "curl -s --unix-socket '$S' 'http://x/state/${I/\#/%23}' | grep -q '\"state\":\"running\"'" || fail "$I never running"
sleep 1

note "promtool check metrics"
metrics
promtool check metrics <"$R/metrics" || { cat "$R/metrics"; fail "promtool check metrics"; }

note "node: containers and the instance's counters"
[ "$(val 'treadle_node_containers{state="running"}')" = 1 ] || fail "containers running: $(grep node_containers "$R/metrics")"
[ "$(val "treadle_instance_memory_limit_bytes{instance=\"$I\"}")" = 104857600 ] ||
	fail "memory limit: $(grep memory_limit "$R/metrics")"
mem=$(val "treadle_instance_memory_bytes{instance=\"$I\"}")
[ -n "$mem" ] && [ "$mem" -gt 0 ] || fail "memory usage '$mem'"
cpu=$(val "treadle_instance_cpu_seconds_total{instance=\"$I\"}")
python3 -c "import sys; sys.exit(0 if float('$cpu') > 0 else 1)" || fail "cpu seconds '$cpu'"
for m in cpu_periods_total cpu_throttled_periods_total cpu_throttled_seconds_total io_read_bytes_total \
	io_written_bytes_total oom_kills_total restarts_total; do
	[ -n "$(val "treadle_instance_$m{instance=\"$I\"}")" ] || fail "no treadle_instance_$m for $I"
done
[ "$(val "treadle_instance_oom_kills_total{instance=\"$I\"}")" = 0 ] || fail "oom kills not 0"

note "master: leader, passes, pass durations, store events"
[ "$(val treadle_master_is_leader)" = 1 ] || fail "master not leader: $(grep master_ "$R/metrics")"
[ "$(val treadle_master_leading_here)" = 1 ] || fail "leading_here not 1"
[ "$(val treadle_master_candidates)" = 1 ] || fail "candidates not 1"
p=$(val treadle_master_passes_total)
[ -n "$p" ] && [ "$p" -ge 1 ] || fail "passes '$p'"
[ "$(val 'treadle_master_pass_duration_seconds_bucket{le="+Inf"}')" = "$p" ] || fail "histogram +Inf bucket != passes"
[ "$(val treadle_master_pass_duration_seconds_count)" = "$p" ] || fail "histogram count != passes"
e=$(val treadle_master_store_events_total)
[ -n "$e" ] && [ "$e" -ge 1 ] || fail "store events '$e'"
[ "$(val treadle_master_placed_instances)" = 1 ] || fail "placed not 1"

note "after a stop: no container, the instance gone from the node's metrics, one more pass"
"$T" stop "$I" >/dev/null || fail "stop"
wait_for 30 sh -c "curl -s --unix-socket '$S' http://x/metrics | grep -qx 'treadle_node_containers{state=\"running\"} 0'" ||
	fail "containers running never 0: $(curl -s --unix-socket "$S" http://x/metrics | grep node_containers)"
metrics
promtool check metrics <"$R/metrics" || fail "promtool check metrics after the stop"
grep -qF "instance=\"$I\"" "$R/metrics" && fail "the stopped instance still has metrics"
[ "$(val treadle_master_passes_total)" -gt "$p" ] || fail "no pass after the stop"
echo "ok: /metrics node, instance and master metrics"
