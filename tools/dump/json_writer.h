// A small streaming JSON writer: indented output, commas placed for the
// caller, strings escaped. Byte strings from the volume (names, labels) need
// not be UTF-8; invalid sequences are written as U+FFFD so that the output
// always parses.
//
// Usage: BeginObject(); Key("a"); Int(1); Key("b"); BeginArray(); ...
// The caller keeps keys and values paired and containers balanced.
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

namespace nvswapfs::dump {

class JsonWriter {
 public:
  explicit JsonWriter(std::ostream& out) : out_(out) {}

  void BeginObject();
  void EndObject();
  void BeginArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view value);
  void Uint(uint64_t value);
  void Int(int64_t value);
  void Bool(bool value);
  void Null();

  // Shorthands for a key and its value.
  void Field(std::string_view key, std::string_view value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const char* value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, const std::string& value) {
    Key(key);
    String(value);
  }
  void Field(std::string_view key, uint64_t value) {
    Key(key);
    Uint(value);
  }
  void Field(std::string_view key, int64_t value) {
    Key(key);
    Int(value);
  }
  void Field(std::string_view key, uint32_t value) {
    Key(key);
    Uint(value);
  }
  void Field(std::string_view key, int value) {
    Key(key);
    Int(value);
  }
  void Field(std::string_view key, bool value) {
    Key(key);
    Bool(value);
  }

 private:
  // Called before every value and key: comma and newline as needed.
  void Separate();
  void Open(char bracket);
  void Close(char bracket);
  void WriteString(std::string_view text);

  std::ostream& out_;
  // One entry per open container: whether it holds anything yet.
  std::vector<bool> has_items_;
  bool after_key_ = false;
};

// `text` as a JSON string literal, quotes included.
std::string JsonQuote(std::string_view text);

}  // namespace nvswapfs::dump
