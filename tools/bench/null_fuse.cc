// nvswapfs-null-fuse: a FUSE file system that keeps nothing. Writes are
// accepted and dropped (a file only remembers its size), reads return zeros.
// It negotiates the same connection as nvswapfs (1 MiB requests, 64
// background requests and the same congestion threshold, asynchronous direct
// I/O) and opens files the same way (opens that can write, and O_DIRECT
// opens, bypass the page cache), so a client timed on it measures what the
// kernel's FUSE transport and libfuse alone cost on this machine: the ceiling
// of any daemon, nvswapfs included.
// A benchmark reference, not a file system to keep data in.
//
// usage: nvswapfs-null-fuse [-f] MOUNTPOINT   (returns once mounted, serving
// in the background, unless -f; unmount with fusermount3 -u MOUNTPOINT)
#define FUSE_USE_VERSION 314

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "init_reply.h"
#include "nvswapfs/fuse/connection.h"

namespace {

using nvswapfs::fuse::kMaxRequest;

struct File {
  std::string name;
  uint64_t size = 0;
};

// Every file lives in the root directory; inode numbers are never reused.
struct State {
  std::mutex mu;
  std::map<std::string, fuse_ino_t> names;  // guarded by mu
  std::map<fuse_ino_t, File> files;         // guarded by mu
  fuse_ino_t next_ino = 2;                  // guarded by mu
  std::vector<char> zeros = std::vector<char>(kMaxRequest);
};

State& StateOf(fuse_req_t req) {
  return *static_cast<State*>(fuse_req_userdata(req));
}

struct stat AttrOf(fuse_ino_t ino, uint64_t size) {
  struct stat st {};
  st.st_ino = ino;
  if (ino == FUSE_ROOT_ID) {
    st.st_mode = S_IFDIR | 0755;
    st.st_nlink = 2;
  } else {
    st.st_mode = S_IFREG | 0644;
    st.st_nlink = 1;
    st.st_size = static_cast<off_t>(size);
    st.st_blocks = static_cast<blkcnt_t>((size + 511) / 512);
  }
  st.st_blksize = kMaxRequest;
  return st;
}

void ReplyEntry(fuse_req_t req, fuse_ino_t ino, uint64_t size) {
  fuse_entry_param e{};
  e.ino = ino;
  e.attr = AttrOf(ino, size);
  e.attr_timeout = 1.0;
  e.entry_timeout = 1.0;
  fuse_reply_entry(req, &e);
}

// The open policy of nvswapfs on a kernel that maps direct opens (Linux 6.6
// and later), though nothing here can be mapped.
void ChooseCaching(fuse_file_info* fi) {
  fi->direct_io = nvswapfs::fuse::BypassesPageCache(fi->flags, /*direct_opens_map=*/true);
}

void Init(void*, fuse_conn_info* conn) {
  nvswapfs::fuse::AskForLargeRequests(conn);
}

void Lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  State& s = StateOf(req);
  std::lock_guard lock(s.mu);
  auto it = s.names.find(name);
  if (parent != FUSE_ROOT_ID || it == s.names.end()) return (void)fuse_reply_err(req, ENOENT);
  ReplyEntry(req, it->second, s.files[it->second].size);
}

void Getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  State& s = StateOf(req);
  std::lock_guard lock(s.mu);
  if (ino == FUSE_ROOT_ID) {
    struct stat st = AttrOf(ino, 0);
    return (void)fuse_reply_attr(req, &st, 1.0);
  }
  auto it = s.files.find(ino);
  if (it == s.files.end()) return (void)fuse_reply_err(req, ENOENT);
  struct stat st = AttrOf(ino, it->second.size);
  fuse_reply_attr(req, &st, 1.0);
}

void Setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info*) {
  State& s = StateOf(req);
  std::lock_guard lock(s.mu);
  auto it = s.files.find(ino);
  if (it == s.files.end()) return (void)fuse_reply_err(req, ino == FUSE_ROOT_ID ? EPERM : ENOENT);
  if (to_set & FUSE_SET_ATTR_SIZE) it->second.size = static_cast<uint64_t>(attr->st_size);
  struct stat st = AttrOf(ino, it->second.size);
  fuse_reply_attr(req, &st, 1.0);
}

