#include "nvswapfs/fs/journal.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>

#include "nvswapfs/fs/codec.h"
#include "nvswapfs/units.h"

namespace nvswapfs::fs {
namespace {

constexpr char kCommitMagic[8] = {'N', 'V', 'S', 'W', 'L', 'O', 'G', '1'};
constexpr char kCheckpointMagic[8] = {'N', 'V', 'S', 'W', 'C', 'K', 'P', 'T'};

// Commit header fields (see the table in journal.h).
constexpr size_t kCommitUuidAt = 8;
constexpr size_t kCommitSequenceAt = 24;
constexpr size_t kCommitLengthAt = 32;
constexpr size_t kCommitCountAt = 36;
constexpr size_t kCommitNextInoAt = 40;
constexpr size_t kCommitPayloadCrcAt = 48;
constexpr size_t kCommitBootAt = 52;
constexpr size_t kCommitHeaderCrcAt = 60;
static_assert(kCommitBootAt + 8 == kCommitHeaderCrcAt);
static_assert(kCommitHeaderCrcAt + 4 == kCommitHeaderSize);

// Checkpoint header fields.
constexpr size_t kCkptUuidAt = 8;
constexpr size_t kCkptGenerationAt = 24;
constexpr size_t kCkptNextSequenceAt = 32;
constexpr size_t kCkptNextInoAt = 40;
constexpr size_t kCkptBodyLengthAt = 48;
constexpr size_t kCkptCountAt = 56;
constexpr size_t kCkptBodyCrcAt = 60;
constexpr size_t kCkptHeaderCrcAt = 124;

// Neither a commit nor a checkpoint body can be larger than the 1 GiB
// regions that hold them; a larger length is corruption, and trusting it
// would make the caller read (and allocate) that much.
constexpr uint64_t kMaxPayload = 1 * kGiB;

constexpr std::string_view kCommitOp = "read log commit";
constexpr std::string_view kCommitSubject = "metadata log";
constexpr std::string_view kCheckpointOp = "read checkpoint";
constexpr std::string_view kCheckpointSubject = "checkpoint";

bool SameUuid(const std::byte* p, const Uuid& uuid) {
  return std::memcmp(p, uuid.data(), uuid.size()) == 0;
}

// Zero padding from `start` up to the next kBlockSize boundary.
void PadBlock(size_t start, std::vector<std::byte>* out) {
  out->resize(start + RoundUp(out->size() - start, kBlockSize), std::byte{0});
}

// Decodes a checked payload and matches the record count its header promised:
// a count that disagrees means the header and payload are not from the same
// write, however the checksums came out.
Result<std::vector<Record>> DecodeCounted(std::span<const std::byte> payload, uint32_t expected,
                                          std::string_view op, std::string_view subject,
                                          const std::string& context) {
  Result<std::vector<Record>> records = DecodeRecords(payload);
  if (!records.ok()) {
    Status status = std::move(records).take_status();
    const std::string detail = context + ": " + std::string(status.detail());
    return std::move(status).WithOp(op).WithSubject(subject).WithDetail(detail);
  }
  if (records->size() != expected) {
    return Status::Error(EINVAL, op, subject)
        .WithDetail(context + ": header says " + std::to_string(expected) +
                    " records, the payload holds " + std::to_string(records->size()));
  }
  return records;
}

}  // namespace

void EncodeCommit(const Uuid& uuid, uint64_t sequence, uint64_t next_ino,
                  const std::vector<Record>& records, std::vector<std::byte>* out, uint64_t boot) {
  const size_t start = out->size();
  Encoder e(out);
  e.Bytes(std::as_bytes(std::span(kCommitMagic)));
  e.Bytes(std::as_bytes(std::span(uuid)));
  e.U64(sequence);
  e.U32(0);  // payload length, patched below
  e.U32(static_cast<uint32_t>(records.size()));
  e.U64(next_ino);
  e.U32(0);  // payload crc, patched below
  e.U64(boot);
  e.U32(0);  // header crc, patched below
  const size_t payload_start = out->size();
  for (const Record& r : records) EncodeRecord(r, out);
  const size_t payload_length = out->size() - payload_start;

  std::byte* header = out->data() + start;
  StoreLe32(header + kCommitLengthAt, static_cast<uint32_t>(payload_length));
  StoreLe32(header + kCommitPayloadCrcAt,
            Crc32c(std::span(out->data() + payload_start, payload_length)));
  StoreLe32(header + kCommitHeaderCrcAt, Crc32c(std::span(header, kCommitHeaderCrcAt)));
  PadBlock(start, out);
}

// What commit and checkpoint headers share before their fields mean
// anything: enough bytes, the magic, and the header checksum at `crc_at`.
// `header` and `kind` name them in messages.
template <size_t N>
Status CheckHeaderFrame(std::span<const std::byte> block, size_t size, const char (&magic)[N],
                        size_t crc_at, std::string_view header, std::string_view kind,
                        std::string_view op, std::string_view subject) {
  auto fail = [&](const std::string& detail) {
    return Status::Error(EINVAL, op, subject).WithDetail(detail);
  };
  if (block.size() < size) {
    return fail("block is " + std::to_string(block.size()) + " bytes, " + std::string(header) +
                " is " + std::to_string(size));
  }
  if (std::memcmp(block.data(), magic, N) != 0) {
    return fail("bad magic: not " + std::string(kind));
  }
  if (LoadLe32(block.data() + crc_at) != Crc32c(block.first(crc_at))) {
    return fail("bad header checksum");
  }
  return Status::Ok();
}

Result<CommitHeader> DecodeCommitHeader(std::span<const std::byte> block, const Uuid& uuid) {
  auto fail = [](int err, const std::string& detail) {
    return Status::Error(err, kCommitOp, kCommitSubject).WithDetail(detail);
  };
  NVSWAPFS_RETURN_IF_ERROR(CheckHeaderFrame(block, kCommitHeaderSize, kCommitMagic,
                                            kCommitHeaderCrcAt, "a commit header", "a log commit",
                                            kCommitOp, kCommitSubject));
  const std::byte* p = block.data();
  CommitHeader h;
  std::memcpy(h.uuid.data(), p + kCommitUuidAt, h.uuid.size());
  h.sequence = LoadLe64(p + kCommitSequenceAt);
  h.payload_length = LoadLe32(p + kCommitLengthAt);
  h.record_count = LoadLe32(p + kCommitCountAt);
  h.next_ino = LoadLe64(p + kCommitNextInoAt);
  h.payload_crc = LoadLe32(p + kCommitPayloadCrcAt);
  h.boot = LoadLe64(p + kCommitBootAt);
  if (!SameUuid(p + kCommitUuidAt, uuid)) {
    return fail(ESTALE, "commit " + std::to_string(h.sequence) + " belongs to volume " +
                            UuidToString(h.uuid) + ", not " + UuidToString(uuid));
  }
  if (h.payload_length > kMaxPayload) {
    return fail(EINVAL, "commit " + std::to_string(h.sequence) + " payload length " +
                            std::to_string(h.payload_length) + " exceeds the limit of " +
                            std::to_string(kMaxPayload));
  }
  return h;
}

uint64_t CommitSpan(const CommitHeader& header) {
  return RoundUp(kCommitHeaderSize + uint64_t{header.payload_length}, kBlockSize);
}

Result<std::vector<Record>> DecodeCommitRecords(const CommitHeader& header,
                                                std::span<const std::byte> commit) {
  const std::string context = "commit " + std::to_string(header.sequence);
  const uint64_t span = CommitSpan(header);
  if (commit.size() < span) {
    return Status::Error(EINVAL, kCommitOp, kCommitSubject)
        .WithDetail(context + ": torn commit: " + std::to_string(commit.size()) +
                    " bytes present, " + std::to_string(span) + " expected");
  }
  const auto payload = commit.subspan(kCommitHeaderSize, header.payload_length);
  if (Crc32c(payload) != header.payload_crc) {
    return Status::Error(EINVAL, kCommitOp, kCommitSubject)
        .WithDetail(context + ": bad payload checksum");
  }
  return DecodeCounted(payload, header.record_count, kCommitOp, kCommitSubject, context);
}

void EncodeCheckpointHeader(const CheckpointHeader& header,
                            std::span<std::byte, kBlockSize> block) {
  std::byte* p = block.data();
  std::memset(p, 0, kBlockSize);
  std::memcpy(p, kCheckpointMagic, sizeof(kCheckpointMagic));
  std::memcpy(p + kCkptUuidAt, header.uuid.data(), header.uuid.size());
  StoreLe64(p + kCkptGenerationAt, header.generation);
  StoreLe64(p + kCkptNextSequenceAt, header.next_sequence);
  StoreLe64(p + kCkptNextInoAt, header.next_ino);
  StoreLe64(p + kCkptBodyLengthAt, header.body_length);
  StoreLe32(p + kCkptCountAt, header.record_count);
  StoreLe32(p + kCkptBodyCrcAt, header.body_crc);
  StoreLe32(p + kCkptHeaderCrcAt, Crc32c(std::span(p, kCkptHeaderCrcAt)));
}

void EncodeCheckpoint(CheckpointHeader header, std::span<const std::byte> body,
                      std::vector<std::byte>* out) {
  header.body_length = body.size();
  header.body_crc = Crc32c(body);
  const size_t start = out->size();
  out->resize(start + kBlockSize);
  EncodeCheckpointHeader(header, std::span<std::byte, kBlockSize>(out->data() + start, kBlockSize));
  out->insert(out->end(), body.begin(), body.end());
  PadBlock(start, out);
}

Result<CheckpointHeader> DecodeCheckpointHeader(std::span<const std::byte> block,
                                                const Uuid& uuid) {
  auto fail = [](int err, const std::string& detail) {
    return Status::Error(err, kCheckpointOp, kCheckpointSubject).WithDetail(detail);
  };
  NVSWAPFS_RETURN_IF_ERROR(CheckHeaderFrame(block, kBlockSize, kCheckpointMagic, kCkptHeaderCrcAt,
                                            "a checkpoint header block", "a checkpoint",
                                            kCheckpointOp, kCheckpointSubject));
  const std::byte* p = block.data();
  CheckpointHeader h;
  std::memcpy(h.uuid.data(), p + kCkptUuidAt, h.uuid.size());
  h.generation = LoadLe64(p + kCkptGenerationAt);
  h.next_sequence = LoadLe64(p + kCkptNextSequenceAt);
  h.next_ino = LoadLe64(p + kCkptNextInoAt);
  h.body_length = LoadLe64(p + kCkptBodyLengthAt);
  h.record_count = LoadLe32(p + kCkptCountAt);
  h.body_crc = LoadLe32(p + kCkptBodyCrcAt);
  if (!SameUuid(p + kCkptUuidAt, uuid)) {
    return fail(ESTALE, "checkpoint generation " + std::to_string(h.generation) +
                            " belongs to volume " + UuidToString(h.uuid) + ", not " +
                            UuidToString(uuid));
  }
  if (h.body_length > kMaxPayload) {
    return fail(EINVAL, "checkpoint generation " + std::to_string(h.generation) + " body length " +
                            std::to_string(h.body_length) + " exceeds the limit of " +
                            std::to_string(kMaxPayload));
  }
  return h;
}

Result<std::vector<Record>> DecodeCheckpointBody(const CheckpointHeader& header,
                                                 std::span<const std::byte> body) {
  const std::string context = "checkpoint generation " + std::to_string(header.generation);
  if (body.size() < header.body_length) {
    return Status::Error(EINVAL, kCheckpointOp, kCheckpointSubject)
        .WithDetail(context + ": torn checkpoint: body is " + std::to_string(body.size()) +
                    " bytes, the header says " + std::to_string(header.body_length));
  }
  const auto payload = body.first(header.body_length);
  if (Crc32c(payload) != header.body_crc) {
    return Status::Error(EINVAL, kCheckpointOp, kCheckpointSubject)
        .WithDetail(context + ": bad body checksum");
  }
  return DecodeCounted(payload, header.record_count, kCheckpointOp, kCheckpointSubject, context);
}

}  // namespace nvswapfs::fs
