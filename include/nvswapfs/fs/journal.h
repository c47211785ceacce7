// Framing of the metadata log's commits and of checkpoints.
//
// Log: the log region holds commits one after another, each starting on a
// kBlockSize boundary and padded with zeros to the next one. A commit is the
// unit of atomicity: all of its records apply, or none.
//
// Commit header (64 bytes, little-endian), followed by the payload:
//
//   off size field
//     0    8 magic "NVSWLOG1"
//     8   16 volume uuid
//    24    8 sequence (consecutive; the first after a checkpoint is that
//              checkpoint's next_sequence)
//    32    4 payload length (bytes of encoded records after the header)
//    36    4 record count
//    40    8 next_ino (the next inode number to hand out)
//    48    4 payload crc32c
//    52    8 boot: 0 for an ordered commit (the device was flushed before
//              it was written, so the data it points to is durable); else
//              an unordered one, written without that flush, and the tag of
//              the machine boot that wrote it (BootTag in store.h)
//    60    4 header crc32c of bytes [0, 60)
//    64    . payload (records.h), then zeros up to a kBlockSize multiple
//
// Replay reads commits from the start of the log region while each one is
// valid and has the expected sequence; the first invalid one (torn, corrupt,
// stale from before the last checkpoint, or from another volume) ends the
// log, and everything from it on is ignored. An unordered commit is trusted
// when an ordered one follows it (that one's flush made both it and its data
// durable) or when the machine has not restarted since it was written (its
// data is with the kernel, whatever happened to the process). Otherwise a
// power cut may have kept it and lost its data, and the log ends before it.
//
// Checkpoint slot: a header block, then the body (a list of records that
// rebuilds the whole namespace from nothing):
//
//   off size field
//     0    8 magic "NVSWCKPT"
//     8   16 volume uuid
//    24    8 generation (larger is newer; the two slots alternate)
//    32    8 next_sequence (of the first log commit after this checkpoint)
//    40    8 next_ino
//    48    8 body length (bytes, after the header block)
//    56    4 body record count
//    60    4 body crc32c
//    64   60 reserved (0)
//   124    4 header crc32c of bytes [0, 124)
//   ...      zeros to kBlockSize, then the body, padded to kBlockSize
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "nvswapfs/fs/records.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/status.h"

namespace nvswapfs::fs {

constexpr size_t kCommitHeaderSize = 64;

struct CommitHeader {
  Uuid uuid{};
  uint64_t sequence = 0;
  uint32_t payload_length = 0;
  uint32_t record_count = 0;
  uint64_t next_ino = 0;
  uint32_t payload_crc = 0;
  uint64_t boot = 0;  // 0: ordered
};

// Encodes a commit of `records` (header + payload + zero padding to a
// kBlockSize multiple) and appends it to `out`; `boot` as in the header.
void EncodeCommit(const Uuid& uuid, uint64_t sequence, uint64_t next_ino,
                  const std::vector<Record>& records, std::vector<std::byte>* out,
                  uint64_t boot = 0);

// Decodes the commit header at the start of `block` (at least
// kCommitHeaderSize bytes). EINVAL for bad magic or header checksum, or a
// payload length over 1 GiB; ESTALE for another volume's uuid. Errors have
// op "read log commit", subject "metadata log".
Result<CommitHeader> DecodeCommitHeader(std::span<const std::byte> block, const Uuid& uuid);

// The bytes a commit with this header occupies, padding included.
uint64_t CommitSpan(const CommitHeader& header);

// Checks the payload checksum and decodes the records of a commit whose
// whole span is `commit` (header included). EINVAL on any mismatch: fewer
// than CommitSpan(header) bytes (a torn commit), a bad payload checksum, a
// bad record, or a record count other than header.record_count.
Result<std::vector<Record>> DecodeCommitRecords(const CommitHeader& header,
                                                std::span<const std::byte> commit);

struct CheckpointHeader {
  Uuid uuid{};
  uint64_t generation = 0;
  uint64_t next_sequence = 0;
  uint64_t next_ino = 0;
  uint64_t body_length = 0;
  uint32_t record_count = 0;
  uint32_t body_crc = 0;
};

// Encodes a whole checkpoint: header block followed by the body, padded to
// kBlockSize. `body` is the concatenation of the encoded records.
// body_length and body_crc are computed from `body`; record_count must be
// set by the caller.
void EncodeCheckpoint(CheckpointHeader header, std::span<const std::byte> body,
                      std::vector<std::byte>* out);

// Encodes the header block alone into `block`, every field (body_length and
// body_crc included) as the caller set it: for a writer that lays the body
// out after the block itself, without building the whole checkpoint twice.
void EncodeCheckpointHeader(const CheckpointHeader& header, std::span<std::byte, kBlockSize> block);

// Decodes and checks a checkpoint header block (all kBlockSize bytes of it).
// EINVAL for bad magic or checksum or a body length over 1 GiB, ESTALE for
// another volume's uuid. Errors have op "read checkpoint", subject
// "checkpoint".
Result<CheckpointHeader> DecodeCheckpointHeader(std::span<const std::byte> block, const Uuid& uuid);

// Checks the body checksum and decodes its records. `body` starts right
// after the header block and may run past body_length (the padding or the
// rest of the slot). EINVAL when it is shorter (a torn checkpoint), on a bad
// checksum or record, or when the record count differs from the header's.
Result<std::vector<Record>> DecodeCheckpointBody(const CheckpointHeader& header,
                                                 std::span<const std::byte> body);

}  // namespace nvswapfs::fs
