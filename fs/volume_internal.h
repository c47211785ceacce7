// Helpers shared by the Volume's source files (and fsck); not a public API.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "nvswapfs/fs/allocator.h"
#include "nvswapfs/fs/metadata.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/status.h"

namespace nvswapfs::fs::internal {

// The allocation units `extents` occupy, sorted and merged. EUCLEAN when an
// extent lies outside the data region.
Result<std::vector<UnitRun>> UnitsOf(const Superblock& sb, const std::vector<Extent>& extents);

// Device block of the first block of data unit `unit`, and back.
uint64_t UnitToBlock(const Superblock& sb, uint64_t unit);
uint64_t BlockToUnit(const Superblock& sb, uint64_t block);

// An extent's encoded size in an inode record.
constexpr size_t kExtentBytes = 21;

// Estimated encoded sizes, for keeping the next checkpoint inside its slot.
size_t InodeBytes(const Inode& inode);
size_t DirentBytes(std::string_view name);
// An inode's and, for a directory, its entries'.
size_t InodeAndEntriesBytes(const Inode& inode);

}  // namespace nvswapfs::fs::internal
