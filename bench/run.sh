#!/usr/bin/env bash
# Every bench comparison in one run (bench/README.md): builds the solution in Release, then runs
# bench/Trellis.Bench.Suite with the arguments given (e.g. --quick, --rounds 5 --seconds 5).
set -euo pipefail
cd "$(dirname "$0")/.."
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1
dotnet build bench/Trellis.Bench.Suite -c Release -nologo -v quiet -clp:NoSummary
exec dotnet run -c Release --no-build --project bench/Trellis.Bench.Suite -- "$@"
