// For `trellis call` tests (CallCommandTests): a service extending the Echo service from an included file, with
// typedefs and a required argument. Compiled at run time by the CLI only (no generated code): the inherited methods
// are called on the Echo server with plain names (--multiplexed false).
include "echo.thrift"

typedef string Text
typedef list<Text> Texts

enum Volume {
  QUIET = 1,
  LOUD = 10
}

struct Shout {
  1: required Text text
  2: optional Volume volume = Volume.LOUD
  3: Texts echoes
  4: map<Volume, i64> counts
}

service Loud extends echo.Echo {
  Text shout(1: required Shout shout, 2: Texts more)
}
