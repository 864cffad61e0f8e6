#include "content.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "options.h"
#include "sparse.h"

namespace recsys {

// ---------------------------------------------------------------- tokenizer

namespace {

// Decodes the UTF-8 sequence at p; returns the code point, or -1 for an invalid or
// truncated sequence (then *len = 1).
int32_t decode_utf8(const uint8_t* p, const uint8_t* end, int* len) {
  const uint8_t c = p[0];
  *len = 1;
  if (c < 0x80) return c;
  int n;
  int32_t cp;
  uint8_t lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
    if (c == 0xE0) lo = 0xA0;
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;
  } else {
    return -1;
  }
  if (end - p < n) return -1;
  for (int k = 1; k < n; ++k) {
    const uint8_t b = p[k];
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return -1;
    cp = (cp << 6) | (b & 0x3F);
  }
  *len = n;
  return cp;
}

// Non-ASCII code points that separate words: punctuation, symbols, spaces, controls.
bool is_separator(int32_t cp) {
  if (cp < 0x80) return !((cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z'));
  if (cp <= 0xBF) return cp != 0xAA && cp != 0xB5 && cp != 0xBA;  // C1 controls, Latin-1 punctuation (not ª µ º)
  if (cp == 0xD7 || cp == 0xF7) return true;                     // × ÷
  if (cp >= 0x2000 && cp <= 0x206F) return true;                 // General Punctuation (spaces, dashes, quotes)
  if (cp >= 0x20A0 && cp <= 0x20CF) return true;                 // currency symbols
  if (cp >= 0x2190 && cp <= 0x23FF) return true;                 // arrows, mathematical operators, technical
  if (cp >= 0x2500 && cp <= 0x27BF) return true;                 // box drawing, shapes, symbols, dingbats
  if (cp >= 0x2E00 && cp <= 0x2E7F) return true;                 // supplemental punctuation
  if (cp >= 0x3000 && cp <= 0x303F) return true;                 // CJK symbols and punctuation
  if (cp >= 0xFE10 && cp <= 0xFE1F) return true;                 // vertical forms
  if (cp >= 0xFE30 && cp <= 0xFE6F) return true;                 // CJK compatibility and small forms
  if (cp == 0xFEFF) return true;                                 // byte order mark
  if ((cp >= 0xFF00 && cp <= 0xFF0F) || (cp >= 0xFF1A && cp <= 0xFF20) || (cp >= 0xFF3B && cp <= 0xFF40) ||
      (cp >= 0xFF5B && cp <= 0xFF65))
    return true;                                                 // full-width punctuation
  if (cp >= 0xFFF0 && cp <= 0xFFFF) return true;                 // specials
  if (cp >= 0x1F000 && cp <= 0x1FAFF) return true;               // emoji and pictographs
  return false;
}

// Lowercase of the capitals of Latin-1, Latin Extended-A, Greek and Cyrillic.
int32_t to_lower(int32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 0x20;
  if (cp == 0x130) return 'i';
  if (cp == 0x178) return 0xFF;
  if ((cp >= 0x100 && cp <= 0x137) || (cp >= 0x14A && cp <= 0x177)) return (cp % 2 == 0) ? cp + 1 : cp;
  if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E)) return (cp % 2 == 1) ? cp + 1 : cp;
  if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) return cp + 0x20;
  if (cp == 0x386) return 0x3AC;
  if (cp >= 0x388 && cp <= 0x38A) return cp + 0x25;
  if (cp == 0x38C) return 0x3CC;
  if (cp == 0x38E || cp == 0x38F) return cp + 0x3F;
  if (cp >= 0x400 && cp <= 0x40F) return cp + 0x50;
  if (cp >= 0x410 && cp <= 0x42F) return cp + 0x20;
  return cp;
}

void append_utf8(std::string& s, int32_t cp) {
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xF0 | (cp >> 18));
    s += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Calls f(word) for every word of the text (the string is reused between calls).
template <class F>
void scan_words(const char* text, uint64_t length, F&& f) {
  const uint8_t* p = reinterpret_cast<const uint8_t*>(text);
  const uint8_t* end = p + length;
  std::string word;
  auto flush = [&]() {
    if (word.size() > 1 || (word.size() == 1 && static_cast<uint8_t>(word[0]) >= 0x80)) f(word);
    word.clear();
  };
  while (p < end) {
    int len;
    const int32_t cp = decode_utf8(p, end, &len);
    p += len;
    if (cp < 0 || is_separator(cp)) {
      flush();
    } else {
      append_utf8(word, to_lower(cp));
    }
  }
  flush();
}

}  // namespace

std::vector<std::string> tokenize_text(const char* text, uint64_t length) {
  std::vector<std::string> out;
  scan_words(text, length, [&](const std::string& w) { out.push_back(w); });
  return out;
}

// ---------------------------------------------------------------- aggregate state

ContentState::ContentState(KeyKind item_kind, uint32_t oid) : items(item_kind), item_type_oid(oid) {}

void ContentState::add(uint32_t item, const std::string& field, FeatureKind kind, const char* bytes, uint64_t length,
                       double number) {
  if (item >= items.size()) fail(ErrorKind::Internal, "content feature for an item that was not interned");
  if (length > 0xFFFFFFFFull) fail(ErrorKind::ProgramLimit, "content feature value is too long");
  const uint32_t f = fields_.intern_bytes(reinterpret_cast<const uint8_t*>(field.data()), field.size());
  Record r{item, f, static_cast<uint32_t>(kind), static_cast<uint32_t>(length), blob_.size(), number};
  if (length) blob_.insert(blob_.end(), bytes, bytes + length);
  records_.push_back(r);
}

