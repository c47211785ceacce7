// Kept apart from the rest: glibc's struct statx predates the direct-I/O
// alignment fields, so this file talks to the kernel's own definition.
#include <linux/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace nvswapfs::aio {

uint32_t DirectIoAlignment(int fd) {
  struct statx stx = {};
  constexpr int kAtEmptyPath = 0x1000;
  if (::syscall(SYS_statx, fd, "", kAtEmptyPath, STATX_DIOALIGN, &stx) != 0) return 0;
  if ((stx.stx_mask & STATX_DIOALIGN) == 0) return 0;
  return stx.stx_dio_offset_align;
}

}  // namespace nvswapfs::aio
