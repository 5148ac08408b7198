// The schema shared by the C# conformance tests and the Python reference peer
// (Apache Thrift's own python3-thrift runtime, code from `thrift --gen py`).
// It covers every type Thrift 0.17 has (uuid arrived in 0.19 and is tested
// against the spec's byte layout instead), nesting, long-form field headers
// (id deltas > 15) and every container shape.
namespace py conformance

enum Color {
  RED = 1,
  GREEN = 2,
  BLUE = 3
}

struct Inner {
  1: i32 id
  2: string name
}

struct Everything {
  1: bool b_true
  2: bool b_false
  3: i8 i8v
  4: i16 i16v
  5: i32 i32v
  6: i64 i64v
  7: double dbl
  8: string str
  9: binary bin
  10: Inner inner
  11: list<i32> ints
  12: set<string> strs
  13: map<string, i64> m
  14: list<Inner> inners
  15: list<list<i16>> nested
  16: map<i32, list<Inner>> deep
  17: Color color
  18: list<bool> bools
  19: set<i64> longs
  20: list<double> dbls
  21: list<binary> bins
  22: map<i8, bool> small
  40: i32 far
  300: optional Inner opt_inner
}

// The same wire shape as Inner plus fields a reader of Inner does not know:
// a reader of Inner must skip every one of them.
struct Extended {
  1: i32 id
  2: string name
  3: bool x_bool
  4: i8 x_byte
  5: i16 x_i16
  6: i64 x_i64
  7: double x_double
  8: binary x_binary
  9: Inner x_struct
  10: list<map<string, set<i32>>> x_containers
  200: Everything x_everything
}

exception Oops {
  1: i32 code
  2: string message
}

service Conformance {
  Everything echo(1: Everything value) throws (1: Oops oops)
  void ping()
  oneway void notify(1: string what)
}
