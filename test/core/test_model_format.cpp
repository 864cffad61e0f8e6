// The model format: ModelBuilder / ModelView, validate_model (fuzz-style: truncation,
// every single-byte and single-bit flip, targeted corruptions re-signed with a
// recomputed fingerprint and checksum), the text form, the fingerprint and checksum. Meant to run under AddressSanitizer:
// every validation reads from a heap block of exactly the model's size.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "json_options.h"
#include "model_format.h"
#include "serving.h"
#include "training.h"

using recsys::ErrorKind;
using recsys::KeyKind;
using recsys::ModelBuilder;
using recsys::ModelHeader;
using recsys::ModelKind;
using recsys::ModelView;
using recsys::SectionEntry;
using recsys::SectionTag;

namespace {

using Bytes = std::vector<uint8_t>;

// A heap block of exactly `size` bytes (so ASan flags any read past the end), 8-byte
// aligned as PostgreSQL's palloc guarantees.
class ExactBuffer {
 public:
  explicit ExactBuffer(const uint8_t* src, uint64_t size) : size_(size) {
    data_ = static_cast<uint8_t*>(std::malloc(size ? size : 1));
    if (size) std::memcpy(data_, src, size);
  }
  explicit ExactBuffer(const Bytes& b) : ExactBuffer(b.data(), b.size()) {}
  ~ExactBuffer() { std::free(data_); }
  ExactBuffer(const ExactBuffer&) = delete;
  ExactBuffer& operator=(const ExactBuffer&) = delete;
  uint8_t* data() { return data_; }
  uint64_t size() const { return size_; }

 private:
  uint8_t* data_;
  uint64_t size_;
};

template <class T>
T read_at(const Bytes& b, size_t offset) {
  T v;
  std::memcpy(&v, b.data() + offset, sizeof v);
  return v;
}
template <class T>
void write_at(Bytes& b, size_t offset, T v) {
  std::memcpy(b.data() + offset, &v, sizeof v);
}

ModelHeader header_of(const Bytes& b) { return read_at<ModelHeader>(b, 0); }

// The section table entry for a tag (offset 0 when absent).
SectionEntry entry_of(const Bytes& b, SectionTag tag) {
  ModelHeader h = header_of(b);
  for (uint32_t i = 0; i < h.n_sections; ++i) {
    SectionEntry e = read_at<SectionEntry>(b, sizeof(ModelHeader) + i * sizeof(SectionEntry));
    if (e.tag == static_cast<uint32_t>(tag)) return e;
  }
  return SectionEntry{0, 0, 0, 0};
}

// Re-signs a modified model (fingerprint, then the whole-value checksum that covers
// it) so that validation gets past both to the check under test. Only for models
// whose section table is still in bounds.
void resign(Bytes& b) {
  uint64_t fp = recsys::compute_fingerprint(b.data(), b.size());
  write_at(b, offsetof(ModelHeader, fingerprint), fp);
  uint64_t cs = recsys::compute_checksum(b.data(), b.size());
  write_at(b, offsetof(ModelHeader, checksum_lo), static_cast<uint32_t>(cs));
  write_at(b, offsetof(ModelHeader, checksum_hi), static_cast<uint32_t>(cs >> 32));
}

// validate_model on an exact-size copy: "" if valid, else the message (kind checked).
std::string validation_error(const Bytes& b) {
  ExactBuffer buf(b);
  try {
    recsys::validate_model(buf.data(), buf.size());
    return "";
  } catch (const recsys::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidModel) << e.what();
    std::string m = e.what();
    return m.empty() ? "(empty message)" : m;
  }
}

#define EXPECT_VALID(bytes) EXPECT_EQ(validation_error(bytes), "")
#define EXPECT_REJECTED(bytes, needle)                                                    \
  do {                                                                                    \
    std::string msg_ = validation_error(bytes);                                           \
    EXPECT_NE(msg_, "") << "accepted";                                                    \
    EXPECT_NE(msg_.find(needle), std::string::npos) << "message \"" << msg_ << "\" lacks \"" << (needle) << "\""; \
  } while (0)

template <class T>
Bytes to_bytes(const std::vector<T>& v) {
  Bytes out(v.size() * sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), v.data(), out.size());
  return out;
}

Bytes int_dict(const std::vector<int64_t>& keys) { return to_bytes(keys); }

Bytes text_dict(const std::vector<std::string>& keys) {
  std::vector<uint64_t> off(keys.size() + 1, 0);
  std::string blob;
  for (size_t i = 0; i < keys.size(); ++i) {
    blob += keys[i];
    off[i + 1] = blob.size();
  }
  Bytes out = to_bytes(off);
  out.insert(out.end(), blob.begin(), blob.end());
  return out;
}

Bytes csr_bytes(const std::vector<int64_t>& indptr, const std::vector<int32_t>& items) {
  Bytes out = to_bytes(indptr);
  Bytes it = to_bytes(items);
  out.insert(out.end(), it.begin(), it.end());
  return out;
}

// A model assembled by hand, section by section, so tests can break one thing at a time
// and still get a correct fingerprint from ModelBuilder.
struct HandModel {
  ModelHeader header{};
  std::vector<std::pair<SectionTag, Bytes>> sections;

  Bytes& get(SectionTag tag) {
    for (auto& s : sections)
      if (s.first == tag) return s.second;
    ADD_FAILURE() << "no section " << static_cast<int>(tag);
    static Bytes none;
    return none;
  }
  void remove(SectionTag tag) {
    for (size_t i = 0; i < sections.size(); ++i)
      if (sections[i].first == tag) {
        sections.erase(sections.begin() + i);
        return;
      }
  }
  template <class T>
  void set(SectionTag tag, const std::vector<T>& v) {
    get(tag) = to_bytes(v);
  }
  template <class T>
  std::vector<T> values(SectionTag tag) {
    Bytes& b = get(tag);
    std::vector<T> v(b.size() / sizeof(T));
    if (!v.empty()) std::memcpy(v.data(), b.data(), v.size() * sizeof(T));
    return v;
  }
  Bytes write() const {
    ModelBuilder b;
    b.header = header;
    for (auto& s : sections) b.add(s.first, s.second);
    Bytes out(b.total_size());
    b.write(out.data());
    return out;
  }
};