void ContentState::add_text(uint32_t item, const std::string& field, const char* text, uint64_t length) {
  add(item, field, FeatureKind::Text, text, length, 0.0);
}

void ContentState::add_token(uint32_t item, const std::string& field, const std::string& value) {
  add(item, field, FeatureKind::Token, value.data(), value.size(), 0.0);
}

void ContentState::add_string(uint32_t item, const std::string& field, const std::string& value) {
  add(item, field, FeatureKind::String, value.data(), value.size(), 0.0);
}

void ContentState::add_number(uint32_t item, const std::string& field, double value) {
  if (!std::isfinite(value))
    fail(ErrorKind::DataException, "content feature \"" + field + "\" must be a finite number, got " +
                                       (std::isnan(value) ? "NaN" : (value > 0 ? "Infinity" : "-Infinity")));
  add(item, field, FeatureKind::Number, nullptr, 0, value);
}

void ContentState::merge(const ContentState& other) {
  if (other.items.kind() != items.kind()) fail(ErrorKind::Internal, "cannot combine content states of different ID types");
  std::vector<uint32_t> imap(other.items.size()), fmap(other.fields_.size());
  for (uint32_t i = 0; i < other.items.size(); ++i) {
    if (items.kind() == KeyKind::Int) {
      imap[i] = items.intern_int(other.items.int_key(i));
    } else {
      uint64_t len;
      const uint8_t* p = other.items.bytes_key(i, &len);
      imap[i] = items.intern_bytes(p, len);
    }
  }
  for (uint32_t f = 0; f < other.fields_.size(); ++f) {
    uint64_t len;
    const uint8_t* p = other.fields_.bytes_key(f, &len);
    fmap[f] = fields_.intern_bytes(p, len);
  }
  records_.reserve(records_.size() + other.records_.size());
  for (const Record& r : other.records_) {
    Record c = r;
    c.item = imap[r.item];
    c.field = fmap[r.field];
    c.offset = blob_.size();
    if (r.length) blob_.insert(blob_.end(), other.blob_.data() + r.offset, other.blob_.data() + r.offset + r.length);
    records_.push_back(c);
  }
  if (options_bytes.empty()) options_bytes = other.options_bytes;
  rows_skipped += other.rows_skipped;
}

namespace {
constexpr uint32_t kContentStateMagic = 0x53435352u;  // "RSCS"
constexpr uint32_t kContentStateVersion = 1;
struct ContentStateHeader {
  uint32_t magic, version;
  uint8_t item_kind, pad[3];
  uint32_t item_oid;
  uint64_t records, blob, rows_skipped, options_len;
};
static_assert(sizeof(ContentState::Record) == 32, "record layout");
}  // namespace

uint64_t ContentState::serialized_size() const {
  return sizeof(ContentStateHeader) + options_bytes.size() + items.state_size() + fields_.state_size() +
         records_.size() * sizeof(Record) + blob_.size();
}

void ContentState::serialize(uint8_t* dst) const {
  ContentStateHeader h{};
  h.magic = kContentStateMagic;
  h.version = kContentStateVersion;
  h.item_kind = static_cast<uint8_t>(items.kind());
  h.item_oid = item_type_oid;
  h.records = records_.size();
  h.blob = blob_.size();
  h.rows_skipped = rows_skipped;
  h.options_len = options_bytes.size();
  std::memcpy(dst, &h, sizeof h);
  dst += sizeof h;
  if (!options_bytes.empty()) std::memcpy(dst, options_bytes.data(), options_bytes.size());
  dst += options_bytes.size();
  dst = items.write_state(dst);
  dst = fields_.write_state(dst);
  if (!records_.empty()) std::memcpy(dst, records_.data(), records_.size() * sizeof(Record));
  dst += records_.size() * sizeof(Record);
  if (!blob_.empty()) std::memcpy(dst, blob_.data(), blob_.size());
}

std::unique_ptr<ContentState> ContentState::deserialize(const uint8_t* src, uint64_t size) {
  auto bad = []() { fail(ErrorKind::InvalidModel, "malformed content aggregate state"); };
  const uint8_t* end = src + size;
  ContentStateHeader h;
  if (size < sizeof h) bad();
  std::memcpy(&h, src, sizeof h);
  src += sizeof h;
  if (h.magic != kContentStateMagic || h.version != kContentStateVersion) bad();
  if (h.item_kind < 1 || h.item_kind > 3) bad();
  if (h.options_len > static_cast<uint64_t>(end - src)) bad();
  auto st = std::make_unique<ContentState>(static_cast<KeyKind>(h.item_kind), h.item_oid);
  st->options_bytes.assign(reinterpret_cast<const char*>(src), h.options_len);
  src += h.options_len;
  src = st->items.read_state(src, end);
  src = st->fields_.read_state(src, end);
  const uint64_t left = static_cast<uint64_t>(end - src);
  if (h.records > left / sizeof(Record) || h.blob != left - h.records * sizeof(Record)) bad();
  st->records_.resize(h.records);
  if (h.records) std::memcpy(st->records_.data(), src, h.records * sizeof(Record));
  src += h.records * sizeof(Record);
  st->blob_.assign(reinterpret_cast<const char*>(src), reinterpret_cast<const char*>(src) + h.blob);
  for (const Record& r : st->records_) {
    if (r.item >= st->items.size() || r.field >= st->fields_.size() || r.kind < 1 || r.kind > 4) bad();
    if (r.offset > h.blob || r.length > h.blob - r.offset) bad();
    if (r.kind == static_cast<uint32_t>(FeatureKind::Number) && (!std::isfinite(r.number) || r.length != 0)) bad();
  }
  st->rows_skipped = h.rows_skipped;
  return st;
}

