// Everything nvswapfs-dump shows, gathered once from the device so that the
// text and the JSON output present the same facts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nvswapfs/aio/engine.h"
#include "nvswapfs/fs/metadata.h"
#include "nvswapfs/fs/store.h"
#include "nvswapfs/fs/superblock.h"

namespace nvswapfs::dump {

// One region of the layout, in bytes from the start of the device.
struct Region {
  std::string name;
  uint64_t offset = 0;
  uint64_t size = 0;
};

struct Counts {
  uint64_t inodes = 0;
  uint64_t files = 0;
  uint64_t directories = 0;
  uint64_t symlinks = 0;
  uint64_t other = 0;
  uint64_t deleted_while_open = 0;  // link count 0: freed at the next mount
};

// Space as the extents of every inode claim it. Free space is never stored
// on the device: it is the data region minus the allocation units in use.
struct Space {
  uint64_t data_units = 0;
  uint64_t used_units = 0;
  uint64_t used_bytes = 0;  // used_units in bytes
  uint64_t free_bytes = 0;  // the rest of the data region
  uint64_t extents = 0;
  uint64_t mapped_blocks = 0;        // written and unwritten
  uint64_t unwritten_blocks = 0;     // allocated, reads as zeros
  uint64_t blocks_outside_data = 0;  // damage: mapped outside the data region
};

struct ExtentRow {
  uint64_t logical = 0;   // file block
  uint64_t physical = 0;  // device block
  uint64_t device_offset = 0;
  uint64_t blocks = 0;
  uint64_t bytes = 0;
  bool unwritten = false;
};

// One PATH from the command line.
struct PathReport {
  std::string path;
  std::string error;                 // why it does not resolve; empty when it does
  const fs::Inode* inode = nullptr;  // into DumpData::metadata
  std::vector<ExtentRow> extents;
};

struct DumpData {
  std::string device;
  aio::DeviceInfo device_info;
  fs::LoadReport load;  // superblock fields valid even when loading failed
  std::optional<fs::Superblock> superblock;
  std::vector<Region> regions;
  // Why the volume could not be loaded (Status::ToString()); empty when it was.
  std::string error;
  fs::Metadata metadata;
  Counts counts;
  Space space;
  std::vector<PathReport> paths;

  bool loaded() const { return error.empty(); }
  // True when every PATH resolved.
  bool paths_ok() const;
};

// Reads the superblocks, checkpoint and log through `engine` and resolves
// `paths`. Never fails: what cannot be read is recorded in the result (a
// damaged volume is exactly when a dump is wanted).
void Collect(aio::IoEngine& engine, const std::vector<std::string>& paths, DumpData* out);

// Helpers the outputs share.
std::string IsoTime(int64_t ns);              // "2024-05-01T12:34:56.123456789Z"
const char* TypeName(uint32_t mode);          // "regular file", "directory", ...
const char* TypeKey(uint32_t mode);           // "file", "directory", "symlink", "other"
std::string PermissionString(uint32_t mode);  // "-rw-r--r--"
std::string Octal(uint32_t bits);             // "0644"

}  // namespace nvswapfs::dump
