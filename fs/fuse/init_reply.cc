#include "init_reply.h"

#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "nvswapfs/fuse/connection.h"
#include "nvswapfs/log.h"

namespace nvswapfs::fuse::internal {

namespace {

// Bit 36 of the 64 init flags, sent in flags2 (<linux/fuse.h> from protocol
// 7.39 on; Debian bookworm's headers are 7.38).
constexpr uint64_t kDirectIoAllowMmap = uint64_t{1} << 36;

// The INIT exchange happens once per session, before any other request, on
// the session's first descriptor; the atomics only make the hand-over to the
// worker threads that read the result well defined.
struct InitWatch {
  std::atomic<bool> done{false};      // INIT reply seen
  std::atomic<uint64_t> unique{0};    // of the INIT request, once read
  std::atomic<bool> offered{false};   // the kernel offered the flag
  std::atomic<bool> granted{false};   // and the reply asked for it
};

InitWatch watch;

template <typename T>
T Load(const void* at) {
  T v;
  std::memcpy(&v, at, sizeof v);
  return v;
}

ssize_t ReadRequest(int fd, void* buf, size_t len, void*) {
  const ssize_t n = read(fd, buf, len);
  if (n <= 0 || watch.done.load(std::memory_order_acquire)) return n;
  const auto* bytes = static_cast<const std::byte*>(buf);
  const auto got = static_cast<size_t>(n);
  constexpr size_t kHeader = sizeof(fuse_in_header);
  if (got < kHeader + offsetof(fuse_init_in, flags2)) return n;
  const auto in = Load<fuse_in_header>(bytes);
  if (in.opcode != FUSE_INIT) return n;
  uint64_t flags = Load<uint32_t>(bytes + kHeader + offsetof(fuse_init_in, flags));
  if ((flags & FUSE_INIT_EXT) != 0 && got >= kHeader + offsetof(fuse_init_in, flags2) + 4)
    flags |= uint64_t{Load<uint32_t>(bytes + kHeader + offsetof(fuse_init_in, flags2))} << 32;
  watch.offered.store((flags & kDirectIoAllowMmap) != 0, std::memory_order_relaxed);
  watch.unique.store(in.unique, std::memory_order_release);
  return n;
}

ssize_t WriteReply(int fd, iovec* iov, int count, void*) {
  const uint64_t init = watch.unique.load(std::memory_order_acquire);
  if (init != 0 && !watch.done.load(std::memory_order_relaxed) && count >= 2 &&
      iov[0].iov_len >= sizeof(fuse_out_header)) {
    const auto out = Load<fuse_out_header>(iov[0].iov_base);
    if (out.unique == init) {
      // libfuse builds the reply in a writable local of its own; a field a
      // reply is too short to carry (a very old kernel's) is left out.
      auto* bytes = static_cast<std::byte*>(iov[1].iov_base);
      constexpr size_t kThresholdAt = offsetof(fuse_init_out, congestion_threshold);
      if (out.error == 0 && iov[1].iov_len >= kThresholdAt + sizeof(uint16_t))
        std::memcpy(bytes + kThresholdAt, &kCongestionThreshold, sizeof kCongestionThreshold);
      bool granted = false;
      if (out.error == 0 && watch.offered.load(std::memory_order_relaxed) &&
          iov[1].iov_len >= offsetof(fuse_init_out, flags2) + 4) {
        const auto flags = Load<uint32_t>(bytes + offsetof(fuse_init_out, flags));
        if ((flags & FUSE_INIT_EXT) != 0) {
          const uint32_t flags2 = Load<uint32_t>(bytes + offsetof(fuse_init_out, flags2)) |
                                  static_cast<uint32_t>(kDirectIoAllowMmap >> 32);
          std::memcpy(bytes + offsetof(fuse_init_out, flags2), &flags2, sizeof flags2);
          granted = true;
        }
      }
      // Published before the reply leaves, so before any open can ask.
      watch.granted.store(granted, std::memory_order_release);
      watch.done.store(true, std::memory_order_release);
      LogInfo(granted ? "read-write opens bypass the page cache (the kernel maps such opens "
                        "through it)"
                      : "read-write opens keep the page cache: this kernel cannot map "
                        "direct-I/O opens shared (FUSE_DIRECT_IO_ALLOW_MMAP, Linux 6.6)");
    }
  }
  return writev(fd, iov, count);
}

}  // namespace

bool AmendInitReply(fuse_session* se) {
  static const fuse_custom_io io = {
      .writev = WriteReply,
      .read = ReadRequest,
      .splice_receive = nullptr,
      .splice_send = nullptr,
  };
  return fuse_session_custom_io(se, &io, fuse_session_fd(se)) == 0;
}

bool DirectIoMmapGranted() {
  return watch.granted.load(std::memory_order_acquire);
}

}  // namespace nvswapfs::fuse::internal
