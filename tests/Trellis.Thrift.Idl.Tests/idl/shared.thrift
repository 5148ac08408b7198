// Included by features.thrift: types and a base service from another file.
namespace netstd Trellis.Tests.Shared
namespace py shared

/** A point on a plane. */
struct Point {
  1: required i32 x
  2: required i32 y
}

enum Status {
  ACTIVE = 1,
  SUSPENDED = 2,
  /** Gone for good. */
  DELETED = 10
}

const i32 MAX_POINTS = 100

service BaseService {
  /** Liveness check. */
  string ping() (idempotent)
}
