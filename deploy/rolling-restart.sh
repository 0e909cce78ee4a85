#!/usr/bin/env bash
# A rolling restart of five swim-agents on loopback, as a deploy does it:
# each agent in turn is stopped with SIGTERM and started again, then a
# second round sends SIGHUP (a reload) before each SIGTERM. Meanwhile every
# agent that is not being restarted is probed for readiness every 200 ms.
# Passes when no peer ever saw a member fail (no `dead` event on any
# agent), no running agent was suspected, no readiness probe of a running
# agent failed, every stop exited 0 and every SIGHUP left the agent running
# and ready. A suspicion of an agent while it stops or starts (its leave not
# yet heard by that peer) is counted and shown, not failed.
#
#   deploy/rolling-restart.sh [path/to/swim-agent]    (needs curl and jq)
#
# Each agent stays down DOWN_SECONDS (3) before it starts again, as a
# deploy takes a while: long enough for its peers to find a crash.
# AGENT_ARGS adds flags to every agent: AGENT_ARGS="--set
# agent.leave_on_stop=false" makes every stop a crash, which it must fail.
set -euo pipefail

BIN="${1:-${SWIM_AGENT:-target/debug/swim-agent}}"
N=5
GOSSIP_BASE="${GOSSIP_BASE:-17950}"
HTTP_BASE="${HTTP_BASE:-18950}"
DOWN_SECONDS="${DOWN_SECONDS:-3}"
WORK="$(mktemp -d)"
declare -a PIDS
SEEDS="$(for i in $(seq 1 $N); do printf '127.0.0.1:%d,' $((GOSSIP_BASE + i)); done)"
SEEDS="${SEEDS%,}"

