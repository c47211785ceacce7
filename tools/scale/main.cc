// nvswapfs-scale-bench: how opening a volume scales with the number of files.
//
// Formats an image, creates --files files (each with one 4 KiB write, so
// each has an extent) in directories of --per-dir, commits as it goes, and
// then measures opening the volume twice: after a clean close (everything in
// a checkpoint) and after the daemon died without closing (checkpoint plus
// a log to replay). Reports the open time and the heap the open added per
// file (the namespace in memory: the volume's fixed I/O buffers are mapped
// on their own, apart from the heap, and are not in it); and what a
// checkpoint of the populated volume costs: encoding it (which the volume
// does under its metadata lock, holding up every other change meanwhile)
// and writing it to its slot (which it does without).
//
// With --keep PATH it builds the volume at PATH, measures only the open after
// the clean close, and leaves the populated, cleanly closed image there (for
// timing a cold mount of it); the pass/fail thresholds do not apply then.
#include <malloc.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/fault_injector.h"
#include "nvswapfs/fs/store.h"
#include "nvswapfs/fs/volume.h"
#include "nvswapfs/units.h"

namespace nvswapfs {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "nvswapfs-scale-bench: %s\n", what.c_str());
  std::exit(1);
}

void Check(const Status& s) {
  if (!s.ok()) Die(s.ToString());
}

std::unique_ptr<aio::IoEngine> Engine(const std::string& path, aio::Syscalls& sys) {
  auto dev = aio::BlockDevice::Open(path);
  if (!dev.ok()) Die(dev.status().ToString());
  auto engine = aio::AioEngine::Create(std::move(dev).value(), aio::EngineOptions{}, sys);
  if (!engine.ok()) Die(engine.status().ToString());
  return std::move(engine).value();
}

