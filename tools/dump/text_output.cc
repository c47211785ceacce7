#include <cstdio>
#include <iomanip>
#include <string>

#include "nvswapfs/units.h"
#include "output.h"

namespace nvswapfs::dump {
namespace {

// "2147483648 bytes (2 GiB)"
std::string Bytes(uint64_t n) {
  return std::to_string(n) + " bytes (" + FormatSize(n) + ")";
}

std::string Hex(uint64_t v) {
  char out[24];
  std::snprintf(out, sizeof(out), "0x%llx", static_cast<unsigned long long>(v));
  return out;
}

class Printer {
 public:
  explicit Printer(std::ostream& out) : out_(out) {}

  void Section(const std::string& title) { out_ << "\n" << title << "\n"; }
  void Line(const std::string& label, const std::string& value, int indent = 2) {
    out_ << std::string(indent, ' ') << std::left << std::setw(28 - indent) << label + ":" << value
         << "\n";
  }
  std::ostream& raw() { return out_; }

 private:
  std::ostream& out_;
};

void PrintSuperblock(const DumpData& data, Printer& p) {
  const fs::LoadReport& load = data.load;
  p.Section("Superblock");
  p.Line("primary copy", load.primary_superblock_ok
                             ? std::string("valid")
                             : "damaged (" + load.primary_superblock_error + ")");
  p.Line("backup copy", load.backup_superblock_ok
                            ? std::string("valid")
                            : "damaged (" + load.backup_superblock_error + ")");
  if (!data.superblock) return;
  const fs::Superblock& sb = *data.superblock;
  p.Line("read from", load.primary_superblock_ok ? "primary copy" : "backup copy");
  p.Line("format version", std::to_string(sb.format_version));
  p.Line("compat features", Hex(sb.compat_features));
  p.Line("ro-compat features", Hex(sb.ro_compat_features));
  p.Line("incompat features", Hex(sb.incompat_features));
  p.Line("uuid", fs::UuidToString(sb.uuid));
  p.Line("label", sb.label.empty() ? std::string("(none)") : "\"" + sb.label + "\"");
  p.Line("block size", Bytes(sb.block_size));
  p.Line("allocation unit", Bytes(sb.alloc_unit));
  p.Line("device size", Bytes(sb.device_size));
  p.Line("created", IsoTime(sb.created_ns));

  p.Section("Layout (bytes)");
  std::ostream& out = p.raw();
  out << "  " << std::left << std::setw(20) << "region" << std::right << std::setw(16) << "offset"
      << std::setw(16) << "bytes"
      << "\n";
  for (const Region& r : data.regions) {
    out << "  " << std::left << std::setw(20) << r.name << std::right << std::setw(16) << r.offset
        << std::setw(16) << r.size << "  " << FormatSize(r.size);
    if (r.name == "data region") out << " (" << sb.data_size / sb.alloc_unit << " units)";
    out << "\n";
  }
}

void PrintLoad(const DumpData& data, Printer& p) {
  const fs::LoadReport& load = data.load;
  const fs::Superblock& sb = *data.superblock;
  p.Section("Checkpoint");
  p.Line("in use", "slot " + std::to_string(load.checkpoint_slot) + ", generation " +
                       std::to_string(load.checkpoint_generation));
  p.Line("other slot", load.other_checkpoint_error.empty()
                           ? std::string("older or empty")
                           : "not used (" + load.other_checkpoint_error + ")");
  if (load.damaged_newer_generation != 0) {
    p.Line("damaged newer", "generation " + std::to_string(load.damaged_newer_generation));
  }
  p.Section("Log replay");
  p.Line("commits replayed", std::to_string(load.commits_replayed) + " (" +
                                 std::to_string(load.records_replayed) + " records)");
  if (load.commits_dropped != 0) {
    p.Line("commits dropped", std::to_string(load.commits_dropped) +
                                  " (made at close before the machine restarted, never flushed)");
  }
  p.Line("log in use", Bytes(load.log_bytes) + " of " + FormatSize(sb.log_size));
  p.Line("replay stopped at", load.log_end);
  const std::vector<std::string> notes = load.Notes();
  if (!notes.empty()) {
    p.Section("Notes");
    for (const std::string& note : notes) p.raw() << "  " << note << "\n";
  }
}

void PrintContents(const DumpData& data, Printer& p) {
  const Counts& c = data.counts;
  const Space& s = data.space;
  const fs::Superblock& sb = *data.superblock;
  p.Section("Contents");
  p.Line("inodes", std::to_string(c.inodes));
  p.Line("regular files", std::to_string(c.files));
  p.Line("directories", std::to_string(c.directories));
  p.Line("symlinks", std::to_string(c.symlinks));
  if (c.other != 0) p.Line("other types", std::to_string(c.other));
  p.Line("deleted while open", std::to_string(c.deleted_while_open));
  p.Section("Space");
  p.Line("extents", std::to_string(s.extents));
  p.Line("mapped", Bytes(s.mapped_blocks * fs::kBlockSize) + ", " +
                       std::to_string(s.mapped_blocks) + " blocks");
  p.Line("unwritten", Bytes(s.unwritten_blocks * fs::kBlockSize));
  p.Line("allocation units used", std::to_string(s.used_units) + " of " +
                                      std::to_string(s.data_units) + " (" +
                                      FormatSize(sb.alloc_unit) + " each)");
  p.Line("used", Bytes(s.used_bytes));
  p.Line("free", Bytes(s.free_bytes));
  if (s.blocks_outside_data != 0) {
    p.Line("outside the data region",
           std::to_string(s.blocks_outside_data) + " blocks (damage: run fsck.nvswapfs)");
  }
}

void PrintExtents(const PathReport& path, Printer& p) {
  std::ostream& out = p.raw();
  p.Line("extents", std::to_string(path.extents.size()));
  if (path.extents.empty()) return;
  out << "    " << std::right << std::setw(14) << "logical" << std::setw(14) << "physical"
      << std::setw(16) << "device offset" << std::setw(12) << "blocks" << std::setw(16) << "bytes"
      << "  state\n";
  for (const ExtentRow& e : path.extents) {
    out << "    " << std::setw(14) << e.logical << std::setw(14) << e.physical << std::setw(16)
        << e.device_offset << std::setw(12) << e.blocks << std::setw(16) << e.bytes << "  "
        << (e.unwritten ? "unwritten" : "written") << "\n";
  }
}

void PrintPath(const PathReport& path, Printer& p) {
  const fs::Inode& inode = *path.inode;
  const fs::InodeRecord& a = inode.attr;
  p.Section(path.path);
  p.Line("inode", std::to_string(a.ino));
  p.Line("type", TypeName(a.mode));
  p.Line("mode", Octal(a.mode & 07777) + " (" + PermissionString(a.mode) + ")");
  p.Line("uid", std::to_string(a.uid));
  p.Line("gid", std::to_string(a.gid));
  p.Line("links", std::to_string(a.nlink));
  p.Line("size", Bytes(a.size));
  p.Line("accessed", IsoTime(a.atime_ns));
  p.Line("modified", IsoTime(a.mtime_ns));
  p.Line("changed", IsoTime(a.ctime_ns));
  p.Line("created", IsoTime(a.btime_ns));
  if (inode.is_symlink()) p.Line("target", a.symlink);
  if (inode.dir) p.Line("entries", std::to_string(inode.dir->size()));
  for (const auto& [name, value] : a.xattrs) {
    p.Line("xattr", name + " (" + std::to_string(value.size()) + " bytes)");
  }
  if (inode.is_reg() || !path.extents.empty()) PrintExtents(path, p);
}

}  // namespace

void PrintText(const DumpData& data, std::ostream& out) {
  Printer p(out);
  out << "nvswapfs volume on " << data.device << " ("
      << (data.device_info.is_block_device ? "block device" : "image file") << ", "
      << FormatSize(data.device_info.size) << ")\n";
  PrintSuperblock(data, p);
  if (!data.loaded()) {
    p.Section("Error");
    out << "  " << data.error << "\n";
    return;
  }
  PrintLoad(data, p);
  PrintContents(data, p);
  for (const PathReport& path : data.paths) {
    if (path.inode != nullptr) PrintPath(path, p);
  }
}

}  // namespace nvswapfs::dump
