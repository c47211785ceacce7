// mkfs.nvswapfs: creates an empty nvswapfs volume on a block device or an
// image file. See --help.

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "../common/command_line.h"
#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/block_device.h"
#include "nvswapfs/fs/store.h"
#include "nvswapfs/fs/superblock.h"
#include "nvswapfs/units.h"
#include "options.h"
#include "signatures.h"

namespace nvswapfs::mkfs {
namespace {

constexpr int kExitOk = 0;
constexpr int kExitFailure = 1;  // refused, or the device could not be formatted
constexpr int kExitUsage = 2;

int Fail(const Status& status) {
  std::cerr << "mkfs.nvswapfs: " << status.ToString() << "\n";
  return kExitFailure;
}

int Refuse(const std::string& line) {
  std::cerr << "mkfs.nvswapfs: " << line << "\n";
  return kExitFailure;
}

// Removes an image file this run created unless the run succeeds, so that a
// failed mkfs leaves nothing behind.
class CreatedImage {
 public:
  CreatedImage() = default;
  CreatedImage(const CreatedImage&) = delete;
  CreatedImage& operator=(const CreatedImage&) = delete;
  ~CreatedImage() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  void Set(std::string path) { path_ = std::move(path); }
  void Keep() { path_.clear(); }

 private:
  std::string path_;
};

Result<std::unique_ptr<aio::AioEngine>> OpenEngine(const std::string& path) {
  // Exclusive: a mounted or otherwise busy device is refused with EBUSY.
  Result<aio::BlockDevice> device = aio::BlockDevice::Open(path, aio::DeviceOptions{});
  if (!device.ok()) return device.status();
  return aio::AioEngine::Create(std::move(device).value(), aio::EngineOptions{});
}

// Plans the layout for --size before the file is created or grown, so that
// a size too small for a volume changes nothing on disk.
Status CheckLayoutFits(const MkfsOptions& options) {
  Result<fs::Superblock> plan =
      fs::PlanLayout(RoundDown(*options.size, fs::kBlockSize), options.alloc_unit, options.label);
  if (!plan.ok()) return std::move(plan).take_status().WithSubject(options.device);
  return Status::Ok();
}

// What to do with the path before opening it.
struct Preparation {
  bool missing = false;  // no such path, and no --size to create it
  bool created = false;  // a new image file
  bool grow = false;     // an existing image file to extend to --size
  uint64_t old_size = 0;
};

Result<Preparation> Prepare(const MkfsOptions& options, CreatedImage* created) {
  Preparation prep;
  struct stat st {};
  if (::stat(options.device.c_str(), &st) != 0) {
    if (errno != ENOENT) return Status::FromErrno("stat", options.device);
    if (!options.size) {
      prep.missing = true;
      return prep;
    }
    NVSWAPFS_RETURN_IF_ERROR(CheckLayoutFits(options));
    NVSWAPFS_RETURN_IF_ERROR(
        aio::CreateImageFile(options.device, *options.size, /*preallocate=*/false));
    created->Set(options.device);
    std::cout << "Created image file " << options.device << " (" << FormatSize(*options.size)
              << ", sparse)\n";
    prep.created = true;
    return prep;
  }
  if (!options.size) return prep;
  if (S_ISBLK(st.st_mode)) {
    return Status::Error(EINVAL, "resize", options.device)
        .WithDetail("--size applies to image files only; " + options.device +
                    " is a block device and is formatted whole");
  }
  if (!S_ISREG(st.st_mode)) return prep;  // BlockDevice::Open names the problem
  prep.old_size = static_cast<uint64_t>(st.st_size);
  if (prep.old_size > *options.size) {
    return Status::Error(EINVAL, "resize", options.device)
        .WithDetail("the image file is already " + FormatSize(prep.old_size) +
                    ", larger than --size " + FormatSize(*options.size) +
                    "; --size can only grow an image file");
  }
  prep.grow = prep.old_size < *options.size;
  if (prep.grow) NVSWAPFS_RETURN_IF_ERROR(CheckLayoutFits(options));
  return prep;
}

// Discards a block device's data region before it is formatted: the drive
// then holds nothing the new volume does not, and need not keep (or copy
// around) the old contents. Advisory: a device that cannot discard, or fails
// to, is formatted all the same. An image file is left alone, as a punched
// one takes its next writes more slowly.
void DiscardDataRegion(aio::IoEngine& engine, const fs::Superblock& sb) {
  std::cout << "Discarding the data region (" << FormatSize(sb.data_size) << "): " << std::flush;
  constexpr uint64_t kPiece = 1ull << 30;
  for (uint64_t done = 0; done < sb.data_size; done += kPiece) {
    const uint64_t n = std::min(kPiece, sb.data_size - done);
    const Status s = engine.Discard(sb.data_offset + done, n);
    if (s.code() == EOPNOTSUPP) {
      std::cout << "not supported by the device, skipped\n";
      return;
    }
    if (!s.ok()) {
      std::cout << "failed, formatting anyway (" << s.ToString() << ")\n";
      return;
    }
  }
  std::cout << "done\n";
}

void PrintSummary(const aio::DeviceInfo& device, const fs::Superblock& sb) {
  const uint64_t units = sb.data_size / sb.alloc_unit;
  std::cout << "Formatted " << device.path << " as nvswapfs\n"
            << "  device:            " << device.path
            << (device.is_block_device ? " (block device)" : " (image file)") << "\n"
            << "  size:              " << FormatSize(sb.device_size) << " (" << sb.device_size
            << " bytes)\n"
            << "  uuid:              " << fs::UuidToString(sb.uuid) << "\n"
            << "  label:             "
            << (sb.label.empty() ? std::string("(none)") : "\"" + sb.label + "\"") << "\n"
            << "  allocation unit:   " << FormatSize(sb.alloc_unit) << "\n"
            << "  checkpoint slots:  2 x " << FormatSize(sb.ckpt_size) << "\n"
            << "  log:               " << FormatSize(sb.log_size) << "\n"
            << "  data region:       " << FormatSize(sb.data_size) << " (" << units
            << " allocation units)\n";
}

int Run(const MkfsOptions& options) {
  CreatedImage created;
  Result<Preparation> prep = Prepare(options, &created);
  if (!prep.ok()) return Fail(prep.status());
  if (prep->missing) {
    return Refuse(options.device + " does not exist; give --size to create an image file");
  }

  Result<std::unique_ptr<aio::AioEngine>> engine = OpenEngine(options.device);
  if (!engine.ok()) return Fail(engine.status());

  // A file this run created holds nothing worth protecting.
  std::vector<std::string> foreign;
  if (!prep->created) {
    Result<std::string> ours = FindNvswapfs(**engine);
    if (!ours.ok()) return Fail(ours.status());
    Result<std::vector<std::string>> others = FindForeign(options.device);
    if (!others.ok()) return Fail(others.status());
    foreign = std::move(others).value();
    std::string found = *ours;
    for (const std::string& what : foreign) found += (found.empty() ? "" : " and ") + what;
    if (!found.empty() && !options.force) {
      return Refuse(options.device + " already holds " + found + " (use -f to overwrite)");
    }
  }

  if (prep->grow) {
    // The open device has the old size; close it, grow, and open again.
    engine->reset();
    const Status grown = aio::CreateImageFile(options.device, *options.size, false);
    if (!grown.ok()) return Fail(grown);
    std::cout << "Extended image file " << options.device << " from " << FormatSize(prep->old_size)
              << " to " << FormatSize(*options.size) << "\n";
    engine = OpenEngine(options.device);
    if (!engine.ok()) return Fail(engine.status());
  }

  if (!foreign.empty()) {
    Result<std::vector<std::string>> wiped = WipeForeign(options.device);
    if (!wiped.ok()) return Fail(wiped.status());
    for (const std::string& line : *wiped) std::cout << options.device << ": " << line << "\n";
  }

  const aio::DeviceInfo& device = (*engine)->device();
  Result<fs::Superblock> sb =
      fs::PlanLayout(RoundDown(device.size, fs::kBlockSize), options.alloc_unit, options.label);
  if (!sb.ok()) return Fail(std::move(sb).take_status().WithSubject(options.device));
  if (device.is_block_device && !options.no_discard) DiscardDataRegion(**engine, *sb);
  const Status formatted = fs::MetadataStore::Format(**engine, *sb, ::getuid(), ::getgid());
  if (!formatted.ok()) return Fail(formatted);
  created.Keep();
  PrintSummary(device, *sb);
  return kExitOk;
}

int Main(int argc, char** argv) {
  return tools::StartMain(ParseCommandLine(argc, argv), kExitUsage, UsageErrorLine, UsageText,
                          NVSWAPFS_VERSION, Run);
}

}  // namespace
}  // namespace nvswapfs::mkfs

int main(int argc, char** argv) {
  return nvswapfs::mkfs::Main(argc, argv);
}
