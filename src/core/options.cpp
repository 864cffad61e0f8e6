#include "options.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace recsys {

OptionValue OptionValue::of_number(double v) {
  OptionValue o;
  o.type = Type::Number;
  o.number = v;
  return o;
}

OptionValue OptionValue::of_bool(bool v) {
  OptionValue o;
  o.type = Type::Bool;
  o.boolean = v;
  return o;
}

OptionValue OptionValue::of_string(std::string v) {
  OptionValue o;
  o.type = Type::String;
  o.text = std::move(v);
  return o;
}

namespace {

// Indices of members in name order (stable: equal names keep their order).
std::vector<uint32_t> sorted_index(const std::vector<std::pair<std::string, OptionValue>>& members) {
  std::vector<uint32_t> idx(members.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<uint32_t>(i);
  std::stable_sort(idx.begin(), idx.end(),
                   [&](uint32_t a, uint32_t b) { return members[a].first < members[b].first; });
  return idx;
}

bool is_nested(const OptionValue& v) {
  return v.type == OptionValue::Type::Array || v.type == OptionValue::Type::Object;
}

}  // namespace

void require_unique_names(const std::vector<std::pair<std::string, OptionValue>>& members, const std::string& context,
                          const std::string& what) {
  const std::vector<uint32_t> idx = sorted_index(members);
  for (size_t q = 1; q < idx.size(); ++q)
    if (members[idx[q]].first == members[idx[q - 1]].first)
      fail(ErrorKind::InvalidParameter, context + ": " + what + " \"" + members[idx[q]].first + "\" is given twice");
}

OptionReader::OptionReader(OptionList values, std::string context)
    : context_(std::move(context)), values_(std::move(values)) {
  require_unique_names(values_, context_, "option");
  sorted_ = sorted_index(values_);
  used_.assign(values_.size(), false);
}

int64_t OptionReader::index_of(const char* name) const {
  auto it = std::lower_bound(sorted_.begin(), sorted_.end(), name,
                             [&](uint32_t i, const char* n) { return values_[i].first.compare(n) < 0; });
  if (it == sorted_.end() || values_[*it].first != name) return -1;
  return *it;
}

const OptionValue* OptionReader::find(const char* name) {
  known_.emplace_back(name);
  const int64_t i = index_of(name);
  if (i < 0) return nullptr;
  used_[static_cast<size_t>(i)] = true;
  if (values_[static_cast<size_t>(i)].second.type == OptionValue::Type::Null) return nullptr;  // null = default
  return &values_[static_cast<size_t>(i)].second;
}

bool OptionReader::has(const char* name) const {
  const int64_t i = index_of(name);
  return i >= 0 && values_[static_cast<size_t>(i)].second.type != OptionValue::Type::Null;
}

void OptionReader::bad(const char* name, const std::string& what) const {
  fail(ErrorKind::InvalidParameter, context_ + ": option \"" + name + "\" " + what);
}

namespace {
const char* const kNotNested = "must be a number, boolean or string, not an array or object";
}  // namespace

int64_t OptionReader::get_int(const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (is_nested(*v)) bad(name, kNotNested);
  if (v->type == OptionValue::Type::Number && !std::isfinite(v->number)) bad(name, "is out of range");
  if (v->type != OptionValue::Type::Number || std::floor(v->number) != v->number) bad(name, "must be an integer");
  if (v->number < static_cast<double>(lo) || v->number > static_cast<double>(hi))
    bad(name, "must be between " + std::to_string(lo) + " and " + std::to_string(hi) + ", got " +
                  json_number(v->number));
  return static_cast<int64_t>(v->number);
}

double OptionReader::get_double(const char* name, double fallback, double lo, double hi) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (is_nested(*v)) bad(name, kNotNested);
  if (v->type != OptionValue::Type::Number) bad(name, "must be a number");
  if (!std::isfinite(v->number)) bad(name, "is out of range");
  if (v->number < lo || v->number > hi)
    bad(name, "must be between " + json_number(lo) + " and " + json_number(hi) + ", got " + json_number(v->number));
  return v->number;
}

bool OptionReader::get_bool(const char* name, bool fallback) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (is_nested(*v)) bad(name, kNotNested);
  if (v->type != OptionValue::Type::Bool) bad(name, "must be true or false");
  return v->boolean;
}

std::string OptionReader::get_string(const char* name, const std::string& fallback,
                                     const std::vector<std::string>& allowed) {
  const OptionValue* v = find(name);
  if (!v) return fallback;
  if (is_nested(*v)) bad(name, kNotNested);
  if (v->type != OptionValue::Type::String) bad(name, "must be a string");
  if (allowed.empty()) return v->text;
  std::string list;
  for (auto& a : allowed) {
    if (a == v->text) return v->text;
    list += (list.empty() ? "" : ", ") + a;
  }
  bad(name, "must be one of " + list + ", got \"" + v->text + "\"");
}

const OptionValue* OptionReader::get_value(const char* name) { return find(name); }

void OptionReader::reject_unknown() const {
  if (values_.empty()) return;
  std::vector<std::string> known(known_);
  std::sort(known.begin(), known.end());
  for (size_t i = 0; i < values_.size(); ++i) {
    if (used_[i] || std::binary_search(known.begin(), known.end(), values_[i].first)) continue;
    std::string list;
    std::vector<std::string> listed;
    for (auto& k : known_) {
      if (std::find(listed.begin(), listed.end(), k) != listed.end()) continue;
      listed.push_back(k);
      list += (list.empty() ? "" : ", ") + ("\"" + k + "\"");
    }
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
