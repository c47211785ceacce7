#include "nvswapfs/fs/journal.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "nvswapfs/fs/codec.h"

namespace nvswapfs::fs {
namespace {

using Bytes = std::vector<std::byte>;

Uuid TestUuid(uint8_t fill = 0x5A) {
  Uuid u;
  u.fill(fill);
  u[0] = 1;
  return u;
}

// prefix + i, built by appending: GCC 12 misreads `"literal" + std::string`
// in optimized builds as an overlapping copy (-Wrestrict, GCC bug 105329).
std::string Numbered(std::string prefix, uint64_t i) {
  prefix += std::to_string(i);
  return prefix;
}

// Many small directory entries, enough for a commit of several blocks.
std::vector<Record> ManyEntries(uint64_t n, const std::string& prefix) {
  std::vector<Record> records;
  for (uint64_t i = 1; i <= n; ++i)
    records.push_back(DirentAddRecord{1, i, i, Numbered(prefix, i)});
  return records;
}

std::vector<Record> SomeRecords(uint64_t base = 10) {
  InodeRecord file;
  file.ino = base;
  file.mode = 0100600;
  file.nlink = 1;
  file.size = 8192;
  file.xattrs = {{"user.dtype", "float16"}};
  file.extents = {{0, 4096, 2, false}};
  return {file, DirentAddRecord{1, base, base + 100, Numbered("tensor_", base) + ".pt"},
          DirentRemoveRecord{1, "old"}, InodeDeleteRecord{base + 1}};
}

Bytes Commit(uint64_t sequence, const std::vector<Record>& records, const Uuid& uuid = TestUuid()) {
  Bytes out;
  EncodeCommit(uuid, sequence, /*next_ino=*/1000 + sequence, records, &out);
  return out;
}

Bytes Encode(const std::vector<Record>& records) {
  Bytes out;
  for (const Record& r : records) EncodeRecord(r, &out);
  return out;
}

void ResealCommitHeader(Bytes& commit) {
  StoreLe32(commit.data() + 60, Crc32c(std::span(commit).first(60)));
}

void ResealCheckpointHeader(Bytes& ckpt) {
  StoreLe32(ckpt.data() + 124, Crc32c(std::span(ckpt).first(124)));
}

// Header and records of one commit, as replay reads them.
Result<std::vector<Record>> ReadCommit(std::span<const std::byte> commit,
                                       const Uuid& uuid = TestUuid()) {
  Result<CommitHeader> header = DecodeCommitHeader(commit, uuid);
  if (!header.ok()) return header.status();
  return DecodeCommitRecords(*header, commit);
}

TEST(CommitTest, RoundTrip) {
  const std::vector<Record> records = SomeRecords();
  const Bytes commit = Commit(7, records);
  Result<CommitHeader> h = DecodeCommitHeader(commit, TestUuid());
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->uuid, TestUuid());
  EXPECT_EQ(h->sequence, 7u);
  EXPECT_EQ(h->next_ino, 1007u);
  EXPECT_EQ(h->record_count, 4u);
  EXPECT_EQ(h->payload_length, Encode(records).size());
  EXPECT_EQ(CommitSpan(*h), commit.size());
  Result<std::vector<Record>> back = DecodeCommitRecords(*h, commit);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, records);
}