// 3 integer users x 4 text items, 2 factors, every section an ALS model has.
HandModel hand_model() {
  HandModel m;
  ModelHeader& h = m.header;
  h.kind = static_cast<uint16_t>(ModelKind::ImplicitAls);
  h.user_key_kind = static_cast<uint8_t>(KeyKind::Int);
  h.item_key_kind = static_cast<uint8_t>(KeyKind::Text);
  h.user_type_oid = 20;
  h.item_type_oid = 25;
  h.factors = 2;
  h.n_users = 3;
  h.n_items = 4;
  h.n_interactions = 5;
  h.train_seconds = 1.25;
  std::vector<float> uf = {0.1f, 0.2f, -0.3f, 0.4f, 0.5f, -0.6f};
  std::vector<float> itf = {1.0f, 0.0f, 0.0f, 1.0f, 0.5f, 0.5f, -1.0f, 0.25f};
  std::string params = "{\"hand\": true}";  // 14 bytes: the next section starts after padding
  m.sections.emplace_back(SectionTag::Params, Bytes(params.begin(), params.end()));
  m.sections.emplace_back(SectionTag::UserKeys, int_dict({-5, 3, 10}));
  m.sections.emplace_back(SectionTag::ItemKeys, text_dict({"", "apple", "banana", "cherry"}));
  m.sections.emplace_back(SectionTag::UserNorms, to_bytes(recsys::row_norms(uf.data(), 3, 2)));
  m.sections.emplace_back(SectionTag::ItemNorms, to_bytes(recsys::row_norms(itf.data(), 4, 2)));
  m.sections.emplace_back(SectionTag::UserFactors, to_bytes(uf));
  m.sections.emplace_back(SectionTag::ItemFactors, to_bytes(itf));
  m.sections.emplace_back(SectionTag::UserItems, csr_bytes({0, 2, 2, 5}, {0, 3, 0, 1, 2}));
  m.sections.emplace_back(SectionTag::PopularOrder, to_bytes(std::vector<int32_t>{0, 1, 2, 3}));
  m.sections.emplace_back(SectionTag::ItemPopularity, to_bytes(std::vector<float>{2, 1, 1, 1}));
  m.sections.emplace_back(SectionTag::History, to_bytes(std::vector<double>{0.5, 0.01, 0.25, 0.02}));
  return m;
}

// A popularity model: uuid users, integer items, no factors.
HandModel popularity_model() {
  HandModel m;
  ModelHeader& h = m.header;
  h.kind = static_cast<uint16_t>(ModelKind::Popularity);
  h.user_key_kind = static_cast<uint8_t>(KeyKind::Uuid);
  h.item_key_kind = static_cast<uint8_t>(KeyKind::Int);
  h.n_users = 2;
  h.n_items = 3;
  Bytes uuids(32, 0);
  uuids[15] = 1;
  uuids[16] = 0x80;
  m.sections.emplace_back(SectionTag::UserKeys, uuids);
  m.sections.emplace_back(SectionTag::ItemKeys, int_dict({std::numeric_limits<int64_t>::min(), 0, 7}));
  m.sections.emplace_back(SectionTag::ItemPopularity, to_bytes(std::vector<float>{1, 5, 5}));
  m.sections.emplace_back(SectionTag::PopularOrder, to_bytes(std::vector<int32_t>{1, 2, 0}));
  return m;
}

// A small implicit-ALS model trained by build_als_model.
Bytes als_model(int iterations = 3, uint64_t seed = 42) {
  recsys::TrainingState st(KeyKind::Int, 20, KeyKind::Text, 25);
  const std::vector<std::string> item_names = {"red", "green", "blue", "cyan", "magenta", std::string("\0y", 2)};
  std::mt19937_64 rng(5);
  for (int r = 0; r < 40; ++r) {
    int64_t u = static_cast<int64_t>(rng() % 7) * 100 - 300;
    const std::string& it = item_names[rng() % item_names.size()];
    uint32_t ui = st.users.intern_int(u);
    uint32_t ii = st.items.intern_bytes(reinterpret_cast<const uint8_t*>(it.data()), it.size());
    st.add(ui, ii, 1.0 + static_cast<double>(rng() % 3));
  }
  recsys::AlsTrainingOptions o = recsys::parse_als_options(
      "{\"factors\": 4, \"iterations\": " + std::to_string(iterations) + ", \"seed\": " + std::to_string(seed) + "}");
  recsys::CancelToken cancel;
  recsys::build_als_model(st, o, 1, cancel, [](const std::string&) {});
  EXPECT_TRUE(st.result != nullptr);
  Bytes out(st.result->total_size());
  st.result->write(out.data());
  return out;
}

}  // namespace

// ---------------------------------------------------------------- building and opening

