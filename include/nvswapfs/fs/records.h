// Metadata records: the unit of both the log and the checkpoint.
//
// The whole namespace is rebuilt from records: a checkpoint is the list of
// records that recreates every inode and directory entry from nothing, and
// the log appends the records of each committed change after it. Records
// carry whole inodes (attributes, extent map, xattrs, symlink target), and
// directory entries as additions and removals, so a change to a large
// directory logs one small record.
//
// Record encoding (little-endian):
//
//   off size field
//     0    1 type (RecordType)
//     1    4 payload length N
//     5    N payload, by type:
//
//   kInode:   u64 ino, u32 mode, u32 uid, u32 gid, u32 nlink, u64 size,
//             i64 atime_ns, i64 mtime_ns, i64 ctime_ns, i64 btime_ns,
//             u64 next_cookie, u32 flags (0),
//             u16 len + symlink target bytes,
//             u16 xattr count, each: u8 len + name, u16 len + value,
//             u32 extent count, each: u64 logical block, u64 physical block,
//                                     u32 block count, u8 flags (bit 0: unwritten)
//   kInodeDelete: u64 ino
//   kDirentAdd:   u64 dir, u64 ino, u64 cookie, u8 len + name
//   kDirentRemove: u64 dir, u8 len + name
//
// Blocks are kBlockSize (4096) bytes; physical blocks count from the start
// of the device.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nvswapfs/status.h"

namespace nvswapfs::fs {

enum class RecordType : uint8_t {
  kInode = 1,
  kInodeDelete = 2,
  kDirentAdd = 3,
  kDirentRemove = 4,
};

constexpr size_t kMaxNameLength = 255;
constexpr size_t kMaxSymlinkLength = 4095;
constexpr size_t kMaxXattrNameLength = 255;
constexpr size_t kMaxXattrValueLength = 4096;
constexpr size_t kMaxXattrsPerInode = 64;

struct Extent {
  uint64_t logical = 0;    // first file block
  uint64_t physical = 0;   // first device block
  uint32_t count = 0;      // blocks
  bool unwritten = false;  // allocated, reads as zeros until written

  uint64_t logical_end() const { return logical + count; }
  uint64_t physical_end() const { return physical + count; }
  friend bool operator==(const Extent&, const Extent&) = default;
};

struct InodeRecord {
  uint64_t ino = 0;
  uint32_t mode = 0;  // type and permission bits, as in st_mode
  uint32_t uid = 0;
  uint32_t gid = 0;
  uint32_t nlink = 0;
  uint64_t size = 0;
  int64_t atime_ns = 0;
  int64_t mtime_ns = 0;
  int64_t ctime_ns = 0;
  int64_t btime_ns = 0;
  uint64_t next_cookie = 0;  // directories: cookie for the next entry
  std::string symlink;
  std::vector<std::pair<std::string, std::string>> xattrs;  // sorted by name
  std::vector<Extent> extents;                              // sorted by logical
  friend bool operator==(const InodeRecord&, const InodeRecord&) = default;
};

struct InodeDeleteRecord {
  uint64_t ino = 0;
  friend bool operator==(const InodeDeleteRecord&, const InodeDeleteRecord&) = default;
};

struct DirentAddRecord {
  uint64_t dir = 0;
  uint64_t ino = 0;
  uint64_t cookie = 0;
  std::string name;
  friend bool operator==(const DirentAddRecord&, const DirentAddRecord&) = default;
};

struct DirentRemoveRecord {
  uint64_t dir = 0;
  std::string name;
  friend bool operator==(const DirentRemoveRecord&, const DirentRemoveRecord&) = default;
};

using Record = std::variant<InodeRecord, InodeDeleteRecord, DirentAddRecord, DirentRemoveRecord>;

// Appends the encoding of `record` to `out`. The record must respect the
// limits above (the Volume validates names and values before they get here).
void EncodeRecord(const Record& record, std::vector<std::byte>* out);

// The same encodings, from parts kept elsewhere, without building the
// Record: an inode whose extents are `extents` (its own `extents` field is
// not read), and a directory entry. A checkpoint encodes every inode and
// entry of the namespace this way.
void EncodeInodeRecord(const InodeRecord& attr, std::span<const Extent> extents,
                       std::vector<std::byte>* out);
void EncodeDirentAddRecord(uint64_t dir, uint64_t ino, uint64_t cookie, std::string_view name,
                           std::vector<std::byte>* out);

// Decodes every record of `payload` (a concatenation of encoded records).
// EINVAL (op "decode records", subject "metadata") naming the record index,
// its type and what is wrong, e.g. "record 3 (inode): extent count
// 4294967295 exceeds the 120 bytes left", on any truncation, unknown type,
// length mismatch, over-long string, or limit exceeded; also for inode
// number 0, names that are empty, "." or ".." or contain '/' or NUL, NUL in
// a symlink target or xattr name, xattr names not strictly increasing,
// extents with a count of 0, out of order, overlapping or ending past
// UINT64_MAX, and unknown inode or extent flag bits.
// Never reads outside `payload`; never allocates more than a small multiple
// of payload.size().
Result<std::vector<Record>> DecodeRecords(std::span<const std::byte> payload);

}  // namespace nvswapfs::fs