void Create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t, fuse_file_info* fi) {
  if (parent != FUSE_ROOT_ID) return (void)fuse_reply_err(req, ENOENT);
  State& s = StateOf(req);
  std::lock_guard lock(s.mu);
  auto [it, fresh] = s.names.emplace(name, 0);
  if (fresh) {
    it->second = s.next_ino++;
    s.files[it->second] = File{name, 0};
  } else if (fi->flags & O_EXCL) {
    return (void)fuse_reply_err(req, EEXIST);
  }
  File& f = s.files[it->second];
  if (fi->flags & O_TRUNC) f.size = 0;
  ChooseCaching(fi);
  fuse_entry_param e{};
  e.ino = it->second;
  e.attr = AttrOf(e.ino, f.size);
  e.attr_timeout = 1.0;
  e.entry_timeout = 1.0;
  fuse_reply_create(req, &e, fi);
}

void Open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  State& s = StateOf(req);
  std::lock_guard lock(s.mu);
  auto it = s.files.find(ino);
  if (it == s.files.end()) return (void)fuse_reply_err(req, ENOENT);
  if (fi->flags & O_TRUNC) it->second.size = 0;
  ChooseCaching(fi);
  fuse_reply_open(req, fi);
}

void Read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  State& s = StateOf(req);
  uint64_t file_size = 0;
  {
    std::lock_guard lock(s.mu);
    auto it = s.files.find(ino);
    if (it == s.files.end()) return (void)fuse_reply_err(req, ENOENT);
    file_size = it->second.size;
  }
  const uint64_t at = static_cast<uint64_t>(off);
  const size_t n = at >= file_size ? 0 : std::min<uint64_t>({size, file_size - at, kMaxRequest});
  fuse_reply_buf(req, s.zeros.data(), n);
}

void Write(fuse_req_t req, fuse_ino_t ino, const char*, size_t size, off_t off, fuse_file_info*) {
  State& s = StateOf(req);
  {
    std::lock_guard lock(s.mu);
    auto it = s.files.find(ino);
    if (it == s.files.end()) return (void)fuse_reply_err(req, ENOENT);
    it->second.size = std::max<uint64_t>(it->second.size, static_cast<uint64_t>(off) + size);
  }
  fuse_reply_write(req, size);
}

void Unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
  State& s = StateOf(req);
  std::lock_guard lock(s.mu);
  auto it = s.names.find(name);
  if (parent != FUSE_ROOT_ID || it == s.names.end()) return (void)fuse_reply_err(req, ENOENT);
  s.files.erase(it->second);
  s.names.erase(it);
  fuse_reply_err(req, 0);
}

void ReplyOk(fuse_req_t req, fuse_ino_t, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

void Fsync(fuse_req_t req, fuse_ino_t, int, fuse_file_info*) {
  fuse_reply_err(req, 0);
}

}  // namespace

int main(int argc, char** argv) {
  const bool foreground = argc == 3 && std::strcmp(argv[1], "-f") == 0;
  if (argc != 2 + (foreground ? 1 : 0) || argv[argc - 1][0] == '-') {
    std::fprintf(stderr, "usage: %s [-f] MOUNTPOINT\n", argv[0]);
    return 2;
  }
  const char* mountpoint = argv[argc - 1];
  fuse_lowlevel_ops ops{};
  ops.init = Init;
  ops.lookup = Lookup;
  ops.getattr = Getattr;
  ops.setattr = Setattr;
  ops.create = Create;
  ops.open = Open;
  ops.read = Read;
  ops.write = Write;
  ops.unlink = Unlink;
  ops.flush = ReplyOk;
  ops.release = ReplyOk;
  ops.fsync = Fsync;

  char name[] = "nvswapfs-null-fuse";
  char opt[] = "-o";
  char opts[] = "fsname=nvswapfs-null,subtype=null,default_permissions";
  char* args_v[] = {name, opt, opts};
  fuse_args args = FUSE_ARGS_INIT(3, args_v);
  State state;
  fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, &state);
  if (se == nullptr) return 1;
  int rc = 1;
  if (fuse_set_signal_handlers(se) == 0) {
    if (fuse_session_mount(se, mountpoint) == 0) {
      // The INIT reply amended as nvswapfs amends its own (init_reply.h);
      // without it null would not be nvswapfs's ceiling.
      const bool amended = nvswapfs::fuse::internal::AmendInitReply(se);
      if (!amended) std::fprintf(stderr, "%s: libfuse refused the device hooks\n", argv[0]);
      // Detached after mounting and before any thread starts, so that the
      // caller's command returns once the mount is there.
      if (amended && fuse_daemonize(foreground ? 1 : 0) == 0) {
        fuse_loop_config* cfg = fuse_loop_cfg_create();
        fuse_loop_cfg_set_clone_fd(cfg, 1);
        rc = fuse_session_loop_mt(se, cfg) == 0 ? 0 : 1;
        fuse_loop_cfg_destroy(cfg);
      }
      fuse_session_unmount(se);
    }
    fuse_remove_signal_handlers(se);
  }
  fuse_session_destroy(se);
  return rc;
}
