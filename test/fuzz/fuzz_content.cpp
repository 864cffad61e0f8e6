// libFuzzer harness: the content model's feature reader, from the rows the SQL layer
// hands it to a built, valid model.
//
// Input: byte 0 is a mode; mode 0 (byte 0 % 4 == 0) takes the rest as a serialized
// ContentState (the parallel-aggregation state, ContentState::deserialize), the others
// as feature rows, each
//   [item byte] [kind byte] [field byte] [length byte] [length value bytes]
// (kind % 4: text, token, number (the value bytes read as a decimal), string; field %
// 8 picks one of a few field names, "description" and "title" among them so that
// add_string's values go both ways). The options follow the first 0xFF byte in the
// position of an item byte, in option_bytes.h's form (none when there is no 0xFF). Then:
//   * tokenize_text on every text value: words non-empty, no ASCII capitals, no
//     one-character ASCII word;
//   * serialize / deserialize / merge of the state (the combine step) keep the rows;
//   * build_content_model on the rows (1 thread) gives a model that validate_model
//     accepts, and its serving calls answer within bounds.
// Errors must be recsys::Error of the documented kinds.
#include <string>
#include <vector>

#include "content.h"
#include "fuzz_common.h"
#include "option_bytes.h"
#include "model_format.h"
#include "serving.h"

using namespace recsys;

namespace {

const char* const kFields[8] = {"description", "title", "category", "tags", "price", "brand", "", "t\xC3\xA9"};

void check_words(const char* text, uint64_t length) {
  for (const std::string& w : tokenize_text(text, length)) {
    FUZZ_CHECK(!w.empty());
    FUZZ_CHECK(!(w.size() == 1 && static_cast<unsigned char>(w[0]) < 0x80));
    for (unsigned char ch : w) FUZZ_CHECK(!(ch >= 'A' && ch <= 'Z'));
  }
}

// Builds and checks the model of a state.
void build_and_serve(ContentState& st, const OptionList& options) {
  ContentOptions o;
  try {
    o = parse_content_options(options);
  } catch (const Error& e) {
    FUZZ_CHECK(e.kind() == ErrorKind::InvalidParameter);
    return;
  }
  o.neighbours = std::min<int64_t>(o.neighbours, 8);
  CancelToken never;
  try {
    build_content_model(st, o, 1, never, [](const std::string&) {});
  } catch (const Error& e) {
    FUZZ_CHECK(e.kind() != ErrorKind::Internal);
    return;
  }
  FUZZ_CHECK(st.result != nullptr);
  recsys_fuzz::Aligned buf(nullptr, 0);
  const uint64_t n = st.result->total_size();
  buf.words.assign((n + 7) / 8 + 1, 0);
  buf.size = n;
  st.result->write(buf.data());
  validate_model(buf.data(), n);  // a built model is always valid: any throw here escapes
  const ModelView v = ModelView::open(buf.data(), n);
  FUZZ_CHECK(v.n_items() == static_cast<int64_t>(st.items.size()));
  std::vector<Scored> out;
  for (int64_t i = 0; i < v.n_items() && i < 8; ++i) {
    similar_items(v, i, 5, out);
    FUZZ_CHECK(out.size() <= 5);
    for (const Scored& s : out) FUZZ_CHECK(s.index >= 0 && s.index < v.n_items() && s.index != i);
    content_recommend_from_items(v, {i, (i + 1) % v.n_items()}, {}, 5, true, out);
    for (const Scored& s : out) FUZZ_CHECK(s.index >= 0 && s.index < v.n_items());
    const float sim = content_similarity(v, i, (i + 1) % v.n_items());
    FUZZ_CHECK(!(sim > 1.0001f) && !(sim < -1.0001f));
  }
}

// The combine step: serialize, read back, merge into a fresh state.
void round_trip(const ContentState& st) {
  std::vector<uint8_t> bytes(st.serialized_size());
  st.serialize(bytes.data());
  std::unique_ptr<ContentState> back = ContentState::deserialize(bytes.data(), bytes.size());
  FUZZ_CHECK(back->features() == st.features());
  FUZZ_CHECK(back->items.size() == st.items.size());
  ContentState merged(st.items.kind(), st.item_type_oid);
  merged.merge(*back);
  FUZZ_CHECK(merged.features() == st.features());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 16384) return 0;
  const uint8_t mode = data[0] % 4;
  const uint8_t* p = data + 1;
  const uint8_t* end = data + size;
  if (mode == 0) {
    try {
      std::unique_ptr<ContentState> st = ContentState::deserialize(p, static_cast<uint64_t>(end - p));
      round_trip(*st);
      if (st->items.size() <= 64 && st->features() <= 256) build_and_serve(*st, {});
    } catch (const Error& e) {
      FUZZ_CHECK(e.kind() == ErrorKind::InvalidModel || e.kind() == ErrorKind::DataException);
    }
    return 0;
  }
  ContentState st(mode == 1 ? KeyKind::Int : KeyKind::Text, mode == 1 ? 20 : 25);
  OptionList options;
  while (end - p >= 4) {
    if (p[0] == 0xFF) {
      options = recsys_fuzz::decode_options(p + 1, static_cast<size_t>(end - p - 1));
      break;
    }
    const uint8_t item = p[0] % 32, kind = p[1] % 4;
    const std::string field = kFields[p[2] % 8];
    const size_t len = std::min<size_t>(p[3], static_cast<size_t>(end - p - 4));
    const char* value = reinterpret_cast<const char*>(p + 4);
    p += 4 + len;
    uint32_t id;
    if (mode == 1) {
      id = st.items.intern_int(item);
    } else {
      const std::string key = "item" + std::to_string(item);
      id = st.items.intern_bytes(reinterpret_cast<const uint8_t*>(key.data()), key.size());
    }
    check_words(value, len);
    try {
      switch (kind) {
        case 0: st.add_text(id, field, value, len); break;
        case 1: st.add_token(id, field, std::string(value, len)); break;
        case 2: st.add_number(id, field, std::strtod(std::string(value, len).c_str(), nullptr)); break;
        default: st.add_string(id, field, std::string(value, len)); break;
      }
    } catch (const Error& e) {
      FUZZ_CHECK(e.kind() == ErrorKind::DataException);  // a non-finite number
    }
  }
  round_trip(st);
  build_and_serve(st, options);
  return 0;
}
