#include "options.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace recsys {
namespace {

// A small recursive-descent reader for one flat JSON object.
class FlatJsonParser {
 public:
  FlatJsonParser(const std::string& text, const std::string& context) : s_(text), ctx_(context) {}

  std::vector<std::pair<std::string, OptionValue>> parse() {
    std::vector<std::pair<std::string, OptionValue>> out;
    skip_ws();
    if (pos_ == s_.size()) return out;
    if (s_.compare(pos_, 4, "null") == 0) {
      pos_ += 4;
      expect_end();
      return out;
    }
    if (s_[pos_] != '{') bad("options must be a JSON object");
    ++pos_;
    skip_ws();
    if (peek() == '}') {
      ++pos_;
      expect_end();
      return out;
    }
    for (;;) {
      skip_ws();
      std::string key = parse_string();
      skip_ws();
      if (peek() != ':') bad("malformed options object");
      ++pos_;
      skip_ws();
      OptionValue v = parse_value(key);
      for (auto& kv : out)
        if (kv.first == key) fail(ErrorKind::InvalidParameter, ctx_ + ": option \"" + key + "\" is given twice");
      out.emplace_back(std::move(key), std::move(v));
      skip_ws();
      char c = peek();
      ++pos_;
      if (c == '}') break;
      if (c != ',') bad("malformed options object");
    }
    expect_end();
    return out;
  }

 private:
  [[noreturn]] void bad(const std::string& what) { fail(ErrorKind::InvalidParameter, ctx_ + ": " + what); }
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  void expect_end() {
    skip_ws();
    if (pos_ != s_.size()) bad("unexpected text after the options object");
  }
  std::string parse_string() {
    if (peek() != '"') bad("malformed options object");
    ++pos_;
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c == '\\') {
        if (pos_ >= s_.size()) break;
        char e = s_[pos_++];
        switch (e) {
          case 'n': out += '\n'; break;
          case 't': out += '\t'; break;
          case 'r': out += '\r'; break;
          case 'b': out += '\b'; break;
          case 'f': out += '\f'; break;
          case 'u': {
            if (pos_ + 4 > s_.size()) bad("malformed string escape");
            unsigned cp = static_cast<unsigned>(std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16));
            pos_ += 4;
            if (cp < 0x80) {
              out += static_cast<char>(cp);
            } else if (cp < 0x800) {
              out += static_cast<char>(0xC0 | (cp >> 6));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
              out += static_cast<char>(0xE0 | (cp >> 12));
              out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            }
            break;
          }
          default: out += e;
        }
      } else {
        out += c;
      }
    }
    if (peek() != '"') bad("unterminated string");
    ++pos_;
    return out;
  }
  OptionValue parse_value(const std::string& key) {
    OptionValue v;
    char c = peek();
    if (c == '"') {
      v.type = OptionValue::Type::String;
      v.text = parse_string();
    } else if (s_.compare(pos_, 4, "true") == 0) {
      v.type = OptionValue::Type::Bool;
      v.boolean = true;
      pos_ += 4;
    } else if (s_.compare(pos_, 5, "false") == 0) {
      v.type = OptionValue::Type::Bool;
      pos_ += 5;
    } else if (s_.compare(pos_, 4, "null") == 0) {
      v.type = OptionValue::Type::Null;
      pos_ += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      const char* start = s_.c_str() + pos_;
      char* end = nullptr;
      v.number = std::strtod(start, &end);
      if (end == start) bad("option \"" + key + "\" has a malformed number");
      pos_ += static_cast<size_t>(end - start);
      v.type = OptionValue::Type::Number;
    } else {
      bad("option \"" + key + "\" must be a number, boolean or string, not an array or object");
    }
    return v;
  }

  const std::string& s_;
  const std::string& ctx_;
  size_t pos_ = 0;
};

}  // namespace

OptionReader::OptionReader(const std::string& json_text, std::string context) : context_(std::move(context)) {
  values_ = FlatJsonParser(json_text, context_).parse();
  used_.assign(values_.size(), false);
}

