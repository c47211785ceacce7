#include "nvswapfs/fs/records.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "nvswapfs/fs/codec.h"

namespace nvswapfs::fs {
namespace {

using Bytes = std::vector<std::byte>;

// Bytes of an encoded inode record with no symlink, xattrs or extents:
// 5 header + 76 fixed fields + 2 symlink length + 2 xattr count + 4 extent count.
constexpr size_t kBareInodeSize = 89;
constexpr size_t kEncodedExtentSize = 21;

class RandomRecords {
 public:
  explicit RandomRecords(uint64_t seed) : rng_(seed) {}

  uint64_t Below(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  bool OneIn(uint64_t n) { return Below(n) == 0; }

  // Any bytes except '/' and NUL; never "." or "..".
  std::string Name(size_t max_length = kMaxNameLength) {
    for (;;) {
      std::string s(1 + Below(OneIn(4) ? max_length : 16), 'x');
      for (char& c : s) c = Char(/*allow_slash=*/false, /*allow_nul=*/false);
      if (s != "." && s != "..") return s;
    }
  }

  std::string Blob(size_t max_length, bool allow_nul) {
    std::string s(Below(max_length + 1), 'x');
    for (char& c : s) c = Char(/*allow_slash=*/true, allow_nul);
    return s;
  }

  char Char(bool allow_slash, bool allow_nul) {
    for (;;) {
      const auto c = static_cast<char>(rng_());
      if ((allow_slash || c != '/') && (allow_nul || c != '\0')) return c;
    }
  }

  uint64_t Ino() { return 1 + Below(OneIn(8) ? UINT64_MAX : 1000); }

  InodeRecord Inode() {
    InodeRecord r;
    r.ino = Ino();
    r.mode = static_cast<uint32_t>(rng_());
    r.uid = static_cast<uint32_t>(rng_());
    r.gid = static_cast<uint32_t>(rng_());
    r.nlink = static_cast<uint32_t>(rng_());
    r.size = rng_();
    r.atime_ns = static_cast<int64_t>(rng_());
    r.mtime_ns = static_cast<int64_t>(rng_());
    r.ctime_ns = static_cast<int64_t>(rng_());
    r.btime_ns = static_cast<int64_t>(rng_());
    r.next_cookie = rng_();
    if (OneIn(3)) r.symlink = Blob(OneIn(5) ? kMaxSymlinkLength : 40, /*allow_nul=*/false);
    std::set<std::string> names;
    const size_t xattrs = OneIn(3) ? Below(kMaxXattrsPerInode + 1) : Below(3);
    while (names.size() < xattrs) names.insert(Name(kMaxXattrNameLength));
    for (const std::string& name : names) {
      r.xattrs.emplace_back(name, Blob(OneIn(10) ? kMaxXattrValueLength : 30, true));
    }
    uint64_t logical = Below(100);
    const size_t extents = OneIn(4) ? Below(300) : Below(4);
    for (size_t i = 0; i < extents; ++i) {
      Extent x;
      x.logical = logical;
      x.count = static_cast<uint32_t>(1 + Below(OneIn(10) ? UINT32_MAX : 256));
      x.physical = Below(1ull << 40);
      x.unwritten = OneIn(3);
      logical = x.logical_end() + Below(3);  // contiguous or with a hole
      r.extents.push_back(x);
    }
    return r;
  }

  Record Any() {
    switch (Below(4)) {
      case 0:
        return Inode();
      case 1:
        return InodeDeleteRecord{Ino()};
      case 2:
        return DirentAddRecord{Ino(), Ino(), rng_(), Name()};
      default:
        return DirentRemoveRecord{Ino(), Name()};
    }
  }

 private:
  std::mt19937_64 rng_;
};

Bytes Encode(const std::vector<Record>& records) {
  Bytes out;
  for (const Record& r : records) EncodeRecord(r, &out);
  return out;
}

Bytes Encode(const Record& record) {
  return Encode(std::vector<Record>{record});
}

// The detail of the error from decoding `payload`, which must fail with
// EINVAL from "decode records" on "metadata".
std::string DecodeError(const Bytes& payload) {
  Result<std::vector<Record>> r = DecodeRecords(payload);
  if (r.ok()) {
    ADD_FAILURE() << "decoded " << r->size() << " records from bad input";
    return "";
  }
  EXPECT_EQ(r.status().code(), EINVAL);
  EXPECT_EQ(r.status().op(), "decode records");
  EXPECT_EQ(r.status().subject(), "metadata");
  return std::string(r.status().detail());
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// prefix + i as three digits, so that the names sort in creation order.
std::string Numbered(const std::string& prefix, size_t i) {
  const std::string digits = std::to_string(i);
  return prefix + std::string(3 - digits.size(), '0') + digits;
}

InodeRecord SimpleInode() {
  InodeRecord r;
  r.ino = 42;
  r.mode = 0100644;
  r.nlink = 1;
  r.size = 3 * 4096;
  return r;
}

TEST(RecordsTest, EmptyPayloadHoldsNoRecords) {
  Result<std::vector<Record>> r = DecodeRecords({});
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->empty());
}

TEST(RecordsTest, RandomRecordsRoundTrip) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    RandomRecords gen(seed);
    std::vector<Record> records;
    const size_t n = gen.Below(12);
    for (size_t i = 0; i < n; ++i) records.push_back(gen.Any());
    const Bytes payload = Encode(records);
    Result<std::vector<Record>> back = DecodeRecords(payload);
    ASSERT_TRUE(back.ok()) << "seed " << seed << ": " << back.status().ToString();
    ASSERT_EQ(*back, records) << "seed " << seed;
  }
}

TEST(RecordsTest, EveryTypeRoundTripsAtItsLimits) {
  InodeRecord inode = SimpleInode();
  inode.symlink = std::string(kMaxSymlinkLength, 's');
  for (size_t i = 0; i < kMaxXattrsPerInode; ++i) {
    std::string name = Numbered("user.", i);
    name.resize(kMaxXattrNameLength, 'n');
    inode.xattrs.emplace_back(name, std::string(kMaxXattrValueLength, static_cast<char>(i)));
  }
  inode.extents = {{0, UINT64_MAX - UINT32_MAX, UINT32_MAX, true},
                   {uint64_t{UINT32_MAX}, 1, 1, false},
                   {UINT64_MAX - 1, 2, 1, false}};
  const std::vector<Record> records = {
      inode,
      InodeDeleteRecord{UINT64_MAX},
      DirentAddRecord{1, UINT64_MAX, 0, std::string(kMaxNameLength, 'a')},
      DirentRemoveRecord{UINT64_MAX, "\xff\x01 ...x"},
      DirentAddRecord{1, 2, 3, "..."},
  };
  Result<std::vector<Record>> back = DecodeRecords(Encode(records));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, records);
}

