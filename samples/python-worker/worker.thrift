// The Python worker sample (samples/python-worker): a stock Apache Thrift
// service that `trellis balancer` runs N copies of. worker.py generates the
// Python side with `thrift --gen py`; Trellis compiles it for C#.
// Trellis's IDL compiler takes the C# namespace from `netstd`, then `csharp`, then `*`.
namespace py trellis_worker
namespace netstd Trellis.Samples.Worker

exception WorkerError { 1: string message }

service Worker {
  string echo(1: string text),          // returns text
  i32 pid(),                            // os.getpid()
  string sleep(1: i32 ms),              // sleeps ms milliseconds, returns "slept {ms}"
  void hang(),                          // never returns (sleeps forever in the handler)
  i32 grow(1: i32 mb),                  // keeps mb MiB more allocated (pages touched), returns total MiB held
  void fail(1: string message) throws (1: WorkerError error), // raises WorkerError(message)
  oneway void poke(1: string text)      // does nothing
}