// What malloc has handed out, the chunks it mapped on its own included
// (the namespace's large arrays). The volume's staging and tail buffers are
// not malloc's: each pool is one mapping of its own (aio::AlignedBuffer).
size_t HeapInUse() {
  const struct mallinfo2 m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

struct OpenFigures {
  double ms = 0;
  double heap_per_file = 0;
};

OpenFigures MeasureOpen(const std::string& path, uint64_t files) {
  const size_t heap_before = HeapInUse();
  const auto start = Clock::now();
  auto volume = fs::Volume::Open(Engine(path, aio::Syscalls::System()),
                                 fs::VolumeOptions{.read_only = true, .commit_interval_s = 0});
  const double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  if (!volume.ok()) Die(volume.status().ToString());
  const size_t heap = HeapInUse() - heap_before;
  OpenFigures f;
  f.ms = ms;
  f.heap_per_file = static_cast<double>(heap) / static_cast<double>(files);
  return f;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// The two stages of a checkpoint, as the volume runs them (the body
// reserved ahead, as the volume reserves its estimate), five times each.
void MeasureCheckpoint(const std::string& path, uint64_t files) {
  auto engine = Engine(path, aio::Syscalls::System());
  fs::Metadata meta;
  fs::LoadReport report;
  auto store = fs::MetadataStore::Load(*engine, &meta, &report);
  if (!store.ok()) Die(store.status().ToString());
  std::vector<std::byte> first;
  (void)meta.EncodeCheckpoint(&first);
  std::vector<double> encode_ms;
  std::vector<double> write_ms;
  for (int i = 0; i < 5; ++i) {
    std::vector<std::byte> body;
    body.reserve(first.size());
    auto start = Clock::now();
    const uint32_t records = meta.EncodeCheckpoint(&body);
    encode_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    start = Clock::now();
    Check(store->WriteCheckpoint(body, records, store->next_ino()));
    write_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  std::printf(
      "checkpoint of %llu files (%s): encoded in %.1f ms (under the metadata lock), "
      "written in %.1f ms (medians of 5)\n",
      static_cast<unsigned long long>(files), FormatSize(first.size()).c_str(), Median(encode_ms),
      Median(write_ms));
}

int Run(uint64_t files, uint64_t per_dir, const std::string& path, bool keep) {
  // One 64 KiB allocation unit per file, and room for its metadata.
  const uint64_t size = std::max<uint64_t>(4 * kGiB, RoundUp(files * 2 * 64 * kKiB, kGiB));
  Check(aio::CreateImageFile(path, size, /*preallocate=*/false));
  {
    auto engine = Engine(path, aio::Syscalls::System());
    auto sb = fs::PlanLayout(RoundDown(engine->device().size, fs::kBlockSize), 64 * kKiB, "scale");
    if (!sb.ok()) Die(sb.status().ToString());
    Check(fs::MetadataStore::Format(*engine, *sb, ::getuid(), ::getgid()));
  }
  std::printf("image %s: %s, %llu files in directories of %llu\n", path.c_str(),
              FormatSize(size).c_str(), static_cast<unsigned long long>(files),
              static_cast<unsigned long long>(per_dir));

  // Populate, then close cleanly: everything ends up in a checkpoint.
  const std::string payload(4096, 'x');
  const auto fill_start = Clock::now();
  {
    auto volume = fs::Volume::Open(Engine(path, aio::Syscalls::System()),
                                   fs::VolumeOptions{.commit_interval_s = 0});
    if (!volume.ok()) Die(volume.status().ToString());
    fs::Volume& v = **volume;
    uint64_t dir = 0;
    for (uint64_t i = 0; i < files; ++i) {
      if (i % per_dir == 0) {
        auto d = v.Mkdir(fs::kRootIno, "d" + std::to_string(i / per_dir), fs::NewInode{0755, 0, 0});
        if (!d.ok()) Die(d.status().ToString());
        dir = d->ino;
      }
      auto f = v.Create(dir, "tensor-" + std::to_string(i) + ".pt", fs::NewInode{0644, 0, 0});
      if (!f.ok()) Die(f.status().ToString());
      auto n = v.Write(f->ino, 0, std::as_bytes(std::span(payload)));
      if (!n.ok()) Die(n.status().ToString());
      if (i % 1000 == 999) Check(v.Sync());
    }
    Check(v.Close());
  }
  const double fill_s = std::chrono::duration<double>(Clock::now() - fill_start).count();
  std::printf("created %llu files in %.1f s (%.0f files/s)\n",
              static_cast<unsigned long long>(files), fill_s, static_cast<double>(files) / fill_s);

  // Leaves the volume as it found it: cleanly closed, everything in the
  // (newest) checkpoint.
  MeasureCheckpoint(path, files);
  const OpenFigures clean = MeasureOpen(path, files);
  if (keep) {
    // The read-only open above changed nothing: the image is still cleanly closed.
    std::printf("open after a clean close: %.0f ms, %.0f B heap per file\n", clean.ms,
                clean.heap_per_file);
    std::printf("kept %s\n", path.c_str());
    return 0;
  }

  // Change a tenth of the files and "die": the next open replays a log.
  {
    aio::FaultInjector device(1);
    auto volume = fs::Volume::Open(Engine(path, device), fs::VolumeOptions{.commit_interval_s = 0});
    if (!volume.ok()) Die(volume.status().ToString());
    fs::Volume& v = **volume;
    for (uint64_t i = 0; i < files / 10; ++i) {
      auto f = v.Create(fs::kRootIno, "late-" + std::to_string(i), fs::NewInode{0644, 0, 0});
      if (!f.ok()) Die(f.status().ToString());
      if (i % 100 == 99) Check(v.Sync());
    }
    Check(v.Sync());
    Check(device.CrashNow());  // nothing unflushed is lost; the close never happens
  }
  fs::LoadReport report;
  {
    auto engine = Engine(path, aio::Syscalls::System());
    fs::Metadata meta;
    auto store = fs::MetadataStore::Load(*engine, &meta, &report);
    if (!store.ok()) Die(store.status().ToString());
  }
  const OpenFigures replay = MeasureOpen(path, files + files / 10);

  const std::string label = "after a kill (log: " + std::to_string(report.commits_replayed) +
                            " commits, " + FormatSize(report.log_bytes) + ")";
  std::printf("\n%-44s %10s %14s\n", "open", "time", "heap per file");
  std::printf("%-44s %7.0f ms %12.0f B\n", "after a clean close (checkpoint)", clean.ms,
              clean.heap_per_file);
  std::printf("%-44s %7.0f ms %12.0f B\n", label.c_str(), replay.ms, replay.heap_per_file);
  const bool fast = clean.ms < 1000 && replay.ms < 1000;
  const bool small = clean.heap_per_file < 1024 && replay.heap_per_file < 1024;
  std::printf("\nopen under 1 s: %s; metadata under 1 KiB per file: %s\n", fast ? "yes" : "NO",
              small ? "yes" : "NO");
  return fast && small ? 0 : 1;
}

}  // namespace
}  // namespace nvswapfs

int main(int argc, char** argv) {
  uint64_t files = 100000;
  uint64_t per_dir = 1000;
  std::string path = "/var/tmp/nvswapfs-scale.img";
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      if (i + 1 >= argc) nvswapfs::Die(std::string(name) + " needs a value");
      return argv[++i];
    };
    if (arg == "--files")
      files = std::strtoull(value("--files").c_str(), nullptr, 10);
    else if (arg == "--per-dir")
      per_dir = std::strtoull(value("--per-dir").c_str(), nullptr, 10);
    else if (arg == "--image")
      path = value("--image");
    else if (arg == "--keep") {
      path = value("--keep");
      keep = true;
    } else if (arg == "--help") {
      std::printf(
          "usage: nvswapfs-scale-bench [--files 100000] [--per-dir 1000] [--image PATH]\n"
          "                            [--keep PATH]\n"
          "  --keep PATH  build the volume at PATH, measure the open after a clean close\n"
          "               only, and leave the cleanly closed image there\n");
      return 0;
    } else {
      nvswapfs::Die("unknown option " + arg + " (see --help)");
    }
  }
  if (files == 0 || per_dir == 0) nvswapfs::Die("--files and --per-dir must be positive");
  const int rc = nvswapfs::Run(files, per_dir, path, keep);
  if (!keep) ::unlink(path.c_str());
  return rc;
}