// A checkpoint encodes inodes and entries from the parts the namespace keeps
// them in; the bytes must be those of the records they stand for.
TEST(RecordsEncodingTest, InodesAndEntriesFromTheirPartsEncodeAsTheirRecords) {
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    RandomRecords gen(seed);
    const InodeRecord inode = gen.Inode();
    // The attributes' own extents are not read: the in-memory inode keeps
    // its extents apart and leaves that field empty (or, here, stale).
    InodeRecord attr = inode;
    attr.extents = gen.Inode().extents;
    Bytes parts = {std::byte{0xEE}};  // appended after what is there
    EncodeInodeRecord(attr, inode.extents, &parts);
    const std::string name = gen.Name();
    const uint64_t dir = gen.Ino();
    const uint64_t ino = gen.Ino();
    const uint64_t cookie = gen.Below(UINT64_MAX);
    EncodeDirentAddRecord(dir, ino, cookie, name, &parts);

    Bytes records = {std::byte{0xEE}};
    EncodeRecord(inode, &records);
    EncodeRecord(DirentAddRecord{dir, ino, cookie, name}, &records);
    ASSERT_EQ(parts, records) << "seed " << seed;
  }
}

// Pins the byte layout of records.h, so that the format cannot drift while
// encoder and decoder still agree with each other.
TEST(RecordsEncodingTest, GoldenDirentAdd) {
  const Bytes b = Encode(DirentAddRecord{1, 0x0203, 0x0405060708090A0Bull, "ab"});
  // clang-format off
  const std::vector<uint8_t> expected = {
      3,                              // type kDirentAdd
      27, 0, 0, 0,                    // payload length
      1, 0, 0, 0, 0, 0, 0, 0,         // dir
      3, 2, 0, 0, 0, 0, 0, 0,         // ino
      0x0B, 0x0A, 9, 8, 7, 6, 5, 4,   // cookie
      2, 'a', 'b',                    // name
  };
  // clang-format on
  ASSERT_EQ(b.size(), expected.size());
  for (size_t i = 0; i < b.size(); ++i) EXPECT_EQ(static_cast<uint8_t>(b[i]), expected[i]) << i;
}

