// The superblock: what a device holds and where.
//
// Volume layout (every region aligned to kBlockSize; offsets in bytes):
//
//   [0, 4096)                      superblock, primary copy
//   [ckpt0, ckpt0 + ckpt_size)     checkpoint slot 0
//   [ckpt1, ckpt1 + ckpt_size)     checkpoint slot 1
//   [log, log + log_size)          metadata log
//   [data, data + data_size)       file data, in allocation units
//   [size - 4096, size)            superblock, backup copy
//
// The superblock is written by mkfs and never again, so a crash can never
// tear it. Both copies are identical except for `copy`.
//
// Superblock block (4096 bytes, little-endian):
//
//   off  size  field
//     0     8  magic "NVSWAPFS"
//     8     4  format_version (kFormatVersion)
//    12     4  copy (0 = primary at offset 0, 1 = backup at the end)
//    16     8  compat_features     unknown bits: ignored
//    24     8  ro_compat_features  unknown bits: mount read-only only
//    32     8  incompat_features   unknown bits: refuse to mount
//    40    16  uuid
//    56    64  label, UTF-8, NUL-padded (at most 63 bytes used)
//   120     4  block_size (kBlockSize)
//   124     4  reserved (0)
//   128     8  alloc_unit (bytes; power of two, 64 KiB .. 64 MiB)
//   136     8  device_size (bytes, as formatted)
//   144     8  ckpt_offset[0]
//   152     8  ckpt_offset[1]
//   160     8  ckpt_size
//   168     8  log_offset
//   176     8  log_size
//   184     8  data_offset (a multiple of alloc_unit)
//   192     8  data_size (a multiple of alloc_unit)
//   200     8  created_ns (nanoseconds since the Unix epoch)
//   208  3884  zero
//  4092     4  crc32c of bytes [0, 4092)
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>

#include "nvswapfs/status.h"

namespace nvswapfs::fs {

constexpr uint32_t kBlockSize = 4096;
constexpr uint32_t kFormatVersion = 1;
constexpr char kSuperblockMagic[8] = {'N', 'V', 'S', 'W', 'A', 'P', 'F', 'S'};
constexpr uint64_t kMinAllocUnit = 64 * 1024;
constexpr uint64_t kMaxAllocUnit = 64 * 1024 * 1024;
constexpr uint64_t kDefaultAllocUnit = 1024 * 1024;
constexpr size_t kMaxLabel = 63;

// Feature bits. None is defined yet in format version 1; the fields exist so
// that data checksums or several devices can be added later.
constexpr uint64_t kKnownCompat = 0;
constexpr uint64_t kKnownRoCompat = 0;
constexpr uint64_t kKnownIncompat = 0;

using Uuid = std::array<uint8_t, 16>;

std::string UuidToString(const Uuid& uuid);
// A random (version 4) UUID.
Uuid RandomUuid();

struct Superblock {
  uint32_t format_version = kFormatVersion;
  uint32_t copy = 0;
  uint64_t compat_features = 0;
  uint64_t ro_compat_features = 0;
  uint64_t incompat_features = 0;
  Uuid uuid{};
  std::string label;
  uint32_t block_size = kBlockSize;
  uint64_t alloc_unit = kDefaultAllocUnit;
  uint64_t device_size = 0;
  uint64_t ckpt_offset[2] = {0, 0};
  uint64_t ckpt_size = 0;
  uint64_t log_offset = 0;
  uint64_t log_size = 0;
  uint64_t data_offset = 0;
  uint64_t data_size = 0;
  int64_t created_ns = 0;

  // Byte offset of the backup copy.
  uint64_t backup_offset() const { return device_size - kBlockSize; }
};

// Chooses the layout for a device of `device_size` bytes: checkpoint slots
// and log sized to the device (enough metadata for about one file per
// allocation unit, at least 4 MiB each, at most 1 GiB each), data region
// aligned to the allocation unit. EINVAL for a bad allocation unit, a label
// over kMaxLabel bytes or containing NUL, or a device size that is not a
// multiple of kBlockSize (rounding down is the caller's job); ENOSPC when the
// device is too small to hold metadata and at least 4 allocation units of
// data. Errors have op "plan layout" and no subject: the caller adds the
// device path with WithSubject.
Result<Superblock> PlanLayout(uint64_t device_size, uint64_t alloc_unit, std::string label);

// Encodes into exactly kBlockSize bytes, checksum included.
void EncodeSuperblock(const Superblock& sb, std::span<std::byte, kBlockSize> out);

// Decodes and checks one copy: magic, checksum, version, feature bits,
// region layout (regions inside the device, aligned, not overlapping,
// matching `device_size` when non-zero). Errors are EINVAL ("bad magic",
// "bad checksum", ...), EPROTONOSUPPORT for an unknown format version or
// incompatible features; `where` names the copy in messages
// ("primary superblock" / "backup superblock"), which read like
//   read superblock failed on "primary superblock": Invalid argument
//       (bad checksum) (errno 22)
// Unknown compat and ro_compat bits are accepted (the mount decides), and
// the reserved bytes are not required to be zero, so that a later compat
// feature can use them.
Result<Superblock> DecodeSuperblock(std::span<const std::byte> block, uint64_t device_size,
                                    std::string_view where);

// True when `block` starts with the superblock magic (whatever else is wrong).
bool HasSuperblockMagic(std::span<const std::byte> block);

}  // namespace nvswapfs::fs
