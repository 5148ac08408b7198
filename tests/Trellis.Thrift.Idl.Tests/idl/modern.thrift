// What only Trellis compiles: uuid (Apache Thrift 0.19+), and names that are C# keywords or that
// clash with what the generator itself emits.
namespace netstd Trellis.Tests.Modern

enum event {
  class = 1,
  struct = 2
}

struct Keywords {
  1: string class
  2: i32 event
  3: string Keywords
  4: string to_string
  5: uuid id
  6: optional uuid maybe
  7: list<uuid> many
  8: event kind = event.struct
  9: string write
}

exception Failure {
  1: string message
  2: string source
  3: i32 data
}

service operator {
  Keywords namespace(1: string params, 2: i32 cancellationToken) throws (1: Failure failure)
  void all()
}
