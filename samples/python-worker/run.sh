#!/usr/bin/env bash
# The whole sample on one machine, with the embedded local registry instead of ZooKeeper:
#
#   C# client ──unix socket──▶ trellis proxy ──tcp──▶ trellis balancer ──▶ N × worker.py (python3-thrift)
#
# Everything lives in a temporary directory that is removed on exit; every process started here is stopped,
# also on Ctrl-C or an error. The exit code is the client's.
#
#   samples/python-worker/run.sh        WORKERS=3 CALLS=40 samples/python-worker/run.sh
# shellcheck disable=SC2317,SC2009 # functions run from the traps; ps, as pgrep cannot leave zombies out
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=/usr/bin/python3 # Debian's python3-thrift is installed for this interpreter only
WORKERS=${WORKERS:-2}
CALLS=${CALLS:-20}
PRODUCT=sample

say() { printf '== %s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

"$PYTHON" -c 'import thrift' 2>/dev/null || die "$PYTHON has no thrift module: apt-get install python3-thrift thrift-compiler"

say "building trellis and the C# client"
TRELLIS=$(dotnet build "$REPO/src/Trellis.Cli" -c Release -nologo -v quiet -t:Build -getProperty:TargetPath)
CLIENT=$(dotnet build "$HERE/Client" -c Release -nologo -v quiet -t:Build -getProperty:TargetPath)

DIR=$(mktemp -d "${TMPDIR:-/tmp}/trellis-sample.XXXXXX")
REGISTRY=$DIR/registry
PROXY_SOCKET=$DIR/proxy.sock
INSTANCES=$REGISTRY/$PRODUCT/services/Worker/instances
STARTED=() # each runs in its own session (setsid): its pid is also its process group, workers included

alive() { # a process, not a zombie
    local stat
    stat=$(ps -o stat= -p "$1") && [[ $stat != Z* ]]
}

running() { # is any process (zombies aside) left in the sessions started here?
    local pid
    for pid in "${STARTED[@]}"; do
        [[ $(ps -o stat= --sid "$pid" | grep -cv '^Z') -gt 0 ]] && return 0
    done
    return 1
}

LOGS_SHOWN=0
show_logs() {
    local log
    for log in "$DIR"/balancer.log "$DIR"/proxy.log; do
        [[ -s $log ]] && say "$(basename "$log" .log) log:" && sed 's/^/   /' "$log"
    done
    LOGS_SHOWN=1
}

cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    if ((${#STARTED[@]})) && running; then
        say "stopping what is still running"
        # SIGTERM to trellis only (the balancer stops its workers itself), then SIGKILL to whatever is left
        kill -TERM "${STARTED[@]}" 2>/dev/null || true
        for _ in $(seq 200); do running || break; sleep 0.1; done
        for pid in "${STARTED[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
        wait 2>/dev/null || true
    fi
    ((rc == 0 || LOGS_SHOWN)) || show_logs
    rm -rf "$DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "starting the balancer ($WORKERS Python workers) and the proxy in $DIR"
# Port 0: any free port; the registry record carries the one bound. The worker sockets go in $DIR too.
Trellis__Balancer__SocketDirectory=$DIR/workers setsid dotnet "$TRELLIS" balancer \
    --service Worker --product "$PRODUCT" --workers "$WORKERS" \
    --worker-command "$PYTHON $HERE/worker.py --socket {socket}" \
    --listen 127.0.0.1:0 --local-registry "$REGISTRY" >"$DIR/balancer.log" 2>&1 &
BALANCER=$!
STARTED+=("$BALANCER")
# Its own snapshot directory: the default one is shared by every proxy of this user, and a list saved by an
# earlier run would send the first calls to a balancer that is gone.
setsid dotnet "$TRELLIS" proxy --product "$PRODUCT" --local-registry "$REGISTRY" \
    --listen "$PROXY_SOCKET" --snapshot-dir "$DIR/snapshot" >"$DIR/proxy.log" 2>&1 &
PROXY=$!
STARTED+=("$PROXY")

# Ready: the proxy listens, the balancer registered (after its first worker), and every worker has its socket.
shopt -s nullglob
for ((i = 0; ; i++)); do
    records=("$INSTANCES"/*) sockets=("$DIR"/workers/*.sock)
    [[ -S $PROXY_SOCKET ]] && ((${#records[@]} > 0 && ${#sockets[@]} >= WORKERS)) && break
    alive "$BALANCER" || die "the balancer exited"
    alive "$PROXY" || die "the proxy exited"
    ((i < 600)) || die "not ready after 60 s"
    sleep 0.1
done
say "registered: $(cat "${records[@]}")"

say "the C# client calls Worker through the proxy"
CLIENT_RC=0
dotnet "$CLIENT" --proxy "$PROXY_SOCKET" --calls "$CALLS" --expect-workers "$WORKERS" || CLIENT_RC=$?

say "stopping with SIGTERM: the balancer deregisters, drains its calls and stops its workers"
kill -TERM "$BALANCER" "$PROXY"
for name in BALANCER PROXY; do
    code=0
    wait "${!name}" || code=$?
    ((code == 0)) || printf 'warning: the %s exited with code %d\n' "${name,,}" "$code" >&2
done

show_logs
say "client exit code: $CLIENT_RC"
exit "$CLIENT_RC"