TEST(CommitTest, GoldenHeaderBytes) {
  const std::vector<Record> records = SomeRecords();
  const Bytes payload = Encode(records);
  const Bytes commit = Commit(0x0102030405060708ull, records);
  const std::byte* p = commit.data();
  EXPECT_EQ(std::memcmp(p, "NVSWLOG1", 8), 0);
  EXPECT_EQ(p[8], std::byte{1});
  EXPECT_EQ(p[9], std::byte{0x5A});
  EXPECT_EQ(p[23], std::byte{0x5A});
  EXPECT_EQ(LoadLe64(p + 24), 0x0102030405060708ull);
  EXPECT_EQ(p[24], std::byte{0x08}) << "little-endian";
  EXPECT_EQ(LoadLe32(p + 32), payload.size());
  EXPECT_EQ(LoadLe32(p + 36), 4u);
  EXPECT_EQ(LoadLe64(p + 40), 1000u + 0x0102030405060708ull);
  EXPECT_EQ(LoadLe32(p + 48), Crc32c(payload));
  EXPECT_EQ(LoadLe64(p + 52), 0u) << "boot: 0, an ordered commit";
  EXPECT_EQ(LoadLe32(p + 60), Crc32c(std::span(commit).first(60)));
  EXPECT_EQ(std::memcmp(p + 64, payload.data(), payload.size()), 0) << "payload right after";
  ASSERT_EQ(commit.size(), 4096u);
  for (size_t i = 64 + payload.size(); i < commit.size(); ++i) {
    ASSERT_EQ(commit[i], std::byte{0}) << "padding at " << i;
  }
}

TEST(CommitTest, UnorderedCommitCarriesItsBoot) {
  Bytes commit;
  EncodeCommit(TestUuid(), 7, 1007, SomeRecords(), &commit, /*boot=*/0x1122334455667788ull);
  EXPECT_EQ(LoadLe64(commit.data() + 52), 0x1122334455667788ull);
  EXPECT_EQ(commit[52], std::byte{0x88}) << "little-endian";
  auto header = DecodeCommitHeader(commit, TestUuid());
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->boot, 0x1122334455667788ull);
  EXPECT_EQ(header->sequence, 7u);
  auto ordered = DecodeCommitHeader(Commit(8, SomeRecords()), TestUuid());
  ASSERT_TRUE(ordered.ok());
  EXPECT_EQ(ordered->boot, 0u);
}

TEST(CommitTest, SpanIsHeaderPlusPayloadRoundedToBlocks) {
  CommitHeader h;
  h.payload_length = 0;
  EXPECT_EQ(CommitSpan(h), 4096u);
  h.payload_length = 4096 - 64;
  EXPECT_EQ(CommitSpan(h), 4096u);
  h.payload_length = 4096 - 63;
  EXPECT_EQ(CommitSpan(h), 8192u);
  h.payload_length = UINT32_MAX;
  EXPECT_EQ(CommitSpan(h), (uint64_t{UINT32_MAX} + 64 + 4095) / 4096 * 4096) << "no u32 wrap";
}

TEST(CommitTest, ZeroRecords) {
  const Bytes commit = Commit(3, {});
  EXPECT_EQ(commit.size(), 4096u);
  Result<CommitHeader> h = DecodeCommitHeader(commit, TestUuid());
  ASSERT_TRUE(h.ok());
  EXPECT_EQ(h->payload_length, 0u);
  EXPECT_EQ(h->record_count, 0u);
  EXPECT_EQ(h->payload_crc, 0u);
  Result<std::vector<Record>> r = DecodeCommitRecords(*h, commit);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
}

TEST(CommitTest, LargeCommitSpansSeveralBlocks) {
  const std::vector<Record> records = ManyEntries(500, "f");
  const Bytes commit = Commit(9, records);
  EXPECT_GT(commit.size(), 4096u);
  EXPECT_EQ(commit.size() % 4096, 0u);
  Result<std::vector<Record>> back = ReadCommit(commit);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, records);
}

TEST(CommitTest, AppendsAfterEarlierCommits) {
  Bytes log = Commit(1, SomeRecords(10));
  EncodeCommit(TestUuid(), 2, 2000, SomeRecords(20), &log);
  ASSERT_EQ(log.size(), 8192u);
  Result<std::vector<Record>> second = ReadCommit(std::span(log).subspan(4096));
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_EQ(*second, SomeRecords(20));
}

TEST(CommitTest, ShortHeaderBlock) {
  const Bytes commit = Commit(1, SomeRecords());
  for (size_t n : {0, 1, 8, 63}) {
    Result<CommitHeader> h = DecodeCommitHeader(std::span(commit).first(n), TestUuid());
    EXPECT_EQ(h.status().code(), EINVAL) << n;
  }
  EXPECT_TRUE(DecodeCommitHeader(std::span(commit).first(64), TestUuid()).ok())
      << "the header alone is enough to read the header";
}

