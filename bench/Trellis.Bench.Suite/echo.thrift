// The same service as bench/cpp-echo/echo.thrift: the suite calls `echo` without a multiplexed name, so the
// Trellis server and the Apache Thrift C++ server receive the very same bytes.
namespace netstd Trellis.Bench.Suite

service EchoService {
  string echo(1: string text)
}
