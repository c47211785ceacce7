// The namespace in memory: inodes, their extent maps, and directories.
//
// Built by applying records (records.h) — a checkpoint's, then each logged
// commit's — and turned back into records for the next checkpoint. Pure data
// with no I/O, shared by the Volume, fsck and the dump tool.
//
// Memory per file is a few hundred bytes: the inode's fields, its extent
// vector (one extent for a sequentially written file), and its directory
// entry, whose name is stored once.
//
// Not thread-safe; the Volume serializes access.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "nvswapfs/fs/extent_map.h"
#include "nvswapfs/fs/records.h"
#include "nvswapfs/status.h"

namespace nvswapfs::fs {

constexpr uint64_t kRootIno = 1;

struct DirEntry {
  uint64_t ino = 0;
  std::string name;
};

// The entries of one directory, in cookie order (stable for readdir while
// entries come and go) and by name.
class Directory {
 public:
  const DirEntry* Find(std::string_view name) const;
  // Adds an entry with `cookie`; false if the name or cookie is taken.
  bool Add(uint64_t cookie, uint64_t ino, std::string name);
  // Removes by name; false if absent.
  bool Remove(std::string_view name);
  size_t size() const { return by_cookie_.size(); }
  bool empty() const { return by_cookie_.empty(); }
  // Entries with cookie > `after`, in cookie order.
  std::map<uint64_t, DirEntry>::const_iterator UpperBound(uint64_t after) const {
    return by_cookie_.upper_bound(after);
  }
  std::map<uint64_t, DirEntry>::const_iterator end() const { return by_cookie_.end(); }
  const std::map<uint64_t, DirEntry>& entries() const { return by_cookie_; }
  uint64_t CookieOf(std::string_view name) const;

 private:
  std::map<uint64_t, DirEntry> by_cookie_;
  // Views into by_cookie_'s names (map nodes never move).
  std::unordered_map<std::string_view, uint64_t> by_name_;
};

struct Inode {
  InodeRecord attr;  // attr.extents is unused: the map lives in `extents`
  ExtentMap extents;
  std::unique_ptr<Directory> dir;  // directories only
  // One of the inode's names, kept for error messages and paths: the
  // directory and name of the link made last.
  uint64_t parent = 0;
  std::string name;

  bool is_dir() const;
  bool is_reg() const;
  bool is_symlink() const;
  // This inode as a record, extents included.
  InodeRecord ToRecord() const;
};

class Metadata {
 public:
  Metadata() = default;
  Metadata(const Metadata&) = delete;
  Metadata& operator=(const Metadata&) = delete;
  Metadata(Metadata&&) = default;
  Metadata& operator=(Metadata&&) = default;

  // Applies one record. EUCLEAN ("structure needs cleaning") with a message
  // naming the record when it contradicts the state: an entry added to a
  // missing directory or under a taken name, a removal of a missing entry,
  // an inode whose type changes.
  Status Apply(const Record& record);

  Inode* Find(uint64_t ino);
  const Inode* Find(uint64_t ino) const;
  // Creates or replaces an inode's record (keeping its directory entries).
  Inode& Upsert(const InodeRecord& record);
  // Forgets an inode entirely (its entries must already be gone).
  void Erase(uint64_t ino);

  const std::unordered_map<uint64_t, std::unique_ptr<Inode>>& inodes() const { return inodes_; }
  size_t inode_count() const { return inodes_.size(); }

  // A readable path for messages: "/dir/file", or "<inode N>" when the
  // inode has no known name.
  std::string PathOf(uint64_t ino) const;

  // Appends the records that rebuild this state from nothing (every inode,
  // then every directory entry) to `body` and returns how many.
  uint32_t EncodeCheckpoint(std::vector<std::byte>* body) const;

 private:
  std::unordered_map<uint64_t, std::unique_ptr<Inode>> inodes_;
};

}  // namespace nvswapfs::fs
