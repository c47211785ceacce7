#include "nvswapfs/status.h"

#include <gtest/gtest.h>

#include <cerrno>

namespace nvswapfs {
namespace {

TEST(StatusTest, DefaultIsOkAndPrintsOk) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.code(), 0);
  EXPECT_EQ(s.ToString(), "OK");
  EXPECT_FALSE(s.offset().has_value());
}

TEST(StatusTest, ErrorPrintsOneLineWithEveryField) {
  Status s = Status::Error(EIO, "write", "/dev/nvme0n1", 1048576, 1048576);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), EIO);
  EXPECT_EQ(s.ToString(),
            "write failed on \"/dev/nvme0n1\" offset=1048576 length=1048576: "
            "Input/output error (errno 5)");
  EXPECT_EQ(s.offset(), 1048576u);
  EXPECT_EQ(s.length(), 1048576u);
}

TEST(StatusTest, DetailIsShownBeforeTheErrno) {
  Status s = Status::Error(EINVAL, "read", "img").WithDetail("offset must be aligned");
  EXPECT_EQ(s.ToString(),
            "read failed on \"img\": Invalid argument (offset must be aligned) (errno 22)");
  EXPECT_EQ(s.ToString().find('\n'), std::string::npos);
}

TEST(StatusTest, FromErrnoTakesTheThreadsErrno) {
  errno = ENOENT;
  Status s = Status::FromErrno("open device", "/nope");
  EXPECT_EQ(s.code(), ENOENT);
  EXPECT_EQ(s.op(), "open device");
  EXPECT_EQ(s.subject(), "/nope");
}

TEST(StatusTest, ZeroErrnoStillFails) {
  // A failure must never turn into success on the way to the caller.
  Status s = Status::Error(0, "flush", "dev");
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), EIO);
}

TEST(StatusTest, CopiesAreIndependent) {
  Status a = Status::Error(ENOSPC, "write", "a.pt");
  Status b = a;
  b = std::move(b).WithSubject("b.pt");
  EXPECT_EQ(a.subject(), "a.pt");
  EXPECT_EQ(b.subject(), "b.pt");
  a = Status::Ok();
  EXPECT_TRUE(a.ok());
  EXPECT_FALSE(b.ok());
}

TEST(ResultTest, HoldsValueOrError) {
  Result<int> good = 42;
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 42);
  EXPECT_TRUE(good.status().ok());

  Result<int> bad = Status::Error(EFBIG, "write", "x");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), EFBIG);
  EXPECT_EQ(std::move(bad).take_status().code(), EFBIG);
}

Status FailsEarly(bool fail, int* reached) {
  NVSWAPFS_RETURN_IF_ERROR(fail ? Status::Error(EIO, "step", "x") : Status::Ok());
  ++*reached;
  return Status::Ok();
}

TEST(ResultTest, ReturnIfErrorStopsAtTheFirstError) {
  int reached = 0;
  EXPECT_FALSE(FailsEarly(true, &reached).ok());
  EXPECT_EQ(reached, 0);
  EXPECT_TRUE(FailsEarly(false, &reached).ok());
  EXPECT_EQ(reached, 1);
}

}  // namespace
}  // namespace nvswapfs