cleanup() {
    [ -n "${PROBER:-}" ] && kill "${PROBER}" 2>/dev/null || true
    for pid in "${PIDS[@]}"; do kill -KILL "${pid}" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT

http() { printf '127.0.0.1:%d' $((HTTP_BASE + $1)); }

start() {
    local i=$1
    # stdin on /dev/null: a service without --mode.
    "${BIN}" --name "n${i}" --bind "127.0.0.1:$((GOSSIP_BASE + i))" --preset local \
        --join "${SEEDS}" --http "$(http "$i")" --set agent.leave_timeout=3s ${AGENT_ARGS:-} \
        </dev/null >>"${WORK}/n${i}.log" 2>&1 &
    PIDS[i]=$!
}

# The agent's /v1/health status code ("000" when nothing answers).
health() { curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$(http "$1")/v1/health" || true; }

wait_ready() {
    local i=$1 deadline=$((SECONDS + 30))
    until [ "$(health "$i")" = 200 ]; do
        if [ "${SECONDS}" -ge "${deadline}" ]; then
            echo "n${i} not ready within 30 s:" >&2
            tail -20 "${WORK}/n${i}.log" >&2
            exit 1
        fi
        sleep 0.1
    done
}

# Adds the `dead` and `suspect` events agent i saw to the tallies.
collect_events() {
    local events
    events="$(curl -s -m 2 "http://$(http "$1")/v1/events")"
    jq -r --arg me "n$1" '.[] | select(.kind == "dead" or .kind == "suspect")
        | "\($me) saw \(.kind) \(.node) at \(.at)"' <<<"${events}" >>"${WORK}/seen"
}

touch "${WORK}/windows" "${WORK}/seen" "${WORK}/probe-failures" "${WORK}/restarting"
for i in $(seq 1 $N); do start "$i"; done
for i in $(seq 1 $N); do wait_ready "$i"; done
deadline=$((SECONDS + 30))
until [ "$(curl -s "http://$(http 1)/v1/health" | jq '.members.alive')" = "$N" ]; do
    [ "${SECONDS}" -lt "${deadline}" ] || { echo "the cluster never reached ${N}" >&2; exit 1; }
    sleep 0.2
done
echo "five agents ready on 127.0.0.1:$((GOSSIP_BASE + 1))-$((GOSSIP_BASE + N))"

# Readiness of every agent not being restarted, every 200 ms.
(
    while true; do
        for i in $(seq 1 $N); do
            grep -qx "$i" "${WORK}/restarting" && continue
            code="$(health "$i")"
            # Marked for restart between the check and the probe: not counted.
            grep -qx "$i" "${WORK}/restarting" && continue
            [ "${code}" = 200 ] || echo "n${i} answered ${code} at $(date -u +%FT%T.%3NZ)" \
                >>"${WORK}/probe-failures"
        done
        sleep 0.2
    done
) &
PROBER=$!

probes=0
restart() {
    local i=$1 hup=$2 started=${SECONDS} from
    from="$(date +%s%3N)"
    if [ "${hup}" = yes ]; then
        kill -HUP "${PIDS[i]}"
        sleep 0.5
        kill -0 "${PIDS[i]}" 2>/dev/null || { echo "SIGHUP killed n${i}" >&2; exit 1; }
        [ "$(health "$i")" = 200 ] || { echo "n${i} not ready after SIGHUP" >&2; exit 1; }
        grep -q "configuration reloaded" "${WORK}/n${i}.log" \
            || { echo "n${i} did not reload" >&2; exit 1; }
    fi
    collect_events "$i"
    echo "$i" >"${WORK}/restarting"
    kill -TERM "${PIDS[i]}"
    local status=0
    wait "${PIDS[i]}" || status=$?
    [ "${status}" = 0 ] || { echo "n${i} exited ${status} after SIGTERM" >&2; exit 1; }
    sleep "${DOWN_SECONDS}"
    start "$i"
    wait_ready "$i"
    : >"${WORK}/restarting"
    echo "n${i} ${from} $(date +%s%3N)" >>"${WORK}/windows"
    echo "  n${i}: $([ "${hup}" = yes ] && echo "SIGHUP (reloaded), ")SIGTERM (exit 0), down ${DOWN_SECONDS} s, started, ready again after $((SECONDS - started)) s"
}

echo "round 1: SIGTERM and start, one agent at a time"
for i in $(seq 1 $N); do restart "$i" no; done
echo "round 2: SIGHUP, then SIGTERM and start, one agent at a time"
for i in $(seq 1 $N); do restart "$i" yes; done
# Let the last restart's news settle, then read every agent's events.
sleep 2
for i in $(seq 1 $N); do collect_events "$i"; done
kill "${PROBER}" 2>/dev/null || true
wait "${PROBER}" 2>/dev/null || true
PROBER=

# Each suspicion, marked by whether it fell inside a restart of the
# suspected agent (from just before its SIGTERM to its readiness).
: >"${WORK}/suspected"
{ grep ' saw suspect ' "${WORK}/seen" || true; } | sort -u | while read -r _ _ _ node _ at; do
    ms="$(date -d "${at}" +%s%3N)"
    where=running
    while read -r name from to; do
        if [ "${name}" = "${node}" ] && [ "${ms}" -ge "${from}" ] && [ "${ms}" -le "${to}" ]; then
            where=restarting
        fi
    done <"${WORK}/windows"
    echo "${where} ${node} ${at}" >>"${WORK}/suspected"
done
failures="$(grep -c ' saw dead ' "${WORK}/seen" || true)"
suspicions="$(grep -c '^running ' "${WORK}/suspected" || true)"
restarting="$(grep -c '^restarting ' "${WORK}/suspected" || true)"
not_ready="$(wc -l <"${WORK}/probe-failures")"
alive="$(curl -s "http://$(http 1)/v1/health" | jq '.members.alive')"
echo "members alive at the end: ${alive} of ${N}"
echo "failures seen by peers: ${failures}"
echo "suspicions of running agents: ${suspicions}"
echo "suspicions of an agent while it restarted: ${restarting}"
echo "readiness failures of running agents: ${not_ready}"
sort -u "${WORK}/seen" | cat - "${WORK}/probe-failures"
if [ "${failures}" != 0 ] || [ "${suspicions}" != 0 ] || [ "${not_ready}" != 0 ] || [ "${alive}" != "${N}" ]; then
    echo "rolling restart FAILED; restart windows (ms since the epoch) and the agents' last lines:" >&2
    cat "${WORK}/windows" >&2
    for i in $(seq 1 $N); do echo "--- n${i}" >&2; tail -15 "${WORK}/n${i}.log" >&2; done
    exit 1
fi
rm -rf "${WORK}"
echo "rolling restart passed"
