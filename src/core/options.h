// Options of training aggregates and serving functions arrive as a flat JSON object
// (the text of a jsonb value). OptionReader parses it, hands out typed values with
// range checks, and rejects unknown names, always naming the offending option.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "common.h"

namespace recsys {

struct OptionValue {
  enum class Type { Number, Bool, String, Null };
  Type type = Type::Null;
  double number = 0;
  bool boolean = false;
  std::string text;
};

class OptionReader {
 public:
  // Parses a JSON object whose values are numbers, booleans, strings or null.
  // Empty text or "null" means no options. `context` prefixes error messages.
  OptionReader(const std::string& json_text, std::string context);

  // Typed getters: return `fallback` when absent; throw InvalidParameter, naming the
  // option, for a wrong type or a value outside [lo, hi].
  int64_t get_int(const char* name, int64_t fallback, int64_t lo, int64_t hi);
  double get_double(const char* name, double fallback, double lo, double hi);
  bool get_bool(const char* name, bool fallback);
  std::string get_string(const char* name, const std::string& fallback, const std::vector<std::string>& allowed);
  bool has(const char* name) const;

  // Throws InvalidParameter naming the first option that no getter asked for.
  void reject_unknown() const;

 private:
  const OptionValue* find(const char* name);
  std::string context_;
  std::vector<std::pair<std::string, OptionValue>> values_;
  std::vector<bool> used_;
  std::vector<std::string> known_;
};

// Minimal JSON helpers shared by model_info-style outputs.
std::string json_escape(const std::string& s);
std::string json_number(double v);

}  // namespace recsys
