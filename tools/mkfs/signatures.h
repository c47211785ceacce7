// What a device already holds, so that mkfs does not destroy it by mistake.
#pragma once

#include <string>
#include <vector>

#include "nvswapfs/aio/engine.h"
#include "nvswapfs/status.h"

namespace nvswapfs::mkfs {

// Looks for an nvswapfs superblock magic in block 0 and in the device's last
// 4 KiB block (the backup copy). Returns a description such as
// `an nvswapfs volume (label "ckpt", uuid ...)`, or "" when there is none.
// A magic with a damaged superblock behind it still counts: the rest of the
// volume may be recoverable with fsck.nvswapfs.
Result<std::string> FindNvswapfs(aio::IoEngine& engine);

// Asks libblkid for filesystem, RAID, crypto and partition-table signatures
// on `path`. Returns descriptions such as "an ext4 filesystem" or "a gpt
// partition table" (empty when libblkid finds nothing).
Result<std::vector<std::string>> FindForeign(const std::string& path);

// Erases every signature libblkid recognises on `path` (through a separate
// buffered descriptor, synced before returning), so that neither blkid nor
// udev mistakes the new volume for what was there before: the format only
// overwrites the first 4 KiB, a little metadata and the last 4 KiB, and a
// signature elsewhere (btrfs at 64 KiB, a GPT backup) would survive it.
// Returns one line per erased signature.
Result<std::vector<std::string>> WipeForeign(const std::string& path);

}  // namespace nvswapfs::mkfs
