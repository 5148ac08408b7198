namespace netstd Hello

exception NotFriendly {
  1: string reason
}

service Greeter {
  /** Greets someone (safe to call again: the proxy may retry it elsewhere). */
  string greet(1: string name) throws (1: NotFriendly nope) (idempotent)
}