TEST(ModelFormat, HandBuiltModelOpensAndValidates) {
  HandModel hm = hand_model();
  Bytes b = hm.write();
  ExactBuffer buf(b);
  ModelView v = ModelView::open(buf.data(), buf.size());
  EXPECT_EQ(v.kind(), ModelKind::ImplicitAls);
  EXPECT_EQ(v.n_users(), 3);
  EXPECT_EQ(v.n_items(), 4);
  EXPECT_EQ(v.factors(), 2);
  EXPECT_EQ(v.header->magic, recsys::kModelMagic);
  EXPECT_EQ(v.header->version, recsys::kModelFormatVersion);
  EXPECT_EQ(v.header->n_sections, hm.sections.size());
  EXPECT_EQ(v.header->total_bytes, b.size());
  EXPECT_EQ(v.header->user_type_oid, 20u);
  EXPECT_EQ(v.header->train_seconds, 1.25);
  EXPECT_EQ(v.header->fingerprint, recsys::compute_fingerprint(buf.data(), buf.size()));
  EXPECT_NO_THROW(recsys::validate_model(buf.data(), buf.size()));
  // The builder never touches the varlena word.
  EXPECT_EQ(read_at<uint32_t>(b, 0), 0u);

  // Every section: 16-byte aligned, in order, after the table, holding the given bytes.
  uint64_t prev_end = sizeof(ModelHeader) + hm.sections.size() * sizeof(SectionEntry);
  for (auto& s : hm.sections) {
    uint64_t len = 12345;
    const uint8_t* p = v.section(s.first, &len);
    ASSERT_NE(p, nullptr);
    EXPECT_EQ(len, s.second.size());
    uint64_t off = static_cast<uint64_t>(p - buf.data());
    EXPECT_EQ(off % recsys::kSectionAlignment, 0u);
    EXPECT_GE(off, prev_end);
    EXPECT_LT(off - prev_end, recsys::kSectionAlignment);
    for (uint64_t z = prev_end; z < off; ++z) EXPECT_EQ(buf.data()[z], 0) << "padding at " << z;
    EXPECT_EQ(0, std::memcmp(p, s.second.data(), len));
    prev_end = off + len;
  }
  EXPECT_EQ(prev_end, b.size());
  uint64_t len = 99;
  EXPECT_EQ(v.section(SectionTag::UserBias, &len), nullptr);
  EXPECT_EQ(len, 0u);

  EXPECT_EQ(v.params_json(), "{\"hand\": true}");
  int64_t iters = 0;
  const double* hist = v.history(&iters);
  ASSERT_EQ(iters, 2);
  EXPECT_EQ(hist[0], 0.5);
  EXPECT_EQ(hist[3], 0.02);
  recsys::KeyDictionary users = v.user_keys(), items = v.item_keys();
  EXPECT_EQ(users.find_int(-5), 0);
  EXPECT_EQ(users.find_int(10), 2);
  EXPECT_EQ(users.find_int(4), -1);
  EXPECT_EQ(items.find_bytes(reinterpret_cast<const uint8_t*>(""), 0), 0);
  EXPECT_EQ(items.find_bytes(reinterpret_cast<const uint8_t*>("cherry"), 6), 3);
  EXPECT_EQ(v.user_factors()[1], 0.2f);
  EXPECT_EQ(v.item_factors()[7], 0.25f);
}

TEST(ModelFormat, TrainedAlsModelOpensAndValidates) {
  Bytes b = als_model();
  ExactBuffer buf(b);
  EXPECT_NO_THROW(recsys::validate_model(buf.data(), buf.size()));
  ModelView v = ModelView::open(buf.data(), buf.size());
  EXPECT_EQ(v.kind(), ModelKind::ImplicitAls);
  EXPECT_EQ(v.factors(), 4);
  EXPECT_EQ(v.n_users(), 7);
  EXPECT_EQ(v.n_items(), 6);
  EXPECT_EQ(v.header->user_key_kind, static_cast<uint8_t>(KeyKind::Int));
  EXPECT_EQ(v.header->item_key_kind, static_cast<uint8_t>(KeyKind::Text));
  EXPECT_EQ(v.header->item_type_oid, 25u);
  EXPECT_GE(v.header->train_seconds, 0.0);
  int64_t iters = 0;
  v.history(&iters);
  EXPECT_EQ(iters, 3);
  EXPECT_NE(v.params_json().find("\"factors\": 4"), std::string::npos) << v.params_json();
  for (int64_t u = -300; u <= 300; u += 100) EXPECT_GE(v.user_keys().find_int(u), 0) << u;
  EXPECT_EQ(v.item_keys().find_bytes(reinterpret_cast<const uint8_t*>("\0y"), 2), 0);  // sorts first
}

TEST(ModelFormat, PopularityAndEmptyModelsValidate) {
  Bytes p = popularity_model().write();
  EXPECT_VALID(p);
  ExactBuffer buf(p);
  ModelView v = ModelView::open(buf.data(), buf.size());
  EXPECT_EQ(v.kind(), ModelKind::Popularity);
  EXPECT_EQ(v.user_factors(), nullptr);
  EXPECT_EQ(v.params_json(), "{}");
  int64_t iters = 5;
  EXPECT_EQ(v.history(&iters), nullptr);
  EXPECT_EQ(iters, 0);

  HandModel e;
  e.header.kind = static_cast<uint16_t>(ModelKind::Popularity);
  e.header.user_key_kind = static_cast<uint8_t>(KeyKind::Text);
  e.header.item_key_kind = static_cast<uint8_t>(KeyKind::Uuid);
  e.sections.emplace_back(SectionTag::UserKeys, text_dict({}));
  e.sections.emplace_back(SectionTag::ItemKeys, Bytes());
  e.sections.emplace_back(SectionTag::UserItems, csr_bytes({0}, {}));
  EXPECT_VALID(e.write());
}

TEST(ModelFormat, OpenRejectsShortAndMisalignedBuffers) {
  Bytes b = hand_model().write();
  for (uint64_t size : {uint64_t(0), uint64_t(1), uint64_t(sizeof(ModelHeader) - 1)}) {
    ExactBuffer buf(b.data(), size);
    EXPECT_THROW(ModelView::open(buf.data(), size), recsys::Error);
  }
  // The same bytes at an address that is 4 mod 8.
  std::vector<uint64_t> storage(b.size() / 8 + 2);
  uint8_t* odd = reinterpret_cast<uint8_t*>(storage.data()) + 4;
  std::memcpy(odd, b.data(), b.size());
  try {
    recsys::validate_model(odd, b.size());
    ADD_FAILURE() << "misaligned buffer accepted";
  } catch (const recsys::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
    EXPECT_NE(std::string(e.what()).find("aligned"), std::string::npos) << e.what();
  }
}

TEST(ModelFormat, BuilderRefusesModelsOverTheVarlenaLimit) {
  ModelBuilder b;
  b.header.kind = static_cast<uint16_t>(ModelKind::Popularity);
  static const uint8_t dummy[16] = {0};
  // Borrowed bytes are not read before the size check.
  b.add_borrowed(SectionTag::ItemFactors, dummy, recsys::kMaxModelBytes);
  EXPECT_GT(b.total_size(), recsys::kMaxModelBytes);
  Bytes out(sizeof(ModelHeader) + 64);
  try {
    b.write(out.data());
    ADD_FAILURE() << "no exception";
  } catch (const recsys::Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::ProgramLimit);
  }
}

TEST(ModelFormat, NamesAndKinds) {
  EXPECT_STREQ(recsys::model_kind_name(ModelKind::ImplicitAls), "implicit_als");
  EXPECT_STREQ(recsys::model_kind_name(ModelKind::Popularity), "popularity");
  EXPECT_STREQ(recsys::model_kind_name(static_cast<ModelKind>(99)), "unknown");
  EXPECT_FALSE(recsys::model_kind_valid(0));
  EXPECT_TRUE(recsys::model_kind_valid(1));
  EXPECT_TRUE(recsys::model_kind_valid(6));
  EXPECT_TRUE(recsys::model_kind_valid(7));
  EXPECT_STREQ(recsys::model_kind_name(ModelKind::Ease), "ease");
  EXPECT_FALSE(recsys::model_kind_valid(8));
}