const OptionValue* OptionReader::find(const char* name) {
  known_.emplace_back(name);
  for (size_t i = 0; i < values_.size(); ++i) {
    if (values_[i].first == name) {
      used_[i] = true;
      if (values_[i].second.type == OptionValue::Type::Null) return nullptr;  // null = default
      return &values_[i].second;
    }
  }
  return nullptr;
}

bool OptionReader::has(const char* name) const {
  for (auto& kv : values_)
    if (kv.first == name && kv.second.type != OptionValue::Type::Null) return true;
  return false;
}

int64_t OptionReader::get_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (v->type != OptionValue::Type::Number || std::floor(v->number) != v->number || !std::isfinite(v->number))
    fail(ErrorKind::InvalidParameter, context_ + ": option \"" + name + "\" must be an integer");
  if (v->number < static_cast<double>(lo) || v->number > static_cast<double>(hi))
    fail(ErrorKind::InvalidParameter, context_ + ": option \"" + name + "\" must be between " + std::to_string(lo) +
                                          " and " + std::to_string(hi) + ", got " + json_number(v->number));
  return static_cast<int64_t>(v->number);
}

double OptionReader::get_double(const char* name, double fallback, double lo, double hi) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (v->type != OptionValue::Type::Number || !std::isfinite(v->number))
    fail(ErrorKind::InvalidParameter, context_ + ": option \"" + name + "\" must be a number");
  if (v->number < lo || v->number > hi)
    fail(ErrorKind::InvalidParameter, context_ + ": option \"" + name + "\" must be between " + json_number(lo) +
                                          " and " + json_number(hi) + ", got " + json_number(v->number));
  return v->number;
}

bool OptionReader::get_bool(const char* name, bool fallback) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (v->type != OptionValue::Type::Bool)
    fail(ErrorKind::InvalidParameter, context_ + ": option \"" + name + "\" must be true or false");
  return v->boolean;
}

std::string OptionReader::get_string(const char* name, const std::string& fallback,
                                     const std::vector<std::string>& allowed) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (v->type != OptionValue::Type::String)
    fail(ErrorKind::InvalidParameter, context_ + ": option \"" + name + "\" must be a string");
  if (allowed.empty()) return v->text;
  std::string list;
  for (auto& a : allowed) {
    if (a == v->text) return v->text;
    list += (list.empty() ? "" : ", ") + a;
  }
  fail(ErrorKind::InvalidParameter,
       context_ + ": option \"" + name + "\" must be one of " + list + ", got \"" + v->text + "\"");
}

void OptionReader::reject_unknown() const {
  for (size_t i = 0; i < values_.size(); ++i) {
    if (used_[i]) continue;
    bool known = false;
    for (auto& k : known_) known = known || k == values_[i].first;
    if (known) continue;
    std::string list;
    for (auto& k : known_)
      if (list.find("\"" + k + "\"") == std::string::npos) list += (list.empty() ? "" : ", ") + ("\"" + k + "\"");
    fail(ErrorKind::InvalidParameter,
         context_ + ": unknown option \"" + values_[i].first + "\" (valid options: " + list + ")");
  }
}

std::string json_escape(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // A value that is exactly a float (a float parameter widened to double) prints as the
  // shortest decimal that reads back as that float: 0.01f shows as 0.01, not 0.0099999998.
  // Plain notation is preferred to an exponent for ordinary magnitudes (100, not 1e+02).
  const bool plain = std::fabs(v) >= 1e-5 && std::fabs(v) < 1e15;
  const float f = static_cast<float>(v);
  if (static_cast<double>(f) == v) {
    for (int prec = 1; prec <= 17; ++prec) {
      char tmp[64];
      std::snprintf(tmp, sizeof tmp, "%.*g", prec, v);
      if (std::strtof(tmp, nullptr) == f && !(plain && std::strchr(tmp, 'e'))) return tmp;
    }
  }
  // Otherwise the shortest representation that round-trips as a double.
  for (int prec = 6; prec <= 17; ++prec) {
    char tmp[64];
    std::snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    if (std::strtod(tmp, nullptr) == v && !(plain && std::strchr(tmp, 'e'))) return tmp;
  }
  return buf;
}

}  // namespace recsys