// ---------------------------------------------------------------- options

double ContentOptions::weight_of(const std::string& field) const {
  for (auto& fw : weights)
    if (fw.first == field) return fw.second;
  return 1.0;
}

bool ContentOptions::is_text_field(const std::string& field) const {
  return std::find(text_fields.begin(), text_fields.end(), field) != text_fields.end();
}

namespace {

// "weights": an object of field names and numbers in [0, 1e6] (null = none).
void read_weights(OptionReader& r, const std::string& context, std::vector<std::pair<std::string, double>>& weights) {
  const OptionValue* v = r.get_value("weights");
  if (!v) return;
  if (v->type != OptionValue::Type::Object)
    r.bad("weights", "must be an object of field names and numbers, such as {\"text\": 1, \"price\": 0.5}");
  require_unique_names(v->members, context, "field (in \"weights\")");
  weights.reserve(v->members.size());
  for (const auto& m : v->members) {
    const std::string& field = m.first;
    if (m.second.type != OptionValue::Type::Number)
      fail(ErrorKind::InvalidParameter, context + ": weight of field \"" + field + "\" must be a number");
    const double w = m.second.number;
    if (!std::isfinite(w) || w < 0 || w > 1e6)
      fail(ErrorKind::InvalidParameter, context + ": weight of field \"" + field +
                                            "\" must be between 0 and 1000000, got " + json_number(w));
    weights.emplace_back(field, w);
  }
}

// "text_fields": an array of field names, or one name (null = the default).
void read_text_fields(OptionReader& r, std::vector<std::string>& names) {
  const OptionValue* v = r.get_value("text_fields");
  if (!v) return;
  names.clear();
  if (v->type == OptionValue::Type::String) {
    names.push_back(v->text);
    return;
  }
  if (v->type != OptionValue::Type::Array)
    r.bad("text_fields", "must be an array of field names, such as [\"description\"]");
  for (const OptionValue& e : v->elements) {
    if (e.type != OptionValue::Type::String) r.bad("text_fields", "must be an array of field names");
    names.push_back(e.text);
  }
}

}  // namespace

ContentOptions read_feature_options(OptionReader& r, const std::string& context) {
  ContentOptions o;
  read_weights(r, context, o.weights);
  read_text_fields(r, o.text_fields);
  return o;
}

void read_feature_counting(OptionReader& r, ContentOptions& o) {
  o.sublinear_tf = r.get_bool("sublinear_tf", true);
  o.min_df = r.get_int("min_df", 1, 1, INT32_MAX);
}

ContentOptions parse_content_options(const OptionList& options) {
  OptionReader r(options, "train_content");
  ContentOptions o = read_feature_options(r, "train_content");
  o.neighbours = r.get_int("neighbours", 100, 1, 100000);
  read_feature_counting(r, o);
  o.candidate_max_df = r.get_double("candidate_max_df", 0.1, 0.0, 1.0);
  o.verbose = r.get_bool("verbose", false);
  o.threads = static_cast<int>(r.get_int("threads", 0, 0, 1024));
  r.reject_unknown();
  return o;
}

// ---------------------------------------------------------------- training

namespace {

// Vocabulary key of a feature: kind, field name (length-prefixed) and value, so that
// keys are unique and their byte order (the final feature order) never depends on the
// order rows arrived in.
void feature_key(std::string& key, FeatureKind kind, const std::string& field, const char* value, size_t len) {
  key.clear();
  key += static_cast<char>(kind);
  const uint32_t n = static_cast<uint32_t>(field.size());
  for (int s = 24; s >= 0; s -= 8) key += static_cast<char>((n >> s) & 0xFF);
  key += field;
  key.append(value, len);
}

constexpr double kPi = 3.14159265358979323846;

struct Entry {
  uint32_t feature;  // provisional, then final id
  float value;       // text: count; token: 1; numeric: cos / sin
};

// Phase 1. Fields in name order, with their weights, their treatment of strings and
// the kinds of feature seen.
struct FieldTable {
  uint32_t count = 0;
  std::vector<uint32_t> order, rank;  // rank[interned field] = position in name order
  std::vector<std::string> name;      // by rank
  std::vector<double> weight;
  std::vector<bool> is_text;
  std::vector<uint8_t> kinds;  // bit (kind - 1)

  // A record's kind, with String resolved by "text_fields".
  FeatureKind kind_of(const ContentState::Record& r) const {
    if (r.kind != static_cast<uint32_t>(FeatureKind::String)) return static_cast<FeatureKind>(r.kind);
    return is_text[rank[r.field]] ? FeatureKind::Text : FeatureKind::Token;
  }
};

FieldTable field_table(const ContentState& state, const ContentOptions& options) {
  const KeyInterner& field_keys = state.fields();
  FieldTable t;
  t.count = field_keys.size();
  t.order = field_keys.sorted_order();
  t.rank = KeyInterner::invert(t.order);
  t.name.resize(t.count);
  t.weight.resize(t.count);
  t.kinds.assign(t.count, 0);
  for (uint32_t r = 0; r < t.count; ++r) {
    uint64_t len;
    const uint8_t* p = field_keys.bytes_key(t.order[r], &len);
    t.name[r].assign(reinterpret_cast<const char*>(p), len);
    t.weight[r] = options.weight_of(t.name[r]);
  }
  t.is_text.resize(t.count);
  for (uint32_t r = 0; r < t.count; ++r) t.is_text[r] = options.is_text_field(t.name[r]);
  for (const auto& r : state.records())
    t.kinds[t.rank[r.field]] |= static_cast<uint8_t>(1u << (static_cast<int>(t.kind_of(r)) - 1));
  return t;
}

// Phase 2. Per item: aggregated features with provisional ids (text counts, token sets);
// numbers (the mean per item and field) wait for the field statistics.
struct NumberValue {
  uint32_t item, field;  // ranks
  double value;
};

struct ItemFeatures {
  KeyInterner vocab{KeyKind::Text};
  std::vector<uint8_t> feat_kind;
  std::vector<uint32_t> feat_field;
  std::vector<int64_t> agg_ptr;  // per item rank, into agg
  std::vector<Entry> agg;
  std::vector<NumberValue> numbers;  // by item rank, then field rank
  std::vector<uint32_t> text_docs;    // items with at least one word in the field
  std::vector<uint32_t> field_items;  // items with any feature in the field
  std::string key;                    // scratch

