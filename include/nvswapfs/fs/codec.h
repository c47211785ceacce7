// Explicit little-endian encoding for everything nvswapfs puts on the device.
//
// Nothing on the device is a copied struct: every field is written and read
// one at a time, fixed width, little-endian, so the format does not depend on
// the compiler, the architecture or padding. Decoding is bounds-checked: a
// Decoder never reads past its input and reports the first overrun.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nvswapfs::fs {

// CRC-32C (Castagnoli), the checksum of every superblock, checkpoint and log
// record. Uses the CPU's crc32 instruction when present.
uint32_t Crc32c(std::span<const std::byte> data, uint32_t seed = 0);

// Standalone little-endian helpers for fixed offsets in a block.
// Byte by byte, whatever the host's order; compilers make each one store.
inline void StoreLe16(std::byte* p, uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void StoreLe32(std::byte* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
inline void StoreLe64(std::byte* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>(v >> (8 * i));
}
uint32_t LoadLe32(const std::byte* p);
uint64_t LoadLe64(const std::byte* p);

// Appends fields to a growing byte vector.
class Encoder {
 public:
  explicit Encoder(std::vector<std::byte>* out) : out_(out) {}

  // Inline: a checkpoint encodes millions of these under the metadata lock.
  void U8(uint8_t v) { out_->push_back(static_cast<std::byte>(v)); }
  void U16(uint16_t v) { StoreLe16(Grow(2), v); }
  void U32(uint32_t v) { StoreLe32(Grow(4), v); }
  void U64(uint64_t v) { StoreLe64(Grow(8), v); }
  void I64(int64_t v) { U64(static_cast<uint64_t>(v)); }
  void Bytes(std::span<const std::byte> data);
  void Bytes(std::string_view data);
  // A string preceded by its length as u8 (names) or u16 (targets, values).
  // The caller guarantees the length fits (validated before encoding); a
  // longer string is cut to 255 / 65535 bytes so that the length prefix stays
  // true and the fields after it still decode.
  void String8(std::string_view s);
  void String16(std::string_view s);
  // Zero bytes up to the next multiple of `align` of the total size.
  void PadTo(size_t align);

  size_t size() const { return out_->size(); }
  // Overwrites a u32 at `pos`, already encoded (for lengths and checksums
  // known only at the end). Does nothing if [pos, pos + 4) is not inside.
  void PatchU32(size_t pos, uint32_t v);

 private:
  // Appends n bytes and returns where they start.
  std::byte* Grow(size_t n) {
    const size_t at = out_->size();
    out_->resize(at + n);
    return out_->data() + at;
  }

  std::vector<std::byte>* out_;
};

// Reads fields from a byte span. After the first overrun every read returns
// zero / empty and ok() is false, so a decoder can read a whole record and
// check once.
class Decoder {
 public:
  explicit Decoder(std::span<const std::byte> in) : in_(in) {}

  uint8_t U8();
  uint16_t U16();
  uint32_t U32();
  uint64_t U64();
  int64_t I64() { return static_cast<int64_t>(U64()); }
  std::span<const std::byte> Bytes(size_t n);
  std::string String8();
  std::string String16();
  void Skip(size_t n) { (void)Bytes(n); }

  bool ok() const { return ok_; }
  size_t position() const { return pos_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }

 private:
  bool Need(size_t n);
  std::span<const std::byte> in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace nvswapfs::fs