TEST(CommitTest, BadMagic) {
  Bytes commit = Commit(1, SomeRecords());
  commit[7] = std::byte{'2'};
  ResealCommitHeader(commit);
  const Status s = DecodeCommitHeader(commit, TestUuid()).status();
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_TRUE(s.detail().starts_with("bad magic")) << s.ToString();
  const Bytes zeros(4096);
  EXPECT_EQ(DecodeCommitHeader(zeros, TestUuid()).status().code(), EINVAL) << "unused log space";
}

TEST(CommitTest, EveryHeaderByteIsCovered) {
  const Bytes good = Commit(1, SomeRecords());
  for (size_t at = 0; at < 64; ++at) {
    Bytes commit = good;
    commit[at] ^= std::byte{0x10};
    const Status s = DecodeCommitHeader(commit, TestUuid()).status();
    ASSERT_FALSE(s.ok()) << "byte " << at;
    EXPECT_EQ(s.code(), EINVAL) << "byte " << at << ": " << s.ToString();
    if (at >= 8) {
      EXPECT_EQ(s.detail(), "bad header checksum");
    }
  }
}

TEST(CommitTest, WrongVolumeIsStale) {
  const Bytes commit = Commit(5, SomeRecords(), TestUuid(0x11));
  const Status s = DecodeCommitHeader(commit, TestUuid(0x22)).status();
  EXPECT_EQ(s.code(), ESTALE);
  EXPECT_EQ(s.op(), "read log commit");
  EXPECT_NE(s.detail().find(UuidToString(TestUuid(0x11))), std::string::npos) << s.ToString();
}

TEST(CommitTest, AbsurdPayloadLength) {
  Bytes commit = Commit(1, SomeRecords());
  StoreLe32(commit.data() + 32, 0xF0000000);
  ResealCommitHeader(commit);
  EXPECT_EQ(DecodeCommitHeader(commit, TestUuid()).status().code(), EINVAL);
}

TEST(CommitTest, TornCommit) {
  const std::vector<Record> records = ManyEntries(300, "entry");
  const Bytes commit = Commit(4, records);
  ASSERT_GE(commit.size(), 3 * 4096u);
  Result<CommitHeader> h = DecodeCommitHeader(commit, TestUuid());
  ASSERT_TRUE(h.ok());
  // Any cut short of the whole span: the header was written, the rest not.
  for (size_t n = 64; n < commit.size(); n += (n < 200 ? 1 : 509)) {
    const Status s = DecodeCommitRecords(*h, std::span(commit).first(n)).status();
    ASSERT_EQ(s.code(), EINVAL) << n;
    EXPECT_NE(s.detail().find("torn commit"), std::string::npos) << s.ToString();
  }
  // The padding may be missing from the end of the device range, but
  // CommitSpan is what a writer always writes, so it is required.
  EXPECT_EQ(DecodeCommitRecords(*h, std::span(commit).first(commit.size() - 1)).status().code(),
            EINVAL);
}

TEST(CommitTest, TornWriteLeavesOldBlocksBehind) {
  // A crash that persisted the first block of a new commit but not the
  // second leaves an older commit's bytes there: the payload checksum fails.
  const std::vector<Record> records = ManyEntries(300, "entry");
  Bytes commit = Commit(4, records);
  const Bytes old = Commit(2, SomeRecords());
  std::copy(old.begin(), old.end(), commit.begin() + 4096);
  const Status s = ReadCommit(commit).status();
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_NE(s.detail().find("bad payload checksum"), std::string::npos) << s.ToString();
}

