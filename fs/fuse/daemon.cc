// The daemon: parse, open the volume, mount, serve, and shut down cleanly.
#include "nvswapfs/fuse/daemon.h"

#include <fcntl.h>
#include <fuse3/fuse_lowlevel.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "init_reply.h"
#include "mount_table.h"
#include "serve.h"
#include "nvswapfs/aio/aio_engine.h"
#include "nvswapfs/aio/fault_injector.h"
#include "nvswapfs/fs/volume.h"
#include "nvswapfs/fuse/filesystem.h"
#include "nvswapfs/fuse/options.h"
#include "nvswapfs/log.h"
#include "nvswapfs/unique_fd.h"

namespace nvswapfs::fuse {
namespace {

constexpr const char* kVersion = NVSWAPFS_VERSION;

// In the background the daemon forks first (the engine's threads would not
// survive a later fork) and keeps the terminal's process waiting on a pipe
// until the mount is up or has failed, so that errors still reach the user
// and the exit status means something.
class Launcher {
 public:
  // Returns in the process that goes on to serve; the waiting parent exits
  // from inside with the child's verdict.
  Status Start(bool background) {
    if (!background) return Status::Ok();
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return Status::FromErrno("pipe", "daemon");
    const pid_t pid = ::fork();
    if (pid < 0) return Status::FromErrno("fork", "daemon");
    if (pid > 0) {
      ::close(fds[1]);
      WaitForChild(fds[0]);  // does not return
    }
    ::close(fds[0]);
    report_.reset(fds[1]);
    ::setsid();
    return Status::Ok();
  }

  // The mount is up: release the terminal.
  void Ready() {
    if (!report_.valid()) return;
    Send('0', "");
    const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null >= 0) {
      ::dup2(null, STDIN_FILENO);
      ::dup2(null, STDOUT_FILENO);
      ::dup2(null, STDERR_FILENO);
      ::close(null);
    }
    (void)::chdir("/");
    report_.reset();
  }

  // Start-up failed: tell whoever waits (or stderr in the foreground).
  void Failed(const std::string& message) {
    if (report_.valid()) {
      Send('1', message);
      report_.reset();
    } else {
      std::fprintf(stderr, "nvswapfs: %s\n", message.c_str());
    }
  }

 private:
  [[noreturn]] static void WaitForChild(int fd) {
    std::string got;
    char buf[512];
    for (;;) {
      const ssize_t n = ::read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    if (got.empty()) {
      std::fprintf(stderr, "nvswapfs: the daemon exited during start-up\n");
      std::_Exit(1);
    }
    if (got[0] == '0') std::_Exit(0);
    std::fprintf(stderr, "nvswapfs: %s\n", got.substr(1).c_str());
    std::_Exit(1);
  }

  void Send(char verdict, const std::string& message) {
    const std::string msg = verdict + message;
    (void)!::write(report_.get(), msg.data(), msg.size());
  }

  UniqueFd report_;
};

// What libfuse says while a session is set up, collected so that a refusal
// (an unknown -o option) is told in one line with the rest.
std::string* fuse_messages = nullptr;

void CollectFuseLog(fuse_log_level /*level*/, const char* fmt, va_list ap) {
  if (fuse_messages == nullptr) return;
  // One message may come in pieces; lines end with a newline.
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  *fuse_messages += buf;
}

// The collected messages as one line.
std::string OneLine(std::string text) {
  std::string out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string_view line = std::string_view(text).substr(start, end - start);
    if (line.starts_with("fuse: ")) line.remove_prefix(6);
    if (!line.empty()) out += (out.empty() ? "" : "; ") + std::string(line);
    start = end + 1;
  }
  return out;
}

// A mount point left behind by a daemon that died answers ENOTCONN.
Status CheckMountpoint(const std::string& path, std::string* absolute) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOTCONN) {
      return Status::Error(ENOTCONN, "mount", path)
          .WithDetail(
              "a filesystem whose daemon died is still mounted there; run "
              "`fusermount3 -u " +
              path + "` first");
    }
    return Status::FromErrno("mount", path);
  }
  if (!S_ISDIR(st.st_mode)) {
    return Status::Error(ENOTDIR, "mount", path).WithDetail("the mount point must be a directory");
  }
  char resolved[PATH_MAX];
  if (::realpath(path.c_str(), resolved) == nullptr) return Status::FromErrno("mount", path);
  *absolute = resolved;
  // Mounting there again would hide what is mounted, not replace it.
  if (const auto what = internal::MountedAt(*absolute); what.has_value()) {
    return Status::Error(EBUSY, "mount", path)
        .WithDetail(*absolute + " is already a mount point (" + what->type + " " + what->source +
                    "); unmount it first");
  }
  return Status::Ok();
}

std::string FuseOptionList(const DaemonOptions& o) {
  // fsname and subtype make `mount` and `df` show "DEVICE ... fuse.nvswapfs".
  std::string list = "fsname=" + o.device + ",subtype=nvswapfs";
  if (o.default_permissions) list += ",default_permissions";
  if (o.allow_other) list += ",allow_other";
  for (const std::string& extra : o.fuse_options) list += "," + extra;
  return list;
}

}  // namespace

