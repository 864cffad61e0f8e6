// The byte form of an options object that the fuzz harnesses read (fuzz_options,
// fuzz_content) and the seed-corpus writer writes. The core takes typed options
// (recsys::OptionList) that the SQL layer reads from jsonb, so the harnesses fuzz the
// typed readers directly: every byte string decodes to some OptionList of the shapes
// the SQL layer can hand over (scalars; arrays and objects of scalars, one level deep;
// numbers finite or +-Infinity, never NaN, as jsonb numerics read as double are).
//
//   list   := member*                      (until the input ends; at most kMaxMembers)
//   member := name value
//   name   := b < 0x80: kOptionNames[b % count]     (the names the readers know)
//           | b >= 0x80: (b & 0x7F) raw bytes       (any other name, may repeat one)
//   value  := tag (tag % 6; % 4 inside an array or object)
//             0 null | 1 number: 8 bytes, a little-endian double (NaN -> +Infinity)
//             2 bool: 1 byte (& 1) | 3 string: length byte + bytes
//             4 array: count byte (% 16) + values | 5 object: count byte (% 16) + members
// Missing bytes at the end read as zero.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "options.h"

namespace recsys_fuzz {

inline const char* const kOptionNames[] = {
    "alpha",        "b",           "bias_learning_rate", "binary",        "blocks",         "calculate_loss",
    "candidate_max_df", "cg_steps", "epochs",            "factors",       "holdout_fraction", "init_scale",
    "iterations",   "k",           "learning_rate",      "lr_decay",      "lr_schedule",    "max_iter",
    "measure",      "min_df",      "min_support",        "n_init",        "neighbours",     "patience",
    "reg_bias",     "reg_exponent", "reg_factors",       "reg_item",      "reg_user",       "regularization",
    "seed",         "shrinkage",   "similarity",         "standardize",   "store_seen",     "sublinear_tf",
    "text_fields",  "threads",     "tol",                "verbose",       "weights",        "threshold",
    "exclude_seen", "k1"};
inline constexpr uint8_t kOptionNameCount = sizeof(kOptionNames) / sizeof(kOptionNames[0]);
inline constexpr size_t kMaxMembers = 4096;

class OptionBytes {
 public:
  OptionBytes(const uint8_t* p, size_t n) : p_(p), end_(p + n) {}

  recsys::OptionList list() {
    recsys::OptionList out;
    while (p_ < end_ && out.size() < kMaxMembers) {
      std::string n = name();
      out.emplace_back(std::move(n), value(0));
    }
    return out;
  }

 private:
  uint8_t byte() { return p_ < end_ ? *p_++ : 0; }
  std::string raw(size_t n) {
    const size_t take = std::min<size_t>(n, static_cast<size_t>(end_ - p_));
    std::string s(reinterpret_cast<const char*>(p_), take);
    p_ += take;
    return s;
  }
  std::string name() {
    const uint8_t b = byte();
    if (b < 0x80) return kOptionNames[b % kOptionNameCount];
    return raw(b & 0x7F);
  }
  recsys::OptionValue value(int depth) {
    const uint8_t tag = byte() % (depth == 0 ? 6 : 4);
    switch (tag) {
      case 1: {
        uint8_t b[8];
        for (uint8_t& x : b) x = byte();
        uint64_t bits = 0;
        for (int i = 7; i >= 0; --i) bits = (bits << 8) | b[i];
        double d;
        std::memcpy(&d, &bits, sizeof d);
        return recsys::OptionValue::of_number(std::isnan(d) ? INFINITY : d);
      }
      case 2: return recsys::OptionValue::of_bool(byte() & 1);
      case 3: return recsys::OptionValue::of_string(raw(byte()));
      case 4: {
        recsys::OptionValue v;
        v.type = recsys::OptionValue::Type::Array;
        for (int n = byte() % 16; n > 0; --n) v.elements.push_back(value(depth + 1));
        return v;
      }
      case 5: {
        recsys::OptionValue v;
        v.type = recsys::OptionValue::Type::Object;
        for (int n = byte() % 16; n > 0; --n) {
          std::string k = name();
          v.members.emplace_back(std::move(k), value(depth + 1));
        }
        return v;
      }
      default: return recsys::OptionValue::null_value();
    }
  }
  const uint8_t* p_;
  const uint8_t* end_;
};

inline recsys::OptionList decode_options(const uint8_t* p, size_t n) { return OptionBytes(p, n).list(); }

// The inverse, for the seed corpus: names the readers know are written as their index.
inline void encode_name(const std::string& name, std::string& out) {
  for (uint8_t i = 0; i < kOptionNameCount; ++i)
    if (name == kOptionNames[i]) {
      out += static_cast<char>(i);
      return;
    }
  out += static_cast<char>(0x80 | std::min<size_t>(name.size(), 0x7F));
  out += name.substr(0, 0x7F);
}

inline void encode_value(const recsys::OptionValue& v, std::string& out) {
  using T = recsys::OptionValue::Type;
  switch (v.type) {
    case T::Null: out += '\0'; break;
    case T::Number: {
      out += '\1';
      uint64_t bits;
      std::memcpy(&bits, &v.number, sizeof bits);
      for (int i = 0; i < 8; ++i) out += static_cast<char>((bits >> (8 * i)) & 0xFF);
      break;
    }
    case T::Bool: out += '\2'; out += static_cast<char>(v.boolean ? 1 : 0); break;
    case T::String:
      out += '\3';
      out += static_cast<char>(std::min<size_t>(v.text.size(), 0xFF));
      out += v.text.substr(0, 0xFF);
      break;
    case T::Array:
      out += '\4';
      out += static_cast<char>(std::min<size_t>(v.elements.size(), 15));
      for (size_t i = 0; i < v.elements.size() && i < 15; ++i) encode_value(v.elements[i], out);
      break;
    case T::Object:
      out += '\5';
      out += static_cast<char>(std::min<size_t>(v.members.size(), 15));
      for (size_t i = 0; i < v.members.size() && i < 15; ++i) {
        encode_name(v.members[i].first, out);
        encode_value(v.members[i].second, out);
      }
      break;
  }
}

inline std::string encode_options(const recsys::OptionList& list) {
  std::string out;
  for (const auto& m : list) {
    encode_name(m.first, out);
    encode_value(m.second, out);
  }
  return out;
}

}  // namespace recsys_fuzz
