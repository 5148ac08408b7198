namespace netstd Trellis.Bench.Rpc

service Bench {
  string echo(1: string text)
}