int RunDaemon(int argc, const char* const* argv) {
  auto parsed = ParseDaemonArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "nvswapfs: %s\n", std::string(parsed.status().detail()).c_str());
    return 2;
  }
  DaemonOptions o = std::move(parsed).value();
  if (o.show_help) {
    std::fputs(DaemonUsage(argv[0]).c_str(), stdout);
    return 0;
  }
  if (o.show_version) {
    std::printf("nvswapfs %s (libfuse %s)\n", kVersion, fuse_pkgversion());
    return 0;
  }
  std::string mountpoint;
  if (Status s = CheckMountpoint(o.mountpoint, &mountpoint); !s.ok()) {
    std::fprintf(stderr, "nvswapfs: %s\n", s.ToString().c_str());
    return 1;
  }
  // The device path is resolved now: the daemon later runs from "/".
  char device_path[PATH_MAX];
  if (::realpath(o.device.c_str(), device_path) != nullptr) o.device = device_path;

  Launcher launcher;
  if (Status s = launcher.Start(!o.foreground); !s.ok()) {
    std::fprintf(stderr, "nvswapfs: %s\n", s.ToString().c_str());
    return 1;
  }
  const std::string log = !o.log.empty() ? o.log : o.foreground ? "stderr" : "syslog";
  if (Status s = ConfigureLog(log, "nvswapfs", o.debug); !s.ok()) {
    launcher.Failed(s.ToString());
    return 1;
  }

  auto device = aio::BlockDevice::Open(o.device, aio::DeviceOptions{.read_only = o.read_only});
  if (!device.ok()) {
    launcher.Failed(device.status().ToString());
    return 1;
  }
  // Fault injection is opt-in and loud; with it off the engine talks to the
  // kernel directly.
  std::unique_ptr<aio::FaultInjector> faults;
  if (o.faults.any()) faults = std::make_unique<aio::FaultInjector>(o.faults.seed);
  auto engine = faults != nullptr
                    ? aio::AioEngine::Create(std::move(device).value(), o.engine, *faults)
                    : aio::AioEngine::Create(std::move(device).value(), o.engine);
  if (!engine.ok()) {
    launcher.Failed(engine.status().ToString());
    return 1;
  }
  auto volume = fs::Volume::Open(
      std::move(engine).value(),
      fs::VolumeOptions{.read_only = o.read_only, .commit_interval_s = o.commit_interval_s});
  if (!volume.ok()) {
    launcher.Failed(volume.status().ToString());
    return 1;
  }
  for (const std::string& note : (*volume)->notes()) LogWarning(o.device + ": " + note);
  if (faults != nullptr) {
    // Armed only now, so that loading the volume is not what fails.
    if (o.faults.read_one_in) faults->FailOneIn(aio::FaultOp::kRead, o.faults.read_one_in);
    if (o.faults.write_one_in) faults->FailOneIn(aio::FaultOp::kWrite, o.faults.write_one_in);
    if (o.faults.read_nth) faults->FailNth(aio::FaultOp::kRead, o.faults.read_nth);
    if (o.faults.write_nth) faults->FailNth(aio::FaultOp::kWrite, o.faults.write_nth);
    LogWarning("FAULT INJECTION ENABLED on " + o.device +
               ": device reads and writes will fail with EIO as asked (fault_* options)");
  }

  Filesystem filesystem(**volume, FilesystemOptions{.read_only = o.read_only,
                                                    .sync_writes = o.sync_writes,
                                                    .mountpoint = mountpoint,
                                                    .read_ahead_kb = o.read_ahead_kb,
                                                    .max_read = o.max_read});
  std::vector<std::string> args = {argv[0], "-o", FuseOptionList(o)};
  if (o.debug) args.emplace_back("-d");
  std::vector<char*> cargs;
  for (std::string& a : args) cargs.push_back(a.data());
  fuse_args fargs = FUSE_ARGS_INIT(static_cast<int>(cargs.size()), cargs.data());
  std::string said;
  fuse_messages = &said;
  fuse_set_log_func(CollectFuseLog);
  fuse_session* se =
      fuse_session_new(&fargs, &Filesystem::Operations(), sizeof(fuse_lowlevel_ops), &filesystem);
  fuse_set_log_func(nullptr);
  fuse_messages = nullptr;
  said = OneLine(std::move(said));
  if (se == nullptr) {
    launcher.Failed("cannot start a FUSE session: " +
                    (said.empty() ? std::string("libfuse refused the -o options") : said));
    return 1;
  }
  if (!said.empty()) LogWarning("libfuse: " + said);
  filesystem.Attach(se);
  struct SessionGuard {
    fuse_session* se;
    ~SessionGuard() { fuse_session_destroy(se); }
  } session_guard{se};
  internal::StopSignals stop_signals(se);
  if (fuse_session_mount(se, mountpoint.c_str()) != 0) {
    launcher.Failed("cannot mount at " + mountpoint +
                    " (is /dev/fuse available, and is the mount point in use?)");
    return 1;
  }
  if (!internal::AmendInitReply(se))
    LogWarning(
        "libfuse refused hooks on the FUSE device (fuse_session_custom_io): "
        "read-write opens keep the page cache, and the kernel stops reading ahead at "
        "libfuse's congestion threshold");
  LogInfo("mounted " + o.device + " at " + mountpoint + " (" + o.engine.ToString() + ")");
  launcher.Ready();

  // SIGINT, SIGTERM and SIGHUP end this as an unmount does: cleanly.
  const Status served = internal::Serve(se, o.max_threads);
  if (!served.ok()) LogError("serving " + mountpoint + ": " + served.ToString());
  // Reads that waited for a buffer may still be starting; each is answered
  // (or, on a connection gone, dropped) before the volume closes.
  filesystem.WaitForReads();

  fuse_session_unmount(se);
  // Everything pending is committed, and a checkpoint makes the next mount
  // replay nothing.
  Status closed = (*volume)->Close();
  if (!closed.ok()) {
    LogError("unmount of " + o.device + ": " + closed.ToString());
    return 1;
  }
  LogInfo("unmounted " + o.device + " from " + mountpoint);
  return served.ok() ? 0 : 1;
}

}  // namespace nvswapfs::fuse
