// Every IDL feature Trellis supports that Apache Thrift 0.17's compiler also accepts, so the same
// file drives the C# generator and `thrift --gen py` for the cross-language tests.
include "shared.thrift"

namespace netstd Trellis.Tests.Features
namespace py features

typedef i64 Timestamp
typedef list<shared.Point> Path
typedef map<string, string> Labels

const string GREETING = "hello \"thrift\""
const double PI = 3.14159
const list<i32> PRIMES = [2, 3, 5, 7]
const map<string, i32> LIMITS = {"small": 1, "large": 1000}
const set<string> COLORS = ["red", "green"]
const shared.Point ORIGIN = {"x": 0, "y": 0}
const shared.Status DEFAULT_STATUS = shared.Status.ACTIVE
const i32 LIMIT = shared.MAX_POINTS
const Timestamp EPOCH = 0

/**
 * Every kind of field: each requiredness, defaults, every type, containers of containers,
 * types from the included file, typedefs, enums, unions.
 */
struct Everything {
  1: required string id
  2: optional string nickname
  3: string note = "none"
  4: i32 count = 42
  5: optional i64 big
  6: bool flag = true
  7: i8 tiny = -5
  8: i16 small
  9: double ratio = 0.5
  10: binary blob
  11: shared.Point origin
  12: Path path
  13: Labels labels
  14: set<i64> ids
  15: list<list<string>> matrix
  16: map<shared.Status, list<shared.Point>> by_status
  17: shared.Status status = shared.Status.SUSPENDED
  18: optional Timestamp created
  19: optional set<binary> digests
  20: optional map<binary, string> by_digest
  21: optional Choice choice
  22: optional list<bool> flags
  23: required shared.Point anchor
  24: optional double score
}

/** One of several shapes. */
union Choice {
  1: string text
  2: i64 number
  3: shared.Point point
  4: list<string> words
}

exception NotFound {
  1: string message
  2: i32 code = 404
}

exception Invalid {
  1: required string reason
  2: optional list<string> fields
}

// Apache Thrift 0.17 accepts only literals as container, struct and enum defaults (a constant's name
// is refused or silently dropped), so this file spells them out; tricky.thrift uses constant names.
struct Defaults {
  1: list<i32> primes = [2, 3, 5, 7]
  2: map<string, i32> limits = {"small": 1, "large": 1000}
  3: shared.Point origin = {"x": 0, "y": 0}
  4: string greeting = GREETING
  5: optional i32 maybe = 7
  6: set<string> colors = ["red", "green"]
  7: shared.Status status = shared.Status.ACTIVE
}

/** The feature service. */
service Features extends shared.BaseService {
  /** Finds a thing by id. */
  Everything get(
    /** The thing's id. */
    1: string id,
    2: optional bool deep
  ) throws (1: NotFound notFound, 2: Invalid invalid) (idempotent)

  void put(1: Everything value) throws (1: Invalid invalid)

  oneway void touch(1: string id, 2: Timestamp at)

  list<shared.Point> trace(1: Path path, 2: Labels labels)

  Choice choose(1: Choice choice)

  i64 count()
}