// ---------------------------------------------------------------- text form

TEST(ModelFormat, TextRoundTripReproducesIdenticalBytes) {
  std::vector<Bytes> models = {hand_model().write(), popularity_model().write(), als_model()};
  for (Bytes& b : models) {
    write_at<uint32_t>(b, 0, 0xDEADBEEF);  // the varlena word is not part of the text
    uint64_t tsize = recsys::model_text_size(b.size());
    std::vector<char> text(tsize + 1, '#');
    recsys::model_to_text(b.data(), b.size(), text.data());
    EXPECT_EQ(text[tsize], '\0');
    EXPECT_EQ(std::strlen(text.data()), tsize);
    EXPECT_EQ(std::string(text.data(), 7), "recsys:");
    EXPECT_EQ((tsize - 7) % 4, 0u);
    uint64_t size = recsys::model_text_decoded_size(text.data(), tsize);
    ASSERT_EQ(size, b.size());
    Bytes back(size, 0);
    write_at<uint32_t>(back, 0, 0xDEADBEEF);
    recsys::model_from_text(text.data(), tsize, back.data(), back.size());
    EXPECT_EQ(back, b);
    EXPECT_VALID(back);
  }
}

TEST(ModelFormat, TextRoundTripOfEveryPaddingCase) {
  std::mt19937_64 rng(3);
  for (uint64_t size = 5; size < 80; ++size) {
    Bytes b(size);
    for (auto& x : b) x = static_cast<uint8_t>(rng());
    uint64_t tsize = recsys::model_text_size(size);
    std::vector<char> text(tsize + 1);
    recsys::model_to_text(b.data(), size, text.data());
    ASSERT_EQ(recsys::model_text_decoded_size(text.data(), tsize), size);
    Bytes back(size);
    std::memcpy(back.data(), b.data(), 4);
    recsys::model_from_text(text.data(), tsize, back.data(), size);
    EXPECT_EQ(back, b) << size;
  }
}

TEST(ModelFormat, TextFormRejectsMalformedInput) {
  Bytes b = hand_model().write();
  uint64_t tsize = recsys::model_text_size(b.size());
  std::vector<char> t(tsize + 1);
  recsys::model_to_text(b.data(), b.size(), t.data());
  const std::string good(t.data(), tsize);

  auto decode = [](const std::string& s) -> std::string {
    try {
      uint64_t n = recsys::model_text_decoded_size(s.data(), s.size());
      if (n > (1u << 20)) return "absurd size";
      Bytes out(n);
      recsys::model_from_text(s.data(), s.size(), out.data(), out.size());
      return "";
    } catch (const recsys::Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
      return e.what();
    }
  };
  EXPECT_EQ(decode(good), "");
  EXPECT_NE(decode(""), "");
  EXPECT_NE(decode("recsys"), "");
  EXPECT_NE(decode("recsys:"), "");
  EXPECT_NE(decode("RECSYS:" + good.substr(7)), "");
  EXPECT_NE(decode(good.substr(7)), "");
  EXPECT_NE(decode(good.substr(0, good.size() - 1)), "");  // not a multiple of 4
  EXPECT_NE(decode(good + "A"), "");
  EXPECT_NE(decode("recsys:AAA"), "");
  for (char bad : {'*', ' ', '\n', '-', '_', '.', '\x80'}) {
    std::string s = good;
    s[20] = bad;
    EXPECT_NE(decode(s), "") << static_cast<int>(bad);
  }
  EXPECT_NE(decode("recsys:A=AA"), "");  // padding in the middle of a group
  EXPECT_NE(decode("recsys:AA=A"), "");  // '=' then data
  EXPECT_NE(decode("recsys:AAAA==AA"), "");  // padding before the last group
  EXPECT_NE(decode("recsys:===="), "");
  EXPECT_NE(decode("recsys:A==="), "");
  EXPECT_EQ(decode("recsys:AA=="), "");
  EXPECT_EQ(decode("recsys:AAA="), "");
  // The destination size must match the decoded size exactly.
  Bytes out(b.size() + 1);
  EXPECT_THROW(recsys::model_from_text(good.data(), good.size(), out.data(), out.size()), recsys::Error);
  EXPECT_THROW(recsys::model_from_text(good.data(), good.size(), out.data(), b.size() - 1), recsys::Error);
}

TEST(ModelFormat, TextWithAnyChangedCharacterIsRejected) {
  const Bytes b = hand_model().write();
  uint64_t tsize = recsys::model_text_size(b.size());
  std::vector<char> t(tsize + 1);
  recsys::model_to_text(b.data(), b.size(), t.data());
  const std::string good(t.data(), tsize);
  int rejected = 0;
  for (size_t i = 0; i < good.size(); ++i) {
    for (char c : {'A', 'z', '+', '/', '=', '!', 'r'}) {
      if (good[i] == c) continue;
      std::string s = good;
      s[i] = c;
      try {
        uint64_t n = recsys::model_text_decoded_size(s.data(), s.size());
        ASSERT_LE(n, b.size() + 2);
        Bytes decoded(n, 0);
        recsys::model_from_text(s.data(), s.size(), decoded.data(), n);
        ExactBuffer exact(decoded);
        recsys::validate_model(exact.data(), exact.size());
        // Accepted: only possible when the change decodes to the very same bytes (the
        // unused low bits of the last base64 character before '=').
        ASSERT_EQ(decoded.size(), b.size());
        EXPECT_TRUE(std::equal(decoded.begin() + 4, decoded.end(), b.begin() + 4))
            << "text position " << i << " changed to " << c << " was accepted";
      } catch (const recsys::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
        ++rejected;
      }
    }
  }
  EXPECT_GT(rejected, static_cast<int>(good.size()) * 5);
}

// ---------------------------------------------------------------- fingerprint

