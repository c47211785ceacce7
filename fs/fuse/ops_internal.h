// Shared by the FUSE callback files; not a public API.
#pragma once

#include <fuse3/fuse_lowlevel.h>
#include <sys/stat.h>

#include <chrono>
#include <new>

#include "nvswapfs/fuse/filesystem.h"
#include "nvswapfs/log.h"

namespace nvswapfs::fuse::internal {

inline Filesystem& FsOf(fuse_req_t req) {
  return *static_cast<Filesystem*>(fuse_req_userdata(req));
}

// Replies with `status`'s errno; unless `quiet` (the answers to probing,
// such as a missing name), also counts it against `ino` (0: no file) and
// logs it.
void ReplyError(fuse_req_t req, const Status& status, uint64_t ino, bool quiet = false);

void ToStat(const fs::Attr& attr, struct stat* st);
fuse_entry_param ToEntry(Filesystem& fs, const fs::Attr& attr);
// Replies with an entry and records the kernel's new reference to it.
void ReplyEntry(fuse_req_t req, const fs::Attr& attr);

// Sends a read's data reply through `send`, timing it for the latency xattr:
// the kernel copies the data into the page cache or the reader's memory
// before the call returns.
template <typename Send>
void TimedReadReply(Filesystem& fs, Send send) {
  const auto start = std::chrono::steady_clock::now();
  send();
  fs.TimeReadReply(start);
}

// Runs a callback body so that no exception reaches libfuse and a request
// that threw still gets its one reply.
template <typename Body>
void Guarded(fuse_req_t req, Body body) {
  try {
    FsOf(req).CountOp();
    body();
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  } catch (...) {
    LogError("internal error while serving a request");
    fuse_reply_err(req, EIO);
  }
}

// The callbacks, grouped by kind (ops_entries.cc, ops_files.cc, ops_dirs.cc,
// ops_xattrs.cc, filesystem.cc).
void Init(void* userdata, fuse_conn_info* conn);
void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name);
void Forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup);
void ForgetMulti(fuse_req_t req, size_t count, fuse_forget_data* forgets);
void GetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void SetAttr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi);
void Readlink(fuse_req_t req, fuse_ino_t ino);
void Mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev);
void Mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode);
void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name);
void Rmdir(fuse_req_t req, fuse_ino_t parent, const char* name);
void Symlink(fuse_req_t req, const char* link, fuse_ino_t parent, const char* name);
void Rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t newparent,
            const char* newname, unsigned int flags);
void Link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char* newname);
void StatFs(fuse_req_t req, fuse_ino_t ino);
void Access(fuse_req_t req, fuse_ino_t ino, int mask);

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi);
void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void Write(fuse_req_t req, fuse_ino_t ino, const char* buf, size_t size, off_t off,
           fuse_file_info* fi);
void Flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void Fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);
void Fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
               fuse_file_info* fi);
void Ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void* arg, fuse_file_info* fi,
           unsigned flags, const void* in_buf, size_t in_size, size_t out_size);

void OpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void ReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi);
void ReleaseDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi);
void FsyncDir(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi);

void SetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size,
              int flags);
void GetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size);
void ListXattr(fuse_req_t req, fuse_ino_t ino, size_t size);
void RemoveXattr(fuse_req_t req, fuse_ino_t ino, const char* name);

}  // namespace nvswapfs::fuse::internal