  uint32_t intern(FeatureKind kind, uint32_t frank, const std::string& field, const char* v, size_t len) {
    feature_key(key, kind, field, v, len);
    const uint32_t before = vocab.size();
    const uint32_t id = vocab.intern_bytes(reinterpret_cast<const uint8_t*>(key.data()), key.size());
    if (id == before) {
      feat_kind.push_back(static_cast<uint8_t>(kind));
      feat_field.push_back(frank);
    }
    return id;
  }
};

void aggregate_items(const ContentState& state, const FieldTable& fields, const std::vector<uint32_t>& item_rank,
                     int64_t ni, const CancelToken& cancel, ItemFeatures& out) {
  const std::vector<ContentState::Record>& records = state.records();
  const uint64_t n_records = records.size();
  const uint32_t nf = fields.count;
  // Records bucketed by item rank.
  std::vector<int64_t> start(static_cast<size_t>(ni) + 1, 0);
  for (const auto& r : records) ++start[item_rank[r.item] + 1];
  for (int64_t i = 0; i < ni; ++i) start[i + 1] += start[i];
  std::vector<uint32_t> by_item(n_records);
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (uint64_t k = 0; k < n_records; ++k) by_item[fill[item_rank[records[k].item]]++] = static_cast<uint32_t>(k);
  }
  out.agg_ptr.assign(static_cast<size_t>(ni) + 1, 0);
  out.text_docs.assign(nf, 0);
  out.field_items.assign(nf, 0);
  std::vector<int64_t> stamp(nf, -1), text_stamp(nf, -1);
  std::vector<Entry> raw;
  std::vector<std::pair<uint32_t, double>> nums;
  for (int64_t i = 0; i < ni; ++i) {
    if ((i & 0x3FF) == 0) cancel.check();
    raw.clear();
    nums.clear();
    for (int64_t q = start[i]; q < start[i + 1]; ++q) {
      const ContentState::Record& r = records[by_item[q]];
      const uint32_t frank = fields.rank[r.field];
      if (fields.weight[frank] == 0.0) continue;
      const char* bytes = state.record_bytes(r);
      const FeatureKind kind = fields.kind_of(r);
      if (kind == FeatureKind::Text) {
        scan_words(bytes, r.length, [&](const std::string& w) {
          raw.push_back(Entry{out.intern(FeatureKind::Text, frank, fields.name[frank], w.data(), w.size()), 1.0f});
        });
      } else if (kind == FeatureKind::Token) {
        raw.push_back(Entry{out.intern(FeatureKind::Token, frank, fields.name[frank], bytes, r.length), 1.0f});
      } else {
        nums.push_back({frank, r.number});
      }
    }
    std::sort(raw.begin(), raw.end(), [](const Entry& a, const Entry& b) { return a.feature < b.feature; });
    for (size_t p = 0; p < raw.size();) {
      size_t q = p;
      double count = 0;
      for (; q < raw.size() && raw[q].feature == raw[p].feature; ++q) count += raw[q].value;
      const uint32_t f = raw[p].feature, g = out.feat_field[f];
      const bool text = out.feat_kind[f] == static_cast<uint8_t>(FeatureKind::Text);
      out.agg.push_back(Entry{f, text ? static_cast<float>(count) : 1.0f});
      if (text && text_stamp[g] != i) {
        text_stamp[g] = i;
        ++out.text_docs[g];
      }
      if (stamp[g] != i) {
        stamp[g] = i;
        ++out.field_items[g];
      }
      p = q;
    }
    std::sort(nums.begin(), nums.end());
    for (size_t p = 0; p < nums.size();) {
      size_t q = p;
      double sum = 0;
      for (; q < nums.size() && nums[q].first == nums[p].first; ++q) sum += nums[q].second;
      out.numbers.push_back(NumberValue{static_cast<uint32_t>(i), nums[p].first, sum / double(q - p)});
      if (stamp[nums[p].first] != i) {
        stamp[nums[p].first] = i;
        ++out.field_items[nums[p].first];
      }
      p = q;
    }
    out.agg_ptr[i + 1] = static_cast<int64_t>(out.agg.size());
  }
}

// Phase 3. Numeric fields: mean and population std over the items that have them; two
// features (cos, sin) per field.
struct NumericFields {
  std::vector<double> n, mean, std;
  std::vector<uint32_t> cos_id, sin_id;  // provisional feature ids
};

