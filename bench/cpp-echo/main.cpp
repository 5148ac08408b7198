// A plain Apache Thrift C++ echo server: the reference peer of bench/Trellis.Bench.Suite.
//
//   echo-server [--port N] [--server nonblocking|threaded] [--threads N] [--io-threads N]
//
// Framed binary protocol, service `Bench`, method `string echo(1: string text)`, not multiplexed.
// Prints "ready PORT" on stdout once it accepts connections (--port 0 picks a free port), then serves
// until stdin closes or SIGTERM/SIGINT.
#include <thrift/concurrency/ThreadFactory.h>
#include <thrift/concurrency/ThreadManager.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/server/TNonblockingServer.h>
#include <thrift/server/TThreadedServer.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TNonblockingServerSocket.h>
#include <thrift/transport/TServerSocket.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <unistd.h>

#include "gen-cpp/Bench.h"

using namespace apache::thrift;
using namespace apache::thrift::concurrency;
using namespace apache::thrift::protocol;
using namespace apache::thrift::server;
using namespace apache::thrift::transport;

namespace {

std::atomic<long long> calls{0};

class EchoHandler : public trellis_bench::BenchIf {
public:
  void echo(std::string& result, const std::string& text) override {
    calls.fetch_add(1, std::memory_order_relaxed);
    result = text;
  }
};

class ReadyHandler : public TServerEventHandler {
public:
  explicit ReadyHandler(std::function<int()> port) : port_(std::move(port)) {}
  void preServe() override {
    std::printf("ready %d\n", port_());
    std::fflush(stdout);
  }

private:
  std::function<int()> port_;
};

int usage(const char* message) {
  std::fprintf(stderr, "error: %s\nusage: echo-server [--port N] [--server nonblocking|threaded] [--threads N] [--io-threads N]\n", message);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0;
  int threads = 0;    // nonblocking: worker threads (0: handlers run on the I/O threads)
  int ioThreads = 1;  // nonblocking: I/O (libevent) threads
  std::string kind = "nonblocking";
  for (int i = 1; i < argc; i++) {
    std::string a = argv[i];
    if (i + 1 >= argc) return usage(("missing value after " + a).c_str());
    std::string v = argv[++i];
    if (a == "--port") port = std::atoi(v.c_str());
    else if (a == "--server") kind = v;
    else if (a == "--threads") threads = std::atoi(v.c_str());
    else if (a == "--io-threads") ioThreads = std::atoi(v.c_str());
    else return usage(("unknown option " + a).c_str());
  }
  if (kind != "nonblocking" && kind != "threaded") return usage("--server takes nonblocking or threaded");

  std::signal(SIGPIPE, SIG_IGN);
  auto handler = std::make_shared<EchoHandler>();
  auto processor = std::make_shared<trellis_bench::BenchProcessor>(handler);
  auto protocol = std::make_shared<TBinaryProtocolFactory>();
  std::shared_ptr<TServer> server;

  if (kind == "nonblocking") {
    auto socket = std::make_shared<TNonblockingServerSocket>("127.0.0.1", port);
    std::shared_ptr<ThreadManager> workers;
    if (threads > 0) {
      workers = ThreadManager::newSimpleThreadManager(threads);
      workers->threadFactory(std::make_shared<ThreadFactory>());
      workers->start();
    }
    auto nb = std::make_shared<TNonblockingServer>(processor, protocol, socket, workers);
    nb->setNumIOThreads(ioThreads);
    nb->setServerEventHandler(std::make_shared<ReadyHandler>([socket] { return socket->getListenPort(); }));
    server = nb;
  } else {
    auto socket = std::make_shared<TServerSocket>("127.0.0.1", port);
    auto threaded = std::make_shared<TThreadedServer>(processor, socket, std::make_shared<TFramedTransportFactory>(), protocol);
    threaded->setServerEventHandler(std::make_shared<ReadyHandler>([socket] { return socket->getPort(); }));
    server = threaded;
  }

  // stop when stdin closes (the driver's signal) or on SIGTERM/SIGINT
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::thread serving([server] { server->serve(); });
  std::thread stdinWatch([] {
    char buffer[64];
    while (read(0, buffer, sizeof buffer) > 0) {
    }
    kill(getpid(), SIGTERM);
  });
  stdinWatch.detach();
  int sig = 0;
  sigwait(&set, &sig);
  server->stop();
  serving.join();
  std::printf("stats calls=%lld\n", calls.load());
  std::fflush(stdout);
  return 0;
}
