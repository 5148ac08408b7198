#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the tests need, builds with
# warnings as errors, runs every test project, and ends with one summary line
# "N passed, N failed, N skipped".
set -uo pipefail
cd "$(dirname "$0")/.."

./scripts/setup.sh || exit 1

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
results=$(mktemp -d)
trap 'rm -rf "$results"' EXIT

dotnet build Trellis.slnx -c Release -nologo -clp:NoSummary || { echo "0 passed, 1 failed"; exit 1; }

status=0
dotnet test Trellis.slnx -c Release --no-build --nologo \
  --logger "trx" --logger "console;verbosity=minimal" \
  --results-directory "$results" \
  --blame-hang-timeout 10m || status=$?

passed=0 failed=0 skipped=0

# The serialization benchmark's own check: both codecs decode back to the source data. It runs in
# seconds (no timing), so a benchmark that measures the wrong thing fails here rather than in a report.
if dotnet run -c Release --no-build --project bench/Trellis.Bench.Serialization -- --verify; then
  passed=$((passed + 1))
else
  echo "bench verification failed" >&2
  failed=$((failed + 1))
fi

# The balancer benchmark, briefly: 1, 2 and 4 Python workers behind the balancer, every reply checked and the
# balancers' counters compared with the calls sent (it exits non-zero on any mismatch). Figures are not judged here.
if dotnet run -c Release --no-build --project bench/Trellis.Bench.Balancer -- --quick; then
  passed=$((passed + 1))
else
  echo "balancer bench smoke run failed" >&2
  failed=$((failed + 1))
fi

# The scale benchmark, scaled down (100 services x 10 instances in a real ZooKeeper and in the local registry, 1,000 idle
# connections, 3 s of registry churn): it exits non-zero unless every service is routed with all its instances, every
# registry change shows at the proxy and no call fails. Figures are not judged here.
if dotnet run -c Release --no-build --project bench/Trellis.Bench.Scale -- --quick; then
  passed=$((passed + 1))
else
  echo "scale bench smoke run failed" >&2
  failed=$((failed + 1))
fi

# The bench suite, briefly (--quick): the Trellis server vs the Apache Thrift C++ server (bench/cpp-echo, built with make),
# Unix socket vs TCP, the proxy benchmark (direct, the Trellis proxy, HAProxy) and the serialization timing as steps, results and charts written to
# bench/results/quick/. Every reply is checked and the servers' counts compared with the calls sent (it exits non-zero
# on any wrong reply or failed peer). Figures are not judged here.
if dotnet run -c Release --no-build --project bench/Trellis.Bench.Suite -- --quick >"$results/suite.log" 2>&1; then
  passed=$((passed + 1))
else
  cat "$results/suite.log" >&2
  echo "bench suite smoke run failed" >&2
  failed=$((failed + 1))
fi

# trellis as a .NET tool: packed, installed with `dotnet tool install` into a temporary tool path, and run.
tool_dir=$(mktemp -d)
if dotnet pack src/Trellis.Cli -c Release --no-build -o "$tool_dir/pkg" -nologo -v quiet >"$results/tool.log" 2>&1 \
   && dotnet tool install --tool-path "$tool_dir/bin" --add-source "$tool_dir/pkg" Trellis.Cli >>"$results/tool.log" 2>&1 \
   && "$tool_dir/bin/trellis" --help >>"$results/tool.log" 2>&1 \
   && "$tool_dir/bin/trellis" config validate <(echo '{ "strategy": "round_robin" }') >>"$results/tool.log" 2>&1; then
  passed=$((passed + 1))
else
  cat "$results/tool.log" >&2
  echo "trellis .NET tool install failed" >&2
  failed=$((failed + 1))
fi
rm -rf "$tool_dir"

# The quickstart's sample end to end: its service, trellis proxy and its client (docs/quickstart.md).
if samples/hello/run.sh >"$results/hello.log" 2>&1; then
  passed=$((passed + 1))
else
  cat "$results/hello.log" >&2
  echo "hello sample failed" >&2
  failed=$((failed + 1))
fi

# The Python worker sample end to end: trellis balancer with 2 Python workers, trellis proxy, and the C# client
# calling through the proxy (it exits non-zero on any unexpected result).
if samples/python-worker/run.sh >"$results/sample.log" 2>&1; then
  passed=$((passed + 1))
else
  cat "$results/sample.log" >&2
  echo "python worker sample failed" >&2
  failed=$((failed + 1))
fi

for trx in "$results"/*.trx; do
  [ -e "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx")
  get() { sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p" <<<"$counters"; }
  passed=$((passed + $(get passed)))
  failed=$((failed + $(get failed) + $(get error) + $(get timeout) + $(get aborted)))
  skipped=$((skipped + $(get notExecuted)))
done

if ! ls "$results"/*.trx >/dev/null 2>&1; then
  echo "no test ran" >&2
  status=1
fi
if [ "$failed" -gt 0 ] && [ "$status" -eq 0 ]; then status=1; fi
echo "$passed passed, $failed failed, $skipped skipped"
exit $status