TEST(ModelFormat, FingerprintIgnoresTimingsAndVarlenaWord) {
  HandModel a = hand_model();
  HandModel b = hand_model();
  b.header.train_seconds = 9999.5;
  b.set(SectionTag::History, std::vector<double>{7.0, 3.0, 1.0, 123.0});  // same length
  Bytes ba = a.write(), bb = b.write();
  EXPECT_NE(ba, bb);
  EXPECT_EQ(header_of(ba).fingerprint, header_of(bb).fingerprint);
  EXPECT_VALID(bb);
  write_at<uint32_t>(bb, 0, 0x12345678);
  EXPECT_EQ(recsys::compute_fingerprint(bb.data(), bb.size()), header_of(ba).fingerprint);
  EXPECT_VALID(bb);
  // The whole-value checksum does cover the timings: an in-place change is caught,
  // although the fingerprint stays the same.
  Bytes timed = ba;
  write_at(timed, offsetof(ModelHeader, train_seconds), 2.5);
  EXPECT_EQ(recsys::compute_fingerprint(timed.data(), timed.size()), header_of(ba).fingerprint);
  EXPECT_NE(recsys::compute_checksum(timed.data(), timed.size()), recsys::compute_checksum(ba.data(), ba.size()));
  EXPECT_REJECTED(timed, "checksum");
  Bytes hist = ba;
  hist[entry_of(hist, SectionTag::History).offset] ^= 1;
  EXPECT_REJECTED(hist, "checksum");
  resign(hist);
  EXPECT_VALID(hist);
  EXPECT_EQ(header_of(hist).fingerprint, header_of(ba).fingerprint);
}

TEST(ModelFormat, FingerprintChangesWithEveryFactor) {
  HandModel base = hand_model();
  const uint64_t fp0 = header_of(base.write()).fingerprint;
  for (SectionTag tag : {SectionTag::UserFactors, SectionTag::ItemFactors}) {
    std::vector<float> f = base.values<float>(tag);
    for (size_t i = 0; i < f.size(); ++i) {
      for (float nv : {std::nextafter(f[i], 10.0f), -f[i] == f[i] ? 1e-30f : -f[i], f[i] + 1.0f}) {
        HandModel m = hand_model();
        std::vector<float> g = f;
        g[i] = nv;
        m.set(tag, g);
        Bytes b = m.write();
        EXPECT_NE(header_of(b).fingerprint, fp0) << "tag " << static_cast<int>(tag) << " index " << i;
        EXPECT_VALID(b);
      }
    }
  }
  // Other content too: a key, the parameters, a seen item, a header field.
  HandModel m = hand_model();
  m.set(SectionTag::UserKeys, std::vector<int64_t>{-5, 3, 11});
  EXPECT_NE(header_of(m.write()).fingerprint, fp0);
  m = hand_model();
  m.get(SectionTag::Params).back() = ' ';
  EXPECT_NE(header_of(m.write()).fingerprint, fp0);
  m = hand_model();
  m.header.n_interactions = 6;
  EXPECT_NE(header_of(m.write()).fingerprint, fp0);
  m = hand_model();
  m.header.item_type_oid = 1043;
  EXPECT_NE(header_of(m.write()).fingerprint, fp0);
  // And the same content gives the same fingerprint.
  EXPECT_EQ(header_of(hand_model().write()).fingerprint, fp0);
}

TEST(ModelFormat, TrainedFingerprintIsReproducible) {
  Bytes a = als_model(3, 42), b = als_model(3, 42), c = als_model(3, 43);
  EXPECT_EQ(header_of(a).fingerprint, header_of(b).fingerprint);
  EXPECT_NE(header_of(a).fingerprint, header_of(c).fingerprint);
  // The only bytes that may differ between identical runs are the timings and the
  // whole-value checksum that covers them.
  const SectionEntry hist = entry_of(a, SectionTag::History);
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 4; i < a.size(); ++i) {
    bool timing = (i >= offsetof(ModelHeader, train_seconds) && i < offsetof(ModelHeader, train_seconds) + 8) ||
                  (i >= hist.offset && i < hist.offset + hist.length) ||
                  (i >= offsetof(ModelHeader, checksum_lo) && i < offsetof(ModelHeader, checksum_hi) + 4);
    if (!timing) {
      ASSERT_EQ(a[i], b[i]) << "byte " << i;
    }
  }
}

// ---------------------------------------------------------------- targeted rejections

TEST(ModelFormatReject, HeaderFields) {
  const Bytes good = hand_model().write();
  auto patched = [&](size_t offset, auto value) {
    Bytes b = good;
    write_at(b, offset, value);
    return b;
  };
  EXPECT_REJECTED(patched(offsetof(ModelHeader, magic), uint32_t(0x53595353)), "magic");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, magic), uint32_t(0)), "magic");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, version), uint16_t(2)), "version");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, version), uint16_t(0)), "version");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, kind), uint16_t(0)), "kind");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, kind), uint16_t(8)), "kind");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, user_key_kind), uint8_t(0)), "key kind");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, item_key_kind), uint8_t(4)), "key kind");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, total_bytes), uint64_t(good.size() + 1)), "size");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, total_bytes), uint64_t(good.size() - 1)), "size");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, n_sections), uint32_t(65)), "sections");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, n_sections), uint32_t(0xFFFFFFFF)), "sections");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, factors), uint32_t(65537)), "factor");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, n_users), uint64_t(0xFFFFFFF1)), "count");
  EXPECT_REJECTED(patched(offsetof(ModelHeader, n_items), ~uint64_t(0)), "count");
  // A model too small for its section table.
  HandModel tiny = popularity_model();
  Bytes t = tiny.write();
  write_at(t, offsetof(ModelHeader, n_sections), uint32_t(64));
  EXPECT_REJECTED(t, "section");
}

TEST(ModelFormatReject, ChecksumMismatch) {
  Bytes b = hand_model().write();
  SectionEntry uf = entry_of(b, SectionTag::UserFactors);
  b[uf.offset + 1] ^= 0x01;
  EXPECT_REJECTED(b, "checksum");
  resign(b);
  EXPECT_VALID(b);  // a tiny factor change is a valid model once re-signed
  b[offsetof(ModelHeader, fingerprint)] ^= 0x80;
  EXPECT_REJECTED(b, "checksum");
  // A fingerprint that does not match the content, under a valid checksum.
  uint64_t cs = recsys::compute_checksum(b.data(), b.size());
  write_at(b, offsetof(ModelHeader, checksum_lo), static_cast<uint32_t>(cs));
  write_at(b, offsetof(ModelHeader, checksum_hi), static_cast<uint32_t>(cs >> 32));
  EXPECT_REJECTED(b, "fingerprint");
  // Each half of the checksum is checked.
  for (size_t at : {offsetof(ModelHeader, checksum_lo), offsetof(ModelHeader, checksum_hi) + 3}) {
    Bytes c = hand_model().write();
    c[at] ^= 0x10;
    EXPECT_REJECTED(c, "checksum");
  }
}

