#include "nvswapfs/fuse/daemon.h"

int main(int argc, char** argv) {
  return nvswapfs::fuse::RunDaemon(argc, argv);
}
