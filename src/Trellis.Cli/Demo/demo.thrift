namespace netstd Trellis.Cli.Demo

/** The demo's sample service: each instance says who it is in its answer. */
service Greeter {
  /** Greets; safe to send again (the demo's proxy retries it elsewhere when an instance dies mid-call). */
  string greet(1: string name) (idempotent)
}
