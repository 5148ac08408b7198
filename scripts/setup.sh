#!/usr/bin/env bash
# Installs what the test suite needs on a Debian machine. Idempotent: a package
# that is already installed is not touched, and apt is not called at all when
# nothing is missing.
set -euo pipefail

packages=(
  zookeeper        # real ZooKeeper 3.8 server for the ZooKeeper client and registry tests
  thrift-compiler  # Apache `thrift` 0.17: generates the Python peer code for conformance tests
  python3-thrift   # Apache's Python runtime, the reference peer (for /usr/bin/python3)
  python3-kazoo    # an independent ZooKeeper client used to cross-check ours
  zlib1g           # libz.so.1 for the THeader zlib transform conformance
  haproxy          # the reference proxy hop the proxy benchmark (and its smoke run in the suite) measures against
  chromium         # headless browser the admin page tests drive with Playwright (never downloaded by Playwright itself); also renders the bench suite's charts
  libthrift-dev    # Apache Thrift C++ 0.17 (libthrift, libthriftnb): the reference echo server bench/cpp-echo, built by the bench suite
  libevent-dev     # TNonblockingServer's event loop (libthriftnb links libevent)
  libboost-dev     # headers the Thrift C++ headers include
  g++              # builds bench/cpp-echo
  make
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" != 0 ]; then
    command -v sudo >/dev/null || { echo "setup: need root or sudo to install ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -q
  $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "setup: all Debian packages present"
fi

command -v dotnet >/dev/null || { echo "setup: the .NET 10 SDK (dotnet) is required and not on PATH" >&2; exit 1; }
/usr/bin/python3 -c 'import thrift, kazoo' || { echo "setup: /usr/bin/python3 cannot import thrift and kazoo" >&2; exit 1; }
command -v thrift >/dev/null || { echo "setup: the thrift compiler is not on PATH" >&2; exit 1; }
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || { echo "setup: haproxy is required (Debian package haproxy)" >&2; exit 1; }
[ -f /usr/include/thrift/server/TNonblockingServer.h ] || { echo "setup: the Apache Thrift C++ headers are required for bench/cpp-echo (Debian package libthrift-dev)" >&2; exit 1; }
[ -x /usr/bin/chromium ] || { echo "setup: /usr/bin/chromium is required for the admin page tests (Debian package chromium)" >&2; exit 1; }
command -v java >/dev/null && [ -f /usr/share/java/zookeeper.jar ] || { echo "setup: Java and the ZooKeeper server jar are required" >&2; exit 1; }