NumericFields numeric_fields(ItemFeatures& feats, const FieldTable& fields) {
  const uint32_t nf = fields.count;
  NumericFields s;
  s.n.assign(nf, 0.0);
  s.mean.assign(nf, 0.0);
  s.std.assign(nf, 0.0);
  for (const auto& v : feats.numbers) {
    s.mean[v.field] += v.value;
    s.n[v.field] += 1;
  }
  for (uint32_t f = 0; f < nf; ++f)
    if (s.n[f] > 0) s.mean[f] /= s.n[f];
  for (const auto& v : feats.numbers) s.std[v.field] += (v.value - s.mean[v.field]) * (v.value - s.mean[v.field]);
  s.cos_id.assign(nf, UINT32_MAX);
  s.sin_id.assign(nf, UINT32_MAX);
  for (uint32_t f = 0; f < nf; ++f) {
    if (s.n[f] == 0) continue;
    s.std[f] = std::sqrt(s.std[f] / s.n[f]);
    s.cos_id[f] = feats.intern(FeatureKind::Number, f, fields.name[f], "cos", 3);
    s.sin_id[f] = feats.intern(FeatureKind::Number, f, fields.name[f], "sin", 3);
  }
  return s;
}

// Phase 4. Document frequencies, the features kept (min_df applies to words), final ids
// in key order.
struct FeatureIds {
  std::vector<uint32_t> df, final_id;  // by provisional id
  std::vector<uint32_t> final_field;   // by final id
  std::vector<uint32_t> field_features;
  int64_t count = 0;
};

FeatureIds feature_ids(const ItemFeatures& feats, uint32_t nf, int64_t min_df) {
  const uint32_t nv = feats.vocab.size();
  FeatureIds ids;
  ids.df.assign(nv, 0);
  for (const Entry& e : feats.agg) ++ids.df[e.feature];
  ids.final_id.assign(nv, UINT32_MAX);
  for (uint32_t f : feats.vocab.sorted_order()) {
    if (feats.feat_kind[f] == static_cast<uint8_t>(FeatureKind::Text) && ids.df[f] < static_cast<uint64_t>(min_df))
      continue;
    ids.final_id[f] = static_cast<uint32_t>(ids.count++);
  }
  if (ids.count > INT32_MAX) fail(ErrorKind::ProgramLimit, "train_content: too many distinct features");
  ids.final_field.resize(static_cast<size_t>(ids.count));
  ids.field_features.assign(nf, 0);
  for (uint32_t f = 0; f < nv; ++f)
    if (ids.final_id[f] != UINT32_MAX) {
      ids.final_field[ids.final_id[f]] = feats.feat_field[f];
      ++ids.field_features[feats.feat_field[f]];
    }
  return ids;
}

// Phase 5. Item vectors: each field's features L2-normalized and weighted, then the
// whole vector L2-normalized (in double, in feature order).
CsrMatrix item_vectors(const ItemFeatures& feats, const NumericFields& num, const FeatureIds& ids,
                       const FieldTable& fields, const ContentOptions& options, int64_t ni, const CancelToken& cancel,
                       int64_t* empty_items) {
  CsrMatrix X;
  X.rows = ni;
  X.cols = ids.count;
  X.indptr.assign(static_cast<size_t>(ni) + 1, 0);
  X.indices.reserve(feats.agg.size() + 2 * feats.numbers.size());
  X.values.reserve(feats.agg.size() + 2 * feats.numbers.size());
  *empty_items = 0;
  std::vector<std::pair<uint32_t, double>> row;
  std::vector<double> group_sq(fields.count, 0.0);
  size_t num_pos = 0;
  for (int64_t i = 0; i < ni; ++i) {
    if ((i & 0x3FF) == 0) cancel.check();
    row.clear();
    for (int64_t q = feats.agg_ptr[i]; q < feats.agg_ptr[i + 1]; ++q) {
      const uint32_t f = feats.agg[q].feature;
      if (ids.final_id[f] == UINT32_MAX) continue;
      double v = 1.0;
      if (feats.feat_kind[f] == static_cast<uint8_t>(FeatureKind::Text)) {
        const double count = feats.agg[q].value;
        const double tf = options.sublinear_tf ? 1.0 + std::log(count) : count;
        v = tf * (std::log((1.0 + feats.text_docs[feats.feat_field[f]]) / (1.0 + ids.df[f])) + 1.0);
      }
      row.push_back({ids.final_id[f], v});
    }
    for (; num_pos < feats.numbers.size() && feats.numbers[num_pos].item == static_cast<uint32_t>(i); ++num_pos) {
      const uint32_t f = feats.numbers[num_pos].field;
      double z = num.std[f] > 0 ? (feats.numbers[num_pos].value - num.mean[f]) / num.std[f] : 0.0;
      z = std::max(-3.0, std::min(3.0, z));
      const double t = (z + 3.0) / 6.0 * kPi;
      row.push_back({ids.final_id[num.cos_id[f]], std::cos(t)});
      row.push_back({ids.final_id[num.sin_id[f]], std::sin(t)});
    }
    std::sort(row.begin(), row.end());
    for (auto& e : row) group_sq[ids.final_field[e.first]] += e.second * e.second;
    double total = 0;
    for (auto& e : row) {
      const uint32_t g = ids.final_field[e.first];
      e.second *= group_sq[g] > 0 ? fields.weight[g] / std::sqrt(group_sq[g]) : 0.0;
      total += e.second * e.second;
    }
    for (auto& e : row) group_sq[ids.final_field[e.first]] = 0.0;
    const double inv = total > 0 ? 1.0 / std::sqrt(total) : 0.0;
    for (auto& e : row) {
      const float v = static_cast<float>(e.second * inv);
      if (v == 0.0f) continue;
      X.indices.push_back(static_cast<int32_t>(e.first));
      X.values.push_back(v);
    }
    X.indptr[i + 1] = static_cast<int64_t>(X.indices.size());
    *empty_items += X.indptr[i + 1] == X.indptr[i];
  }
  return X;
}

