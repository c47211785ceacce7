// Where metadata lives on the device: superblocks, the two checkpoint slots
// and the log (layouts in superblock.h and journal.h).
//
// Loading picks a valid superblock copy, the newest valid checkpoint, and
// replays the log after it up to the first commit that is torn, corrupt,
// stale or from another volume. Saving appends commits (each followed by a
// device flush) and writes checkpoints to the slot not in use, so a torn
// checkpoint never loses the previous state.
//
// Not thread-safe: the Volume calls it under its metadata lock.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "nvswapfs/aio/engine.h"
#include "nvswapfs/fs/journal.h"
#include "nvswapfs/fs/metadata.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/status.h"

namespace nvswapfs::fs {

// The tag of this machine's current boot, for unordered log commits
// (journal.h): 64 bits of /proc/sys/kernel/random/boot_id, never 0. 0 when
// it cannot be read; every commit is then ordered.
uint64_t BootTag();

// LoadReport::log_end when replay ran into nothing but the end of the log.
inline constexpr const char* kLogEndClean = "end of log";

// What loading found, beyond the metadata itself.
struct LoadReport {
  bool primary_superblock_ok = false;
  bool backup_superblock_ok = false;
  std::string primary_superblock_error;
  std::string backup_superblock_error;
  int checkpoint_slot = -1;
  uint64_t checkpoint_generation = 0;
  std::string other_checkpoint_error;  // why the other slot was not used
  // The other slot holds nothing at all (a fresh volume's slot 1): not damage.
  bool other_checkpoint_blank = false;
  // A newer checkpoint than the one loaded was found damaged: the volume is
  // back at an older state (0 when not).
  uint64_t damaged_newer_generation = 0;
  uint64_t commits_replayed = 0;
  uint64_t records_replayed = 0;
  uint64_t log_bytes = 0;  // log in use after replay
  // Unordered commits from an earlier boot with no ordered commit after them,
  // left out: written at close, without a flush, just before the machine
  // went down, so a power cut may have kept them and lost their data.
  uint64_t commits_dropped = 0;
  std::string log_end;  // why replay stopped (kLogEndClean, "log cut at ...")
  // The device holds commits newer than the state loaded (one after a cut in
  // the log, or the log of a newer checkpoint that is damaged): what was
  // lost, in one line ("" when nothing provably was).
  std::string lost;
  // `lost` names a newer checkpoint that is damaged (and says all about it).
  bool lost_newer_checkpoint = false;
  // With `lost`: the highest sequence number of any of this volume's commits
  // in the log (what a new checkpoint must start past).
  uint64_t highest_log_sequence = 0;
  // The device is larger than the volume (an image file grown after mkfs):
  // the bytes past the volume are unused.
  uint64_t device_size = 0;
  uint64_t volume_size = 0;
  // Everything above worth telling, one line each.
  std::vector<std::string> Notes() const;
  // The notes about checkpoints and device size only (not superblocks).
  std::vector<std::string> VolumeNotes() const;
  // The notes about damage in the checkpoint slots and the log only.
  std::vector<std::string> DamageNotes() const;
};

class MetadataStore {
 public:
  // Reads superblocks only. Fails when neither copy is valid, naming both.
  static Result<Superblock> ReadSuperblock(aio::IoEngine& engine, LoadReport* report);

  // Loads everything into `metadata` (which must be empty). When the device
  // provably holds a newer state than the one that can be loaded
  // (LoadReport::lost), fails with EUCLEAN naming it, unless `accept_loss`
  // (fsck, dump): then the older state loads, and only a Checkpoint (after
  // SkipPastLog) may follow. `boot` is the current boot's tag (BootTag()
  // when unset): it decides which unordered commits are trusted, and tags
  // those this store writes.
  static Result<MetadataStore> Load(aio::IoEngine& engine, Metadata* metadata, LoadReport* report,
                                    bool accept_loss = false,
                                    std::optional<uint64_t> boot = std::nullopt);

  // Writes a new, empty volume: both superblocks, an initial checkpoint with
  // the root directory (owned by uid/gid, mode 0755), and an empty log.
  static Status Format(aio::IoEngine& engine, const Superblock& sb, uint32_t root_uid,
                       uint32_t root_gid);

  const Superblock& superblock() const { return sb_; }
  uint64_t next_ino() const { return next_ino_; }
  uint64_t log_used() const { return log_tail_; }
  uint64_t log_capacity() const { return sb_.log_size; }
  uint64_t checkpoint_capacity() const { return sb_.ckpt_size - kBlockSize; }
  uint64_t generation() const { return generation_; }
  uint64_t next_sequence() const { return next_sequence_; }

  // Appends one commit. ENOSPC ("log full") when it does not fit in the
  // log's free space: checkpoint instead. The caller has waited for the
  // data writes the records point to. With `flush_data_first` the device is
  // flushed before the write (an ordered commit); without, the commit is
  // unordered, tagged with the boot: it survives the process being killed,
  // but a power cut drops it until an ordered commit follows (unsealed()),
  // and it never points at data a power cut lost. Without a boot tag every
  // commit is ordered. With `flush_after` the commit itself is durable.
  Status Commit(const std::vector<Record>& records, uint64_t next_ino, bool flush_data_first,
                bool flush_after = true);

  // The log ends with unordered commits: an ordered commit (or a
  // checkpoint) makes them survive a power cut too.
  bool unsealed() const { return unsealed_; }

  // Writes `metadata` as a checkpoint to the other slot, flushes, and starts
  // an empty log after it. ENOSPC when it does not fit in a slot.
  Status Checkpoint(const Metadata& metadata, uint64_t next_ino);
  // The same, from a body already encoded (Metadata::EncodeCheckpoint), so
  // that the encoding can be taken under a lock and written outside it.
  Status WriteCheckpoint(std::span<const std::byte> body, uint32_t record_count, uint64_t next_ino);

  // Makes the next checkpoint start the log past `sequence`, so that no
  // commit left in the log can be taken for one that follows it.
  void SkipPastLog(uint64_t sequence) { next_sequence_ = std::max(next_sequence_, sequence + 1); }

  // Rewrites one superblock copy from `sb` (fsck repair).
  static Status WriteSuperblockCopy(aio::IoEngine& engine, Superblock sb, int copy);

 private:
  MetadataStore(aio::IoEngine& engine, Superblock sb) : engine_(&engine), sb_(std::move(sb)) {}
  Status WriteAt(uint64_t offset, std::vector<std::byte>& bytes);

  aio::IoEngine* engine_;
  Superblock sb_;
  int active_slot_ = 0;
  uint64_t generation_ = 0;
  uint64_t next_sequence_ = 1;
  uint64_t next_ino_ = 2;
  uint64_t log_tail_ = 0;  // bytes of the log in use
  uint64_t boot_ = 0;      // tags unordered commits; 0: none are written
  bool unsealed_ = false;
};

}  // namespace nvswapfs::fs