TEST(RecordsEncodingTest, GoldenDeleteAndRemove) {
  const Bytes del = Encode(InodeDeleteRecord{0x1122});
  const std::vector<uint8_t> del_expected = {2, 8, 0, 0, 0, 0x22, 0x11, 0, 0, 0, 0, 0, 0};
  ASSERT_EQ(del.size(), del_expected.size());
  for (size_t i = 0; i < del.size(); ++i) EXPECT_EQ(static_cast<uint8_t>(del[i]), del_expected[i]);

  const Bytes rm = Encode(DirentRemoveRecord{7, "z"});
  const std::vector<uint8_t> rm_expected = {4, 10, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 1, 'z'};
  ASSERT_EQ(rm.size(), rm_expected.size());
  for (size_t i = 0; i < rm.size(); ++i) EXPECT_EQ(static_cast<uint8_t>(rm[i]), rm_expected[i]);
}

TEST(RecordsEncodingTest, GoldenInodeFieldOffsets) {
  InodeRecord r = SimpleInode();
  r.uid = 1000;
  r.gid = 1001;
  r.mtime_ns = -1;
  r.next_cookie = 9;
  r.symlink = "t";
  r.xattrs = {{"k", "vv"}};
  r.extents = {{5, 0x100, 3, true}};
  const Bytes b = Encode(r);
  const std::byte* p = b.data();
  EXPECT_EQ(p[0], std::byte{1}) << "type kInode";
  ASSERT_EQ(b.size(), kBareInodeSize + 1 + (1 + 1 + 2 + 2) + kEncodedExtentSize);
  EXPECT_EQ(LoadLe32(p + 1), b.size() - 5) << "payload length";
  EXPECT_EQ(LoadLe64(p + 5), 42u) << "ino";
  EXPECT_EQ(LoadLe32(p + 13), 0100644u) << "mode";
  EXPECT_EQ(LoadLe32(p + 17), 1000u) << "uid";
  EXPECT_EQ(LoadLe32(p + 21), 1001u) << "gid";
  EXPECT_EQ(LoadLe32(p + 25), 1u) << "nlink";
  EXPECT_EQ(LoadLe64(p + 29), 3u * 4096) << "size";
  EXPECT_EQ(LoadLe64(p + 45), UINT64_MAX) << "mtime_ns -1";
  EXPECT_EQ(LoadLe64(p + 69), 9u) << "next_cookie";
  EXPECT_EQ(LoadLe32(p + 77), 0u) << "flags";
  EXPECT_EQ(p[81], std::byte{1}) << "symlink length, u16";
  EXPECT_EQ(p[82], std::byte{0});
  EXPECT_EQ(p[83], std::byte{'t'});
  EXPECT_EQ(p[84], std::byte{1}) << "xattr count, u16";
  EXPECT_EQ(p[86], std::byte{1}) << "xattr name length, u8";
  EXPECT_EQ(p[87], std::byte{'k'});
  EXPECT_EQ(p[88], std::byte{2}) << "xattr value length, u16";
  EXPECT_EQ(p[89], std::byte{0});
  EXPECT_EQ(LoadLe32(p + 92), 1u) << "extent count";
  EXPECT_EQ(LoadLe64(p + 96), 5u) << "logical";
  EXPECT_EQ(LoadLe64(p + 104), 0x100u) << "physical";
  EXPECT_EQ(LoadLe32(p + 112), 3u) << "count";
  EXPECT_EQ(p[116], std::byte{1}) << "unwritten flag";
}

