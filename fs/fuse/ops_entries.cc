// FUSE callbacks for names and attributes.
#include <linux/fs.h>
#include <sys/statvfs.h>

#include <cerrno>

#include "ops_internal.h"

namespace nvswapfs::fuse::internal {

namespace {

fs::NewInode Creator(fuse_req_t req, mode_t mode) {
  const fuse_ctx* ctx = fuse_req_ctx(req);
  return fs::NewInode{static_cast<uint32_t>(mode & 07777), ctx->uid, ctx->gid};
}

}  // namespace

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guarded(req, [&] {
    auto attr = FsOf(req).volume().Lookup(parent, name);
    if (!attr.ok()) {
      // A missing name is how shells and tools probe: not worth a log line.
      return ReplyError(req, attr.status(), 0, attr.status().code() == ENOENT);
    }
    ReplyEntry(req, *attr);
  });
}

void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
  FsOf(req).Forget(ino, nlookup);
  fuse_reply_none(req);
}

void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
  for (size_t i = 0; i < count; ++i) FsOf(req).Forget(forgets[i].ino, forgets[i].nlookup);
  fuse_reply_none(req);
}

void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guarded(req, [&] {
    Filesystem& fs = FsOf(req);
    auto attr = fs.volume().GetAttr(ino);
    if (!attr.ok()) return ReplyError(req, attr.status(), ino);
    struct stat st;
    ToStat(*attr, &st);
    fuse_reply_attr(req, &st, fs.options().attr_timeout_s);
  });
}

void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  Guarded(req, [&] {
    Filesystem& fs = FsOf(req);
    fs::SetAttrRequest r;
    if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode;
    if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
    if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
    if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(attr->st_size);
    if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
      r.atime_ns = fs::Volume::kNow;
    } else if (to_set & FUSE_SET_ATTR_ATIME) {
      r.atime_ns = attr->st_atim.tv_sec * 1'000'000'000 + attr->st_atim.tv_nsec;
    }
    if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
      r.mtime_ns = fs::Volume::kNow;
    } else if (to_set & FUSE_SET_ATTR_MTIME) {
      r.mtime_ns = attr->st_mtim.tv_sec * 1'000'000'000 + attr->st_mtim.tv_nsec;
    }
    auto result = fs.volume().SetAttr(ino, r);
    if (!result.ok()) return ReplyError(req, result.status(), ino);
    struct stat st;
    ToStat(*result, &st);
    fuse_reply_attr(req, &st, fs.options().attr_timeout_s);
  });
}

void Readlink(fuse_req_t req, fuse_ino_t ino) {
  Guarded(req, [&] {
    auto target = FsOf(req).volume().Readlink(ino);
    if (!target.ok()) return ReplyError(req, target.status(), ino);
    fuse_reply_readlink(req, target->c_str());
  });
}

void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t) {
  Guarded(req, [&] {
    if (!S_ISREG(mode)) {
      // Tensors and checkpoints are regular files; devices, FIFOs and
      // sockets have no place here.
      return ReplyError(req,
                        Status::Error(EPERM, "mknod", name)
                            .WithDetail("only regular files, directories and symlinks"),
                        0);
    }
    auto attr = FsOf(req).volume().Create(parent, name, Creator(req, mode));
    if (!attr.ok()) return ReplyError(req, attr.status(), 0, attr.status().code() == EEXIST);
    ReplyEntry(req, *attr);
  });
}

void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
  Guarded(req, [&] {
    auto attr = FsOf(req).volume().Mkdir(parent, name, Creator(req, mode));
    if (!attr.ok()) return ReplyError(req, attr.status(), 0, attr.status().code() == EEXIST);
    ReplyEntry(req, *attr);
  });
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guarded(req, [&] {
    Status s = FsOf(req).volume().Unlink(parent, name);
    if (!s.ok()) return ReplyError(req, s, 0, s.code() == ENOENT);
    fuse_reply_err(req, 0);
  });
}

void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guarded(req, [&] {
    Status s = FsOf(req).volume().Rmdir(parent, name);
    // rm -r and friends try rmdir and look at the answer.
    if (!s.ok()) return ReplyError(req, s, 0, s.code() == ENOENT || s.code() == ENOTEMPTY);
    fuse_reply_err(req, 0);
  });
}

void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name) {
  Guarded(req, [&] {
    auto attr = FsOf(req).volume().Symlink(parent, name, link, Creator(req, 0777));
    if (!attr.ok()) return ReplyError(req, attr.status(), 0, attr.status().code() == EEXIST);
    ReplyEntry(req, *attr);
  });
}

void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags) {
  Guarded(req, [&] {
    fs::RenameMode mode = fs::RenameMode::kReplace;
    if (flags == RENAME_NOREPLACE) {
      mode = fs::RenameMode::kNoReplace;
    } else if (flags == RENAME_EXCHANGE) {
      mode = fs::RenameMode::kExchange;
    } else if (flags != 0) {
      return ReplyError(req,
                        Status::Error(EINVAL, "rename", name)
                            .WithDetail("unsupported flags " + std::to_string(flags)),
                        0);
    }
    Status s = FsOf(req).volume().Rename(parent, name, newparent, newname, mode);
    if (!s.ok())
      return ReplyError(req, s, 0, s.code() == EEXIST && mode == fs::RenameMode::kNoReplace);
    fuse_reply_err(req, 0);
  });
}

void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname) {
  Guarded(req, [&] {
    auto attr = FsOf(req).volume().Link(ino, newparent, newname);
    if (!attr.ok()) return ReplyError(req, attr.status(), ino);
    ReplyEntry(req, *attr);
  });
}

void StatFs(fuse_req_t req, fuse_ino_t) {
  Guarded(req, [&] {
    const fs::VolumeStats s = FsOf(req).volume().StatFs();
    struct statvfs st {};
    st.f_bsize = s.block_size;
    st.f_frsize = s.block_size;
    st.f_blocks = s.total_blocks;
    st.f_bfree = s.free_blocks;
    st.f_bavail = s.free_blocks;
    st.f_files = s.files + s.free_files;
    st.f_ffree = s.free_files;
    st.f_favail = s.free_files;
    st.f_namemax = s.max_name;
    fuse_reply_statfs(req, &st);
  });
}

void Access(fuse_req_t req, fuse_ino_t ino, int) {
  // With default_permissions the kernel has already checked the mode bits;
  // this only confirms the inode exists.
  Guarded(req, [&] {
    auto attr = FsOf(req).volume().GetAttr(ino);
    if (!attr.ok()) return ReplyError(req, attr.status(), ino);
    fuse_reply_err(req, 0);
  });
}

}  // namespace nvswapfs::fuse::internal