TEST(ModelFormatReject, SectionOutOfRangeOrMisaligned) {
  const Bytes good = hand_model().write();
  const size_t table = sizeof(ModelHeader);
  auto with_entry = [&](size_t index, uint64_t offset, uint64_t length) {
    Bytes b = good;
    SectionEntry e = read_at<SectionEntry>(b, table + index * sizeof(SectionEntry));
    e.offset = offset;
    e.length = length;
    write_at(b, table + index * sizeof(SectionEntry), e);
    return b;
  };
  SectionEntry e1 = read_at<SectionEntry>(good, table + sizeof(SectionEntry));
  const uint64_t size = good.size();
  EXPECT_REJECTED(with_entry(1, size + 16, 0), "outside");
  EXPECT_REJECTED(with_entry(1, recsys::align_up(size, 16), 8), "outside");
  EXPECT_REJECTED(with_entry(1, e1.offset, size), "outside");
  EXPECT_REJECTED(with_entry(1, e1.offset, ~uint64_t(0)), "outside");
  EXPECT_REJECTED(with_entry(1, ~uint64_t(0) - 7, 16), "outside");
  EXPECT_REJECTED(with_entry(1, 0, 16), "outside");    // over the header
  EXPECT_REJECTED(with_entry(1, table, 16), "outside");  // over the section table
  EXPECT_REJECTED(with_entry(1, e1.offset + 8, e1.length), "misaligned");
  EXPECT_REJECTED(with_entry(1, e1.offset + 4, 0), "misaligned");
  // A section ending exactly at the end is fine structurally (it fails elsewhere).
  Bytes at_end = with_entry(1, size, 0);
  std::string msg = validation_error(at_end);
  EXPECT_EQ(msg.find("outside"), std::string::npos) << msg;
  EXPECT_EQ(msg.find("misaligned"), std::string::npos) << msg;
}

TEST(ModelFormatReject, DuplicateAndMissingSections) {
  HandModel m = hand_model();
  m.sections.emplace_back(SectionTag::UserNorms, m.get(SectionTag::UserNorms));
  EXPECT_REJECTED(m.write(), "twice");
  m = hand_model();
  m.remove(SectionTag::UserKeys);
  EXPECT_REJECTED(m.write(), "user dictionary is missing");
  m = hand_model();
  m.remove(SectionTag::ItemKeys);
  EXPECT_REJECTED(m.write(), "item dictionary is missing");
  m = hand_model();
  m.remove(SectionTag::ItemFactors);
  EXPECT_REJECTED(m.write(), "without factors");
  m = hand_model();
  m.remove(SectionTag::UserFactors);
  EXPECT_REJECTED(m.write(), "without factors");
  // Optional sections may be absent.
  for (SectionTag t : {SectionTag::Params, SectionTag::UserItems, SectionTag::History, SectionTag::PopularOrder,
                       SectionTag::ItemPopularity, SectionTag::UserNorms, SectionTag::ItemNorms}) {
    m = hand_model();
    m.remove(t);
    EXPECT_VALID(m.write()) << static_cast<int>(t);
  }
  // An unknown tag is tolerated (readers skip it).
  m = hand_model();
  m.sections.emplace_back(static_cast<SectionTag>(1000), Bytes(3, 1));
  EXPECT_VALID(m.write());
}

TEST(ModelFormatReject, KeyDictionaries) {
  HandModel m = hand_model();
  m.set(SectionTag::UserKeys, std::vector<int64_t>{3, -5, 10});
  EXPECT_REJECTED(m.write(), "ascending");
  m = hand_model();
  m.set(SectionTag::UserKeys, std::vector<int64_t>{-5, 3, 3});
  EXPECT_REJECTED(m.write(), "ascending");
  m = hand_model();
  m.set(SectionTag::UserKeys, std::vector<int64_t>{-5, 3});
  EXPECT_REJECTED(m.write(), "size");
  m = hand_model();
  m.get(SectionTag::ItemKeys) = text_dict({"", "apple", "cherry", "banana"});
  EXPECT_REJECTED(m.write(), "ascending");
  m = hand_model();
  m.get(SectionTag::ItemKeys) = text_dict({"apple", "", "banana", "cherry"});
  EXPECT_REJECTED(m.write(), "ascending");
  m = hand_model();
  m.get(SectionTag::ItemKeys) = text_dict({"", "apple", "apple", "cherry"});
  EXPECT_REJECTED(m.write(), "ascending");
  m = hand_model();
  {
    Bytes& d = m.get(SectionTag::ItemKeys);
    uint64_t big = 1ull << 40;
    std::memcpy(d.data() + 16, &big, 8);  // offsets[2] far out of range
  }
  EXPECT_REJECTED(m.write(), "offsets");
  m = hand_model();
  m.get(SectionTag::ItemKeys).push_back('x');  // blob longer than the last offset
  EXPECT_REJECTED(m.write(), "offsets");
  m = hand_model();
  m.header.n_items = 5;  // dictionary holds 4
  EXPECT_REJECTED(m.write(), "key dictionary");
  m = hand_model();
  m.header.user_key_kind = static_cast<uint8_t>(KeyKind::Uuid);  // 24 bytes is not 3 uuids
  EXPECT_REJECTED(m.write(), "size");
}

