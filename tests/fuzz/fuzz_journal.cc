// Fuzzes the log commit and checkpoint framing: the input is taken as a whole
// commit span and as a whole checkpoint slot, both as given and with its
// checksums recomputed. Decoding must not crash, and what it accepts must
// re-encode to the same framing.
#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "fuzz_util.h"
#include "nvswapfs/fs/journal.h"

namespace nvswapfs::fuzz {
namespace {

void DecodeCommit(std::span<const std::byte> commit) {
  Result<fs::CommitHeader> header = fs::DecodeCommitHeader(commit, kVolume);
  if (!header.ok()) {
    const int code = header.status().code();
    NVSWAPFS_FUZZ_CHECK(code == EINVAL || code == ESTALE);
    return;
  }
  Result<std::vector<fs::Record>> records = fs::DecodeCommitRecords(*header, commit);
  if (!records.ok()) return;
  NVSWAPFS_FUZZ_CHECK(records->size() == header->record_count);
  std::vector<std::byte> encoded;
  fs::EncodeCommit(kVolume, header->sequence, header->next_ino, *records, &encoded);
  NVSWAPFS_FUZZ_CHECK(encoded.size() == fs::CommitSpan(*header));
  // The header fields up to the reserved bytes and the payload match byte for
  // byte. The reserved bytes and the padding are not checked on decode, so
  // they may differ.
  constexpr ptrdiff_t kFieldsEnd = 52;
  NVSWAPFS_FUZZ_CHECK(std::equal(encoded.begin(), encoded.begin() + kFieldsEnd, commit.begin()));
  const auto payload_begin = static_cast<ptrdiff_t>(fs::kCommitHeaderSize);
  const auto payload_end = payload_begin + static_cast<ptrdiff_t>(header->payload_length);
  NVSWAPFS_FUZZ_CHECK(std::equal(encoded.begin() + payload_begin, encoded.begin() + payload_end,
                                 commit.begin() + payload_begin));
}

void DecodeCheckpoint(std::span<const std::byte> slot) {
  Result<fs::CheckpointHeader> header = fs::DecodeCheckpointHeader(slot, kVolume);
  if (!header.ok()) {
    const int code = header.status().code();
    NVSWAPFS_FUZZ_CHECK(code == EINVAL || code == ESTALE);
    return;
  }
  Result<std::vector<fs::Record>> records =
      fs::DecodeCheckpointBody(*header, slot.subspan(fs::kBlockSize));
  if (!records.ok()) return;
  NVSWAPFS_FUZZ_CHECK(records->size() == header->record_count);
  std::vector<std::byte> body;
  for (const fs::Record& r : *records) fs::EncodeRecord(r, &body);
  NVSWAPFS_FUZZ_CHECK(body.size() == header->body_length);
  NVSWAPFS_FUZZ_CHECK(
      std::equal(body.begin(), body.end(), slot.begin() + static_cast<ptrdiff_t>(fs::kBlockSize)));
}

}  // namespace
}  // namespace nvswapfs::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace nvswapfs;
  const auto input = std::as_bytes(std::span(data, size));
  fuzz::DecodeCommit(input);
  fuzz::DecodeCheckpoint(input);

  std::vector<std::byte> copy(input.begin(), input.end());
  fuzz::ResealCommit(copy);
  fuzz::DecodeCommit(copy);
  copy.assign(input.begin(), input.end());
  fuzz::ResealCheckpoint(copy);
  fuzz::DecodeCheckpoint(copy);
  return 0;
}
