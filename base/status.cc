#include "nvswapfs/status.h"

#include <cerrno>
#include <cstring>

namespace nvswapfs {

Status::Status(const Status& other)
    : state_(other.state_ ? std::make_unique<State>(*other.state_) : nullptr) {}

Status& Status::operator=(const Status& other) {
  if (this != &other) state_ = other.state_ ? std::make_unique<State>(*other.state_) : nullptr;
  return *this;
}

Status Status::Error(int err, std::string_view op, std::string_view subject) {
  Status s;
  s.state_ = std::make_unique<State>();
  // An errno of 0 would read as success to every caller that maps it to a
  // reply; keep the failure a failure.
  s.state_->code = err > 0 ? err : EIO;
  s.state_->op = op;
  s.state_->subject = subject;
  return s;
}

Status Status::Error(int err, std::string_view op, std::string_view subject, uint64_t offset,
                     uint64_t length) {
  return Error(err, op, subject).WithRange(offset, length);
}

Status Status::FromErrno(std::string_view op, std::string_view subject) {
  return Error(errno, op, subject);
}

std::optional<uint64_t> Status::offset() const {
  if (state_ && state_->has_range) return state_->offset;
  return std::nullopt;
}

std::optional<uint64_t> Status::length() const {
  if (state_ && state_->has_range) return state_->length;
  return std::nullopt;
}

Status&& Status::WithDetail(std::string_view detail) && {
  if (state_) state_->detail = detail;
  return std::move(*this);
}

Status&& Status::WithRange(uint64_t offset, uint64_t length) && {
  if (state_) {
    state_->has_range = true;
    state_->offset = offset;
    state_->length = length;
  }
  return std::move(*this);
}

Status&& Status::WithSubject(std::string_view subject) && {
  if (state_) state_->subject = subject;
  return std::move(*this);
}

Status&& Status::WithOp(std::string_view op) && {
  if (state_) state_->op = op;
  return std::move(*this);
}

std::string Status::ToString() const {
  if (!state_) return "OK";
  std::string out = state_->op.empty() ? std::string("operation") : state_->op;
  out += " failed";
  if (!state_->subject.empty()) {
    out += " on \"";
    out += state_->subject;
    out += '"';
  }
  if (state_->has_range) {
    out += " offset=" + std::to_string(state_->offset);
    out += " length=" + std::to_string(state_->length);
  }
  out += ": ";
  out += std::strerror(state_->code);
  if (!state_->detail.empty()) {
    out += " (";
    out += state_->detail;
    out += ")";
  }
  out += " (errno " + std::to_string(state_->code) + ")";
  return out;
}

}  // namespace nvswapfs