// Phase 6. Neighbours: candidates through the less common features only; the common
// ones are added to each candidate pair's similarity from the items' own lists.
NeighbourLists content_neighbours(const CsrMatrix& X, const CsrMatrix& XT, const ContentOptions& options,
                                  int threads, const CancelToken& cancel, int64_t* n_common) {
  const int64_t ni = X.rows, n_features = X.cols;
  const double limit = std::max(2000.0, options.candidate_max_df * static_cast<double>(ni));
  std::vector<uint8_t> common(static_cast<size_t>(n_features), 0);
  *n_common = 0;
  for (int64_t f = 0; f < n_features; ++f)
    if (static_cast<double>(XT.indptr[f + 1] - XT.indptr[f]) > limit) {
      common[f] = 1;
      ++*n_common;
    }
  CsrMatrix Xr, C;  // item x rare features, item x common features
  Xr.rows = C.rows = ni;
  Xr.cols = C.cols = n_features;
  Xr.indptr.assign(static_cast<size_t>(ni) + 1, 0);
  C.indptr.assign(static_cast<size_t>(ni) + 1, 0);
  for (int64_t i = 0; i < ni; ++i) {
    for (int64_t k = X.indptr[i]; k < X.indptr[i + 1]; ++k) {
      CsrMatrix& dst = common[X.indices[k]] ? C : Xr;
      dst.indices.push_back(X.indices[k]);
      dst.values.push_back(X.values[k]);
    }
    Xr.indptr[i + 1] = Xr.nnz();
    C.indptr[i + 1] = C.nnz();
  }
  CsrMatrix XrT = transpose(Xr);
  std::vector<float> norms(static_cast<size_t>(ni));
  for (int64_t i = 0; i < ni; ++i) norms[i] = X.indptr[i + 1] > X.indptr[i] ? 1.0f : 0.0f;
  const PairExtra common_dot = [&C](int32_t a, int32_t b) {
    int64_t p = C.indptr[a], q = C.indptr[b];
    const int64_t pe = C.indptr[a + 1], qe = C.indptr[b + 1];
    float dot = 0.0f;
    while (p < pe && q < qe) {
      const int32_t fa = C.indices[p], fb = C.indices[q];
      if (fa < fb) {
        ++p;
      } else if (fa > fb) {
        ++q;
      } else {
        dot += C.values[p++] * C.values[q++];
      }
    }
    return dot;
  };
  return sparse_neighbours(XrT, Xr, norms, 0.0f, 1, options.neighbours, *n_common ? &common_dot : nullptr, threads,
                           cancel);
}

// Phase 7. The Params section: the options, the counts and a summary per field.
struct ContentCounts {
  int64_t items, empty_items, features, common, pairs;
  uint64_t records, rows_skipped;
};

std::string content_params(const ContentOptions& options, const FieldTable& fields, const ItemFeatures& feats,
                           const NumericFields& num, const FeatureIds& ids, const ContentCounts& c,
                           std::string* unused) {
  std::string fields_json;
  static const char* kKindNames[] = {"text", "token", "number"};
  for (uint32_t g = 0; g < fields.count; ++g) {
    std::string kinds;
    for (int k = 0; k < 3; ++k)
      if (fields.kinds[g] & (1u << k)) kinds += std::string(kinds.empty() ? "" : ", ") + "\"" + kKindNames[k] + "\"";
    fields_json += (g ? ", " : "") + json_escape(fields.name[g]) + ": {\"kinds\": [" + kinds +
                   "], \"weight\": " + json_number(fields.weight[g]) +
                   ", \"items\": " + std::to_string(feats.field_items[g]) +
                   ", \"features\": " + std::to_string(ids.field_features[g]);
    if (num.n[g] > 0) fields_json += ", \"mean\": " + json_number(num.mean[g]) + ", \"std\": " + json_number(num.std[g]);
    fields_json += "}";
  }
  for (auto& fw : options.weights) {
    bool found = false;
    for (uint32_t g = 0; g < fields.count && !found; ++g) found = fields.name[g] == fw.first;
    if (!found) *unused += (unused->empty() ? "" : ", ") + json_escape(fw.first);
  }
  std::string text_fields;
  for (auto& f : options.text_fields) text_fields += (text_fields.empty() ? "" : ", ") + json_escape(f);
  return "{\"neighbours\": " + std::to_string(options.neighbours) + ", \"text_fields\": [" + text_fields + "]" +
         ", \"sublinear_tf\": " + (options.sublinear_tf ? "true" : "false") +
         ", \"min_df\": " + std::to_string(options.min_df) +
         ", \"candidate_max_df\": " + json_number(options.candidate_max_df) + ", \"items\": " + std::to_string(c.items) +
         ", \"items_without_features\": " + std::to_string(c.empty_items) +
         ", \"features\": " + std::to_string(c.features) + ", \"common_features\": " + std::to_string(c.common) +
         ", \"feature_rows\": " + std::to_string(c.records) + ", \"rows_skipped\": " + std::to_string(c.rows_skipped) +
         ", \"neighbour_pairs\": " + std::to_string(c.pairs) + ", \"fields\": {" + fields_json + "}" +
         (unused->empty() ? "" : ", \"unused_weights\": [" + *unused + "]") + "}";
}

// Phases 1 to 5: the item vectors and what the Params section reports of them.
struct FeaturePhases {
  FieldTable fields;
  ItemFeatures feats;
  NumericFields num;
  FeatureIds ids;
  CsrMatrix X;
  int64_t empty_items = 0;
};

