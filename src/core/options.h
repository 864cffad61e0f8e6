// Options of training aggregates and serving functions, as typed values. The SQL layer
// reads the jsonb object with PostgreSQL's own iterator and hands over an OptionList;
// the core parses no JSON text. OptionReader hands out typed values with range checks
// and rejects unknown names, always naming the offending option and listing the valid
// ones. Every check is O(n log n) in the number of options (a sorted index), so an
// object of 100,000 keys is rejected in milliseconds.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace recsys {

// One option value. Arrays hold scalars; objects map names to scalars (one level: the
// SQL layer rejects deeper nesting, naming the option).
struct OptionValue {
  enum class Type { Null, Number, Bool, String, Array, Object };
  Type type = Type::Null;
  double number = 0;  // may be +-Infinity for a number beyond double range (reported by the getters)
  bool boolean = false;
  std::string text;
  std::vector<OptionValue> elements;                          // Array
  std::vector<std::pair<std::string, OptionValue>> members;  // Object

  static OptionValue null_value() { return OptionValue(); }
  static OptionValue of_number(double v);
  static OptionValue of_bool(bool v);
  static OptionValue of_string(std::string v);
};

// An options object: (name, value) pairs in the order given.
using OptionList = std::vector<std::pair<std::string, OptionValue>>;

// The names of an object's members in sorted order; throws InvalidParameter
// ("<context>: <what> \"name\" is given twice") for a repeated name. O(n log n).
void require_unique_names(const std::vector<std::pair<std::string, OptionValue>>& members, const std::string& context,
                          const std::string& what);

class OptionReader {
 public:
  // `context` (the function's name) prefixes error messages. Throws InvalidParameter
  // for a name given twice.
  OptionReader(OptionList values, std::string context);

  // Typed getters: return `fallback` when absent or null; throw InvalidParameter, naming
  // the option, for a wrong type or a value outside [lo, hi].
  int64_t get_int(const char* name, int64_t fallback, int64_t lo, int64_t hi);
  double get_double(const char* name, double fallback, double lo, double hi);
  bool get_bool(const char* name, bool fallback);
  std::string get_string(const char* name, const std::string& fallback, const std::vector<std::string>& allowed);
  // A nested value (an array or object) or nullptr when absent or null; the caller checks
  // its shape. Marks the name as known.
  const OptionValue* get_value(const char* name);
  bool has(const char* name) const;

  // Throws InvalidParameter naming the first option (in the order given) that no getter
  // asked for, with the list of valid options.
  void reject_unknown() const;
  // "option \"name\"" prefixed by the context, for callers' own messages.
  [[noreturn]] void bad(const char* name, const std::string& what) const;

 private:
  const OptionValue* find(const char* name);
  int64_t index_of(const char* name) const;
  std::string context_;
  OptionList values_;
  std::vector<uint32_t> sorted_;  // indices of values_ in name order
  std::vector<bool> used_;
  std::vector<std::string> known_;
};

// Minimal JSON helpers shared by model_info-style outputs.
std::string json_escape(const std::string& s);
std::string json_number(double v);

}  // namespace recsys
