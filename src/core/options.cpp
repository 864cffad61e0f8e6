#include "options.h"

#include <cctype>
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
  unsigned parse_hex4() {
    if (pos_ + 4 > s_.size()) bad("malformed string escape");
    unsigned v = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= static_cast<unsigned>(h - '0');
      else if (h >= 'a' && h <= 'f') v |= static_cast<unsigned>(h - 'a' + 10);
      else if (h >= 'A' && h <= 'F') v |= static_cast<unsigned>(h - 'A' + 10);
      else bad("malformed string escape");
    }
    return v;
  }
  // Length of a JSON number at p (RFC 8259 grammar), 0 if there is none.
  static size_t json_number_length(const std::string& s, size_t p) {
    const size_t b = p;
    auto digit = [&](size_t q) { return q < s.size() && s[q] >= '0' && s[q] <= '9'; };
    if (p < s.size() && s[p] == '-') ++p;
    if (!digit(p)) return 0;
    if (s[p] == '0') ++p;
    else while (digit(p)) ++p;
    if (p < s.size() && s[p] == '.') {
      ++p;
      if (!digit(p)) return 0;
      while (digit(p)) ++p;
    }
    if (p < s.size() && (s[p] == 'e' || s[p] == 'E')) {
      ++p;
      if (p < s.size() && (s[p] == '+' || s[p] == '-')) ++p;
      if (!digit(p)) return 0;
      while (digit(p)) ++p;
    }
    return p - b;
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
            unsigned cp = parse_hex4();
            if (cp >= 0xD800 && cp <= 0xDBFF) {  // a surrogate pair: \uD8xx\uDCxx
              if (s_.compare(pos_, 2, "\\u") != 0) bad("malformed string escape (lone surrogate)");
              pos_ += 2;
              const unsigned lo = parse_hex4();
              if (lo < 0xDC00 || lo > 0xDFFF) bad("malformed string escape (lone surrogate)");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
              bad("malformed string escape (lone surrogate)");
            }
            if (cp == 0) bad("options strings cannot contain \\u0000");
            if (cp < 0x80) {
              out += static_cast<char>(cp);
            } else if (cp < 0x800) {
              out += static_cast<char>(0xC0 | (cp >> 6));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            } else if (cp < 0x10000) {
              out += static_cast<char>(0xE0 | (cp >> 12));
              out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            } else {
              out += static_cast<char>(0xF0 | (cp >> 18));
              out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
              out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
              out += static_cast<char>(0x80 | (cp & 0x3F));
            }
            break;
          }
          case '"': case '\\': case '/': out += e; break;
          default: bad("malformed string escape");
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
      const size_t len = json_number_length(s_, pos_);
      const size_t after = pos_ + len;
      if (len == 0 || (after < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[after])) ||
                                             s_[after] == '.' || s_[after] == '+' || s_[after] == '-')))
        bad("option \"" + key + "\" has a malformed number");
      const std::string digits = s_.substr(pos_, len);
      v.number = std::strtod(digits.c_str(), nullptr);
      if (!std::isfinite(v.number)) bad("option \"" + key + "\" is out of range");
      pos_ += len;
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