TEST(CommitTest, BadPayloadChecksum) {
  const Bytes good = Commit(6, SomeRecords());
  const size_t payload_length = Encode(SomeRecords()).size();
  for (size_t at = 64; at < 64 + payload_length; at += 7) {
    Bytes commit = good;
    commit[at] ^= std::byte{0x01};
    const Status s = ReadCommit(commit).status();
    ASSERT_EQ(s.code(), EINVAL) << at;
    EXPECT_EQ(s.detail(), "commit 6: bad payload checksum");
  }
  Bytes padded = good;
  padded[4095] = std::byte{1};
  EXPECT_TRUE(ReadCommit(padded).ok()) << "padding is not part of the commit";
}

TEST(CommitTest, RecordCountMismatch) {
  for (uint32_t count : {0u, 3u, 5u, 0xFFFFFFFFu}) {
    Bytes commit = Commit(8, SomeRecords());
    StoreLe32(commit.data() + 36, count);
    ResealCommitHeader(commit);
    const Status s = ReadCommit(commit).status();
    EXPECT_EQ(s.code(), EINVAL) << count;
    EXPECT_EQ(s.detail(),
              "commit 8: header says " + std::to_string(count) + " records, the payload holds 4");
  }
}

TEST(CommitTest, BadRecordsBehindGoodChecksums) {
  const Bytes commit = Commit(2, {InodeDeleteRecord{3}, DirentAddRecord{1, 2, 3, "a/b"}});
  const Status s = ReadCommit(commit).status();
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(s.op(), "read log commit");
  EXPECT_EQ(s.detail(), "commit 2: record 1 (dirent add): name contains '/'");
}

TEST(CommitTest, ReplayStopsAtTheFirstInvalidCommit) {
  // Three commits, then a stale one from an earlier pass over the log, then
  // zeros: replay takes exactly the three.
  Bytes log;
  for (uint64_t seq = 10; seq < 13; ++seq) {
    EncodeCommit(TestUuid(), seq, 0, SomeRecords(seq * 10), &log);
  }
  EncodeCommit(TestUuid(), 4, 0, SomeRecords(), &log);
  log.resize(log.size() + 3 * 4096);

  uint64_t expected = 10;
  size_t offset = 0;
  size_t applied = 0;
  while (offset < log.size()) {
    const auto rest = std::span<const std::byte>(log).subspan(offset);
    Result<CommitHeader> h = DecodeCommitHeader(rest, TestUuid());
    if (!h.ok() || h->sequence != expected) break;
    if (!DecodeCommitRecords(*h, rest).ok()) break;
    offset += CommitSpan(*h);
    ++expected;
    ++applied;
  }
  EXPECT_EQ(applied, 3u);
  EXPECT_EQ(offset, 3 * 4096u);
}

CheckpointHeader TestCheckpointHeader(uint32_t record_count) {
  CheckpointHeader h;
  h.uuid = TestUuid();
  h.generation = 12;
  h.next_sequence = 345;
  h.next_ino = 6789;
  h.record_count = record_count;
  return h;
}

Bytes Checkpoint(const std::vector<Record>& records) {
  const Bytes body = Encode(records);
  Bytes out;
  EncodeCheckpoint(TestCheckpointHeader(static_cast<uint32_t>(records.size())), body, &out);
  return out;
}

Result<std::vector<Record>> ReadCheckpoint(std::span<const std::byte> slot,
                                           const Uuid& uuid = TestUuid()) {
  Result<CheckpointHeader> h = DecodeCheckpointHeader(slot, uuid);
  if (!h.ok()) return h.status();
  return DecodeCheckpointBody(*h, slot.subspan(4096));
}

TEST(CheckpointTest, RoundTrip) {
  std::vector<Record> records;
  for (uint64_t i = 2; i < 400; ++i) {
    for (Record& r : SomeRecords(i)) records.push_back(std::move(r));
  }
  const Bytes ckpt = Checkpoint(records);
  EXPECT_EQ(ckpt.size() % 4096, 0u);
  Result<CheckpointHeader> h = DecodeCheckpointHeader(ckpt, TestUuid());
  ASSERT_TRUE(h.ok()) << h.status().ToString();
  EXPECT_EQ(h->generation, 12u);
  EXPECT_EQ(h->next_sequence, 345u);
  EXPECT_EQ(h->next_ino, 6789u);
  EXPECT_EQ(h->record_count, records.size());
  EXPECT_EQ(h->body_length, Encode(records).size());
  EXPECT_EQ(ckpt.size(), (4096 + h->body_length + 4095) / 4096 * 4096);
  Result<std::vector<Record>> back = DecodeCheckpointBody(*h, std::span(ckpt).subspan(4096));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, records);
}

