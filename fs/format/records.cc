#include "nvswapfs/fs/records.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <string_view>

#include "nvswapfs/fs/codec.h"

namespace nvswapfs::fs {
namespace {

constexpr size_t kRecordHeaderSize = 5;  // u8 type, u32 payload length
// u64 logical, u64 physical, u32 count, u8 flags.
constexpr size_t kEncodedExtentSize = 21;
constexpr uint8_t kExtentUnwritten = 0x01;

RecordType TypeOf(const InodeRecord&) {
  return RecordType::kInode;
}
RecordType TypeOf(const InodeDeleteRecord&) {
  return RecordType::kInodeDelete;
}
RecordType TypeOf(const DirentAddRecord&) {
  return RecordType::kDirentAdd;
}
RecordType TypeOf(const DirentRemoveRecord&) {
  return RecordType::kDirentRemove;
}

std::string TypeName(uint8_t type) {
  switch (static_cast<RecordType>(type)) {
    case RecordType::kInode:
      return "inode";
    case RecordType::kInodeDelete:
      return "inode delete";
    case RecordType::kDirentAdd:
      return "dirent add";
    case RecordType::kDirentRemove:
      return "dirent remove";
  }
  return "type " + std::to_string(type);
}

std::string Hex(uint64_t v) {
  char buf[19];
  std::snprintf(buf, sizeof(buf), "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Counts are clamped to what their field can express so that the encoding
// stays self-consistent even if a caller broke the documented limits.
template <typename T>
size_t Clamp(const std::vector<T>& v, size_t max) {
  return v.size() < max ? v.size() : max;
}

// An inode's payload with `all_extents` as its extents (the record's own are
// not read): an inode in memory keeps its extents in a map of their own.
void EncodeInodePayload(const InodeRecord& r, std::span<const Extent> all_extents, Encoder* e) {
  e->U64(r.ino);
  e->U32(r.mode);
  e->U32(r.uid);
  e->U32(r.gid);
  e->U32(r.nlink);
  e->U64(r.size);
  e->I64(r.atime_ns);
  e->I64(r.mtime_ns);
  e->I64(r.ctime_ns);
  e->I64(r.btime_ns);
  e->U64(r.next_cookie);
  e->U32(0);  // flags
  e->String16(r.symlink);
  const size_t xattrs = Clamp(r.xattrs, UINT16_MAX);
  e->U16(static_cast<uint16_t>(xattrs));
  for (size_t i = 0; i < xattrs; ++i) {
    e->String8(r.xattrs[i].first);
    e->String16(r.xattrs[i].second);
  }
  const size_t extents = std::min<size_t>(all_extents.size(), UINT32_MAX);
  e->U32(static_cast<uint32_t>(extents));
  for (size_t i = 0; i < extents; ++i) {
    const Extent& x = all_extents[i];
    e->U64(x.logical);
    e->U64(x.physical);
    e->U32(x.count);
    e->U8(x.unwritten ? kExtentUnwritten : 0);
  }
}

void EncodePayload(const InodeRecord& r, Encoder* e) {
  EncodeInodePayload(r, r.extents, e);
}

void EncodePayload(const InodeDeleteRecord& r, Encoder* e) {
  e->U64(r.ino);
}

void EncodeDirentAddPayload(uint64_t dir, uint64_t ino, uint64_t cookie, std::string_view name,
                            Encoder* e) {
  e->U64(dir);
  e->U64(ino);
  e->U64(cookie);
  e->String8(name);
}

void EncodePayload(const DirentAddRecord& r, Encoder* e) {
  EncodeDirentAddPayload(r.dir, r.ino, r.cookie, r.name, e);
}

void EncodePayload(const DirentRemoveRecord& r, Encoder* e) {
  e->U64(r.dir);
  e->String8(r.name);
}

// Frames one record: type, length, then what `payload` encodes.
template <typename EncodeFn>
void EncodeFramed(RecordType type, std::vector<std::byte>* out, EncodeFn payload) {
  Encoder e(out);
  e.U8(static_cast<uint8_t>(type));
  const size_t length_at = e.size();
  e.U32(0);
  payload(&e);
  e.PatchU32(length_at, static_cast<uint32_t>(e.size() - length_at - 4));
}

// The payload decoders return what is wrong with the payload, or an empty
// string when it decoded cleanly. Running out of bytes is reported by the
// caller, which sees Decoder::ok() turn false.

std::string NameProblem(std::string_view name) {
  if (name.empty()) return "name is empty";
  if (name.size() > kMaxNameLength) {
    return "name is " + std::to_string(name.size()) + " bytes, the limit is " +
           std::to_string(kMaxNameLength);
  }
  if (name == "." || name == "..") return "name \"" + std::string(name) + "\" is reserved";
  if (name.find('/') != std::string_view::npos) return "name contains '/'";
  if (name.find('\0') != std::string_view::npos) return "name contains a NUL byte";
  return "";
}

std::string InoProblem(std::string_view what, uint64_t ino) {
  if (ino == 0) return std::string(what) + " 0 is not a valid inode number";
  return "";
}

std::string DecodeExtents(Decoder* d, std::vector<Extent>* extents) {
  const uint32_t count = d->U32();
  if (!d->ok()) return "";
  // Checked before reserving: a corrupt count must not become a huge
  // allocation.
  if (count > d->remaining() / kEncodedExtentSize) {
    return "extent count " + std::to_string(count) + " exceeds the " +
           std::to_string(d->remaining()) + " bytes left";
  }
  extents->reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    Extent x;
    x.logical = d->U64();
    x.physical = d->U64();
    x.count = d->U32();
    const uint8_t flags = d->U8();
    if (!d->ok()) return "";
    const std::string which = "extent " + std::to_string(i);
    if (x.count == 0) return which + " has a block count of 0";
    if ((flags & ~kExtentUnwritten) != 0) return which + " has unknown flags " + Hex(flags);
    if (x.logical > UINT64_MAX - x.count || x.physical > UINT64_MAX - x.count) {
      return which + " ends past the largest block number";
    }
    if (!extents->empty() && x.logical < extents->back().logical_end()) {
      return which + " at logical block " + std::to_string(x.logical) +
             " overlaps or precedes the previous extent, which ends at " +
             std::to_string(extents->back().logical_end());
    }
    x.unwritten = (flags & kExtentUnwritten) != 0;
    extents->push_back(x);
  }
  return "";
}

std::string DecodeXattrs(Decoder* d, InodeRecord* r) {
  const uint16_t count = d->U16();
  if (!d->ok()) return "";
  if (count > kMaxXattrsPerInode) {
    return "xattr count " + std::to_string(count) + " exceeds the limit of " +
           std::to_string(kMaxXattrsPerInode);
  }
  r->xattrs.reserve(count);
  for (uint16_t i = 0; i < count; ++i) {
    std::string name = d->String8();
    std::string value = d->String16();
    if (!d->ok()) return "";
    const std::string which = "xattr " + std::to_string(i);
    if (name.empty()) return which + " has an empty name";
    if (name.size() > kMaxXattrNameLength) {
      return which + " name is " + std::to_string(name.size()) + " bytes, the limit is " +
             std::to_string(kMaxXattrNameLength);
    }
    if (name.find('\0') != std::string::npos) return which + " name contains a NUL byte";
    if (value.size() > kMaxXattrValueLength) {
      return which + " value is " + std::to_string(value.size()) + " bytes, the limit is " +
             std::to_string(kMaxXattrValueLength);
    }
    if (!r->xattrs.empty()) {
      // Sorted, unique names let lookups bisect and make equal inodes encode
      // to equal bytes.
      const std::string& previous = r->xattrs.back().first;
      if (name == previous) return which + " repeats the name \"" + name + "\"";
      if (name < previous) {
        return which + " name \"" + name + "\" sorts before the previous \"" + previous + "\"";
      }
    }
    r->xattrs.emplace_back(std::move(name), std::move(value));
  }
  return "";
}

std::string DecodePayload(Decoder* d, InodeRecord* r) {
  r->ino = d->U64();
  r->mode = d->U32();
  r->uid = d->U32();
  r->gid = d->U32();
  r->nlink = d->U32();
  r->size = d->U64();
  r->atime_ns = d->I64();
  r->mtime_ns = d->I64();
  r->ctime_ns = d->I64();
  r->btime_ns = d->I64();
  r->next_cookie = d->U64();
  const uint32_t flags = d->U32();
  if (!d->ok()) return "";
  if (std::string p = InoProblem("ino", r->ino); !p.empty()) return p;
  if (flags != 0) return "unknown inode flags " + Hex(flags);

  r->symlink = d->String16();
  if (!d->ok()) return "";
  if (r->symlink.size() > kMaxSymlinkLength) {
    return "symlink target is " + std::to_string(r->symlink.size()) + " bytes, the limit is " +
           std::to_string(kMaxSymlinkLength);
  }
  if (r->symlink.find('\0') != std::string::npos) return "symlink target contains a NUL byte";

  if (std::string p = DecodeXattrs(d, r); !p.empty() || !d->ok()) return p;
  return DecodeExtents(d, &r->extents);
}

std::string DecodePayload(Decoder* d, InodeDeleteRecord* r) {
  r->ino = d->U64();
  if (!d->ok()) return "";
  return InoProblem("ino", r->ino);
}

std::string DecodePayload(Decoder* d, DirentAddRecord* r) {
  r->dir = d->U64();
  r->ino = d->U64();
  r->cookie = d->U64();
  r->name = d->String8();
  if (!d->ok()) return "";
  if (std::string p = InoProblem("directory", r->dir); !p.empty()) return p;
  if (std::string p = InoProblem("ino", r->ino); !p.empty()) return p;
  return NameProblem(r->name);
}

std::string DecodePayload(Decoder* d, DirentRemoveRecord* r) {
  r->dir = d->U64();
  r->name = d->String8();
  if (!d->ok()) return "";
  if (std::string p = InoProblem("directory", r->dir); !p.empty()) return p;
  return NameProblem(r->name);
}

template <typename T>
std::string DecodeInto(std::span<const std::byte> payload, std::vector<Record>* out) {
  Decoder d(payload);
  T record;
  std::string problem = DecodePayload(&d, &record);
  if (!problem.empty()) return problem;
  if (!d.ok()) {
    return "payload length " + std::to_string(payload.size()) + " is too short for its fields";
  }
  if (d.remaining() != 0) {
    return "payload length " + std::to_string(payload.size()) + " but its fields end after " +
           std::to_string(d.position()) + " bytes";
  }
  out->push_back(std::move(record));
  return "";
}

// How many records `payload` frames, counting only what the headers say.
// Sizing the result once from this keeps the memory a decode takes to
// sizeof(Record) per smallest record (160 / 13 bytes, about 12 times the
// payload) instead of up to twice that while the vector grows.
size_t CountFramedRecords(std::span<const std::byte> payload) {
  Decoder d(payload);
  size_t count = 0;
  while (d.remaining() > 0) {
    d.Skip(1);
    d.Skip(d.U32());
    if (!d.ok()) break;
    ++count;
  }
  return count;
}

}  // namespace

void EncodeRecord(const Record& record, std::vector<std::byte>* out) {
  std::visit(
      [out](const auto& r) {
        EncodeFramed(TypeOf(r), out, [&r](Encoder* e) { EncodePayload(r, e); });
      },
      record);
}

void EncodeInodeRecord(const InodeRecord& attr, std::span<const Extent> extents,
                       std::vector<std::byte>* out) {
  EncodeFramed(RecordType::kInode, out, [&](Encoder* e) { EncodeInodePayload(attr, extents, e); });
}

void EncodeDirentAddRecord(uint64_t dir, uint64_t ino, uint64_t cookie, std::string_view name,
                           std::vector<std::byte>* out) {
  EncodeFramed(RecordType::kDirentAdd, out,
               [&](Encoder* e) { EncodeDirentAddPayload(dir, ino, cookie, name, e); });
}

Result<std::vector<Record>> DecodeRecords(std::span<const std::byte> payload) {
  std::vector<Record> records;
  records.reserve(CountFramedRecords(payload));
  Decoder d(payload);
  for (size_t index = 0; d.remaining() > 0; ++index) {
    const size_t left = d.remaining();
    const uint8_t type = d.U8();
    const uint32_t length = d.U32();
    auto fail = [index, type](const std::string& problem) {
      return Status::Error(EINVAL, "decode records", "metadata")
          .WithDetail("record " + std::to_string(index) + " (" + TypeName(type) + "): " + problem);
    };
    if (!d.ok()) {
      return fail("truncated header: " + std::to_string(left) + " bytes left, a header is " +
                  std::to_string(kRecordHeaderSize));
    }
    if (length > d.remaining()) {
      return fail("payload length " + std::to_string(length) + " exceeds the " +
                  std::to_string(d.remaining()) + " bytes left");
    }
    const std::span<const std::byte> body = d.Bytes(length);
    std::string problem;
    switch (static_cast<RecordType>(type)) {
      case RecordType::kInode:
        problem = DecodeInto<InodeRecord>(body, &records);
        break;
      case RecordType::kInodeDelete:
        problem = DecodeInto<InodeDeleteRecord>(body, &records);
        break;
      case RecordType::kDirentAdd:
        problem = DecodeInto<DirentAddRecord>(body, &records);
        break;
      case RecordType::kDirentRemove:
        problem = DecodeInto<DirentRemoveRecord>(body, &records);
        break;
      default:
        problem = "unknown record type";
        break;
    }
    if (!problem.empty()) return fail(problem);
  }
  return records;
}

}  // namespace nvswapfs::fs
