#include "nvswapfs/fs/fsck.h"

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <unordered_map>
#include <unordered_set>

#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/fs/allocator.h"
#include "nvswapfs/fs/store.h"
#include "nvswapfs/units.h"
#include "volume_internal.h"

namespace nvswapfs::fs {
namespace {

constexpr const char* kLostFound = "lost+found";

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const char* KindOf(const Inode& inode) {
  return inode.is_dir() ? "directory" : inode.is_symlink() ? "symlink" : "file";
}

class Checker {
 public:
  Checker(aio::IoEngine& engine, const FsckOptions& options, Metadata& meta, MetadataStore& store,
          FsckReport& report)
      : engine_(engine),
        options_(options),
        meta_(meta),
        store_(store),
        report_(report),
        next_ino_(store.next_ino()) {}

  Status Run(const LoadReport& load) {
    CheckSuperblocks(load);
    CheckRoot();
    CheckEntries();
    CheckReachability();
    CheckLinkCounts();
    CheckSpace();
    if (options_.repair && changed_) {
      NVSWAPFS_RETURN_IF_ERROR(store_.Checkpoint(meta_, next_ino_));
    }
    return Status::Ok();
  }

 private:
  // Records a problem; `fix` runs when repairing and returns whether it fixed it.
  template <typename Fix>
  void Problem(const std::string& what, Fix fix) {
    report_.problems.push_back(what);
    if (options_.repair && fix()) {
      report_.repaired.push_back(what);
      changed_ = true;
    }
  }
  void Unfixable(const std::string& what) { report_.problems.push_back(what); }

  void Progress(double done, const char* phase) {
    if (options_.progress) options_.progress(done, phase);
  }

  void CheckSuperblocks(const LoadReport& load) {
    const Superblock& sb = store_.superblock();
    if (!load.primary_superblock_ok) {
      Problem("primary superblock is damaged: " + load.primary_superblock_error,
              [&] { return MetadataStore::WriteSuperblockCopy(engine_, sb, 0).ok(); });
    }
    if (!load.backup_superblock_ok) {
      Problem("backup superblock is damaged: " + load.backup_superblock_error,
              [&] { return MetadataStore::WriteSuperblockCopy(engine_, sb, 1).ok(); });
    }
    // Changes written by the repair are made durable by the checkpoint (or
    // by WriteSuperblockCopy's own flush); superblock fixes alone need no
    // checkpoint.
    changed_ = false;
    if (load.log_end != kLogEndClean) report_.notes.push_back(load.log_end);
    const std::vector<std::string> damage = load.DamageNotes();
    for (std::string& note : load.VolumeNotes()) {
      if (std::find(damage.begin(), damage.end(), note) == damage.end()) {
        report_.notes.push_back(std::move(note));
      }
    }
    // A damaged checkpoint slot, or commits the log holds past what loads:
    // repair keeps the state that loads and writes a checkpoint over the
    // damaged slot, its log starting past every commit left behind.
    for (const std::string& what : damage) {
      Problem(what, [&] {
        if (!load.lost.empty()) store_.SkipPastLog(load.highest_log_sequence);
        return true;
      });
    }
  }

  Inode& MakeDir(uint64_t parent, const std::string& name) {
    InodeRecord r;
    r.ino = next_ino_++;
    r.mode = S_IFDIR | 0700;
    r.nlink = 2;
    r.atime_ns = r.mtime_ns = r.ctime_ns = r.btime_ns = NowNs();
    r.next_cookie = 1;
    Inode& dir = meta_.Upsert(r);
    if (parent != 0) {
      Inode* p = meta_.Find(parent);
      p->dir->Add(p->attr.next_cookie++, r.ino, name);
      dir.parent = parent;
      dir.name = name;
    }
    return dir;
  }

  void CheckRoot() {
    Inode* root = meta_.Find(kRootIno);
    if (root != nullptr && root->is_dir()) return;
    Problem("the root directory is missing", [&] {
      if (root != nullptr) meta_.Erase(kRootIno);
      InodeRecord r;
      r.ino = kRootIno;
      r.mode = S_IFDIR | 0755;
      r.nlink = 2;
      r.atime_ns = r.mtime_ns = r.ctime_ns = r.btime_ns = NowNs();
      r.next_cookie = 1;
      meta_.Upsert(r);
      return true;
    });
  }