TEST(CheckpointTest, GoldenHeaderBytes) {
  const std::vector<Record> records = SomeRecords();
  const Bytes body = Encode(records);
  const Bytes ckpt = Checkpoint(records);
  const std::byte* p = ckpt.data();
  EXPECT_EQ(std::memcmp(p, "NVSWCKPT", 8), 0);
  EXPECT_EQ(p[8], std::byte{1});
  EXPECT_EQ(p[23], std::byte{0x5A});
  EXPECT_EQ(LoadLe64(p + 24), 12u);
  EXPECT_EQ(LoadLe64(p + 32), 345u);
  EXPECT_EQ(LoadLe64(p + 40), 6789u);
  EXPECT_EQ(LoadLe64(p + 48), body.size());
  EXPECT_EQ(LoadLe32(p + 56), 4u);
  EXPECT_EQ(LoadLe32(p + 60), Crc32c(body));
  for (size_t i = 64; i < 124; ++i) EXPECT_EQ(p[i], std::byte{0}) << "reserved " << i;
  EXPECT_EQ(LoadLe32(p + 124), Crc32c(std::span(ckpt).first(124)));
  for (size_t i = 128; i < 4096; ++i) ASSERT_EQ(p[i], std::byte{0}) << "header block " << i;
  EXPECT_EQ(std::memcmp(p + 4096, body.data(), body.size()), 0) << "body in the second block";
  ASSERT_EQ(ckpt.size(), 8192u);
  for (size_t i = 4096 + body.size(); i < ckpt.size(); ++i) ASSERT_EQ(p[i], std::byte{0});
}

// The header block on its own, as a writer that lays out the body itself
// encodes it: the same bytes as the whole checkpoint's first block, over
// whatever the block held before.
TEST(CheckpointTest, HeaderBlockAloneIsTheCheckpointsFirstBlock) {
  const std::vector<Record> records = SomeRecords();
  const Bytes body = Encode(records);
  const Bytes ckpt = Checkpoint(records);
  CheckpointHeader h = TestCheckpointHeader(static_cast<uint32_t>(records.size()));
  h.body_length = body.size();
  h.body_crc = Crc32c(body);
  Bytes block(kBlockSize, std::byte{0xA5});
  EncodeCheckpointHeader(h, std::span<std::byte, kBlockSize>(block.data(), kBlockSize));
  EXPECT_EQ(block, Bytes(ckpt.begin(), ckpt.begin() + kBlockSize));
}

TEST(CheckpointTest, EmptyNamespace) {
  const Bytes ckpt = Checkpoint({});
  EXPECT_EQ(ckpt.size(), 4096u);
  Result<std::vector<Record>> r = ReadCheckpoint(ckpt);
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_TRUE(r->empty());
}

TEST(CheckpointTest, HeaderBlockMustBeWhole) {
  const Bytes ckpt = Checkpoint(SomeRecords());
  for (size_t n : {0, 64, 128, 4095}) {
    EXPECT_EQ(DecodeCheckpointHeader(std::span(ckpt).first(n), TestUuid()).status().code(), EINVAL)
        << n;
  }
}