TEST(ModelFormatReject, SectionSizes) {
  struct Case {
    SectionTag tag;
    const char* needle;
  };
  for (Case c : {Case{SectionTag::UserFactors, "user factors"}, Case{SectionTag::ItemFactors, "item factors"},
                 Case{SectionTag::ItemPopularity, "popularity"}, Case{SectionTag::PopularOrder, "popularity order"},
                 Case{SectionTag::ItemNorms, "item norms"}, Case{SectionTag::UserNorms, "user norms"}}) {
    for (int delta : {-4, 4}) {
      HandModel m = hand_model();
      Bytes& s = m.get(c.tag);
      s.resize(s.size() + delta, 0);
      SCOPED_TRACE(std::to_string(static_cast<int>(c.tag)) + " " + std::to_string(delta));
      EXPECT_REJECTED(m.write(), c.needle);
    }
  }
  HandModel m = hand_model();
  m.header.factors = 3;
  EXPECT_REJECTED(m.write(), "wrong size");
  m = hand_model();
  m.sections.emplace_back(SectionTag::UserBias, Bytes(8, 0));
  EXPECT_REJECTED(m.write(), "user biases");
  m = hand_model();
  m.sections.emplace_back(SectionTag::ItemBias, Bytes(12, 0));
  EXPECT_REJECTED(m.write(), "item biases");
  m = hand_model();
  m.get(SectionTag::History).resize(24);
  EXPECT_REJECTED(m.write(), "history");
}

TEST(ModelFormatReject, NonFiniteValuesWithValidFingerprint) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  struct Case {
    SectionTag tag;
    size_t index;
    float value;
    const char* needle;
  };
  const Case cases[] = {
      {SectionTag::UserFactors, 0, nan, "user factors"},   {SectionTag::UserFactors, 5, -inf, "user factors"},
      {SectionTag::ItemFactors, 3, nan, "item factors"},   {SectionTag::ItemFactors, 7, inf, "item factors"},
      {SectionTag::ItemPopularity, 2, nan, "popularity"},  {SectionTag::ItemNorms, 1, inf, "item norms"},
      {SectionTag::UserNorms, 2, nan, "user norms"},
  };
  for (const Case& c : cases) {
    HandModel m = hand_model();
    std::vector<float> v = m.values<float>(c.tag);
    v[c.index] = c.value;
    m.set(c.tag, v);
    Bytes b = m.write();
    // The builder signed the NaN: only the finiteness check can catch it.
    EXPECT_EQ(header_of(b).fingerprint, recsys::compute_fingerprint(b.data(), b.size()));
    EXPECT_REJECTED(b, "non-finite");
    EXPECT_REJECTED(b, c.needle);
  }
  // The same through a patch of a trained model and a recomputed fingerprint.
  Bytes b = als_model();
  SectionEntry itf = entry_of(b, SectionTag::ItemFactors);
  write_at(b, itf.offset + itf.length - 4, nan);
  resign(b);
  EXPECT_REJECTED(b, "non-finite");
  // Biases and rating statistics.
  HandModel m = hand_model();
  m.sections.emplace_back(SectionTag::ItemBias, to_bytes(std::vector<float>{0, nan, 0, 0}));
  EXPECT_REJECTED(m.write(), "item biases");
  m = hand_model();
  m.sections.emplace_back(SectionTag::UserBias, to_bytes(std::vector<float>{0, 0, inf}));
  EXPECT_REJECTED(m.write(), "user biases");
  for (size_t field : {offsetof(ModelHeader, global_mean), offsetof(ModelHeader, rating_min),
                       offsetof(ModelHeader, rating_max)}) {
    Bytes r = hand_model().write();
    write_at(r, field, std::numeric_limits<double>::quiet_NaN());
    resign(r);
    EXPECT_REJECTED(r, "not finite");
  }
}

TEST(ModelFormatReject, PopularityOrder) {
  for (std::vector<int32_t> order : {std::vector<int32_t>{0, 1, 1, 3}, std::vector<int32_t>{0, 1, 2, 4},
                                     std::vector<int32_t>{-1, 1, 2, 3}, std::vector<int32_t>{3, 2, 1, 0x7FFFFFFF}}) {
    HandModel m = hand_model();
    m.set(SectionTag::PopularOrder, order);
    EXPECT_REJECTED(m.write(), "permutation");
  }
  // A permutation that does not rank by popularity (recommend_popular would return it
  // out of order), or that breaks a tie by the higher index (found by fuzz_model).
  for (std::vector<int32_t> order : {std::vector<int32_t>{1, 0, 2, 3}, std::vector<int32_t>{0, 2, 1, 3}}) {
    HandModel m = hand_model();
    m.set(SectionTag::PopularOrder, order);
    EXPECT_REJECTED(m.write(), "rank the items by popularity");
  }
}

TEST(ModelFormatReject, SeenItemsCsr) {
  struct Case {
    std::vector<int64_t> indptr;
    std::vector<int32_t> items;
    const char* needle;
  };
  const Case cases[] = {
      {{1, 2, 2, 5}, {0, 3, 0, 1, 2}, "start at 0"},
      {{0, 3, 2, 5}, {0, 3, 0, 1, 2}, "ascending"},
      {{0, 2, 2, -1}, {0, 3, 0, 1, 2}, "ascending"},
      {{0, 2, 2, 6}, {0, 3, 0, 1, 2}, "wrong size"},
      {{0, 2, 2, 4}, {0, 3, 0, 1, 2}, "wrong size"},
      {{0, 2, 2, 5}, {0, 4, 0, 1, 2}, "out of range"},
      {{0, 2, 2, 5}, {0, 3, 0, 1, -1}, "out of range"},
      {{0, 2, 2, 5}, {0, 3, 0, 1, 0x7FFFFFFF}, "out of range"},
      {{0, 2, 2, 5}, {3, 0, 0, 1, 2}, "ascending"},
      {{0, 2, 2, 5}, {0, 3, 0, 1, 1}, "ascending"},
      // nnz whose byte size wraps around: 4 * (2^62 + 5) = 20 (mod 2^64).
      {{0, 2, 2, (int64_t(1) << 62) + 5}, {0, 3, 0, 1, 2}, "wrong size"},
      {{0, int64_t(1) << 62, int64_t(1) << 62, (int64_t(1) << 62) + 5}, {0, 3, 0, 1, 2}, "wrong size"},
      {{0, 2, 2, std::numeric_limits<int64_t>::max()}, {0, 3, 0, 1, 2}, "wrong size"},
  };
  for (const Case& c : cases) {
    HandModel m = hand_model();
    m.get(SectionTag::UserItems) = csr_bytes(c.indptr, c.items);
    SCOPED_TRACE(std::string(c.needle) + " indptr[3]=" + std::to_string(c.indptr[3]));
    EXPECT_REJECTED(m.write(), c.needle);
  }
  // The same wrap-around with the seen items as the last section, where reading on
  // past nnz = 5 leaves the buffer (AddressSanitizer reports it if unchecked).
  {
    HandModel last = hand_model();
    Bytes csr = csr_bytes({0, 2, 2, (int64_t(1) << 62) + 5}, {0, 3, 0, 1, 2});
    last.remove(SectionTag::UserItems);
    last.sections.emplace_back(SectionTag::UserItems, csr);
    Bytes b = last.write();
    ASSERT_EQ(entry_of(b, SectionTag::UserItems).offset + csr.size(), b.size());
    EXPECT_REJECTED(b, "wrong size");
  }
  HandModel m = hand_model();
  m.get(SectionTag::UserItems).resize(24);  // shorter than indptr
  EXPECT_REJECTED(m.write(), "too short");
}

