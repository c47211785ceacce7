#include "nvswapfs/fs/codec.h"

#include <boost/crc.hpp>
#include <cstring>

#include "crc32c_internal.h"

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

namespace nvswapfs::fs {
namespace internal {
namespace {

uint32_t Reflect32(uint32_t v) {
  uint32_t out = 0;
  for (int i = 0; i < 32; ++i) {
    out = (out << 1) | (v & 1);
    v >>= 1;
  }
  return out;
}

}  // namespace

uint32_t Crc32cPortable(std::span<const std::byte> data, uint32_t seed) {
  // `seed` is a finished checksum (register inverted); boost wants the
  // register in unreflected form, so undo both to continue the chain.
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc(Reflect32(~seed));
  crc.process_bytes(data.data(), data.size());
  return crc.checksum();
}

#if defined(__x86_64__)

bool HaveHardwareCrc32c() {
  static const bool have = __builtin_cpu_supports("sse4.2");
  return have;
}

__attribute__((target("sse4.2"))) uint32_t Crc32cHardware(std::span<const std::byte> data,
                                                          uint32_t seed) {
  uint64_t state = static_cast<uint32_t>(~seed);
  const std::byte* p = data.data();
  size_t n = data.size();
  while (n >= 8) {
    uint64_t word;
    std::memcpy(&word, p, sizeof(word));  // the input need not be aligned
    state = _mm_crc32_u64(state, word);
    p += 8;
    n -= 8;
  }
  auto state32 = static_cast<uint32_t>(state);
  for (; n > 0; --n, ++p) state32 = _mm_crc32_u8(state32, static_cast<uint8_t>(*p));
  return ~state32;
}

#else

bool HaveHardwareCrc32c() {
  return false;
}

uint32_t Crc32cHardware(std::span<const std::byte> data, uint32_t seed) {
  return Crc32cPortable(data, seed);
}

#endif

}  // namespace internal

uint32_t Crc32c(std::span<const std::byte> data, uint32_t seed) {
  if (internal::HaveHardwareCrc32c()) return internal::Crc32cHardware(data, seed);
  return internal::Crc32cPortable(data, seed);
}

void Encoder::Bytes(std::span<const std::byte> data) {
  out_->insert(out_->end(), data.begin(), data.end());
}

void Encoder::Bytes(std::string_view data) {
  Bytes(std::as_bytes(std::span(data)));
}

void Encoder::String8(std::string_view s) {
  // Cutting an over-long string keeps the length prefix true, so a caller's
  // mistake costs that string and not every field encoded after it.
  s = s.substr(0, UINT8_MAX);
  U8(static_cast<uint8_t>(s.size()));
  Bytes(s);
}

void Encoder::String16(std::string_view s) {
  s = s.substr(0, UINT16_MAX);
  U16(static_cast<uint16_t>(s.size()));
  Bytes(s);
}

void Encoder::PadTo(size_t align) {
  if (align == 0) return;
  const size_t rem = out_->size() % align;
  if (rem != 0) out_->resize(out_->size() + (align - rem), std::byte{0});
}

void Encoder::PatchU32(size_t pos, uint32_t v) {
  if (pos > out_->size() || out_->size() - pos < 4) return;
  StoreLe32(out_->data() + pos, v);
}

bool Decoder::Need(size_t n) {
  if (!ok_) return false;
  if (n > in_.size() - pos_) {
    ok_ = false;
    return false;
  }
  return true;
}

uint8_t Decoder::U8() {
  if (!Need(1)) return 0;
  return static_cast<uint8_t>(in_[pos_++]);
}

uint16_t Decoder::U16() {
  if (!Need(2)) return 0;
  const auto v = static_cast<uint16_t>(static_cast<uint16_t>(in_[pos_]) |
                                       static_cast<uint16_t>(in_[pos_ + 1]) << 8);
  pos_ += 2;
  return v;
}

uint32_t Decoder::U32() {
  if (!Need(4)) return 0;
  const uint32_t v = LoadLe32(in_.data() + pos_);
  pos_ += 4;
  return v;
}

uint64_t Decoder::U64() {
  if (!Need(8)) return 0;
  const uint64_t v = LoadLe64(in_.data() + pos_);
  pos_ += 8;
  return v;
}

std::span<const std::byte> Decoder::Bytes(size_t n) {
  if (!Need(n)) return {};
  auto out = in_.subspan(pos_, n);
  pos_ += n;
  return out;
}

std::string Decoder::String8() {
  const size_t n = U8();
  auto bytes = Bytes(n);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

std::string Decoder::String16() {
  const size_t n = U16();
  auto bytes = Bytes(n);
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

uint32_t LoadLe32(const std::byte* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | static_cast<uint32_t>(p[i]);
  return v;
}

uint64_t LoadLe64(const std::byte* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | static_cast<uint64_t>(p[i]);
  return v;
}

}  // namespace nvswapfs::fs
