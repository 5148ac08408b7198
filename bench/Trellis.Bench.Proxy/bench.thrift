namespace netstd Trellis.Bench.Proxy

service Bench {
  string echo(1: string text)
}