TEST(RecordsDecodeTest, TruncationAtEveryByteFailsOrEndsOnARecordBoundary) {
  RandomRecords gen(99);
  std::vector<Record> records = {gen.Inode(), DirentAddRecord{1, 2, 3, "name"},
                                 InodeDeleteRecord{5}, DirentRemoveRecord{1, "name"}};
  InodeRecord rich = SimpleInode();
  rich.symlink = "target";
  rich.xattrs = {{"a", "1"}, {"b", ""}};
  rich.extents = {{0, 10, 1, false}, {1, 20, 2, true}};
  records.push_back(rich);

  std::set<size_t> boundaries = {0};
  Bytes payload;
  for (const Record& r : records) {
    EncodeRecord(r, &payload);
    boundaries.insert(payload.size());
  }
  for (size_t cut = 0; cut <= payload.size(); ++cut) {
    const Bytes head(payload.begin(), payload.begin() + static_cast<std::ptrdiff_t>(cut));
    Result<std::vector<Record>> r = DecodeRecords(head);
    if (boundaries.count(cut) != 0) {
      ASSERT_TRUE(r.ok()) << "cut at record boundary " << cut << ": " << r.status().ToString();
      const size_t whole =
          static_cast<size_t>(std::distance(boundaries.begin(), boundaries.find(cut)));
      ASSERT_EQ(r->size(), whole);
      EXPECT_TRUE(std::equal(r->begin(), r->end(), records.begin()));
    } else {
      ASSERT_FALSE(r.ok()) << "cut at " << cut << " of " << payload.size();
      EXPECT_EQ(r.status().code(), EINVAL);
    }
  }
}

TEST(RecordsDecodeTest, ErrorNamesTheRecordIndexAndType) {
  InodeRecord bad = SimpleInode();
  bad.extents = {
      {0, 1, 1, false}, {1, 2, 1, false}, {2, 3, 1, false}, {3, 4, 1, false}, {4, 5, 1, false}};
  std::vector<Record> records = {InodeDeleteRecord{1}, InodeDeleteRecord{2},
                                 DirentRemoveRecord{1, "x"}, bad};
  Bytes payload = Encode(records);
  // The extent count sits 4 bytes before the 5 extents at the very end.
  const size_t count_at = payload.size() - 5 * kEncodedExtentSize - 4;
  ASSERT_EQ(LoadLe32(payload.data() + count_at), 5u);
  StoreLe32(payload.data() + count_at, 0xFFFFFFFF);
  EXPECT_EQ(DecodeError(payload),
            "record 3 (inode): extent count 4294967295 exceeds the 105 bytes left");
}

TEST(RecordsDecodeTest, TruncatedHeader) {
  Bytes payload = Encode(InodeDeleteRecord{1});
  payload.push_back(std::byte{2});
  payload.push_back(std::byte{8});
  EXPECT_TRUE(Contains(DecodeError(payload), "record 1 (inode delete): truncated header"));
}

TEST(RecordsDecodeTest, LengthBeyondThePayload) {
  Bytes payload = Encode(InodeDeleteRecord{1});
  StoreLe32(payload.data() + 1, 9);
  EXPECT_EQ(DecodeError(payload),
            "record 0 (inode delete): payload length 9 exceeds the 8 bytes left");
  StoreLe32(payload.data() + 1, 0xFFFFFFFF);
  EXPECT_TRUE(Contains(DecodeError(payload), "exceeds the 8 bytes left"));
}

TEST(RecordsDecodeTest, LengthLongerThanTheFields) {
  // The length claims one byte more than the fields use: the extra byte is
  // there, but no field accounts for it.
  Bytes payload = Encode(InodeDeleteRecord{1});
  StoreLe32(payload.data() + 1, 9);
  payload.push_back(std::byte{0});
  EXPECT_TRUE(Contains(DecodeError(payload), "fields end after 8 bytes"));

  Bytes dirent = Encode(DirentAddRecord{1, 2, 3, "abc"});
  StoreLe32(dirent.data() + 1, LoadLe32(dirent.data() + 1) + 2);
  dirent.push_back(std::byte{'d'});
  dirent.push_back(std::byte{'e'});
  EXPECT_TRUE(Contains(DecodeError(dirent), "record 0 (dirent add): payload length"));
}

