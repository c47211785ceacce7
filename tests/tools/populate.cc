// nvswapfs-populate-test IMAGE: puts a small, known tree on a freshly
// formatted volume through the Volume API, for the mkfs/fsck/dump tool test:
//
//   /ckpt/            directory
//   /ckpt/step1.pt    3 MiB, written as three sequential 1 MiB writes
//   /latest           symlink to ckpt/step1.pt
//
// Exit 0 when the tree is written and the volume closed cleanly, 1 otherwise
// (with the error on stderr).

#include <unistd.h>

#include <cstddef>
#include <iostream>
#include <memory>
#include <vector>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/block_device.h"
#include "nvswapfs/fs/volume.h"
#include "nvswapfs/units.h"

namespace nvswapfs {
namespace {

constexpr size_t kWriteSize = 1 * kMiB;
constexpr int kWrites = 3;

Status Populate(fs::Volume& volume) {
  const fs::NewInode dir_how{.mode = 0755, .uid = ::getuid(), .gid = ::getgid()};
  const fs::NewInode file_how{.mode = 0644, .uid = ::getuid(), .gid = ::getgid()};
  Result<fs::Attr> dir = volume.Mkdir(fs::kRootIno, "ckpt", dir_how);
  if (!dir.ok()) return dir.status();
  Result<fs::Attr> file = volume.Create(dir->ino, "step1.pt", file_how);
  if (!file.ok()) return file.status();
  std::vector<std::byte> chunk(kWriteSize);
  for (int i = 0; i < kWrites; ++i) {
    // A different byte per chunk, so that misplaced data would show.
    for (size_t b = 0; b < chunk.size(); ++b) chunk[b] = static_cast<std::byte>(b * 7 + i + 1);
    Result<size_t> written = volume.Write(file->ino, i * kWriteSize, chunk);
    if (!written.ok()) return written.status();
    if (*written != chunk.size()) {
      return Status::Error(EIO, "write", "/ckpt/step1.pt").WithDetail("short write");
    }
  }
  Result<fs::Attr> link = volume.Symlink(fs::kRootIno, "latest", "ckpt/step1.pt", file_how);
  if (!link.ok()) return link.status();
  return volume.Close();
}

int Main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: nvswapfs-populate-test IMAGE\n";
    return 2;
  }
  Result<aio::BlockDevice> device = aio::BlockDevice::Open(argv[1]);
  if (!device.ok()) {
    std::cerr << "nvswapfs-populate-test: " << device.status().ToString() << "\n";
    return 1;
  }
  Result<std::unique_ptr<aio::AioEngine>> engine =
      aio::AioEngine::Create(std::move(device).value(), aio::EngineOptions{});
  if (!engine.ok()) {
    std::cerr << "nvswapfs-populate-test: " << engine.status().ToString() << "\n";
    return 1;
  }
  Result<std::unique_ptr<fs::Volume>> volume =
      fs::Volume::Open(std::move(engine).value(), fs::VolumeOptions{.commit_interval_s = 0});
  if (!volume.ok()) {
    std::cerr << "nvswapfs-populate-test: " << volume.status().ToString() << "\n";
    return 1;
  }
  const Status populated = Populate(**volume);
  if (!populated.ok()) {
    std::cerr << "nvswapfs-populate-test: " << populated.ToString() << "\n";
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace nvswapfs

int main(int argc, char** argv) {
  return nvswapfs::Main(argc, argv);
}