TEST(CheckpointTest, EveryHeaderByteIsCovered) {
  const Bytes good = Checkpoint(SomeRecords());
  for (size_t at = 0; at < 128; ++at) {
    Bytes ckpt = good;
    ckpt[at] ^= std::byte{0x04};
    const Status s = DecodeCheckpointHeader(ckpt, TestUuid()).status();
    ASSERT_EQ(s.code(), EINVAL) << "byte " << at << ": " << s.ToString();
    EXPECT_EQ(s.op(), "read checkpoint");
    if (at >= 8) {
      EXPECT_EQ(s.detail(), "bad header checksum");
    }
  }
  Bytes magic = good;
  magic[0] = std::byte{'X'};
  ResealCheckpointHeader(magic);
  EXPECT_TRUE(DecodeCheckpointHeader(magic, TestUuid()).status().detail().starts_with("bad magic"));
}

TEST(CheckpointTest, WrongVolumeIsStale) {
  const Bytes ckpt = Checkpoint(SomeRecords());
  EXPECT_EQ(DecodeCheckpointHeader(ckpt, TestUuid(0x33)).status().code(), ESTALE);
}

TEST(CheckpointTest, AbsurdBodyLength) {
  Bytes ckpt = Checkpoint(SomeRecords());
  StoreLe64(ckpt.data() + 48, uint64_t{1} << 62);
  ResealCheckpointHeader(ckpt);
  EXPECT_EQ(DecodeCheckpointHeader(ckpt, TestUuid()).status().code(), EINVAL);
}

TEST(CheckpointTest, TornBody) {
  const Bytes ckpt = Checkpoint(SomeRecords());
  Result<CheckpointHeader> h = DecodeCheckpointHeader(ckpt, TestUuid());
  ASSERT_TRUE(h.ok());
  const auto body = std::span(ckpt).subspan(4096);
  for (size_t n = 0; n < h->body_length; ++n) {
    const Status s = DecodeCheckpointBody(*h, body.first(n)).status();
    ASSERT_EQ(s.code(), EINVAL) << n;
    EXPECT_NE(s.detail().find("torn checkpoint"), std::string::npos) << s.ToString();
  }
  EXPECT_TRUE(DecodeCheckpointBody(*h, body.first(h->body_length)).ok()) << "padding is optional";
}

TEST(CheckpointTest, BadBodyChecksum) {
  const Bytes good = Checkpoint(SomeRecords());
  const size_t body_length = Encode(SomeRecords()).size();
  for (size_t at = 4096; at < 4096 + body_length; at += 5) {
    Bytes ckpt = good;
    ckpt[at] ^= std::byte{0x80};
    const Status s = ReadCheckpoint(ckpt).status();
    ASSERT_EQ(s.code(), EINVAL) << at;
    EXPECT_EQ(s.detail(), "checkpoint generation 12: bad body checksum");
  }
}

TEST(CheckpointTest, RecordCountMismatch) {
  Bytes ckpt = Checkpoint(SomeRecords());
  StoreLe32(ckpt.data() + 56, 5);
  ResealCheckpointHeader(ckpt);
  const Status s = ReadCheckpoint(ckpt).status();
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(s.detail(), "checkpoint generation 12: header says 5 records, the payload holds 4");
}

TEST(CheckpointTest, BadRecordsBehindGoodChecksums) {
  InodeRecord inode;
  inode.ino = 5;
  inode.extents = {{0, 1, 0, false}};
  const Status s = ReadCheckpoint(Checkpoint({inode})).status();
  EXPECT_EQ(s.code(), EINVAL);
  EXPECT_EQ(s.ToString(),
            "read checkpoint failed on \"checkpoint\": Invalid argument (checkpoint generation 12: "
            "record 0 (inode): extent 0 has a block count of 0) (errno 22)");
}

TEST(CheckpointTest, CallerSuppliedLengthAndChecksumAreIgnored) {
  // EncodeCheckpoint computes both from the body it is given.
  CheckpointHeader h = TestCheckpointHeader(4);
  h.body_length = 1;
  h.body_crc = 2;
  Bytes ckpt;
  EncodeCheckpoint(h, Encode(SomeRecords()), &ckpt);
  EXPECT_TRUE(ReadCheckpoint(ckpt).ok());
}

}  // namespace
}  // namespace nvswapfs::fs