void run_feature_phases(const ContentState& state, const ContentOptions& options,
                        const std::vector<uint32_t>& item_rank, int64_t ni, const CancelToken& cancel,
                        FeaturePhases& ph) {
  ph.fields = field_table(state, options);
  aggregate_items(state, ph.fields, item_rank, ni, cancel, ph.feats);
  ph.num = numeric_fields(ph.feats, ph.fields);
  ph.ids = feature_ids(ph.feats, ph.fields.count, options.min_df);
  ph.X = item_vectors(ph.feats, ph.num, ph.ids, ph.fields, options, ni, cancel, &ph.empty_items);
  ph.feats.agg = {};
  ph.feats.numbers = {};
}

}  // namespace

CsrMatrix content_feature_vectors(const ContentState& state, const ContentOptions& options, const CancelToken& cancel,
                                  int64_t* empty_items) {
  const std::vector<uint32_t> item_rank = KeyInterner::invert(state.items.sorted_order());
  FeaturePhases ph;
  run_feature_phases(state, options, item_rank, static_cast<int64_t>(item_rank.size()), cancel, ph);
  *empty_items = ph.empty_items;
  return std::move(ph.X);
}

// The phases above in order, then the model's sections.
void build_content_model(ContentState& state, const ContentOptions& options, int threads, const CancelToken& cancel,
                         const std::function<void(const std::string&)>& log_line) {
  auto t0 = std::chrono::steady_clock::now();
  auto seconds = [&]() { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); };
  threads = resolve_threads(threads);
  const uint64_t n_records = state.records().size();
  std::vector<uint32_t> item_order = state.items.sorted_order();
  std::vector<uint32_t> item_rank = KeyInterner::invert(item_order);
  const int64_t ni = static_cast<int64_t>(item_order.size());
  if (ni > INT32_MAX) fail(ErrorKind::ProgramLimit, "train_content: too many items");

  FeaturePhases ph;
  run_feature_phases(state, options, item_rank, ni, cancel, ph);
  const FieldTable& fields = ph.fields;
  const ItemFeatures& feats = ph.feats;
  const NumericFields& num = ph.num;
  const FeatureIds& ids = ph.ids;
  const int64_t n_features = ids.count;
  const int64_t empty_items = ph.empty_items;
  CsrMatrix X = std::move(ph.X);
  CsrMatrix XT = transpose(X);  // the inverted index
  if (options.verbose)
    log_line("train_content: " + std::to_string(n_records) + " feature rows, " + std::to_string(ni) + " items, " +
             std::to_string(fields.count) + " fields, " + std::to_string(n_features) + " features, " +
             std::to_string(X.nnz()) + " nonzeros; vectors in " + std::to_string(seconds()) + " s");

  int64_t n_common = 0;
  NeighbourLists lists = content_neighbours(X, XT, options, threads, cancel, &n_common);
  const int64_t pairs = lists.nnz();
  if (options.verbose)
    log_line("train_content: " + std::to_string(pairs) + " neighbour pairs (" + std::to_string(n_common) +
             " common features not used for candidates) after " + std::to_string(seconds()) + " s");

  auto builder = std::make_unique<ModelBuilder>();
  ModelHeader& h = builder->header;
  h.kind = static_cast<uint16_t>(ModelKind::Content);
  h.user_key_kind = static_cast<uint8_t>(state.items.kind());
  h.item_key_kind = static_cast<uint8_t>(state.items.kind());
  h.user_type_oid = state.item_type_oid;
  h.item_type_oid = state.item_type_oid;
  h.factors = 0;
  h.n_users = 0;
  h.n_items = static_cast<uint64_t>(ni);
  h.n_interactions = static_cast<uint64_t>(X.nnz());

  std::string unused;
  const ContentCounts counts{ni, empty_items, n_features, n_common, pairs, n_records, state.rows_skipped};
  const std::string params = content_params(options, fields, feats, num, ids, counts, &unused);
  if (options.verbose && !unused.empty())
    log_line("train_content: \"weights\" names fields that no row has: " + unused);
  builder->add(SectionTag::Params, std::vector<uint8_t>(params.begin(), params.end()));
  builder->add(SectionTag::UserKeys, KeyInterner(state.items.kind()).dictionary_bytes({}));
  builder->add(SectionTag::ItemKeys, state.items.dictionary_bytes(item_order));
  builder->add_array(SectionTag::ItemFeatureIndptr, X.indptr);
  builder->add_array(SectionTag::ItemFeatureIndices, X.indices);
  builder->add_array(SectionTag::ItemFeatureValues, X.values);
  X = CsrMatrix();
  builder->add_array(SectionTag::FeatureItemIndptr, XT.indptr);
  builder->add_array(SectionTag::FeatureItemIndices, XT.indices);
  builder->add_array(SectionTag::FeatureItemValues, XT.values);
  XT = CsrMatrix();
  add_neighbour_sections(*builder, std::move(lists));
  if (builder->total_size() > kMaxModelBytes)
    fail(ErrorKind::ProgramLimit, "train_content: the model would take " + std::to_string(builder->total_size()) +
                                      " bytes, more than PostgreSQL's 1 GB limit for one value; lower \"neighbours\" "
                                      "or raise \"min_df\"");
  h.train_seconds = seconds();
  if (options.verbose) log_line("train_content: done in " + std::to_string(h.train_seconds) + " s");
  state.result = std::move(builder);
}

// ---------------------------------------------------------------- serving

