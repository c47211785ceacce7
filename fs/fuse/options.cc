#include "nvswapfs/fuse/options.h"

#include <cerrno>
#include <charconv>
#include <string_view>

#include "nvswapfs/fuse/connection.h"
#include "nvswapfs/units.h"

namespace nvswapfs::fuse {
namespace {

Status Bad(std::string_view detail) {
  return Status::Error(EINVAL, "parse options", "command line").WithDetail(detail);
}

Result<uint32_t> ParseCount(std::string_view key, std::string_view value, uint32_t lo,
                            uint32_t hi) {
  uint32_t v = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || end != value.data() + value.size() || v < lo || v > hi) {
    return Bad(std::string(key) + "=" + std::string(value) + ": expected a whole number from " +
               std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v;
}

// A size such as 64K; the message names the option with its value.
Result<uint64_t> ParseSizeOption(std::string_view key, std::string_view value) {
  auto v = ParseSize(value, key);
  if (v.ok()) return v;
  std::string why(v.status().detail());
  const std::string quoted = ": \"" + std::string(value) + "\"";
  if (why.size() >= quoted.size() && why.ends_with(quoted)) why.resize(why.size() - quoted.size());
  return Bad(std::string(key) + "=" + std::string(value) + ": " + why);
}

Result<bool> ParseBool(std::string_view key, std::string_view value) {
  if (value.empty() || value == "1" || value == "yes" || value == "on" || value == "true") {
    return true;
  }
  if (value == "0" || value == "no" || value == "off" || value == "false") return false;
  return Bad(std::string(key) + "=" + std::string(value) + ": expected 0 or 1");
}

// Options that only mean something to mount(8) or /etc/fstab.
bool IsFstabOnly(std::string_view key) {
  return key == "defaults" || key == "auto" || key == "noauto" || key == "user" ||
         key == "nouser" || key == "users" || key == "_netdev" || key == "nofail";
}

Status ApplyOption(std::string_view item, DaemonOptions* o) {
  const size_t eq = item.find('=');
  const std::string_view key = item.substr(0, eq);
  const std::string_view value = eq == std::string_view::npos ? "" : item.substr(eq + 1);
  const bool has_value = eq != std::string_view::npos;
  if (key == "block_size") {
    auto v = ParseSizeOption(key, value);
    if (!v.ok()) return v.status();
    o->engine.block_size = *v;
  } else if (key == "queue_depth") {
    auto v = ParseCount(key, value, 1, 4096);
    if (!v.ok()) return v.status();
    o->engine.queue_depth = *v;
  } else if (key == "threads") {
    auto v = ParseCount(key, value, 1, 64);
    if (!v.ok()) return v.status();
    o->engine.threads = *v;
  } else if (key == "single_submit") {
    auto v = ParseBool(key, value);
    if (!v.ok()) return v.status();
    o->engine.single_submit = *v;
  } else if (key == "overlap") {
    auto v = ParseBool(key, value);
    if (!v.ok()) return v.status();
    o->engine.overlap = *v;
  } else if (key == "commit") {
    auto v = ParseCount(key, value, 0, 86400);
    if (!v.ok()) return v.status();
    o->commit_interval_s = *v;
  } else if (key == "read_ahead") {
    auto v = ParseSizeOption(key, value);
    if (!v.ok()) return v.status();
    if (*v > (uint64_t{1} << 30)) return Bad("read_ahead is at most 1G");
    o->read_ahead_kb = static_cast<uint32_t>(*v / 1024);
  } else if (key == "max_read") {
    // libfuse wants it both as a mount option and from init().
    auto v = ParseCount(key, value, 4096, kMaxRequest);
    if (!v.ok()) return v.status();
    o->max_read = *v;
    o->fuse_options.emplace_back(item);
  } else if (key == "sync_writes") {
    auto v = ParseBool(key, value);
    if (!v.ok()) return v.status();
    o->sync_writes = *v;
  } else if (key == "max_threads") {
    auto v = ParseCount(key, value, 1, 256);
    if (!v.ok()) return v.status();
    o->max_threads = *v;
  } else if (key == "fault_read" || key == "fault_write") {
    auto v = ParseCount(key, value, 1, 1'000'000'000);
    if (!v.ok()) return v.status();
    (key == "fault_read" ? o->faults.read_one_in : o->faults.write_one_in) = *v;
  } else if (key == "fault_read_nth" || key == "fault_write_nth") {
    auto v = ParseCount(key, value, 1, 1'000'000'000);
    if (!v.ok()) return v.status();
    (key == "fault_read_nth" ? o->faults.read_nth : o->faults.write_nth) = *v;
  } else if (key == "fault_seed") {
    auto v = ParseCount(key, value, 0, 4'000'000'000);
    if (!v.ok()) return v.status();
    o->faults.seed = *v;
  } else if (key == "log") {
    if (value.empty()) return Bad("log= needs stderr, syslog or a file path");
    o->log = value;
  } else if (key == "ro" && !has_value) {
    o->read_only = true;
    o->fuse_options.emplace_back("ro");
  } else if (key == "rw" && !has_value) {
    o->read_only = false;
  } else if (key == "allow_other" && !has_value) {
    o->allow_other = true;
  } else if (key == "default_permissions" && !has_value) {
    o->default_permissions = true;
  } else if (key == "no_default_permissions" && !has_value) {
    o->default_permissions = false;
  } else if (key == "debug" && !has_value) {
    o->debug = true;
    o->foreground = true;
  } else if (IsFstabOnly(key)) {
    // Nothing to do here.
  } else {
    o->fuse_options.emplace_back(item);
  }
  return Status::Ok();
}

}  // namespace

Result<DaemonOptions> ParseDaemonArgs(int argc, const char* const* argv) {
  DaemonOptions o;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      o.show_help = true;
    } else if (arg == "-V" || arg == "--version") {
      o.show_version = true;
    } else if (arg == "-f") {
      o.foreground = true;
    } else if (arg == "-d") {
      o.debug = true;
      o.foreground = true;
    } else if (arg == "-s") {
      o.max_threads = 1;
    } else if (arg == "-o" || (arg.size() > 2 && arg.substr(0, 2) == "-o")) {
      std::string_view list = arg.size() > 2 ? arg.substr(2) : "";
      if (arg == "-o") {
        if (i + 1 >= argc) return Bad("-o needs a list of options");
        list = argv[++i];
      }
      while (!list.empty()) {
        const size_t comma = list.find(',');
        const std::string_view item = list.substr(0, comma);
        if (!item.empty()) NVSWAPFS_RETURN_IF_ERROR(ApplyOption(item, &o));
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
      }
    } else if (!arg.empty() && arg[0] == '-') {
      return Bad("unknown argument " + std::string(arg) + " (see --help)");
    } else {
      positional.emplace_back(arg);
    }
  }
  if (o.show_help || o.show_version) return o;
  if (positional.size() != 2) {
    return Bad("expected DEVICE and MOUNTPOINT, got " + std::to_string(positional.size()) +
               " arguments (see --help)");
  }
  o.device = positional[0];
  o.mountpoint = positional[1];
  return o;
}

std::string DaemonUsage(const char* program) {
  return std::string("usage: ") + program +
         " [-f] [-d] [-o OPTIONS] DEVICE MOUNTPOINT\n"
         "\n"
         "Mounts the nvswapfs volume on DEVICE (a block device or an image file made by\n"
         "mkfs.nvswapfs) at MOUNTPOINT. Runs in the background unless -f is given.\n"
         "\n"
         "  -f                  stay in the foreground (log to stderr)\n"
         "  -d                  debug: foreground, log every request\n"
         "  -s                  serve requests on one thread\n"
         "  -h, --help          this text\n"
         "  -V, --version       print the version\n"
         "\n"
         "Options (-o, comma-separated):\n"
         "  block_size=SIZE     engine piece size [1M]\n"
         "  queue_depth=N       engine pieces in flight per worker [32]\n"
         "  single_submit[=0|1] one io_submit per piece [0]\n"
         "  overlap=0|1         refill the queue as pieces complete (0: in batches) [1]\n"
         "  threads=N           engine worker threads [1]\n"
         "  ro                  mount read-only\n"
         "  commit=SECONDS      background metadata commit, which also makes files\n"
         "                      closed since the last one survive a power cut;\n"
         "                      0 disables (then only fsync and unmount do) [5]\n"
         "  allow_other         let other users in (off by default)\n"
         "  no_default_permissions  leave permission checks to nobody (default: the kernel\n"
         "                      checks modes, default_permissions)\n"
         "  log=DEST            stderr, syslog, or a file [stderr with -f, else syslog]\n"
         "  read_ahead=SIZE     how far ahead sequential reads are read: the kernel's\n"
         "                      window for this mount (0 keeps the kernel's 128K), and\n"
         "                      the most the daemon reads ahead of direct opens (a MiB\n"
         "                      per MiB of it, 1M to 32M; each stream measures how\n"
         "                      much of that reads fastest) [16M]\n"
         "  sync_writes[=0|1]   a write returns once its bytes are on the device, and\n"
         "                      fails itself on a device error (default: write-behind;\n"
         "                      errors reach the next write, fsync or close) [0]\n"
         "  max_threads=N       threads serving FUSE requests [16]\n"
         "  fault_read=N, fault_write=N, fault_read_nth=N, fault_write_nth=N, fault_seed=S\n"
         "                      testing only: make the device fail one in N reads/writes,\n"
         "                      or the N-th one after mounting, with EIO [off]\n"
         "  and libfuse's mount options (fsname=, subtype=, max_read=, ...)\n"
         "\n"
         "Unmount with: fusermount3 -u MOUNTPOINT (or umount MOUNTPOINT as root).\n";
}

}  // namespace nvswapfs::fuse
