// Writes a seed corpus of valid encodings for the fuzz targets, so that they
// start from inputs that pass every check instead of having to discover the
// magic numbers and checksums on their own.
//
// Usage: fuzz_seed_corpus DIR   (creates DIR/superblock, DIR/records, DIR/journal)
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <span>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "nvswapfs/fs/journal.h"
#include "nvswapfs/fs/records.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/units.h"

namespace nvswapfs::fuzz {
namespace {

bool Write(const std::filesystem::path& path, std::span<const std::byte> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz_seed_corpus: cannot write %s\n", path.c_str());
    return false;
  }
  return true;
}

// A few records of every type, with the optional parts of an inode filled.
std::vector<fs::Record> SampleRecords(uint64_t base) {
  fs::InodeRecord dir;
  dir.ino = 1;
  dir.mode = 040755;
  dir.nlink = 2;
  dir.next_cookie = base + 10;
  dir.xattrs = {{"user.a", ""}, {"user.b", "value"}};

  fs::InodeRecord file;
  file.ino = base;
  file.mode = 0100600;
  file.nlink = 1;
  file.size = 3 * fs::kBlockSize + 17;
  file.mtime_ns = 1'700'000'000'000'000'000;
  file.extents = {{0, 4096, 2, false}, {2, 9000, 1, true}, {10, 1, 1, false}};

  fs::InodeRecord link;
  link.ino = base + 1;
  link.mode = 0120777;
  link.nlink = 1;
  link.symlink = "../weights/layer0.pt";

  return {dir,
          file,
          link,
          fs::DirentAddRecord{1, base, base + 1, "tensor.pt"},
          fs::DirentAddRecord{1, base + 1, base + 2, "link"},
          fs::DirentRemoveRecord{1, "old.pt"},
          fs::InodeDeleteRecord{base + 5}};
}

std::vector<std::byte> Encode(const std::vector<fs::Record>& records) {
  std::vector<std::byte> out;
  for (const fs::Record& r : records) fs::EncodeRecord(r, &out);
  return out;
}

bool WriteSuperblocks(const std::filesystem::path& dir) {
  int n = 0;
  for (uint64_t unit : {64 * kKiB, kMiB}) {
    Result<fs::Superblock> sb = fs::PlanLayout(kDeviceSize, unit, "fuzz");
    if (!sb.ok()) {
      std::fprintf(stderr, "fuzz_seed_corpus: %s\n", sb.status().ToString().c_str());
      return false;
    }
    std::vector<std::byte> block(fs::kBlockSize);
    fs::EncodeSuperblock(*sb, std::span<std::byte, fs::kBlockSize>(block.data(), fs::kBlockSize));
    if (!Write(dir / ("superblock" + std::to_string(n++)), block)) return false;
  }
  return true;
}

bool WriteRecords(const std::filesystem::path& dir) {
  const std::vector<fs::Record> records = SampleRecords(100);
  if (!Write(dir / "all_types", Encode(records))) return false;
  for (size_t i = 0; i < records.size(); ++i) {
    if (!Write(dir / ("record" + std::to_string(i)), Encode({records[i]}))) return false;
  }
  return true;
}

bool WriteJournal(const std::filesystem::path& dir) {
  std::vector<std::byte> commit;
  fs::EncodeCommit(kVolume, 7, 200, SampleRecords(100), &commit);
  if (!Write(dir / "commit", commit)) return false;
  std::vector<std::byte> empty_commit;
  fs::EncodeCommit(kVolume, 8, 200, {}, &empty_commit);
  if (!Write(dir / "commit_empty", empty_commit)) return false;

  const std::vector<std::byte> body = Encode(SampleRecords(300));
  fs::CheckpointHeader header;
  header.uuid = kVolume;
  header.generation = 3;
  header.next_sequence = 7;
  header.next_ino = 400;
  header.record_count = static_cast<uint32_t>(SampleRecords(300).size());
  std::vector<std::byte> checkpoint;
  fs::EncodeCheckpoint(header, body, &checkpoint);
  return Write(dir / "checkpoint", checkpoint);
}

}  // namespace
}  // namespace nvswapfs::fuzz

int main(int argc, char** argv) {
  using namespace nvswapfs::fuzz;
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path root = argv[1];
  std::error_code ec;
  for (const char* sub : {"superblock", "records", "journal"}) {
    std::filesystem::create_directories(root / sub, ec);
    if (ec) {
      std::fprintf(stderr, "fuzz_seed_corpus: cannot create %s: %s\n", (root / sub).c_str(),
                   ec.message().c_str());
      return 1;
    }
  }
  const bool ok = WriteSuperblocks(root / "superblock") && WriteRecords(root / "records") &&
                  WriteJournal(root / "journal");
  return ok ? 0 : 1;
}
