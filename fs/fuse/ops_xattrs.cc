// FUSE callbacks for extended attributes: user.* is stored with the file;
// user.nvswapfs.* are the daemon's read-only counters (filesystem.h).
#include <cerrno>
#include <string_view>

#include "ops_internal.h"

namespace nvswapfs::fuse::internal {

namespace {

constexpr std::string_view kUserPrefix = "user.";
constexpr std::string_view kVirtualPrefix = "user.nvswapfs.";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// Replies with `value` the way getxattr/listxattr expect: its size when
// asked for 0 bytes, ERANGE when the caller's buffer is too small.
void ReplyValue(fuse_req_t req, const std::string& value, size_t size, uint64_t ino) {
  if (size == 0) return void(fuse_reply_xattr(req, value.size()));
  if (size < value.size()) {
    return ReplyError(req, Status::Error(ERANGE, "getxattr", "buffer"), ino, true);
  }
  fuse_reply_buf(req, value.data(), value.size());
}

}  // namespace

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags) {
  Guarded(req, [&] {
    fs::Volume& v = FsOf(req).volume();
    if (StartsWith(name, kVirtualPrefix)) {
      return ReplyError(req,
                        Status::Error(EPERM, "setxattr", v.PathOf(ino))
                            .WithDetail(std::string(name) + " is a read-only counter"),
                        ino);
    }
    if (!StartsWith(name, kUserPrefix)) {
      return ReplyError(req,
                        Status::Error(EOPNOTSUPP, "setxattr", v.PathOf(ino))
                            .WithDetail("only user.* attributes are supported"),
                        ino, true);
    }
    Status s = v.SetXattr(ino, name, std::string_view(value, size), flags);
    if (!s.ok()) return ReplyError(req, s, ino);
    fuse_reply_err(req, 0);
  });
}

void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guarded(req, [&] {
    Filesystem& fs = FsOf(req);
    if (StartsWith(name, kVirtualPrefix)) {
      const std::string value = fs.VirtualXattr(ino, name);
      if (value.empty())
        return ReplyError(req, Status::Error(ENODATA, "getxattr", name), ino, true);
      return ReplyValue(req, value, size, ino);
    }
    if (!StartsWith(name, kUserPrefix)) {
      // security.capability and friends are asked for constantly; nothing
      // but user.* is ever stored.
      return ReplyError(req, Status::Error(ENODATA, "getxattr", name), ino, true);
    }
    auto value = fs.volume().GetXattr(ino, name);
    if (!value.ok()) return ReplyError(req, value.status(), ino, value.status().code() == ENODATA);
    ReplyValue(req, *value, size, ino);
  });
}

void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guarded(req, [&] {
    auto names = FsOf(req).volume().ListXattr(ino);
    if (!names.ok()) return ReplyError(req, names.status(), ino);
    std::string list;
    for (const std::string& n : *names) {
      list += n;
      list += '\0';
    }
    ReplyValue(req, list, size, ino);
  });
}

void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
  Guarded(req, [&] {
    fs::Volume& v = FsOf(req).volume();
    if (StartsWith(name, kVirtualPrefix)) {
      return ReplyError(req, Status::Error(EPERM, "removexattr", v.PathOf(ino)), ino);
    }
    if (!StartsWith(name, kUserPrefix)) {
      return ReplyError(req, Status::Error(ENODATA, "removexattr", name), ino, true);
    }
    Status s = v.RemoveXattr(ino, name);
    if (!s.ok()) return ReplyError(req, s, ino, s.code() == ENODATA);
    fuse_reply_err(req, 0);
  });
}

}  // namespace nvswapfs::fuse::internal
