namespace netstd Trellis.Bench.Scale

service Echo {
  string echo(1: string text)
}