TEST(RecordsDecodeTest, LengthShorterThanTheFields) {
  for (const Record& record :
       std::vector<Record>{SimpleInode(), InodeDeleteRecord{1}, DirentAddRecord{1, 2, 3, "abc"},
                           DirentRemoveRecord{1, "abc"}}) {
    Bytes payload = Encode(record);
    const uint32_t length = LoadLe32(payload.data() + 1);
    StoreLe32(payload.data() + 1, length - 1);
    // A following record begins where the shortened one claims to end.
    EXPECT_TRUE(Contains(DecodeError(payload), "too short for its fields"));
    StoreLe32(payload.data() + 1, 0);
    EXPECT_FALSE(DecodeRecords(payload).ok());
  }
}

TEST(RecordsDecodeTest, UnknownTypes) {
  for (uint8_t type : {0, 5, 200, 255}) {
    Bytes payload = Encode(InodeDeleteRecord{1});
    payload[0] = std::byte{type};
    EXPECT_EQ(DecodeError(payload),
              "record 0 (type " + std::to_string(type) + "): unknown record type");
  }
}

TEST(RecordsDecodeTest, BadNames) {
  for (const std::string& name : {std::string(), std::string("a/b"), std::string("/"),
                                  std::string("a\0b", 3), std::string("."), std::string("..")}) {
    SCOPED_TRACE("name \"" + name + "\"");
    const std::string add = DecodeError(Encode(DirentAddRecord{1, 2, 3, name}));
    EXPECT_TRUE(Contains(add, "record 0 (dirent add): name")) << add;
    const std::string remove = DecodeError(Encode(DirentRemoveRecord{1, name}));
    EXPECT_TRUE(Contains(remove, "record 0 (dirent remove): name")) << remove;
  }
  // The u8 length cannot express more than kMaxNameLength, so the longest
  // name is also the longest that can be written.
  static_assert(kMaxNameLength == 255);
  EXPECT_TRUE(DecodeRecords(Encode(DirentAddRecord{1, 2, 3, std::string(255, 'n')})).ok());
}

TEST(RecordsDecodeTest, InodeNumberZero) {
  EXPECT_TRUE(Contains(DecodeError(Encode(InodeDeleteRecord{0})), "ino 0"));
  InodeRecord inode = SimpleInode();
  inode.ino = 0;
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "record 0 (inode): ino 0"));
  EXPECT_TRUE(Contains(DecodeError(Encode(DirentAddRecord{0, 2, 3, "a"})), "directory 0"));
  EXPECT_TRUE(Contains(DecodeError(Encode(DirentAddRecord{1, 0, 3, "a"})), "ino 0"));
  EXPECT_TRUE(Contains(DecodeError(Encode(DirentRemoveRecord{0, "a"})), "directory 0"));
}

TEST(RecordsDecodeTest, UnknownInodeFlags) {
  Bytes payload = Encode(SimpleInode());
  StoreLe32(payload.data() + 77, 1);
  EXPECT_TRUE(Contains(DecodeError(payload), "unknown inode flags 0x1"));
}

TEST(RecordsDecodeTest, SymlinkLimits) {
  InodeRecord inode = SimpleInode();
  inode.symlink = std::string(kMaxSymlinkLength + 1, 's');
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "symlink target is 4096 bytes"));
  inode.symlink = std::string(UINT16_MAX, 's');
  EXPECT_FALSE(DecodeRecords(Encode(inode)).ok());
  inode.symlink = std::string("a\0b", 3);
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "NUL"));
  inode.symlink = std::string(kMaxSymlinkLength, 's');
  EXPECT_TRUE(DecodeRecords(Encode(inode)).ok());
}

TEST(RecordsDecodeTest, XattrLimits) {
  InodeRecord inode = SimpleInode();
  inode.xattrs = {{"", "v"}};
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "xattr 0 has an empty name"));

  inode.xattrs = {{"a", "v"}, {"b", std::string(kMaxXattrValueLength + 1, 'v')}};
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "xattr 1 value is 4097 bytes"));

  inode.xattrs = {{std::string("a\0b", 3), "v"}};
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "NUL"));

  inode.xattrs.clear();
  for (size_t i = 0; i <= kMaxXattrsPerInode; ++i) {
    inode.xattrs.emplace_back(Numbered("x", i), "");
  }
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "xattr count 65 exceeds the limit of 64"));
  inode.xattrs.pop_back();
  EXPECT_TRUE(DecodeRecords(Encode(inode)).ok());
}

