// Options jsonb -> recsys::OptionList, in two phases: the jsonb iterator flattens the
// value into plain tokens (PostgreSQL calls only, interruptible), then to_option_list
// builds the typed values from them (C++ only, under the caller's guard).
#include "jsonb_options.h"

#include <cstring>
#include <string>

namespace recsys_pg {

namespace {

enum class Tok : uint8 { Key, Scalar, BeginArray, EndArray, BeginObject, EndObject };

struct Token {
  Tok tok;
  recsys::OptionValue::Type type;  // Scalar: Null, Number, Bool or String
  bool boolean;
  double number;
  const char* text;  // Key, String: bytes (not NUL-terminated) in the jsonb value
  int length;
};

// Options objects nest at most this deep: the object itself, an option's array or
// object, and an array or object inside that.
constexpr int kMaxDepth = 3;

}  // namespace

struct JsonbOptions {
  Token* tokens;
  int count;
  int capacity;
};

namespace {

void push(JsonbOptions* o, const Token& t) {
  if (o->count == o->capacity) {
    o->capacity *= 2;
    o->tokens = static_cast<Token*>(repalloc(o->tokens, sizeof(Token) * static_cast<size_t>(o->capacity)));
  }
  o->tokens[o->count++] = t;
}

Token scalar_token(const JsonbValue& v) {
  Token t{Tok::Scalar, recsys::OptionValue::Type::Null, false, 0.0, nullptr, 0};
  switch (v.type) {
    case jbvString:
      t.type = recsys::OptionValue::Type::String;
      t.text = v.val.string.val;
      t.length = v.val.string.len;
      break;
    case jbvNumeric:
      // Beyond double range becomes +-Infinity, which the getters report by option name.
      t.type = recsys::OptionValue::Type::Number;
      t.number = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, NumericGetDatum(v.val.numeric)));
      break;
    case jbvBool:
      t.type = recsys::OptionValue::Type::Bool;
      t.boolean = v.val.boolean;
      break;
    default: break;
  }
  return t;
}

}  // namespace

JsonbOptions* read_jsonb_options(Jsonb* jb, const char* fn) {
  JsonbOptions* o = static_cast<JsonbOptions*>(palloc0(sizeof(JsonbOptions)));
  o->capacity = 16;
  o->tokens = static_cast<Token*>(palloc(sizeof(Token) * static_cast<size_t>(o->capacity)));
  if (jb == nullptr) return o;
  if (JB_ROOT_IS_SCALAR(jb)) {
    JsonbValue v;
    if (JsonbExtractScalar(&jb->root, &v) && v.type == jbvNull) return o;  // 'null': no options
  }
  if (!JB_ROOT_IS_OBJECT(jb) || JB_ROOT_IS_SCALAR(jb))
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE), errmsg("%s: options must be a JSON object", fn)));
  JsonbIterator* it = JsonbIteratorInit(&jb->root);
  JsonbValue v;
  JsonbIteratorToken r;
  int depth = 0;
  const char* option = "";  // the current top-level name, for errors
  int option_len = 0;
  uint32 seen = 0;
  while ((r = JsonbIteratorNext(&it, &v, false)) != WJB_DONE) {
    if ((++seen & 1023) == 0) CHECK_FOR_INTERRUPTS();
    switch (r) {
      case WJB_BEGIN_OBJECT:
      case WJB_BEGIN_ARRAY:
        if (++depth > kMaxDepth)
          ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                          errmsg("%s: option \"%.*s\" nests arrays or objects too deeply", fn, option_len, option)));
        if (depth > 1) push(o, Token{r == WJB_BEGIN_OBJECT ? Tok::BeginObject : Tok::BeginArray,
                                     recsys::OptionValue::Type::Null, false, 0.0, nullptr, 0});
        break;
      case WJB_END_OBJECT:
      case WJB_END_ARRAY:
        if (depth-- > 1) push(o, Token{r == WJB_END_OBJECT ? Tok::EndObject : Tok::EndArray,
                                       recsys::OptionValue::Type::Null, false, 0.0, nullptr, 0});
        break;
      case WJB_KEY:
        if (depth == 1) {
          option = v.val.string.val;
          option_len = v.val.string.len;
        }
        push(o, Token{Tok::Key, recsys::OptionValue::Type::Null, false, 0.0, v.val.string.val, v.val.string.len});
        break;
      case WJB_VALUE:
      case WJB_ELEM: push(o, scalar_token(v)); break;
      default: break;
    }
  }
  return o;
}

JsonbOptions* options_arg(FunctionCallInfo fcinfo, int argno, const char* fn) {
  if (PG_NARGS() <= argno || PG_ARGISNULL(argno)) return read_jsonb_options(nullptr, fn);
  return read_jsonb_options(PG_GETARG_JSONB_P(argno), fn);
}

JsonbOptions* options_from_bytes(const std::string& bytes, const char* fn) {
  if (bytes.empty()) return read_jsonb_options(nullptr, fn);
  // A private, aligned copy: the jsonb reader needs an int-aligned varlena.
  Jsonb* jb = static_cast<Jsonb*>(palloc(bytes.size()));
  std::memcpy(jb, bytes.data(), bytes.size());
  if (VARSIZE(jb) != bytes.size()) elog(ERROR, "%s: malformed options in the aggregate state", fn);
  return read_jsonb_options(jb, fn);
}

namespace {

// Builds the value starting at tokens[*pos] (a Scalar, BeginArray or BeginObject).
recsys::OptionValue build_value(const Token* t, int count, int* pos) {
  const Token& first = t[(*pos)++];
  recsys::OptionValue v;
  switch (first.tok) {
    case Tok::Scalar:
      v.type = first.type;
      v.boolean = first.boolean;
      v.number = first.number;
      if (first.type == recsys::OptionValue::Type::String) v.text.assign(first.text, static_cast<size_t>(first.length));
      return v;
    case Tok::BeginArray:
      v.type = recsys::OptionValue::Type::Array;
      while (*pos < count && t[*pos].tok != Tok::EndArray) v.elements.push_back(build_value(t, count, pos));
      ++*pos;
      return v;
    case Tok::BeginObject:
      v.type = recsys::OptionValue::Type::Object;
      while (*pos < count && t[*pos].tok == Tok::Key) {
        std::string key(t[*pos].text, static_cast<size_t>(t[*pos].length));
        ++*pos;
        v.members.emplace_back(std::move(key), build_value(t, count, pos));
      }
      ++*pos;  // EndObject
      return v;
    default: recsys::fail(recsys::ErrorKind::Internal, "malformed options tokens");
  }
}

}  // namespace

recsys::OptionList to_option_list(const JsonbOptions* options) {
  recsys::OptionList out;
  const Token* t = options->tokens;
  const int count = options->count;
  out.reserve(static_cast<size_t>(count / 2));
  int pos = 0;
  while (pos < count) {
    if (t[pos].tok != Tok::Key) recsys::fail(recsys::ErrorKind::Internal, "malformed options tokens");
    std::string key(t[pos].text, static_cast<size_t>(t[pos].length));
    ++pos;
    out.emplace_back(std::move(key), build_value(t, count, &pos));
  }
  return out;
}

}  // namespace recsys_pg
