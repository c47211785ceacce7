#include "json_writer.h"
#include "output.h"

namespace nvswapfs::dump {
namespace {

void WriteCopy(JsonWriter& j, const char* key, bool ok, const std::string& error) {
  j.Key(key);
  j.BeginObject();
  j.Field("valid", ok);
  j.Key("error");
  if (ok) {
    j.Null();
  } else {
    j.String(error);
  }
  j.EndObject();
}

void WriteSuperblock(JsonWriter& j, const DumpData& data) {
  const fs::LoadReport& load = data.load;
  j.Key("superblock");
  j.BeginObject();
  WriteCopy(j, "primary", load.primary_superblock_ok, load.primary_superblock_error);
  WriteCopy(j, "backup", load.backup_superblock_ok, load.backup_superblock_error);
  if (data.superblock) {
    const fs::Superblock& sb = *data.superblock;
    j.Field("read_from", load.primary_superblock_ok ? "primary" : "backup");
    j.Field("format_version", sb.format_version);
    j.Field("compat_features", sb.compat_features);
    j.Field("ro_compat_features", sb.ro_compat_features);
    j.Field("incompat_features", sb.incompat_features);
    j.Field("uuid", fs::UuidToString(sb.uuid));
    j.Field("label", sb.label);
    j.Field("block_size", sb.block_size);
    j.Field("alloc_unit", sb.alloc_unit);
    j.Field("device_size", sb.device_size);
    j.Field("data_units", sb.data_size / sb.alloc_unit);
    j.Field("created", IsoTime(sb.created_ns));
    j.Field("created_ns", sb.created_ns);
    j.Key("regions");
    j.BeginArray();
    for (const Region& r : data.regions) {
      j.BeginObject();
      j.Field("name", r.name);
      j.Field("offset", r.offset);
      j.Field("size", r.size);
      j.EndObject();
    }
    j.EndArray();
  }
  j.EndObject();
}

void WriteLoad(JsonWriter& j, const DumpData& data) {
  const fs::LoadReport& load = data.load;
  j.Key("checkpoint");
  j.BeginObject();
  j.Field("slot", load.checkpoint_slot);
  j.Field("generation", load.checkpoint_generation);
  j.Key("other_slot_error");
  if (load.other_checkpoint_error.empty()) {
    j.Null();
  } else {
    j.String(load.other_checkpoint_error);
  }
  j.Field("damaged_newer_generation", load.damaged_newer_generation);
  j.EndObject();

  j.Key("log");
  j.BeginObject();
  j.Field("commits_replayed", load.commits_replayed);
  j.Field("records_replayed", load.records_replayed);
  j.Field("commits_dropped", load.commits_dropped);
  j.Field("bytes_in_use", load.log_bytes);
  j.Field("capacity", data.superblock->log_size);
  j.Field("replay_stopped", load.log_end);
  j.EndObject();

  j.Key("notes");
  j.BeginArray();
  for (const std::string& note : load.Notes()) j.String(note);
  j.EndArray();
}

void WriteContents(JsonWriter& j, const DumpData& data) {
  const Counts& c = data.counts;
  j.Key("counts");
  j.BeginObject();
  j.Field("inodes", c.inodes);
  j.Field("files", c.files);
  j.Field("directories", c.directories);
  j.Field("symlinks", c.symlinks);
  j.Field("other", c.other);
  j.Field("deleted_while_open", c.deleted_while_open);
  j.EndObject();

  const Space& s = data.space;
  j.Key("space");
  j.BeginObject();
  j.Field("extents", s.extents);
  j.Field("mapped_bytes", s.mapped_blocks * fs::kBlockSize);
  j.Field("unwritten_bytes", s.unwritten_blocks * fs::kBlockSize);
  j.Field("data_units", s.data_units);
  j.Field("used_units", s.used_units);
  j.Field("used_bytes", s.used_bytes);
  j.Field("free_bytes", s.free_bytes);
  j.Field("blocks_outside_data", s.blocks_outside_data);
  j.EndObject();
}

void WriteInode(JsonWriter& j, const PathReport& path) {
  const fs::Inode& inode = *path.inode;
  const fs::InodeRecord& a = inode.attr;
  j.Key("inode");
  j.BeginObject();
  j.Field("ino", a.ino);
  j.Field("type", TypeKey(a.mode));
  j.Field("mode", Octal(a.mode & 07777));
  j.Field("uid", a.uid);
  j.Field("gid", a.gid);
  j.Field("nlink", a.nlink);
  j.Field("size", a.size);
  j.Field("atime", IsoTime(a.atime_ns));
  j.Field("mtime", IsoTime(a.mtime_ns));
  j.Field("ctime", IsoTime(a.ctime_ns));
  j.Field("btime", IsoTime(a.btime_ns));
  if (inode.is_symlink()) j.Field("target", a.symlink);
  if (inode.dir) j.Field("entries", static_cast<uint64_t>(inode.dir->size()));
  j.Key("xattrs");
  j.BeginArray();
  for (const auto& [name, value] : a.xattrs) {
    j.BeginObject();
    j.Field("name", name);
    j.Field("bytes", static_cast<uint64_t>(value.size()));
    j.EndObject();
  }
  j.EndArray();
  j.EndObject();

  j.Key("extents");
  j.BeginArray();
  for (const ExtentRow& e : path.extents) {
    j.BeginObject();
    j.Field("logical_block", e.logical);
    j.Field("physical_block", e.physical);
    j.Field("device_offset", e.device_offset);
    j.Field("blocks", e.blocks);
    j.Field("bytes", e.bytes);
    j.Field("unwritten", e.unwritten);
    j.EndObject();
  }
  j.EndArray();
}

void WritePaths(JsonWriter& j, const DumpData& data) {
  j.Key("paths");
  j.BeginArray();
  for (const PathReport& path : data.paths) {
    j.BeginObject();
    j.Field("path", path.path);
    if (path.inode != nullptr) {
      WriteInode(j, path);
    } else {
      j.Field("error", path.error);
    }
    j.EndObject();
  }
  j.EndArray();
}

}  // namespace

void PrintJson(const DumpData& data, std::ostream& out) {
  JsonWriter j(out);
  j.BeginObject();
  j.Key("device");
  j.BeginObject();
  j.Field("path", data.device);
  j.Field("kind", data.device_info.is_block_device ? "block device" : "image file");
  j.Field("size", data.device_info.size);
  j.EndObject();
  WriteSuperblock(j, data);
  j.Key("error");
  if (data.loaded()) {
    j.Null();
    WriteLoad(j, data);
    WriteContents(j, data);
  } else {
    j.String(data.error);
  }
  WritePaths(j, data);
  j.EndObject();
}

}  // namespace nvswapfs::dump
