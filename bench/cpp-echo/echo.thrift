// The echo service every echo benchmark measures (same shape as bench/Trellis.Bench.Proxy/bench.thrift).
namespace cpp trellis_bench

service Bench {
  string echo(1: string text)
}
