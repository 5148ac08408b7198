// Shapes that stress the generator: recursion, required cycles, containers as keys, empty types.
namespace netstd Trellis.Tests.Tricky

struct Node {
  1: i32 value
  2: optional Node next
  3: list<Node> children
}

struct A {
  1: required B b
}

struct B {
  1: required A a
}

struct Keys {
  1: map<list<i32>, set<binary>> weird
  2: set<set<string>> nested
  3: map<binary, map<string, list<binary>>> blobs
  4: required set<binary> digests
}

union Nothing {
}

struct NoFields {
}

exception Bare {
}

service Empty {
}

service Child extends Empty {
  NoFields nothing(1: NoFields n)
}

const map<string, list<map<i32, string>>> DEEP = {"a": [{1: "x"}], "b": []}
const list<Node> NODES = [{"value": 1, "children": [{"value": 2}]}]

const list<i32> PRIMES = [2, 3]
const Node ROOT = {"value": 0}
enum Level { LOW = 1, HIGH = 2 }
const Level TOP = Level.HIGH

// Defaults that name constants: fine here, refused by Apache Thrift 0.17's compiler.
struct FromConstants {
  1: list<i32> primes = PRIMES
  2: Node root = ROOT
  3: Level level = TOP
  4: map<string, list<map<i32, string>>> deep = DEEP
}
