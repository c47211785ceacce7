#include "nvswapfs/fs/superblock.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <string_view>

#include "nvswapfs/fs/codec.h"
#include "nvswapfs/units.h"

namespace nvswapfs::fs {
namespace {

// Byte offsets of the fields (see the table in superblock.h).
constexpr size_t kMagicAt = 0;
constexpr size_t kVersionAt = 8;
constexpr size_t kCopyAt = 12;
constexpr size_t kCompatAt = 16;
constexpr size_t kRoCompatAt = 24;
constexpr size_t kIncompatAt = 32;
constexpr size_t kUuidAt = 40;
constexpr size_t kLabelAt = 56;
constexpr size_t kLabelField = 64;
constexpr size_t kBlockSizeAt = 120;
constexpr size_t kAllocUnitAt = 128;
constexpr size_t kDeviceSizeAt = 136;
constexpr size_t kCkpt0At = 144;
constexpr size_t kCkpt1At = 152;
constexpr size_t kCkptSizeAt = 160;
constexpr size_t kLogAt = 168;
constexpr size_t kLogSizeAt = 176;
constexpr size_t kDataAt = 184;
constexpr size_t kDataSizeAt = 192;
constexpr size_t kCreatedAt = 200;
constexpr size_t kCrcAt = kBlockSize - 4;
static_assert(kLabelAt + kLabelField == kBlockSizeAt);
static_assert(kLabelField == kMaxLabel + 1, "the label keeps room for its NUL");
static_assert(sizeof(Uuid) == kLabelAt - kUuidAt);

// Metadata sized for about one file per allocation unit: a typical inode
// record with a few extents and its directory entry take well under this.
constexpr uint64_t kMetadataBytesPerUnit = 512;
constexpr uint64_t kMinMetadataRegion = 4 * kMiB;
constexpr uint64_t kMaxMetadataRegion = 1 * kGiB;
constexpr uint64_t kMinDataUnits = 4;

constexpr std::string_view kReadOp = "read superblock";

std::string Hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string Bytes(uint64_t v) {
  return std::to_string(v) + " bytes (" + FormatSize(v) + ")";
}

bool ValidAllocUnit(uint64_t alloc_unit) {
  return IsPowerOfTwo(alloc_unit) && alloc_unit >= kMinAllocUnit && alloc_unit <= kMaxAllocUnit;
}

std::string AllocUnitProblem(uint64_t alloc_unit) {
  return "allocation unit " + std::to_string(alloc_unit) + " is not a power of two between " +
         FormatSize(kMinAllocUnit) + " and " + FormatSize(kMaxAllocUnit);
}

int64_t NowNs() {
  timespec ts{};
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

struct Region {
  const char* name;
  uint64_t offset;
  uint64_t size;
};

// Empty when the regions are aligned, non-empty, in the documented order and
// all between the two superblock copies; otherwise what is wrong.
std::string RegionProblem(const Superblock& sb) {
  if (sb.device_size % kBlockSize != 0 || sb.device_size < 2 * kBlockSize) {
    return "device size " + std::to_string(sb.device_size) + " cannot hold two superblocks of " +
           std::to_string(kBlockSize) + " bytes at aligned offsets";
  }
  const Region regions[] = {
      {"checkpoint slot 0", sb.ckpt_offset[0], sb.ckpt_size},
      {"checkpoint slot 1", sb.ckpt_offset[1], sb.ckpt_size},
      {"log", sb.log_offset, sb.log_size},
      {"data region", sb.data_offset, sb.data_size},
  };
  const uint64_t limit = sb.backup_offset();
  uint64_t previous_end = kBlockSize;
  const char* previous = "primary superblock";
  for (const Region& r : regions) {
    const std::string where =
        std::string(r.name) + " at " + std::to_string(r.offset) + " size " + std::to_string(r.size);
    if (r.offset % kBlockSize != 0 || r.size % kBlockSize != 0) {
      return where + " is not aligned to " + std::to_string(kBlockSize) + " bytes";
    }
    if (r.size == 0) return where + " is empty";
    if (r.offset < previous_end) {
      return where + " overlaps or precedes the " + previous + " (which ends at " +
             std::to_string(previous_end) + ")";
    }
    // Written as a subtraction so that a huge size cannot wrap around.
    if (r.offset > limit || r.size > limit - r.offset) {
      return where + " extends past the backup superblock at " + std::to_string(limit);
    }
    previous_end = r.offset + r.size;
    previous = r.name;
  }
  if (sb.data_offset % sb.alloc_unit != 0 || sb.data_size % sb.alloc_unit != 0) {
    return "data region at " + std::to_string(sb.data_offset) + " size " +
           std::to_string(sb.data_size) + " is not in whole allocation units of " +
           std::to_string(sb.alloc_unit) + " bytes";
  }
  return "";
}

}  // namespace

std::string UuidToString(const Uuid& uuid) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (size_t i = 0; i < uuid.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += kDigits[uuid[i] >> 4];
    out += kDigits[uuid[i] & 0xF];
  }
  return out;
}

Uuid RandomUuid() {
  Uuid uuid{};
  size_t filled = 0;
  while (filled < uuid.size()) {
    const ssize_t n = getrandom(uuid.data() + filled, uuid.size() - filled, 0);
    if (n > 0) {
      filled += static_cast<size_t>(n);
    } else if (n < 0 && errno != EINTR) {
      break;
    }
  }
  if (filled < uuid.size()) {
    // Old kernels and some sandboxes lack getrandom; a UUID only has to be
    // unique, not secret, so any decent entropy source will do.
    std::random_device rd;
    for (size_t i = filled; i < uuid.size(); ++i) uuid[i] = static_cast<uint8_t>(rd());
  }
  uuid[6] = static_cast<uint8_t>((uuid[6] & 0x0F) | 0x40);  // version 4
  uuid[8] = static_cast<uint8_t>((uuid[8] & 0x3F) | 0x80);  // RFC 4122 variant
  return uuid;
}

Result<Superblock> PlanLayout(uint64_t device_size, uint64_t alloc_unit, std::string label) {
  constexpr std::string_view kOp = "plan layout";
  if (!ValidAllocUnit(alloc_unit)) {
    return Status::Error(EINVAL, kOp, "").WithDetail(AllocUnitProblem(alloc_unit));
  }
  if (label.size() > kMaxLabel) {
    return Status::Error(EINVAL, kOp, "")
        .WithDetail("label is " + std::to_string(label.size()) + " bytes; at most " +
                    std::to_string(kMaxLabel) + " fit");
  }
  if (label.find('\0') != std::string::npos) {
    // The label is stored NUL-padded, so it would come back cut short.
    return Status::Error(EINVAL, kOp, "").WithDetail("label contains a NUL byte");
  }
  if (device_size % kBlockSize != 0) {
    return Status::Error(EINVAL, kOp, "")
        .WithDetail("device size " + std::to_string(device_size) + " is not a multiple of " +
                    std::to_string(kBlockSize));
  }

  const uint64_t units = device_size / alloc_unit;
  const uint64_t metadata = std::clamp(RoundUp(units * kMetadataBytesPerUnit, kMiB),
                                       kMinMetadataRegion, kMaxMetadataRegion);
  Superblock sb;
  sb.alloc_unit = alloc_unit;
  sb.device_size = device_size;
  sb.label = std::move(label);
  sb.ckpt_size = metadata;
  sb.log_size = metadata;
  sb.ckpt_offset[0] = kBlockSize;
  sb.ckpt_offset[1] = sb.ckpt_offset[0] + metadata;
  sb.log_offset = sb.ckpt_offset[1] + metadata;
  sb.data_offset = RoundUp(sb.log_offset + sb.log_size, alloc_unit);

  const uint64_t needed = sb.data_offset + kMinDataUnits * alloc_unit + kBlockSize;
  if (device_size < needed) {
    return Status::Error(ENOSPC, kOp, "")
        .WithDetail("device is " + Bytes(device_size) + " but at least " + Bytes(needed) +
                    " are needed for the metadata, " + std::to_string(kMinDataUnits) +
                    " allocation units of " + FormatSize(alloc_unit) +
                    " and the backup superblock");
  }
  sb.data_size = RoundDown(device_size - kBlockSize - sb.data_offset, alloc_unit);
  sb.uuid = RandomUuid();
  sb.created_ns = NowNs();
  return sb;
}

void EncodeSuperblock(const Superblock& sb, std::span<std::byte, kBlockSize> out) {
  std::fill(out.begin(), out.end(), std::byte{0});
  std::byte* p = out.data();
  std::memcpy(p + kMagicAt, kSuperblockMagic, sizeof(kSuperblockMagic));
  StoreLe32(p + kVersionAt, sb.format_version);
  StoreLe32(p + kCopyAt, sb.copy);
  StoreLe64(p + kCompatAt, sb.compat_features);
  StoreLe64(p + kRoCompatAt, sb.ro_compat_features);
  StoreLe64(p + kIncompatAt, sb.incompat_features);
  std::memcpy(p + kUuidAt, sb.uuid.data(), sb.uuid.size());
  std::memcpy(p + kLabelAt, sb.label.data(), std::min(sb.label.size(), kMaxLabel));
  StoreLe32(p + kBlockSizeAt, sb.block_size);
  StoreLe64(p + kAllocUnitAt, sb.alloc_unit);
  StoreLe64(p + kDeviceSizeAt, sb.device_size);
  StoreLe64(p + kCkpt0At, sb.ckpt_offset[0]);
  StoreLe64(p + kCkpt1At, sb.ckpt_offset[1]);
  StoreLe64(p + kCkptSizeAt, sb.ckpt_size);
  StoreLe64(p + kLogAt, sb.log_offset);
  StoreLe64(p + kLogSizeAt, sb.log_size);
  StoreLe64(p + kDataAt, sb.data_offset);
  StoreLe64(p + kDataSizeAt, sb.data_size);
  StoreLe64(p + kCreatedAt, static_cast<uint64_t>(sb.created_ns));
  StoreLe32(p + kCrcAt, Crc32c(out.first(kCrcAt)));
}

bool HasSuperblockMagic(std::span<const std::byte> block) {
  return block.size() >= sizeof(kSuperblockMagic) &&
         std::memcmp(block.data(), kSuperblockMagic, sizeof(kSuperblockMagic)) == 0;
}

Result<Superblock> DecodeSuperblock(std::span<const std::byte> block, uint64_t device_size,
                                    std::string_view where) {
  auto fail = [where](int err, std::string detail) {
    return Status::Error(err, kReadOp, where).WithDetail(detail);
  };
  if (block.size() < kBlockSize) {
    return fail(EINVAL, "block is " + std::to_string(block.size()) + " bytes, a superblock is " +
                            std::to_string(kBlockSize));
  }
  if (!HasSuperblockMagic(block)) return fail(EINVAL, "bad magic: not an nvswapfs superblock");
  const std::byte* p = block.data();
  if (LoadLe32(p + kCrcAt) != Crc32c(block.first(kCrcAt))) return fail(EINVAL, "bad checksum");

  // The reserved bytes (124 and 208 on) are covered by the checksum but not
  // required to be zero: a later compat feature may store fields there that
  // this version is meant to ignore.
  Superblock sb;
  sb.format_version = LoadLe32(p + kVersionAt);
  sb.copy = LoadLe32(p + kCopyAt);
  sb.compat_features = LoadLe64(p + kCompatAt);
  sb.ro_compat_features = LoadLe64(p + kRoCompatAt);
  sb.incompat_features = LoadLe64(p + kIncompatAt);
  std::memcpy(sb.uuid.data(), p + kUuidAt, sb.uuid.size());
  sb.block_size = LoadLe32(p + kBlockSizeAt);
  sb.alloc_unit = LoadLe64(p + kAllocUnitAt);
  sb.device_size = LoadLe64(p + kDeviceSizeAt);
  sb.ckpt_offset[0] = LoadLe64(p + kCkpt0At);
  sb.ckpt_offset[1] = LoadLe64(p + kCkpt1At);
  sb.ckpt_size = LoadLe64(p + kCkptSizeAt);
  sb.log_offset = LoadLe64(p + kLogAt);
  sb.log_size = LoadLe64(p + kLogSizeAt);
  sb.data_offset = LoadLe64(p + kDataAt);
  sb.data_size = LoadLe64(p + kDataSizeAt);
  sb.created_ns = static_cast<int64_t>(LoadLe64(p + kCreatedAt));

  if (sb.format_version != kFormatVersion) {
    return fail(EPROTONOSUPPORT, "format version " + std::to_string(sb.format_version) +
                                     " is not supported (this build reads version " +
                                     std::to_string(kFormatVersion) + ")");
  }
  if (const uint64_t unknown = sb.incompat_features & ~kKnownIncompat; unknown != 0) {
    return fail(EPROTONOSUPPORT, "unknown incompatible features " + Hex(unknown));
  }
  if (sb.block_size != kBlockSize) {
    return fail(EINVAL, "block size " + std::to_string(sb.block_size) + " is not " +
                            std::to_string(kBlockSize));
  }
  if (!ValidAllocUnit(sb.alloc_unit)) return fail(EINVAL, AllocUnitProblem(sb.alloc_unit));

  const auto* label = reinterpret_cast<const char*>(p + kLabelAt);
  const std::string_view label_field(label, kLabelField);
  const size_t nul = label_field.find('\0');
  if (nul == std::string_view::npos) return fail(EINVAL, "label is not NUL-terminated");
  if (label_field.find_first_not_of('\0', nul) != std::string_view::npos) {
    return fail(EINVAL, "label has bytes after its terminating NUL");
  }
  sb.label.assign(label, nul);

  if (std::string problem = RegionProblem(sb); !problem.empty()) return fail(EINVAL, problem);
  if (device_size != 0 && device_size != sb.device_size) {
    return fail(EINVAL, "device is " + std::to_string(device_size) +
                            " bytes but the superblock says " + std::to_string(sb.device_size));
  }
  if (sb.copy > 1) return fail(EINVAL, "copy number " + std::to_string(sb.copy) + " is not 0 or 1");
  return sb;
}

}  // namespace nvswapfs::fs
