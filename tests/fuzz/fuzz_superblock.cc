// Fuzzes DecodeSuperblock: whatever the block holds, decoding must not
// crash, and a block it accepts must describe a layout that fits the device.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_util.h"
#include "nvswapfs/fs/superblock.h"

namespace nvswapfs::fuzz {
namespace {

void CheckAccepted(const fs::Superblock& sb) {
  NVSWAPFS_FUZZ_CHECK(sb.format_version == fs::kFormatVersion);
  NVSWAPFS_FUZZ_CHECK(sb.copy <= 1);
  NVSWAPFS_FUZZ_CHECK(sb.label.size() <= fs::kMaxLabel);
  NVSWAPFS_FUZZ_CHECK(sb.ckpt_offset[0] >= fs::kBlockSize);
  NVSWAPFS_FUZZ_CHECK(sb.ckpt_offset[1] >= sb.ckpt_offset[0] + sb.ckpt_size);
  NVSWAPFS_FUZZ_CHECK(sb.log_offset >= sb.ckpt_offset[1] + sb.ckpt_size);
  NVSWAPFS_FUZZ_CHECK(sb.data_offset >= sb.log_offset + sb.log_size);
  NVSWAPFS_FUZZ_CHECK(sb.data_size > 0 && sb.data_size % sb.alloc_unit == 0);
  NVSWAPFS_FUZZ_CHECK(sb.data_offset + sb.data_size <= sb.backup_offset());

  // What was accepted encodes to a block that decodes to the same fields.
  std::vector<std::byte> block(fs::kBlockSize);
  fs::EncodeSuperblock(sb, std::span<std::byte, fs::kBlockSize>(block.data(), fs::kBlockSize));
  Result<fs::Superblock> again = fs::DecodeSuperblock(block, sb.device_size, "re-encoded");
  NVSWAPFS_FUZZ_CHECK(again.ok());
  NVSWAPFS_FUZZ_CHECK(again->label == sb.label && again->uuid == sb.uuid);
  NVSWAPFS_FUZZ_CHECK(again->data_offset == sb.data_offset && again->data_size == sb.data_size);
}

void Decode(std::span<const std::byte> block) {
  for (uint64_t device_size : {uint64_t{0}, kDeviceSize}) {
    Result<fs::Superblock> sb = fs::DecodeSuperblock(block, device_size, "fuzz");
    if (sb.ok()) {
      NVSWAPFS_FUZZ_CHECK(device_size == 0 || sb->device_size == device_size);
      CheckAccepted(*sb);
    } else {
      NVSWAPFS_FUZZ_CHECK(sb.status().code() != 0);
    }
  }
}

}  // namespace
}  // namespace nvswapfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nvswapfs;
  const auto input = std::as_bytes(std::span(data, size));
  fuzz::Decode(input);
  if (size >= fs::kBlockSize) {
    std::vector<std::byte> resealed(input.begin(), input.end());
    fuzz::ResealSuperblock(resealed);
    fuzz::Decode(resealed);
  }
  return 0;
}
