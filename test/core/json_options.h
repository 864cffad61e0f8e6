// Test support: options written as JSON literals in the tests, turned into the typed
// recsys::OptionList the core takes (in the extension, PostgreSQL's jsonb iterator does
// this at the SQL border; the core itself reads no JSON). Also overloads of the
// parse_*_options functions taking such a literal, so tests read as before.
// A small reader for well-formed test literals: throws std::invalid_argument otherwise.
#pragma once
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "content.h"
#include "kmeans.h"
#include "knn.h"
#include "mf.h"
#include "options.h"
#include "popularity.h"
#include "training.h"

namespace test_support {

class JsonLiteral {
 public:
  explicit JsonLiteral(const std::string& s) : s_(s) {}

  recsys::OptionList options() {
    ws();
    if (pos_ == s_.size()) return {};
    if (s_.compare(pos_, 4, "null") == 0) return {};
    recsys::OptionValue v = value();
    ws();
    if (pos_ != s_.size() || v.type != recsys::OptionValue::Type::Object) bad();
    return v.members;
  }

 private:
  [[noreturn]] void bad() const { throw std::invalid_argument("bad JSON literal in a test: " + s_); }
  void ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\t' || s_[pos_] == '\r')) ++pos_;
  }
  bool eat(char c) {
    ws();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  std::string str() {
    if (!eat('"')) bad();
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ >= s_.size()) bad();
        const char e = s_[pos_++];
        if (e == 'n') out += '\n';
        else if (e == 't') out += '\t';
        else if (e == 'u') {
          if (pos_ + 4 > s_.size()) bad();
          const long cp = std::strtol(s_.substr(pos_, 4).c_str(), nullptr, 16);
          pos_ += 4;
          if (cp < 0x80) {
            out += static_cast<char>(cp);
          } else {
            out += static_cast<char>(0xC0 | (cp >> 6));
            out += static_cast<char>(0x80 | (cp & 0x3F));
          }
        } else out += e;
      } else {
        out += c;
      }
    }
    if (!eat('"')) bad();
    return out;
  }
  recsys::OptionValue value() {
    ws();
    recsys::OptionValue v;
    if (pos_ >= s_.size()) bad();
    const char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.type = recsys::OptionValue::Type::Object;
      if (eat('}')) return v;
      do {
        std::string key = str();
        if (!eat(':')) bad();
        v.members.emplace_back(std::move(key), value());
      } while (eat(','));
      if (!eat('}')) bad();
    } else if (c == '[') {
      ++pos_;
      v.type = recsys::OptionValue::Type::Array;
      if (eat(']')) return v;
      do v.elements.push_back(value());
      while (eat(','));
      if (!eat(']')) bad();
    } else if (c == '"') {
      v = recsys::OptionValue::of_string(str());
    } else if (s_.compare(pos_, 4, "true") == 0) {
      pos_ += 4;
      v = recsys::OptionValue::of_bool(true);
    } else if (s_.compare(pos_, 5, "false") == 0) {
      pos_ += 5;
      v = recsys::OptionValue::of_bool(false);
    } else if (s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
    } else {
      char* end = nullptr;
      const double x = std::strtod(s_.c_str() + pos_, &end);
      if (end == s_.c_str() + pos_) bad();
      pos_ = static_cast<size_t>(end - s_.c_str());
      v = recsys::OptionValue::of_number(x);  // 1e999 gives Infinity, as numeric beyond double does
    }
    return v;
  }
  const std::string& s_;
  size_t pos_ = 0;
};

inline recsys::OptionList json_options(const std::string& json) { return JsonLiteral(json).options(); }

}  // namespace test_support

namespace recsys {
inline AlsTrainingOptions parse_als_options(const std::string& j) {
  return parse_als_options(test_support::json_options(j));
}
inline MfTrainingOptions parse_mf_options(const std::string& j) {
  return parse_mf_options(test_support::json_options(j));
}
inline BaselineTrainingOptions parse_baseline_options(const std::string& j) {
  return parse_baseline_options(test_support::json_options(j));
}
inline PopularityOptions parse_popularity_options(const std::string& j) {
  return parse_popularity_options(test_support::json_options(j));
}
inline ItemKnnOptions parse_item_knn_options(const std::string& j) {
  return parse_item_knn_options(test_support::json_options(j));
}
inline ContentOptions parse_content_options(const std::string& j) {
  return parse_content_options(test_support::json_options(j));
}
inline KMeansOptions parse_kmeans_options(const std::string& j) {
  return parse_kmeans_options(test_support::json_options(j));
}
}  // namespace recsys