  void CheckEntries() {
    std::unordered_map<uint64_t, uint64_t> parent_of;  // directory -> the directory holding it
    size_t seen = 0;
    const size_t total = meta_.inode_count();
    for (const auto& [ino, inode] : meta_.inodes()) {
      if (++seen % 4096 == 0) Progress(static_cast<double>(seen) / total, "entries");
      if (!inode->dir) continue;
      std::vector<std::string> drop;
      for (const auto& [cookie, entry] : inode->dir->entries()) {
        const std::string path = meta_.PathOf(ino) + (ino == kRootIno ? "" : "/") + entry.name;
        const Inode* child = meta_.Find(entry.ino);
        if (child == nullptr) {
          Problem("entry " + path + " points to missing inode " + std::to_string(entry.ino),
                  [&] { return drop.push_back(entry.name), true; });
          continue;
        }
        if (entry.ino == kRootIno) {
          Problem("entry " + path + " links the root directory",
                  [&] { return drop.push_back(entry.name), true; });
          continue;
        }
        if (child->is_dir()) {
          auto [it, first] = parent_of.emplace(entry.ino, ino);
          if (!first) {
            Problem("directory " + meta_.PathOf(entry.ino) + " also appears as " + path,
                    [&] { return drop.push_back(entry.name), true; });
          }
        }
      }
      for (const std::string& name : drop) inode->dir->Remove(name);
    }
  }

  void CheckReachability() {
    std::unordered_set<uint64_t> reached{kRootIno};
    std::deque<uint64_t> queue{kRootIno};
    while (!queue.empty()) {
      const Inode* dir = meta_.Find(queue.front());
      queue.pop_front();
      if (dir == nullptr || !dir->dir) continue;
      for (const auto& [cookie, entry] : dir->dir->entries()) {
        if (reached.insert(entry.ino).second) queue.push_back(entry.ino);
      }
    }
    std::vector<uint64_t> orphans, lost;
    for (const auto& [ino, inode] : meta_.inodes()) {
      if (reached.contains(ino)) continue;
      (inode->attr.nlink == 0 ? orphans : lost).push_back(ino);
    }
    if (!orphans.empty()) {
      const std::string what =
          std::to_string(orphans.size()) +
          " files deleted while open wait to be freed (the next mount frees them)";
      if (options_.repair) {
        for (uint64_t ino : orphans) meta_.Erase(ino);
        report_.notes.push_back(what + "; freed");
        changed_ = true;
      } else {
        report_.notes.push_back(what);
      }
    }
    uint64_t lost_found = 0;
    for (uint64_t ino : lost) {
      const Inode* inode = meta_.Find(ino);
      Problem(std::string(KindOf(*inode)) + " inode " + std::to_string(ino) + " (" +
                  std::to_string(inode->attr.size) + " bytes) is not reachable from the root",
              [&] {
                if (lost_found == 0) {
                  const DirEntry* e = meta_.Find(kRootIno)->dir->Find(kLostFound);
                  lost_found = e != nullptr && meta_.Find(e->ino)->is_dir()
                                   ? e->ino
                                   : MakeDir(kRootIno, kLostFound).attr.ino;
                }
                Inode* dir = meta_.Find(lost_found);
                const std::string name = "#" + std::to_string(ino);
                if (!dir->dir->Add(dir->attr.next_cookie++, ino, name)) return false;
                Inode* node = meta_.Find(ino);
                node->parent = lost_found;
                node->name = name;
                return true;
              });
    }
  }

  void CheckLinkCounts() {
    std::unordered_map<uint64_t, uint32_t> refs, subdirs;
    for (const auto& [ino, inode] : meta_.inodes()) {
      if (!inode->dir) continue;
      for (const auto& [cookie, entry] : inode->dir->entries()) {
        const Inode* child = meta_.Find(entry.ino);
        refs[entry.ino]++;
        if (child != nullptr && child->is_dir()) subdirs[ino]++;
      }
    }
    for (const auto& [ino, inode] : meta_.inodes()) {
      if (inode->attr.nlink == 0) continue;  // deleted while open
      const uint32_t want = inode->is_dir() ? 2 + subdirs[ino] : refs[ino];
      if (inode->attr.nlink == want) continue;
      Inode* node = inode.get();
      Problem(meta_.PathOf(ino) + " has link count " + std::to_string(inode->attr.nlink) +
                  ", should be " + std::to_string(want),
              [&] { return node->attr.nlink = want, true; });
    }
  }

