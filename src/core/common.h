// Shared definitions of the pure C++ core: errors, small helpers.
// The core never sees a PostgreSQL header; src/pg/ is the only border.
#pragma once
#ifdef POSTGRES_H
#error "src/core must not include PostgreSQL headers (postgres.h was included before a core header)"
#endif

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace recsys {

// The kinds of failure the PostgreSQL layer maps onto SQLSTATE codes.
enum class ErrorKind {
  InvalidParameter,  // a bad option or argument (22023)
  DataException,     // bad input data such as NaN weights (22000)
  InvalidModel,      // malformed model bytes (22P03 binary / 22P02 text)
  NotSupported,      // operation the model kind cannot do (0A000)
  OutOfMemory,       // (53200)
  ProgramLimit,      // a size limit such as the 1 GB varlena (54000)
  Cancelled,         // training stopped because the query was cancelled
  Internal,          // a bug (XX000)
};

// The one exception type the core throws on purpose.
class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

[[noreturn]] inline void fail(ErrorKind kind, const std::string& message) { throw Error(kind, message); }

// Rounds n up to a multiple of a power-of-two alignment.
constexpr uint64_t align_up(uint64_t n, uint64_t alignment) { return (n + alignment - 1) & ~(alignment - 1); }

}  // namespace recsys
