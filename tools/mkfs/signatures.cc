#include "signatures.h"

#include <blkid/blkid.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <span>
#include <string_view>
#include <type_traits>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/unique_fd.h"
#include "nvswapfs/units.h"

namespace nvswapfs::mkfs {
namespace {

// More signatures than any real device holds: a wipe that keeps finding
// the same signature must not loop forever.
constexpr int kMaxWipes = 64;

using ProbePtr = std::unique_ptr<std::remove_pointer_t<blkid_probe>, void (*)(blkid_probe)>;

// libblkid does not promise to set errno on every failure.
Status BlkidError(std::string_view op, const std::string& path) {
  return Status::Error(errno != 0 ? errno : EIO, op, path);
}

std::string Lookup(blkid_probe probe, const char* name) {
  const char* value = nullptr;
  if (blkid_probe_lookup_value(probe, name, &value, nullptr) != 0 || value == nullptr) return "";
  return value;
}

std::string WithArticle(const std::string& word) {
  // "an ext4", "an xfs", "a btrfs", "a gpt": by the sound of the first letter.
  const bool vowel_sound =
      !word.empty() && std::string_view("aeioux").find(word[0]) != std::string_view::npos;
  return (vowel_sound ? "an " : "a ") + word;
}

std::string DescribeNvswapfs(std::span<const std::byte> block, const char* where) {
  Result<fs::Superblock> sb = fs::DecodeSuperblock(block, /*device_size=*/0, where);
  if (!sb.ok()) {
    return "an nvswapfs volume (" + std::string(where) +
           " damaged: " + std::string(sb.status().detail()) + ")";
  }
  const std::string label = sb->label.empty() ? "no label" : "label \"" + sb->label + "\"";
  return "an nvswapfs volume (" + label + ", uuid " + fs::UuidToString(sb->uuid) + ")";
}

}  // namespace

Result<std::string> FindNvswapfs(aio::IoEngine& engine) {
  Result<aio::AlignedBuffer> block = aio::AlignedBuffer::Allocate(fs::kBlockSize);
  if (!block.ok()) return block.status();
  const uint64_t size = RoundDown(engine.device().size, fs::kBlockSize);
  if (size < fs::kBlockSize) return std::string();  // too small to have been formatted
  struct Copy {
    uint64_t offset;
    const char* where;
  };
  const Copy copies[] = {{0, "primary superblock"}, {size - fs::kBlockSize, "backup superblock"}};
  for (const Copy& copy : copies) {
    // A device of a single block has no separate backup position.
    if (size < 2 * fs::kBlockSize && copy.offset != 0) continue;
    NVSWAPFS_RETURN_IF_ERROR(
        engine.Execute({aio::IoOp::kRead, copy.offset, block->data(), fs::kBlockSize}));
    if (fs::HasSuperblockMagic(block->span())) return DescribeNvswapfs(block->span(), copy.where);
  }
  return std::string();
}

Result<std::vector<std::string>> FindForeign(const std::string& path) {
  errno = 0;
  ProbePtr probe(blkid_new_probe_from_filename(path.c_str()), blkid_free_probe);
  if (!probe) return BlkidError("probe signatures", path);
  blkid_probe_enable_superblocks(probe.get(), 1);
  // A filesystem with a bad checksum is still somebody's data.
  blkid_probe_set_superblocks_flags(probe.get(), BLKID_SUBLKS_TYPE | BLKID_SUBLKS_USAGE |
                                                     BLKID_SUBLKS_LABEL | BLKID_SUBLKS_BADCSUM);
  blkid_probe_enable_partitions(probe.get(), 1);
  const int rc = blkid_do_safeprobe(probe.get());
  if (rc == 1) return std::vector<std::string>();
  if (rc == -2) {
    // Several filesystems claim the device; any one of them is reason enough.
    return std::vector<std::string>{"signatures of more than one filesystem"};
  }
  if (rc != 0) return BlkidError("probe signatures", path);

  std::vector<std::string> found;
  if (const std::string type = Lookup(probe.get(), "TYPE"); !type.empty()) {
    const std::string usage = Lookup(probe.get(), "USAGE");
    std::string what;
    if (usage == "filesystem" || usage.empty()) {
      what = WithArticle(type) + " filesystem";
    } else if (usage == "other") {
      what = WithArticle(type) + " signature";  // swap, for one
    } else {
      what = WithArticle(type) + " signature (" + usage + ")";  // raid, crypto
    }
    if (const std::string label = Lookup(probe.get(), "LABEL"); !label.empty()) {
      what += " labelled \"" + label + "\"";
    }
    found.push_back(what);
  }
  if (const std::string pt = Lookup(probe.get(), "PTTYPE"); !pt.empty()) {
    found.push_back(WithArticle(pt) + " partition table");
  }
  return found;
}

Result<std::vector<std::string>> WipeForeign(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
  if (!fd.valid()) return Status::FromErrno("open for wiping", path);
  errno = 0;
  ProbePtr probe(blkid_new_probe(), blkid_free_probe);
  if (!probe) return BlkidError("wipe signatures", path);
  if (blkid_probe_set_device(probe.get(), fd.get(), 0, 0) != 0) {
    return BlkidError("wipe signatures", path);
  }
  blkid_probe_enable_superblocks(probe.get(), 1);
  blkid_probe_set_superblocks_flags(probe.get(),
                                    BLKID_SUBLKS_MAGIC | BLKID_SUBLKS_TYPE | BLKID_SUBLKS_BADCSUM);
  blkid_probe_enable_partitions(probe.get(), 1);
  blkid_probe_set_partitions_flags(probe.get(), BLKID_PARTS_MAGIC);

  std::vector<std::string> wiped;
  for (int i = 0; i < kMaxWipes && blkid_do_probe(probe.get()) == 0; ++i) {
    std::string type = Lookup(probe.get(), "TYPE");
    std::string offset = Lookup(probe.get(), "SBMAGIC_OFFSET");
    if (type.empty()) {
      type = Lookup(probe.get(), "PTTYPE") + " partition table";
      offset = Lookup(probe.get(), "PTMAGIC_OFFSET");
    }
    errno = 0;
    // blkid_do_wipe steps the probe back, so the next round looks at the
    // same chain again and finds whatever else is there.
    if (blkid_do_wipe(probe.get(), /*dryrun=*/0) != 0) {
      return BlkidError("wipe signatures", path).WithDetail("erasing the " + type + " signature");
    }
    wiped.push_back("erased the " + type + " signature at offset " + offset);
  }
  if (::fsync(fd.get()) != 0) return Status::FromErrno("sync after wiping", path);
  return wiped;
}

}  // namespace nvswapfs::mkfs