TEST(ModelFormatReject, ParamsWithNulByte) {
  HandModel m = hand_model();
  m.get(SectionTag::Params)[3] = 0;
  EXPECT_REJECTED(m.write(), "NUL");
}

// ---------------------------------------------------------------- fuzz

namespace {

// Flips every bit of every byte, and every whole byte, validating each variant in an
// exact-size buffer: every change after the varlena word must be rejected (the
// whole-value checksum covers everything else, timings included), and a change of the
// varlena word, which PostgreSQL owns and sets after validation, must not matter.
void flip_every_byte(const Bytes& model) {
  ASSERT_EQ(validation_error(model), "");
  ExactBuffer buf(model);
  int64_t accepted = 0, rejected = 0;
  for (size_t i = 0; i < model.size(); ++i) {
    for (int m = 0; m < 9; ++m) {
      const uint8_t mask = m == 8 ? 0xFF : static_cast<uint8_t>(1u << m);
      std::memcpy(buf.data(), model.data(), model.size());
      buf.data()[i] ^= mask;
      bool threw = false;
      try {
        recsys::validate_model(buf.data(), buf.size());
      } catch (const recsys::Error& e) {
        threw = true;
        EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
      }
      if (i < 4) {
        EXPECT_FALSE(threw) << "a change of the varlena word (byte " << i << ") was rejected";
      } else {
        EXPECT_TRUE(threw) << "flip of byte " << i << " with mask 0x" << std::hex << int(mask) << std::dec
                           << " was accepted";
      }
      (threw ? rejected : accepted) += 1;
    }
  }
  EXPECT_EQ(accepted, 4 * 9);
  EXPECT_EQ(rejected, static_cast<int64_t>(model.size() - 4) * 9);
}

}  // namespace

TEST(ModelFormatFuzz, EveryTruncationIsRejected) {
  for (const Bytes& model : {hand_model().write(), popularity_model().write(), als_model()}) {
    for (size_t len = 0; len < model.size(); ++len) {
      ExactBuffer buf(model.data(), len);
      EXPECT_THROW(recsys::validate_model(buf.data(), len), recsys::Error) << len;
      // Also with the stored size patched to match, so the section checks run.
      if (len >= sizeof(ModelHeader)) {
        Bytes cut(model.begin(), model.begin() + len);
        write_at(cut, offsetof(ModelHeader, total_bytes), uint64_t(len));
        EXPECT_NE(validation_error(cut), "") << len;
      }
    }
  }
}

TEST(ModelFormatFuzz, EveryByteAndBitFlipOfAHandModelIsRejected) { flip_every_byte(hand_model().write()); }

TEST(ModelFormatFuzz, EveryByteAndBitFlipOfAPopularityModelIsRejected) {
  flip_every_byte(popularity_model().write());
}

TEST(ModelFormatFuzz, EveryByteAndBitFlipOfATrainedModelIsRejected) { flip_every_byte(als_model()); }

TEST(ModelFormatFuzz, ReSignedRandomCorruptionsNeverCrash) {
  // Random multi-byte corruptions, re-signed whenever the section table is still in
  // bounds, so the structural checks (not the checksum) must catch them. Afterwards a
  // model that validates must also serve without reading out of bounds.
  std::mt19937_64 rng(77);
  const std::vector<Bytes> models = {hand_model().write(), als_model()};
  int accepted = 0, rejected = 0;
  for (int trial = 0; trial < 6000; ++trial) {
    Bytes b = models[trial % models.size()];
    int changes = 1 + static_cast<int>(rng() % 4);
    for (int c = 0; c < changes; ++c) {
      size_t at = 4 + rng() % (b.size() - 4);
      switch (rng() % 4) {
        case 0: b[at] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: b[at] = static_cast<uint8_t>(rng()); break;
        case 2: b[at] = 0xFF; break;
        default: {
          // An interesting word at an 8-byte boundary.
          size_t w = (at & ~size_t(7));
          if (w + 8 > b.size()) break;
          const uint64_t words[] = {0, 1, ~0ull, 1ull << 62, 1ull << 63, 0x7FFFFFFFull, 0xFFFFFFF0ull,
                                    static_cast<uint64_t>(b.size())};
          write_at(b, w, words[rng() % 8]);
        }
      }
    }
    {
      ExactBuffer probe(b);
      try {
        ModelView::open(probe.data(), probe.size());
        resign(b);
      } catch (const recsys::Error&) {
      }
    }
    ExactBuffer buf(b);
    try {
      recsys::validate_model(buf.data(), buf.size());
      ++accepted;
      ModelView v = ModelView::open(buf.data(), buf.size());
      std::vector<recsys::Scored> out;
      if (v.n_users() > 0 && v.n_items() > 0 && v.user_factors()) {
        recsys::recommend_user(v, 0, 3, v.section(SectionTag::UserItems) != nullptr, out);
        recsys::score_pair(v, v.n_users() - 1, v.n_items() - 1);
      }
      recsys::recommend_popular(v, 3, out);
      if (v.n_items() > 0 && v.item_factors() && v.section(SectionTag::ItemNorms))
        recsys::similar_items(v, 0, 3, out);
      recsys::seen_items(v, v.n_users() - 1);
      int64_t iters;
      v.history(&iters);
      v.params_json();
    } catch (const recsys::Error& e) {
      ++rejected;
      EXPECT_EQ(e.kind(), ErrorKind::InvalidModel) << e.what();
    }
  }
  EXPECT_GT(accepted, 0);
  EXPECT_GT(rejected, 0);
}
