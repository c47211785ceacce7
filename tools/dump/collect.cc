#include "collect.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <utility>

namespace nvswapfs::dump {
namespace {

using fs::kBlockSize;

std::vector<Region> RegionsOf(const fs::Superblock& sb) {
  return {
      {"primary superblock", 0, kBlockSize},
      {"checkpoint slot 0", sb.ckpt_offset[0], sb.ckpt_size},
      {"checkpoint slot 1", sb.ckpt_offset[1], sb.ckpt_size},
      {"log", sb.log_offset, sb.log_size},
      {"data region", sb.data_offset, sb.data_size},
      {"backup superblock", sb.backup_offset(), kBlockSize},
  };
}

void Count(const fs::Metadata& meta, Counts* counts) {
  counts->inodes = meta.inode_count();
  for (const auto& [ino, inode] : meta.inodes()) {
    if (inode->is_reg()) {
      counts->files++;
    } else if (inode->is_dir()) {
      counts->directories++;
    } else if (inode->is_symlink()) {
      counts->symlinks++;
    } else {
      counts->other++;
    }
    if (inode->attr.nlink == 0) counts->deleted_while_open++;
  }
}

// Counts the allocation units the extents touch (each once, however many
// extents share it). Extents are taken as they are on the device, so the
// arithmetic guards against values a damaged volume may hold.
void MeasureSpace(const fs::Superblock& sb, const fs::Metadata& meta, Space* space) {
  space->data_units = sb.data_size / sb.alloc_unit;
  // Runs of units [first, last], kept per extent rather than as one bit per
  // unit: memory follows the number of extents, not the device size.
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  const uint64_t data_end = sb.data_offset + sb.data_size;
  for (const auto& [ino, inode] : meta.inodes()) {
    for (const fs::Extent& e : inode->extents.extents()) {
      space->extents++;
      space->mapped_blocks += e.count;
      if (e.unwritten) space->unwritten_blocks += e.count;
      const uint64_t last_block = e.physical + e.count - 1;
      const bool representable =
          e.count > 0 && last_block >= e.physical && last_block < UINT64_MAX / kBlockSize;
      if (!representable || e.physical * kBlockSize < sb.data_offset ||
          (last_block + 1) * kBlockSize > data_end) {
        space->blocks_outside_data += e.count;
        continue;
      }
      runs.emplace_back((e.physical * kBlockSize - sb.data_offset) / sb.alloc_unit,
                        (last_block * kBlockSize - sb.data_offset) / sb.alloc_unit);
    }
  }
  std::sort(runs.begin(), runs.end());
  uint64_t counted_to = 0;  // units below this are counted already
  for (const auto& [first, last] : runs) {
    const uint64_t from = std::max(first, counted_to);
    if (last + 1 > from) space->used_units += last + 1 - from;
    counted_to = std::max(counted_to, last + 1);
  }
  space->used_bytes = space->used_units * sb.alloc_unit;
  space->free_bytes = sb.data_size - space->used_bytes;
}

// Walks `path` from the root through directory entries. Symlinks are shown,
// not followed (like lstat), and only ".." needs the parent the metadata
// remembers for each directory.
void Resolve(const fs::Metadata& meta, PathReport* report) {
  const fs::Inode* node = meta.Find(fs::kRootIno);
  if (node == nullptr) {
    report->error = "the root directory is missing";
    return;
  }
  std::string walked;
  std::string_view rest = report->path;
  while (!rest.empty()) {
    const size_t slash = rest.find('/');
    const std::string_view name = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (name.empty() || name == ".") continue;
    const std::string here = walked.empty() ? "/" : walked;
    if (!node->dir) {
      report->error = here + " is not a directory";
      return;
    }
    uint64_t next = 0;
    if (name == "..") {
      next = node->attr.ino == fs::kRootIno || node->parent == 0 ? fs::kRootIno : node->parent;
      const size_t cut = walked.rfind('/');
      walked.resize(cut == std::string::npos ? 0 : cut);
    } else {
      const fs::DirEntry* entry = node->dir->Find(name);
      if (entry == nullptr) {
        report->error =
            "no such file or directory: no entry \"" + std::string(name) + "\" in " + here;
        return;
      }
      next = entry->ino;
      walked += "/" + std::string(name);
    }
    node = meta.Find(next);
    if (node == nullptr) {
      report->error = (walked.empty() ? std::string("/") : walked) + " points to inode " +
                      std::to_string(next) + ", which does not exist";
      return;
    }
  }
  report->inode = node;
  for (const fs::Extent& e : node->extents.extents()) {
    report->extents.push_back({.logical = e.logical,
                               .physical = e.physical,
                               .device_offset = e.physical * kBlockSize,
                               .blocks = e.count,
                               .bytes = uint64_t{e.count} * kBlockSize,
                               .unwritten = e.unwritten});
  }
}

}  // namespace

bool DumpData::paths_ok() const {
  for (const PathReport& p : paths) {
    if (!p.error.empty()) return false;
  }
  return true;
}

void Collect(aio::IoEngine& engine, const std::vector<std::string>& paths, DumpData* out) {
  out->device = engine.device().path;
  out->device_info = engine.device();
  Result<fs::MetadataStore> store = fs::MetadataStore::Load(engine, &out->metadata, &out->load,
                                                            /*accept_loss=*/true);
  if (store.ok()) {
    out->superblock = store->superblock();
  } else {
    out->error = store.status().ToString();
    // Loading fails past the superblocks too (no valid checkpoint, a log
    // that contradicts it); the superblock is still worth showing then.
    fs::LoadReport again;
    Result<fs::Superblock> sb = fs::MetadataStore::ReadSuperblock(engine, &again);
    if (sb.ok()) out->superblock = *sb;
  }
  if (out->superblock) out->regions = RegionsOf(*out->superblock);
  if (!out->loaded()) {
    for (const std::string& path : paths) {
      PathReport report;
      report.path = path;
      report.error = "the volume could not be loaded";
      out->paths.push_back(std::move(report));
    }
    return;
  }
  Count(out->metadata, &out->counts);
  MeasureSpace(*out->superblock, out->metadata, &out->space);
  for (const std::string& path : paths) {
    PathReport report;
    report.path = path;
    Resolve(out->metadata, &report);
    out->paths.push_back(std::move(report));
  }
}

std::string IsoTime(int64_t ns) {
  // Floor division, so that times before 1970 come out right too.
  int64_t seconds = ns / 1'000'000'000;
  int64_t fraction = ns % 1'000'000'000;
  if (fraction < 0) {
    fraction += 1'000'000'000;
    seconds -= 1;
  }
  const auto t = static_cast<time_t>(seconds);
  struct tm utc {};
  if (gmtime_r(&t, &utc) == nullptr) return std::to_string(ns) + " ns";
  char date[32];
  std::strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &utc);
  char out[64];
  std::snprintf(out, sizeof(out), "%s.%09lldZ", date, static_cast<long long>(fraction));
  return out;
}

const char* TypeName(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "regular file";
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "symlink";
    default:
      return "other";
  }
}

const char* TypeKey(uint32_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG:
      return "file";
    case S_IFDIR:
      return "directory";
    case S_IFLNK:
      return "symlink";
    default:
      return "other";
  }
}

std::string PermissionString(uint32_t mode) {
  std::string s = S_ISDIR(mode) ? "d" : S_ISLNK(mode) ? "l" : S_ISREG(mode) ? "-" : "?";
  static constexpr char kRwx[] = "rwxrwxrwx";
  for (int bit = 0; bit < 9; ++bit) s += (mode & (0400u >> bit)) ? kRwx[bit] : '-';
  if (mode & S_ISUID) s[3] = (mode & S_IXUSR) ? 's' : 'S';
  if (mode & S_ISGID) s[6] = (mode & S_IXGRP) ? 's' : 'S';
  if (mode & S_ISVTX) s[9] = (mode & S_IXOTH) ? 't' : 'T';
  return s;
}

std::string Octal(uint32_t bits) {
  char out[16];
  std::snprintf(out, sizeof(out), "0%o", bits);
  return out;
}

}  // namespace nvswapfs::dump