  void CheckSpace() {
    const Superblock& sb = store_.superblock();
    UnitAllocator units(sb.data_size / sb.alloc_unit);
    size_t seen = 0;
    const size_t total = meta_.inode_count();
    for (const auto& [ino, inode_ptr] : meta_.inodes()) {
      if (++seen % 4096 == 0) Progress(static_cast<double>(seen) / total, "extents");
      Inode& inode = *inode_ptr;
      const std::string path = meta_.PathOf(ino);
      if (inode.is_reg()) report_.files++;
      if (inode.is_dir()) report_.directories++;
      if (inode.is_symlink()) {
        report_.symlinks++;
        if (inode.attr.size != inode.attr.symlink.size()) {
          Problem("symlink " + path + " has size " + std::to_string(inode.attr.size) +
                      ", its target is " + std::to_string(inode.attr.symlink.size()) + " bytes",
                  [&] { return inode.attr.size = inode.attr.symlink.size(), true; });
        }
      }
      if (!inode.extents.Valid()) {
        Unfixable("extent map of " + path + " is malformed (unsorted or overlapping)");
        continue;
      }
      if (!inode.is_reg() && !inode.extents.empty()) {
        Problem(std::string(KindOf(inode)) + " " + path + " has data extents", [&] {
          inode.extents = ExtentMap();
          return true;
        });
        continue;
      }
      auto runs = internal::UnitsOf(sb, inode.extents.extents());
      if (!runs.ok()) {
        Unfixable(path + ": " + std::string(runs.status().detail()));
        continue;
      }
      for (const UnitRun& run : *runs) {
        if (!units.MarkUsed(run)) {
          Unfixable(path + " uses allocation units " + std::to_string(run.first) + ".." +
                    std::to_string(run.first + run.count - 1) + " that another file uses too");
        }
      }
      const uint64_t end_block = (inode.attr.size + kBlockSize - 1) / kBlockSize;
      const uint64_t mapped_end = inode.extents.LogicalEnd();
      if (mapped_end > end_block) {
        bool written_past_end = false;
        for (const Segment& s : inode.extents.Lookup(end_block, mapped_end - end_block)) {
          written_past_end |= !s.hole() && !s.unwritten;
        }
        if (written_past_end) {
          Problem(path + " has written blocks past its end (" + std::to_string(inode.attr.size) +
                      " bytes)",
                  [&] {
                    inode.extents.SetUnwritten(end_block, mapped_end - end_block, true);
                    return true;
                  });
        }
      }
    }
    report_.data_bytes = sb.data_size;
    report_.used_bytes = units.used_units() * sb.alloc_unit;
    report_.free_bytes = units.free_units() * sb.alloc_unit;
    Progress(1.0, "done");
  }

  aio::IoEngine& engine_;
  const FsckOptions& options_;
  Metadata& meta_;
  MetadataStore& store_;
  FsckReport& report_;
  uint64_t next_ino_;
  bool changed_ = false;
};

}  // namespace

int FsckReport::ExitCode() const {
  if (problems.empty()) return 0;
  return repaired.size() == problems.size() ? 1 : 4;
}

Result<FsckReport> Check(aio::IoEngine& engine, const FsckOptions& options) {
  Metadata meta;
  LoadReport load;
  auto store = MetadataStore::Load(engine, &meta, &load, /*accept_loss=*/true);
  if (!store.ok()) return store.status();
  FsckReport report;
  report.commits_replayed = load.commits_replayed;
  Checker checker(engine, options, meta, *store, report);
  NVSWAPFS_RETURN_IF_ERROR(checker.Run(load));
  return report;
}

Result<FsckReport> CheckImage(const std::string& path, const FsckOptions& options) {
  auto dev = aio::BlockDevice::Open(path, aio::DeviceOptions{.read_only = !options.repair});
  if (!dev.ok()) return dev.status();
  auto engine = aio::AioEngine::Create(std::move(dev).value(), aio::EngineOptions{});
  if (!engine.ok()) return engine.status();
  return Check(**engine, options);
}

}  // namespace nvswapfs::fs
