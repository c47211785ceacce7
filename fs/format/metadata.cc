#include "nvswapfs/fs/metadata.h"

#include <sys/stat.h>

#include <cerrno>
#include <type_traits>

namespace nvswapfs::fs {
namespace {

Status Corrupt(std::string detail) {
  return Status::Error(EUCLEAN, "apply metadata", "metadata").WithDetail(detail);
}

}  // namespace

const DirEntry* Directory::Find(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : &by_cookie_.at(it->second);
}

uint64_t Directory::CookieOf(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? 0 : it->second;
}

bool Directory::Add(uint64_t cookie, uint64_t ino, std::string name) {
  if (by_name_.contains(name) || by_cookie_.contains(cookie)) return false;
  auto [it, inserted] = by_cookie_.emplace(cookie, DirEntry{ino, std::move(name)});
  by_name_.emplace(std::string_view(it->second.name), cookie);
  return inserted;
}

bool Directory::Remove(std::string_view name) {
  auto it = by_name_.find(name);
  if (it == by_name_.end()) return false;
  const uint64_t cookie = it->second;
  by_name_.erase(it);
  by_cookie_.erase(cookie);
  return true;
}

bool Inode::is_dir() const {
  return S_ISDIR(attr.mode);
}
bool Inode::is_reg() const {
  return S_ISREG(attr.mode);
}
bool Inode::is_symlink() const {
  return S_ISLNK(attr.mode);
}

InodeRecord Inode::ToRecord() const {
  InodeRecord r = attr;
  r.extents = extents.extents();
  return r;
}

Inode* Metadata::Find(uint64_t ino) {
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second.get();
}

const Inode* Metadata::Find(uint64_t ino) const {
  auto it = inodes_.find(ino);
  return it == inodes_.end() ? nullptr : it->second.get();
}

Inode& Metadata::Upsert(const InodeRecord& record) {
  std::unique_ptr<Inode>& slot = inodes_[record.ino];
  if (!slot) slot = std::make_unique<Inode>();
  Inode& inode = *slot;
  inode.attr = record;
  inode.extents = ExtentMap(std::move(inode.attr.extents));
  inode.attr.extents.clear();
  inode.attr.extents.shrink_to_fit();
  if (inode.is_dir() && !inode.dir) inode.dir = std::make_unique<Directory>();
  return inode;
}

void Metadata::Erase(uint64_t ino) {
  inodes_.erase(ino);
}

Status Metadata::Apply(const Record& record) {
  return std::visit(
      [&](const auto& r) -> Status {
        using T = std::decay_t<decltype(r)>;
        if constexpr (std::is_same_v<T, InodeRecord>) {
          const Inode* old = Find(r.ino);
          if (old != nullptr && (old->attr.mode & S_IFMT) != (r.mode & S_IFMT)) {
            return Corrupt("inode " + std::to_string(r.ino) + " changes type");
          }
          if (!S_ISREG(r.mode) && !S_ISDIR(r.mode) && !S_ISLNK(r.mode)) {
            return Corrupt("inode " + std::to_string(r.ino) + " has unsupported mode " +
                           std::to_string(r.mode));
          }
          Upsert(r);
        } else if constexpr (std::is_same_v<T, InodeDeleteRecord>) {
          if (Find(r.ino) == nullptr) {
            return Corrupt("delete of missing inode " + std::to_string(r.ino));
          }
          Erase(r.ino);
        } else if constexpr (std::is_same_v<T, DirentAddRecord>) {
          Inode* dir = Find(r.dir);
          if (dir == nullptr || !dir->is_dir()) {
            return Corrupt("entry \"" + r.name + "\" added to missing directory " +
                           std::to_string(r.dir));
          }
          if (!dir->dir->Add(r.cookie, r.ino, r.name)) {
            return Corrupt("entry \"" + r.name + "\" added twice to directory " +
                           std::to_string(r.dir));
          }
          // The record order may create the entry before its inode; names for
          // messages are filled in once everything is applied (see PathOf).
          if (Inode* child = Find(r.ino); child != nullptr) {
            child->parent = r.dir;
            child->name = r.name;
          }
          if (r.cookie >= dir->attr.next_cookie) dir->attr.next_cookie = r.cookie + 1;
        } else if constexpr (std::is_same_v<T, DirentRemoveRecord>) {
          Inode* dir = Find(r.dir);
          if (dir == nullptr || !dir->is_dir() || !dir->dir->Remove(r.name)) {
            return Corrupt("removal of missing entry \"" + r.name + "\" from directory " +
                           std::to_string(r.dir));
          }
        }
        return Status::Ok();
      },
      record);
}

std::string Metadata::PathOf(uint64_t ino) const {
  if (ino == kRootIno) return "/";
  std::vector<const std::string*> parts;
  uint64_t cur = ino;
  // Bounded, so that a corrupt parent chain cannot loop forever.
  for (int depth = 0; depth < 4096 && cur != kRootIno; ++depth) {
    const Inode* node = Find(cur);
    if (node == nullptr || node->parent == 0 || node->name.empty()) {
      return parts.empty() ? "<inode " + std::to_string(ino) + ">"
                           : "<inode " + std::to_string(cur) + ">/" + *parts.front();
    }
    parts.push_back(&node->name);
    cur = node->parent;
  }
  std::string path;
  for (auto it = parts.rbegin(); it != parts.rend(); ++it) {
    path += '/';
    path += **it;
  }
  return path;
}

uint32_t Metadata::EncodeCheckpoint(std::vector<std::byte>* body) const {
  uint32_t count = 0;
  for (const auto& [ino, inode] : inodes_) {
    EncodeInodeRecord(inode->attr, inode->extents.extents(), body);
    ++count;
  }
  for (const auto& [ino, inode] : inodes_) {
    if (!inode->dir) continue;
    for (const auto& [cookie, entry] : inode->dir->entries()) {
      EncodeDirentAddRecord(ino, entry.ino, cookie, entry.name, body);
      ++count;
    }
  }
  return count;
}

}  // namespace nvswapfs::fs
