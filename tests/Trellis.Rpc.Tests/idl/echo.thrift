namespace netstd Trellis.Rpc.Tests.Echo

exception EchoError {
  1: string message
  2: i32 code
}

service Echo {
  string echo(1: string text)
  binary echoBinary(1: binary data)
  /** Sleeps, then answers; honours cancellation. */
  string slow(1: i32 milliseconds, 2: string text)
  /** Blocks until the server cancels it (deadline or stop). */
  string stuck()
  i32 fail(1: string kind) throws (1: EchoError error)
  oneway void fire(1: string text)
}

service Other {
  string hello(1: string name)
}