TEST(RecordsDecodeTest, XattrsMustBeSortedAndUnique) {
  InodeRecord inode = SimpleInode();
  inode.xattrs = {{"user.b", "1"}, {"user.a", "2"}};
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "xattr 1 name \"user.a\" sorts before"));
  inode.xattrs = {{"user.a", "1"}, {"user.a", "2"}};
  EXPECT_TRUE(Contains(DecodeError(Encode(inode)), "xattr 1 repeats the name \"user.a\""));
  // Byte order, as memcmp: 0xff sorts after ASCII.
  inode.xattrs = {{"user.a", "1"}, {"user.\xff", "2"}};
  EXPECT_TRUE(DecodeRecords(Encode(inode)).ok());
}

TEST(RecordsDecodeTest, ExtentCountLargerThanTheBytesLeft) {
  InodeRecord inode = SimpleInode();
  inode.extents = {{0, 1, 1, false}};
  Bytes payload = Encode(inode);
  const size_t count_at = payload.size() - kEncodedExtentSize - 4;
  for (uint32_t count : {2u, 1000u, 0x80000000u, 0xFFFFFFFFu}) {
    StoreLe32(payload.data() + count_at, count);
    EXPECT_EQ(DecodeError(payload), "record 0 (inode): extent count " + std::to_string(count) +
                                        " exceeds the 21 bytes left");
  }
}

TEST(RecordsDecodeTest, BadExtents) {
  struct Case {
    std::vector<Extent> extents;
    std::string problem;
  };
  const std::vector<Case> cases = {
      {{{0, 1, 0, false}}, "extent 0 has a block count of 0"},
      {{{10, 1, 5, false}, {12, 100, 5, false}}, "extent 1 at logical block 12 overlaps"},
      {{{10, 1, 5, false}, {3, 100, 5, false}}, "extent 1 at logical block 3 overlaps"},
      {{{10, 1, 5, false}, {10, 100, 5, false}}, "extent 1 at logical block 10 overlaps"},
      {{{UINT64_MAX - 1, 1, 2, false}}, "extent 0 ends past the largest block number"},
      {{{0, UINT64_MAX, 1, false}}, "extent 0 ends past the largest block number"},
  };
  for (const Case& c : cases) {
    InodeRecord inode = SimpleInode();
    inode.extents = c.extents;
    const std::string error = DecodeError(Encode(inode));
    EXPECT_TRUE(Contains(error, "record 0 (inode): " + c.problem)) << error;
  }
  // Adjacent extents (end == next start) are fine.
  InodeRecord inode = SimpleInode();
  inode.extents = {{10, 1, 5, false}, {15, 6, 5, true}};
  EXPECT_TRUE(DecodeRecords(Encode(inode)).ok());
}

TEST(RecordsDecodeTest, UnknownExtentFlags) {
  InodeRecord inode = SimpleInode();
  inode.extents = {{0, 1, 1, false}};
  Bytes payload = Encode(inode);
  payload.back() = std::byte{0x02};
  EXPECT_TRUE(Contains(DecodeError(payload), "extent 0 has unknown flags 0x2"));
}

TEST(RecordsDecodeTest, RandomCorruptionNeverCrashes) {
  // Whatever the outcome, decoding arbitrary damage must stay inside the
  // buffer (the sanitizers check) and either fail or return records.
  for (uint64_t seed = 1; seed <= 300; ++seed) {
    RandomRecords gen(seed);
    std::vector<Record> records;
    for (size_t i = 0; i < 1 + gen.Below(5); ++i) records.push_back(gen.Any());
    Bytes payload = Encode(records);
    const size_t flips = 1 + gen.Below(4);
    for (size_t i = 0; i < flips; ++i) {
      payload[gen.Below(payload.size())] ^= static_cast<std::byte>(1 + gen.Below(255));
    }
    Result<std::vector<Record>> r = DecodeRecords(payload);
    if (!r.ok()) {
      EXPECT_EQ(r.status().code(), EINVAL);
    }
  }
}

}  // namespace
}  // namespace nvswapfs::fs
