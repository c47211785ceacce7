// The one error model of nvswapfs.
//
// A Status is either OK or an error that carries everything a user needs to
// act on it: the errno, the operation that failed, the subject it failed on
// (a file path inside the volume or a device path), the byte range where one
// applies, and an optional detail naming the rule that was broken. OK is a
// null pointer and costs nothing to create, copy or test.
//
// Errors are converted from the OS exactly once, where a system call returns
// (Status::FromErrno), and are printed as a single line, for example:
//
//   write failed on "/dev/nvme0n1" offset=1048576 length=1048576:
//       Input/output error (errno 5)
//
// (on one line). Thread safety: a Status is a value; distinct objects may be
// used from distinct threads freely.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace nvswapfs {

class [[nodiscard]] Status {
 public:
  Status() noexcept = default;
  Status(const Status& other);
  Status& operator=(const Status& other);
  Status(Status&&) noexcept = default;
  Status& operator=(Status&&) noexcept = default;
  ~Status() = default;

  static Status Ok() { return Status(); }

  // An error with errno `err` (must be > 0) from operation `op` on `subject`.
  static Status Error(int err, std::string_view op, std::string_view subject);
  // Same, with the byte range the operation covered.
  static Status Error(int err, std::string_view op, std::string_view subject, uint64_t offset,
                      uint64_t length);
  // Converts the calling thread's errno after a failed system call.
  static Status FromErrno(std::string_view op, std::string_view subject);

  bool ok() const { return state_ == nullptr; }
  explicit operator bool() const { return ok(); }

  // errno of the error; 0 when OK.
  int code() const { return state_ ? state_->code : 0; }
  std::string_view op() const { return state_ ? std::string_view(state_->op) : ""; }
  std::string_view subject() const { return state_ ? std::string_view(state_->subject) : ""; }
  std::optional<uint64_t> offset() const;
  std::optional<uint64_t> length() const;
  std::string_view detail() const { return state_ ? std::string_view(state_->detail) : ""; }

  // Builders used while an error travels up: each returns the modified status.
  Status&& WithDetail(std::string_view detail) &&;
  Status&& WithRange(uint64_t offset, uint64_t length) &&;
  Status&& WithSubject(std::string_view subject) &&;
  Status&& WithOp(std::string_view op) &&;

  // One line, e.g. `read failed on "a.pt" offset=0 length=4096: ... (errno 5)`.
  // "OK" for success.
  std::string ToString() const;

 private:
  struct State {
    int code = 0;
    std::string op;
    std::string subject;
    std::string detail;
    bool has_range = false;
    uint64_t offset = 0;
    uint64_t length = 0;
  };
  std::unique_ptr<State> state_;
};

// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}         // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {}  // NOLINT: implicit by design

  bool ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return ok(); }

  // Precondition: ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

  // OK when a value is held, else the error.
  Status status() const { return ok() ? Status() : std::get<Status>(v_); }
  // Moves the error out. Precondition: !ok().
  Status take_status() && { return std::get<Status>(std::move(v_)); }

 private:
  std::variant<T, Status> v_;
};

// Returns early from the enclosing function when `expr` is an error.
#define NVSWAPFS_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    ::nvswapfs::Status nvswapfs_status_ = (expr);        \
    if (!nvswapfs_status_.ok()) return nvswapfs_status_; \
  } while (0)

}  // namespace nvswapfs