namespace {

struct ContentView {
  const int64_t* iptr;
  const int32_t* ifeat;
  const float* ival;
  const int64_t* fptr;
  const int32_t* fitem;
  const float* fval;
  int64_t n_features;
};

ContentView content_view(const ModelView& m, const char* what) {
  uint64_t len = 0;
  ContentView v{};
  v.iptr = m.section_as<int64_t>(SectionTag::ItemFeatureIndptr);
  v.ifeat = m.section_as<int32_t>(SectionTag::ItemFeatureIndices);
  v.ival = m.section_as<float>(SectionTag::ItemFeatureValues);
  v.fptr = reinterpret_cast<const int64_t*>(m.section(SectionTag::FeatureItemIndptr, &len));
  v.fitem = m.section_as<int32_t>(SectionTag::FeatureItemIndices);
  v.fval = m.section_as<float>(SectionTag::FeatureItemValues);
  if (!v.iptr || !v.ifeat || !v.ival || !v.fptr || !v.fitem || !v.fval || len < 8)
    fail(ErrorKind::NotSupported,
         std::string(what) + " needs item feature vectors; this model is " + model_kind_name(m.kind()));
  v.n_features = static_cast<int64_t>(len / 8) - 1;
  return v;
}

void check_item_index(const ModelView& m, int64_t item) {
  if (item < 0 || item >= m.n_items())
    fail(ErrorKind::InvalidParameter, "item index " + std::to_string(item) + " is out of range");
}

}  // namespace

int64_t content_similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out) {
  return stored_neighbours(model, item, k, out);
}

float content_similarity(const ModelView& model, int64_t a, int64_t b) {
  ContentView v = content_view(model, "content_similarity");
  check_item_index(model, a);
  check_item_index(model, b);
  int64_t p = v.iptr[a], q = v.iptr[b];
  double dot = 0;
  while (p < v.iptr[a + 1] && q < v.iptr[b + 1]) {
    if (v.ifeat[p] < v.ifeat[q]) {
      ++p;
    } else if (v.ifeat[p] > v.ifeat[q]) {
      ++q;
    } else {
      dot += double(v.ival[p++]) * v.ival[q++];
    }
  }
  return static_cast<float>(dot);
}

int64_t content_recommend_from_items(const ModelView& model, const std::vector<int64_t>& items,
                                     const std::vector<float>& weights, int64_t k, bool exclude_given,
                                     std::vector<Scored>& out) {
  out.clear();
  ContentView v = content_view(model, "recommend_from_items");
  if (!weights.empty() && weights.size() != items.size())
    fail(ErrorKind::InvalidParameter, "recommend_from_items: need one weight per item");
  for (size_t p = 0; p < items.size(); ++p) {
    check_item_index(model, items[p]);
    if (!weights.empty() && !std::isfinite(weights[p]))
      fail(ErrorKind::DataException, "recommend_from_items: weights must be finite");
  }
  const int64_t ni = model.n_items();
  struct Scratch {
    std::vector<double> profile;
    std::vector<uint8_t> fmark;
    std::vector<int32_t> features;
    std::vector<double> score;
    std::vector<uint8_t> imark;
    std::vector<int32_t> touched;
    std::vector<Scored> cand;
  };
  thread_local Scratch s;
  if (static_cast<int64_t>(s.profile.size()) < v.n_features) {
    s.profile.assign(static_cast<size_t>(v.n_features), 0.0);
    s.fmark.assign(static_cast<size_t>(v.n_features), 0);
  }
  if (static_cast<int64_t>(s.score.size()) < ni) {
    s.score.assign(static_cast<size_t>(ni), 0.0);
    s.imark.assign(static_cast<size_t>(ni), 0);
  }
  s.features.clear();
  s.touched.clear();
  s.cand.clear();
  // The profile: the weighted sum of the given items' (unit) vectors.
  for (size_t p = 0; p < items.size(); ++p) {
    const double w = weights.empty() ? 1.0 : weights[p];
    for (int64_t q = v.iptr[items[p]]; q < v.iptr[items[p] + 1]; ++q) {
      const int32_t f = v.ifeat[q];
      if (!s.fmark[f]) {
        s.fmark[f] = 1;
        s.features.push_back(f);
      }
      s.profile[f] += w * v.ival[q];
    }
  }
  std::sort(s.features.begin(), s.features.end());  // a fixed summation order
  double norm = 0;
  for (int32_t f : s.features) norm += s.profile[f] * s.profile[f];
  norm = std::sqrt(norm);
  // Cosine of every item sharing a feature with the profile (item vectors are unit).
  for (int32_t f : s.features) {
    const double pf = s.profile[f];
    s.profile[f] = 0.0;
    s.fmark[f] = 0;
    if (pf == 0.0 || norm == 0.0) continue;
    for (int64_t q = v.fptr[f]; q < v.fptr[f + 1]; ++q) {
      const int32_t i = v.fitem[q];
      if (!s.imark[i]) {
        s.imark[i] = 1;
        s.touched.push_back(i);
      }
      s.score[i] += pf * v.fval[q];
    }
  }
  std::vector<int64_t> given;
  if (exclude_given) {
    given = items;
    std::sort(given.begin(), given.end());
  }
  for (int32_t i : s.touched) {
    const double sc = s.score[i] / norm;
    s.score[i] = 0.0;
    s.imark[i] = 0;
    if (!(sc > 0)) continue;
    if (exclude_given && std::binary_search(given.begin(), given.end(), static_cast<int64_t>(i))) continue;
    s.cand.push_back(Scored{static_cast<float>(sc), i});
  }
  keep_best(s.cand, k);
  out.assign(s.cand.begin(), s.cand.end());
  return static_cast<int64_t>(out.size());
}

}  // namespace recsys
