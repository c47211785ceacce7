#include "nvswapfs/fs/store.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>

#include "nvswapfs/aio/buffer.h"
#include "nvswapfs/fs/codec.h"
#include "nvswapfs/units.h"

namespace nvswapfs::fs {
namespace {

using aio::AlignedBuffer;
using aio::IoOp;

// Log replay reads ahead this much at a time.
constexpr uint64_t kLogWindow = 4 * kMiB;

Result<AlignedBuffer> ReadDevice(aio::IoEngine& engine, uint64_t offset, uint64_t length) {
  auto buf = AlignedBuffer::Allocate(length);
  if (!buf.ok()) return buf;
  NVSWAPFS_RETURN_IF_ERROR(engine.Execute({IoOp::kRead, offset, buf->data(), length}));
  return buf;
}

std::string Detail(const Status& s) {
  return s.detail().empty() ? std::string(std::strerror(s.code())) : std::string(s.detail());
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

uint64_t ReadBootTag() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  if (!(in >> id)) return 0;
  uint64_t tag = 0;
  int digits = 0;
  for (char c : id) {
    int v;
    if (c >= '0' && c <= '9') {
      v = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      v = c - 'a' + 10;
    } else {
      continue;  // the dashes
    }
    if (digits++ < 16) tag = tag << 4 | static_cast<uint64_t>(v);
  }
  if (digits != 32) return 0;
  return tag != 0 ? tag : 1;  // 0 means ordered
}

}  // namespace

uint64_t BootTag() {
  static const uint64_t tag = ReadBootTag();
  return tag;
}

std::vector<std::string> LoadReport::Notes() const {
  std::vector<std::string> notes;
  if (!primary_superblock_ok) {
    notes.push_back("primary superblock is damaged (" + primary_superblock_error +
                    "); using the backup copy");
  } else if (!backup_superblock_ok) {
    notes.push_back("backup superblock is damaged (" + backup_superblock_error + ")");
  }
  for (std::string& n : VolumeNotes()) notes.push_back(std::move(n));
  return notes;
}

std::vector<std::string> LoadReport::VolumeNotes() const {
  std::vector<std::string> notes;
  if (device_size > volume_size && volume_size != 0) {
    notes.push_back("the device (" + FormatSize(device_size) + ") is larger than the volume (" +
                    FormatSize(volume_size) + "); the rest is unused");
  }
  if (commits_dropped != 0) {
    notes.push_back(std::to_string(commits_dropped) +
                    " log commit(s) made at close, without a device flush, before the machine "
                    "restarted were not applied: files closed but not fsync'd in the seconds "
                    "before it went down are as they were before");
  }
  for (std::string& n : DamageNotes()) notes.push_back(std::move(n));
  return notes;
}

std::vector<std::string> LoadReport::DamageNotes() const {
  std::vector<std::string> notes;
  if (!lost.empty()) notes.push_back(lost);
  if (lost_newer_checkpoint) {
    // Said above.
  } else if (damaged_newer_generation != 0) {
    // A crash while a checkpoint is written tears it and loses nothing (the
    // log it would replace is still there); damage that comes later does.
    notes.push_back("the newest checkpoint (generation " +
                    std::to_string(damaged_newer_generation) + ") is damaged (" +
                    other_checkpoint_error + "); opened from generation " +
                    std::to_string(checkpoint_generation) +
                    " and the log after it: nothing is lost if a crash tore it, changes made "
                    "after it are lost if it was damaged later");
  } else if (!other_checkpoint_error.empty() && !other_checkpoint_blank) {
    notes.push_back("checkpoint slot " + std::to_string(1 - checkpoint_slot) +
                    " not used: " + other_checkpoint_error);
  }
  return notes;
}

Result<Superblock> MetadataStore::ReadSuperblock(aio::IoEngine& engine, LoadReport* report) {
  const aio::DeviceInfo& dev = engine.device();
  const uint64_t size = RoundDown(dev.size, kBlockSize);
  if (size < 2 * kBlockSize) {
    return Status::Error(EINVAL, "open volume", dev.path).WithDetail("device too small");
  }
  auto read = [&](uint64_t offset, uint64_t expected_size,
                  std::string_view where) -> Result<Superblock> {
    auto block = ReadDevice(engine, offset, kBlockSize);
    if (!block.ok()) return block.status();
    return DecodeSuperblock(block->span(), expected_size, where);
  };
  // The primary copy says how large the volume was made; an image file may
  // have grown since, and the backup copy sits at the volume's end.
  Result<Superblock> primary = read(0, 0, "primary superblock");
  uint64_t volume_size = size;
  if (primary.ok()) {
    if (primary->device_size > size) {
      return Status::Error(EINVAL, "open volume", dev.path)
          .WithDetail("the device holds " + FormatSize(size) + " but the volume was made for " +
                      FormatSize(primary->device_size) + ": it was truncated");
    }
    volume_size = primary->device_size;
  }
  Result<Superblock> backup = read(volume_size - kBlockSize, volume_size, "backup superblock");
  report->primary_superblock_ok = primary.ok();
  report->backup_superblock_ok = backup.ok();
  if (!primary.ok()) report->primary_superblock_error = Detail(primary.status());
  if (!backup.ok()) report->backup_superblock_error = Detail(backup.status());
  report->device_size = size;
  if (primary.ok() || backup.ok()) {
    Superblock sb = primary.ok() ? *primary : *backup;
    report->volume_size = sb.device_size;
    return sb;
  }
  const int code = primary.status().code() == EPROTONOSUPPORT ? EPROTONOSUPPORT : EINVAL;
  return Status::Error(code, "open volume", dev.path)
      .WithDetail(
          "no valid nvswapfs superblock: primary superblock: " + report->primary_superblock_error +
          "; backup superblock: " + report->backup_superblock_error);
}

Result<MetadataStore> MetadataStore::Load(aio::IoEngine& engine, Metadata* metadata,
                                          LoadReport* report, bool accept_loss,
                                          std::optional<uint64_t> boot) {
  auto sb = ReadSuperblock(engine, report);
  if (!sb.ok()) return sb.status();
  MetadataStore store(engine, *sb);
  store.boot_ = boot.value_or(BootTag());
  const std::string& path = engine.device().path;

  // The newest checkpoint that reads back whole wins.
  struct Candidate {
    int slot;
    CheckpointHeader header;
  };
  std::vector<Candidate> candidates;
  std::string slot_errors[2];
  bool slot_blank[2] = {false, false};
  bool slot_unreadable[2] = {false, false};  // its header, that is
  for (int slot = 0; slot < 2; ++slot) {
    auto block = ReadDevice(engine, sb->ckpt_offset[slot], kBlockSize);
    if (!block.ok()) {
      slot_errors[slot] = block.status().ToString();
      slot_unreadable[slot] = true;
      continue;
    }
    auto header = DecodeCheckpointHeader(block->span(), sb->uuid);
    if (!header.ok()) {
      slot_errors[slot] = Detail(header.status());
      slot_unreadable[slot] = true;
      slot_blank[slot] = std::all_of(block->span().begin(), block->span().end(),
                                     [](std::byte b) { return b == std::byte{0}; });
      continue;
    }
    candidates.push_back({slot, *header});
  }
  std::sort(candidates.begin(), candidates.end(), [](const Candidate& a, const Candidate& b) {
    return a.header.generation > b.header.generation;
  });
  bool loaded = false;
  uint64_t damaged_newer = 0;
  for (const Candidate& c : candidates) {
    if (loaded) break;
    // Any `continue` below means this candidate is damaged; it is newer than
    // any still to come.
    damaged_newer = std::max(damaged_newer, c.header.generation);
    if (c.header.body_length > sb->ckpt_size - kBlockSize) {
      slot_errors[c.slot] =
          "body length " + std::to_string(c.header.body_length) + " exceeds the slot";
      continue;
    }
    Metadata fresh;
    Status s;
    if (c.header.body_length > 0) {
      auto body = ReadDevice(engine, sb->ckpt_offset[c.slot] + kBlockSize,
                             RoundUp(c.header.body_length, kBlockSize));
      if (!body.ok()) {
        slot_errors[c.slot] = body.status().ToString();
        continue;
      }
      auto records = DecodeCheckpointBody(c.header, std::span(body->data(), c.header.body_length));
      if (!records.ok()) {
        slot_errors[c.slot] = Detail(records.status());
        continue;
      }
      for (const Record& r : *records) {
        s = fresh.Apply(r);
        if (!s.ok()) break;
      }
    }
    if (!s.ok()) {
      slot_errors[c.slot] = Detail(s);
      continue;
    }
    *metadata = std::move(fresh);
    store.active_slot_ = c.slot;
    store.generation_ = c.header.generation;
    store.next_sequence_ = c.header.next_sequence;
    store.next_ino_ = c.header.next_ino;
    report->checkpoint_slot = c.slot;
    report->checkpoint_generation = c.header.generation;
    report->other_checkpoint_error = slot_errors[1 - c.slot];
    report->other_checkpoint_blank = slot_blank[1 - c.slot];
    report->damaged_newer_generation = candidates.front().slot != c.slot ? damaged_newer : 0;
    loaded = true;
  }
  if (!loaded) {
    return Status::Error(EUCLEAN, "open volume", path)
        .WithDetail("no valid checkpoint: slot 0: " + slot_errors[0] +
                    "; slot 1: " + slot_errors[1]);
  }

  // Replay the log up to the first commit that does not belong.
  std::vector<std::byte> window;
  uint64_t window_start = 0;
  auto ensure = [&](uint64_t offset, uint64_t length) -> Status {
    if (offset >= window_start && offset + length <= window_start + window.size()) {
      return Status::Ok();
    }
    const uint64_t want = std::min(std::max(length, kLogWindow), sb->log_size - offset);
    auto buf = ReadDevice(engine, sb->log_offset + offset, want);
    if (!buf.ok()) return buf.status();
    window.assign(buf->data(), buf->data() + want);
    window_start = offset;
    return Status::Ok();
  };
  uint64_t tail = 0;     // where the next commit would start
  uint64_t applied = 0;  // the end of the last commit applied
  uint64_t expected = store.next_sequence_;
  // Unordered commits of another boot, held back until an ordered commit
  // vouches for them (journal.h); still held at the end, they are dropped.
  struct Held {
    CommitHeader header;
    std::vector<Record> records;
    uint64_t end;
  };
  std::vector<Held> held;
  auto apply = [&](const CommitHeader& header, const std::vector<Record>& records,
                   uint64_t end) -> Status {
    for (const Record& r : records) {
      Status s = metadata->Apply(r);
      if (!s.ok()) {
        return std::move(s).WithSubject(path).WithDetail(std::string(s.detail()) + " (log commit " +
                                                         std::to_string(header.sequence) + ")");
      }
    }
    report->commits_replayed++;
    report->records_replayed += records.size();
    store.next_ino_ = std::max(store.next_ino_, header.next_ino);
    store.next_sequence_ = header.sequence + 1;
    store.unsealed_ = header.boot != 0;
    applied = end;
    return Status::Ok();
  };
  report->log_end = kLogEndClean;
  bool cut = false;
  // A commit of this volume numbered past the one replay expected: proof
  // that the device held a newer state than the one loaded.
  uint64_t later_sequence = 0;
  uint64_t later_offset = 0;
  while (tail + kBlockSize <= sb->log_size) {
    if (Status s = ensure(tail, kBlockSize); !s.ok()) return s;
    auto header =
        DecodeCommitHeader(std::span(window.data() + (tail - window_start), kBlockSize), sb->uuid);
    if (!header.ok()) {
      // Zeros are the normal end; anything else is a torn or stale tail.
      const bool blank = std::all_of(window.begin() + static_cast<long>(tail - window_start),
                                     window.begin() + static_cast<long>(tail - window_start + 64),
                                     [](std::byte b) { return b == std::byte{0}; });
      if (!blank) {
        report->log_end =
            "log cut at offset " + std::to_string(tail) + ": " + Detail(header.status());
        cut = true;
      }
      break;
    }
    if (header->sequence != expected) {
      // A commit from before the current checkpoint ends the log; one from
      // after it means something newer could not be loaded.
      if (header->sequence > expected) {
        later_sequence = header->sequence;
        later_offset = tail;
      }
      break;
    }
    const uint64_t span = CommitSpan(*header);
    if (span > sb->log_size - tail) {
      report->log_end = "log cut at offset " + std::to_string(tail) + ": commit runs past the log";
      cut = true;
      break;
    }
    if (Status s = ensure(tail, span); !s.ok()) return s;
    auto records =
        DecodeCommitRecords(*header, std::span(window.data() + (tail - window_start), span));
    if (!records.ok()) {
      report->log_end =
          "log cut at offset " + std::to_string(tail) + ": " + Detail(records.status());
      cut = true;
      break;
    }
    if (header->boot == 0) {
      for (const Held& h : held) NVSWAPFS_RETURN_IF_ERROR(apply(h.header, h.records, h.end));
      held.clear();
      NVSWAPFS_RETURN_IF_ERROR(apply(*header, *records, tail + span));
    } else if (held.empty() && header->boot == store.boot_) {
      NVSWAPFS_RETURN_IF_ERROR(apply(*header, *records, tail + span));
    } else {
      held.push_back({*header, std::move(*records), tail + span});
    }
    expected++;
    tail += span;
  }
  report->commits_dropped = held.size();
  if (cut && later_sequence == 0) {
    // A crash tears only the last commit: behind it lie zeros or commits
    // from before the checkpoint. A later commit of ours behind the cut means
    // a commit in the middle was damaged, and all after it are lost.
    if (Status s = ensure(tail, std::min(kLogWindow, sb->log_size - tail)); !s.ok()) return s;
    for (uint64_t at = tail + kBlockSize;
         at + kBlockSize <= std::min(sb->log_size, window_start + window.size());
         at += kBlockSize) {
      auto later =
          DecodeCommitHeader(std::span(window.data() + (at - window_start), kBlockSize), sb->uuid);
      if (later.ok() && later->sequence > expected) {
        later_sequence = later->sequence;
        later_offset = at;
        break;
      }
    }
  }
  // The next commit overwrites the first one dropped.
  store.log_tail_ = applied;
  report->log_bytes = applied;
  if (later_sequence == 0) return store;

  const std::string later =
      "commit " + std::to_string(later_sequence) + " at log offset " + std::to_string(later_offset);
  const int other = 1 - store.active_slot_;
  if (report->damaged_newer_generation != 0 || (slot_unreadable[other] && !slot_blank[other])) {
    report->lost_newer_checkpoint = true;
    report->lost = "checkpoint slot " + std::to_string(other) + " is damaged (" +
                   slot_errors[other] + ") and the log holds changes made after it (" + later +
                   ", while generation " + std::to_string(report->checkpoint_generation) +
                   " in slot " + std::to_string(store.active_slot_) + " expects " +
                   std::to_string(expected) + "): the volume would go back to " +
                   "an older state and lose them";
  } else if (cut) {
    report->lost = "log commit " + std::to_string(expected) + " at offset " + std::to_string(tail) +
                   " is damaged and later ones follow it (" + later +
                   "): the changes from it on would be lost";
  } else {
    report->lost = "the log skips from commit " + std::to_string(expected) + " to " + later +
                   ": the changes in between are missing";
  }
  if (!accept_loss) {
    return Status::Error(EUCLEAN, "open volume", path)
        .WithDetail(report->lost + "; run fsck.nvswapfs");
  }
  // Whatever repair writes next must start past every commit still there.
  report->highest_log_sequence = later_sequence;
  for (uint64_t at = 0; at < sb->log_size; at += kLogWindow) {
    const uint64_t length = std::min(kLogWindow, sb->log_size - at);
    auto buf = ReadDevice(engine, sb->log_offset + at, length);
    if (!buf.ok()) return buf.status();
    for (uint64_t b = 0; b + kBlockSize <= length; b += kBlockSize) {
      auto h = DecodeCommitHeader(std::span(buf->data() + b, kBlockSize), sb->uuid);
      if (h.ok())
        report->highest_log_sequence = std::max(report->highest_log_sequence, h->sequence);
    }
  }
  return store;
}

Status MetadataStore::WriteAt(uint64_t offset, std::vector<std::byte>& bytes) {
  const uint64_t length = RoundUp(bytes.size(), kBlockSize);
  auto buf = AlignedBuffer::Allocate(length);
  if (!buf.ok()) return buf.status();
  std::memcpy(buf->data(), bytes.data(), bytes.size());
  return engine_->Execute({IoOp::kWrite, offset, buf->data(), length});
}

Status MetadataStore::Commit(const std::vector<Record>& records, uint64_t next_ino,
                             bool flush_data_first, bool flush_after) {
  const bool ordered = flush_data_first || boot_ == 0;
  std::vector<std::byte> bytes;
  EncodeCommit(sb_.uuid, next_sequence_, next_ino, records, &bytes, ordered ? 0 : boot_);
  if (bytes.size() > sb_.log_size - log_tail_) {
    return Status::Error(ENOSPC, "commit", engine_->device().path).WithDetail("log full");
  }
  if (ordered) NVSWAPFS_RETURN_IF_ERROR(engine_->Flush());
  NVSWAPFS_RETURN_IF_ERROR(WriteAt(sb_.log_offset + log_tail_, bytes));
  if (flush_after) NVSWAPFS_RETURN_IF_ERROR(engine_->Flush());
  unsealed_ = !ordered;
  log_tail_ += bytes.size();
  next_sequence_++;
  next_ino_ = next_ino;
  return Status::Ok();
}

Status MetadataStore::Checkpoint(const Metadata& metadata, uint64_t next_ino) {
  std::vector<std::byte> body;
  const uint32_t record_count = metadata.EncodeCheckpoint(&body);
  return WriteCheckpoint(body, record_count, next_ino);
}

Status MetadataStore::WriteCheckpoint(std::span<const std::byte> body, uint32_t record_count,
                                      uint64_t next_ino) {
  CheckpointHeader header;
  header.record_count = record_count;
  header.uuid = sb_.uuid;
  header.generation = generation_ + 1;
  // Strictly past every commit already in the log, so none of them can be
  // mistaken for one that follows this checkpoint.
  header.next_sequence = next_sequence_ + 1;
  header.next_ino = next_ino;
  header.body_length = body.size();
  header.body_crc = Crc32c(body);
  const uint64_t length = kBlockSize + RoundUp(body.size(), kBlockSize);
  if (length > sb_.ckpt_size) {
    return Status::Error(ENOSPC, "checkpoint", engine_->device().path)
        .WithDetail("metadata (" + FormatSize(length) + ") exceeds the checkpoint slot (" +
                    FormatSize(sb_.ckpt_size) + ")");
  }
  // The header block, the body and its padding laid out in the one buffer
  // written: a checkpoint of a large namespace is tens of MiB, copied once.
  auto buf = AlignedBuffer::Allocate(length);  // zero-filled: the padding
  if (!buf.ok()) return buf.status();
  EncodeCheckpointHeader(header, std::span<std::byte, kBlockSize>(buf->data(), kBlockSize));
  if (!body.empty()) std::memcpy(buf->data() + kBlockSize, body.data(), body.size());
  const int slot = 1 - active_slot_;
  NVSWAPFS_RETURN_IF_ERROR(engine_->Flush());
  NVSWAPFS_RETURN_IF_ERROR(
      engine_->Execute({IoOp::kWrite, sb_.ckpt_offset[slot], buf->data(), length}));
  NVSWAPFS_RETURN_IF_ERROR(engine_->Flush());
  active_slot_ = slot;
  unsealed_ = false;
  generation_ = header.generation;
  next_sequence_ = header.next_sequence;
  next_ino_ = next_ino;
  log_tail_ = 0;
  return Status::Ok();
}

Status MetadataStore::WriteSuperblockCopy(aio::IoEngine& engine, Superblock sb, int copy) {
  sb.copy = static_cast<uint32_t>(copy);
  auto buf = AlignedBuffer::Allocate(kBlockSize);
  if (!buf.ok()) return buf.status();
  EncodeSuperblock(sb, std::span<std::byte, kBlockSize>(buf->data(), kBlockSize));
  const uint64_t offset = copy == 0 ? 0 : sb.backup_offset();
  NVSWAPFS_RETURN_IF_ERROR(engine.Execute({IoOp::kWrite, offset, buf->data(), kBlockSize}));
  return engine.Flush();
}

Status MetadataStore::Format(aio::IoEngine& engine, const Superblock& sb, uint32_t root_uid,
                             uint32_t root_gid) {
  MetadataStore store(engine, sb);
  // Whatever an earlier volume left in the second slot and the log must not
  // be read as ours (their uuid differs too; this is belt and braces).
  std::vector<std::byte> zeros(kBlockSize);
  NVSWAPFS_RETURN_IF_ERROR(store.WriteAt(sb.ckpt_offset[1], zeros));
  NVSWAPFS_RETURN_IF_ERROR(store.WriteAt(sb.log_offset, zeros));

  Metadata metadata;
  InodeRecord root;
  root.ino = kRootIno;
  root.mode = S_IFDIR | 0755;
  root.uid = root_uid;
  root.gid = root_gid;
  root.nlink = 2;
  root.atime_ns = root.mtime_ns = root.ctime_ns = root.btime_ns = NowNs();
  root.next_cookie = 1;
  metadata.Upsert(root);
  // Slot 1 is "active" so that the first checkpoint lands in slot 0 with
  // generation 1.
  store.active_slot_ = 1;
  store.generation_ = 0;
  store.next_sequence_ = 0;
  NVSWAPFS_RETURN_IF_ERROR(store.Checkpoint(metadata, kRootIno + 1));

  // The superblocks last: until they exist, the device is not a volume.
  NVSWAPFS_RETURN_IF_ERROR(WriteSuperblockCopy(engine, sb, 1));
  return WriteSuperblockCopy(engine, sb, 0);
}

}  // namespace nvswapfs::fs
