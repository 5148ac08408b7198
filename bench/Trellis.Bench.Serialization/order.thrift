// The representative message of the serialization benchmark. The C# in ThriftModel.cs is what a
// Thrift code generator emits for this IDL (written by hand: Trellis has no compiler yet).
// order.proto is the same message in protobuf, with the same field numbers.

namespace netstd Trellis.Bench.Serialization.ThriftModel

struct Address {
  1: string street
  2: string city
  3: i32 zip
}

struct Item {
  1: i64 id
  2: string name
  3: double price
  4: i32 quantity
  5: bool active
}

struct Order {
  1: i64 id
  2: string customer
  3: Address address
  4: list<Item> items                 // 100 items in the benchmark
  5: map<string, string> attributes   // 10 entries
  6: i32 status
  7: binary token                     // 16 bytes
}
