#!/usr/bin/env bash
# The quickstart (docs/quickstart.md) end to end, with the embedded local registry in a temporary directory:
#
#   samples/hello/Client ──unix socket──▶ trellis proxy ──tcp──▶ samples/hello/Server
#
# Every process started here is stopped on exit, also on Ctrl-C or an error; the temporary directory is removed.
# Exit code 0 when the client got the expected answers.
# shellcheck disable=SC2317 # functions run from the traps
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
say() { printf '== %s\n' "$*"; }
die() { printf 'run.sh: %s\n' "$*" >&2; exit 1; }

say "building trellis and the sample"
TRELLIS=$(dotnet build "$REPO/src/Trellis.Cli" -c Release -nologo -v quiet -t:Build -getProperty:TargetPath)
SERVER=$(dotnet build "$HERE/Server" -c Release -nologo -v quiet -t:Build -getProperty:TargetPath)
CLIENT=$(dotnet build "$HERE/Client" -c Release -nologo -v quiet -t:Build -getProperty:TargetPath)

DIR=$(mktemp -d "${TMPDIR:-/tmp}/trellis-hello.XXXXXX")
STARTED=()
cleanup() {
    local rc=$? pid
    trap - EXIT INT TERM
    for pid in "${STARTED[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for _ in $(seq 100); do
        alive=0
        for pid in "${STARTED[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        ((alive)) || break
        sleep 0.1
    done
    for pid in "${STARTED[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
    if ((rc != 0)); then
        for log in "$DIR"/*.log; do [[ -s $log ]] && say "$(basename "$log")" && sed 's/^/   /' "$log"; done
    fi
    rm -rf "$DIR"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export Trellis__LocalRegistryPath=$DIR/registry
say "the service and the proxy (registry: $DIR/registry)"
setsid dotnet "$SERVER" >"$DIR/server.log" 2>&1 &
STARTED+=($!)
setsid dotnet "$TRELLIS" proxy --product hello --local-registry "$DIR/registry" --listen "$DIR/proxy.sock" \
    --snapshot-dir "$DIR/snapshot" >"$DIR/proxy.log" 2>&1 &
STARTED+=($!)
for ((i = 0; i < 300; i++)); do
    [[ -S $DIR/proxy.sock ]] && compgen -G "$DIR/registry/hello/services/Greeter/instances/*" >/dev/null && break
    sleep 0.1
done
((i < 300)) || die "not ready after 30 s"

say "the client calls Greeter through the proxy"
OUT=$(Trellis__ProxyAddress=$DIR/proxy.sock dotnet "$CLIENT" Ada Grace "")
printf '%s\n' "$OUT"
grep -q '^hello Ada, from process ' <<<"$OUT" || die "no greeting for Ada"
grep -q '^hello Grace, from process ' <<<"$OUT" || die "no greeting for Grace"
grep -q '^not friendly: who are you?$' <<<"$OUT" || die "the declared exception did not come back"
say "ok"
