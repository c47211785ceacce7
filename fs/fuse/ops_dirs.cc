// FUSE callbacks for directories.
#include <cerrno>
#include <vector>

#include "ops_internal.h"

namespace nvswapfs::fuse::internal {

namespace {

// Offsets handed to the kernel: 1 after ".", 2 after "..", and an entry's
// cookie + 2 after that entry, so a listing resumes where it stopped even
// while entries come and go.
constexpr off_t kEntryOffsetBase = 2;

void ListDirectory(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  Filesystem& fs = FsOf(req);
  std::vector<char> buf(size);
  size_t used = 0;
  // Adds one entry; false when the reply buffer is full.
  auto add = [&](const char* name, const fs::Attr& attr, off_t next, bool counted) {
    size_t n;
    if (plus) {
      fuse_entry_param e = ToEntry(fs, attr);
      if (!counted) e.ino = 0;  // "." and "..": no new reference for the kernel
      n = fuse_add_direntry_plus(req, buf.data() + used, size - used, name, &e, next);
    } else {
      struct stat st;
      ToStat(attr, &st);
      n = fuse_add_direntry(req, buf.data() + used, size - used, name, &st, next);
    }
    if (n > size - used) return false;
    used += n;
    if (plus && counted) fs.Remember(attr.ino);
    return true;
  };

  if (off < 1) {
    auto self = fs.volume().GetAttr(ino);
    if (!self.ok()) return ReplyError(req, self.status(), ino);
    if (!add(".", *self, 1, false)) return void(fuse_reply_buf(req, buf.data(), used));
  }
  if (off < 2) {
    auto parent = fs.volume().Parent(ino);
    if (!parent.ok()) return ReplyError(req, parent.status(), ino);
    auto pattr = fs.volume().GetAttr(*parent);
    if (!pattr.ok()) return ReplyError(req, pattr.status(), ino);
    if (!add("..", *pattr, 2, false)) return void(fuse_reply_buf(req, buf.data(), used));
  }
  const uint64_t after = off > kEntryOffsetBase ? static_cast<uint64_t>(off - kEntryOffsetBase) : 0;
  Status s = fs.volume().Readdir(ino, after, [&](const fs::DirListing& e) {
    return add(e.name.c_str(), e.attr, static_cast<off_t>(e.cookie) + kEntryOffsetBase, true);
  });
  if (!s.ok()) return ReplyError(req, s, ino);
  fuse_reply_buf(req, buf.data(), used);
}

}  // namespace

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guarded(req, [&] {
    auto attr = FsOf(req).volume().GetAttr(ino);
    if (!attr.ok()) return ReplyError(req, attr.status(), ino);
    if (!S_ISDIR(attr->mode)) {
      return ReplyError(req, Status::Error(ENOTDIR, "opendir", FsOf(req).volume().PathOf(ino)),
                        ino);
    }
    fi->fh = 0;
    fuse_reply_open(req, fi);
  });
}

void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Guarded(req, [&] { ListDirectory(req, ino, size, off, false); });
}

void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Guarded(req, [&] { ListDirectory(req, ino, size, off, true); });
}

void ReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

void FsyncDir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info*) {
  Guarded(req, [&] {
    Status s = FsOf(req).volume().Fsync(ino);
    if (!s.ok()) return ReplyError(req, s, ino);
    fuse_reply_err(req, 0);
  });
}

}  // namespace nvswapfs::fuse::internal
