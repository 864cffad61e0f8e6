// Content model: tokenization (UTF-8, Indonesian, no stemming), TF-IDF values against a
// hand computation, numeric normalization, field weights, planted groups from metadata,
// neighbours against brute force (also with common features), recommend_from_items,
// the aggregate state (merge / serialize / deserialize), options and validation.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "json_options.h"
#include "content.h"
#include "model_bytes.h"
#include "model_format.h"

using namespace recsys;
using recsys_test::Model;
using recsys_test::write_model;

namespace {



// One feature row as the SQL layer would produce it from a jsonb value.
struct Feature {
  std::string item;
  std::string field;
  FeatureKind kind;
  std::string text;
  double number = 0;
};

std::unique_ptr<ContentState> state_of(const std::vector<Feature>& rows, size_t begin = 0, size_t end = SIZE_MAX) {
  auto st = std::make_unique<ContentState>(KeyKind::Text, 25);
  end = std::min(end, rows.size());
  for (size_t r = begin; r < end; ++r) {
    const Feature& f = rows[r];
    uint32_t i = st->items.intern_bytes(reinterpret_cast<const uint8_t*>(f.item.data()), f.item.size());
    if (f.field.empty()) continue;  // an item row without features
    if (f.kind == FeatureKind::Text) st->add_text(i, f.field, f.text);
    if (f.kind == FeatureKind::Token) st->add_token(i, f.field, f.text);
    if (f.kind == FeatureKind::Number) st->add_number(i, f.field, f.number);
  }
  return st;
}

Model build(ContentState& st, const std::string& json = "{}", int threads = 2) {
  CancelToken cancel;
  build_content_model(st, parse_content_options(json), threads, cancel, [](const std::string&) {});
  Model m = write_model(*st.result);
  validate_model(m.data(), m.size);
  return m;
}

Model build_rows(const std::vector<Feature>& rows, const std::string& json = "{}", int threads = 2) {
  auto st = state_of(rows);
  return build(*st, json, threads);
}

Feature text(const std::string& item, const std::string& field, const std::string& t) {
  return Feature{item, field, FeatureKind::Text, t, 0};
}
Feature token(const std::string& item, const std::string& field, const std::string& t) {
  return Feature{item, field, FeatureKind::Token, t, 0};
}
Feature number(const std::string& item, const std::string& field, double v) {
  return Feature{item, field, FeatureKind::Number, "", v};
}

int64_t item_index(const ModelView& m, const std::string& key) {
  return m.item_keys().find_bytes(reinterpret_cast<const uint8_t*>(key.data()), key.size());
}

// An item's stored vector as (feature, value).
std::vector<std::pair<int32_t, float>> vector_of(const ModelView& m, int64_t i) {
  const int64_t* ptr = m.section_as<int64_t>(SectionTag::ItemFeatureIndptr);
  const int32_t* idx = m.section_as<int32_t>(SectionTag::ItemFeatureIndices);
  const float* val = m.section_as<float>(SectionTag::ItemFeatureValues);
  std::vector<std::pair<int32_t, float>> out;
  for (int64_t k = ptr[i]; k < ptr[i + 1]; ++k) out.push_back({idx[k], val[k]});
  return out;
}

double dot(const std::vector<std::pair<int32_t, float>>& a, const std::vector<std::pair<int32_t, float>>& b) {
  std::map<int32_t, double> m;
  for (auto& e : a) m[e.first] = e.second;
  double s = 0;
  for (auto& e : b)
    if (m.count(e.first)) s += m[e.first] * e.second;
  return s;
}

}  // namespace

// ------------------------------------------------------------------ tokenizer

TEST(ContentTokenizer, AsciiAndIndonesian) {
  using V = std::vector<std::string>;
  EXPECT_EQ(tokenize_text("Bumbu Rendang: daging sapi, santan & cabai\xE2\x80\x94pedas!"),
            (V{"bumbu", "rendang", "daging", "sapi", "santan", "cabai", "pedas"}));
  EXPECT_EQ(tokenize_text("Buah-buahan segar (500g) dari Sumatera Utara."),
            (V{"buah", "buahan", "segar", "500g", "dari", "sumatera", "utara"}));
  // No stemming: makan / makanan / dimakan stay distinct; no stop words.
  EXPECT_EQ(tokenize_text("Makanan dan makan, dimakan"), (V{"makanan", "dan", "makan", "dimakan"}));
  EXPECT_EQ(tokenize_text("HELLO World_2024 a b 5 de"), (V{"hello", "world", "2024", "de"}));
  EXPECT_EQ(tokenize_text(""), V{});
  EXPECT_EQ(tokenize_text("  ,;  "), V{});
}

TEST(ContentTokenizer, Utf8) {
  using V = std::vector<std::string>;
  EXPECT_EQ(tokenize_text("Cr\xC3\xA8me Br\xC3\xBBl\xC3\xA9" "e \xC3\x89" "CLAIR na\xC3\xAFve"),
            (V{"cr\xC3\xA8me", "br\xC3\xBBl\xC3\xA9" "e", "\xC3\xA9" "clair", "na\xC3\xAFve"}));
  // Greek and Cyrillic capitals are lowercased.
  EXPECT_EQ(tokenize_text("\xCE\x9A\xCE\x91\xCE\xA6\xCE\x95 \xD0\x9C\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0"),
            (V{"\xCE\xBA\xCE\xB1\xCF\x86\xCE\xB5", "\xD0\xBC\xD0\xBE\xD1\x81\xD0\xBA\xD0\xB2\xD0\xB0"}));
  // CJK runs are one word; the ideographic full stop separates; a single multibyte
  // letter is kept.
  EXPECT_EQ(tokenize_text("\xE4\xB8\x9C\xE4\xBA\xAC\xE3\x80\x82\xE5\xA4\xA7\xE9\x98\xAA \xC3\xA9"),
            (V{"\xE4\xB8\x9C\xE4\xBA\xAC", "\xE5\xA4\xA7\xE9\x98\xAA", "\xC3\xA9"}));
  // Emoji, curly quotes, non-breaking space and the euro sign separate words.
  EXPECT_EQ(tokenize_text("pedas\xF0\x9F\x94\xA5" "mantap \xE2\x80\x9C" "enak\xE2\x80\x9D\xC2\xA0" "sekali \xE2\x82\xAC" "5"),
            (V{"pedas", "mantap", "enak", "sekali"}));
  // Invalid UTF-8 (a stray byte, an overlong form, a truncated sequence) separates.
  EXPECT_EQ(tokenize_text("abc\xFF" "def \xC0\xAFxy ab\xC3"), (V{"abc", "def", "xy", "ab"}));
}

// ------------------------------------------------------------------ TF-IDF

TEST(Content, TfidfMatchesHandComputation) {
  // N = 3 documents; df: apple 1, banana 2, cherry 2, durian 1.
  std::vector<Feature> rows = {text("A", "text", "apple banana apple"), text("B", "text", "Banana cherry"),
                               text("C", "text", "cherry durian")};
  const double idf1 = std::log(4.0 / 2.0) + 1, idf2 = std::log(4.0 / 3.0) + 1;
  for (bool sublinear : {true, false}) {
    SCOPED_TRACE(sublinear);
    Model m = build_rows(rows, sublinear ? "{}" : "{\"sublinear_tf\": false}");
    ModelView v = m.view();
    ASSERT_EQ(v.n_items(), 3);
    EXPECT_EQ(v.n_users(), 0);
    // Features in key order: apple, banana, cherry, durian.
    const double tf2 = sublinear ? 1 + std::log(2.0) : 2.0;
    const double a_apple = tf2 * idf1, a_banana = idf2, na = std::hypot(a_apple, a_banana);
    auto a = vector_of(v, item_index(v, "A"));
    ASSERT_EQ(a.size(), 2u);
    EXPECT_EQ(a[0].first, 0);
    EXPECT_EQ(a[1].first, 1);
    EXPECT_NEAR(a[0].second, a_apple / na, 1e-6);
    EXPECT_NEAR(a[1].second, a_banana / na, 1e-6);
    auto b = vector_of(v, item_index(v, "B"));
    ASSERT_EQ(b.size(), 2u);
    EXPECT_NEAR(b[0].second, std::sqrt(0.5), 1e-6);  // banana and cherry: same idf
    auto c = vector_of(v, item_index(v, "C"));
    const double nc = std::hypot(idf2, idf1);
    EXPECT_NEAR(c[0].second, idf2 / nc, 1e-6);
    EXPECT_NEAR(c[1].second, idf1 / nc, 1e-6);
    // Similarities: A-B through banana, B-C through cherry, A-C none.
    EXPECT_NEAR(content_similarity(v, item_index(v, "A"), item_index(v, "B")), a_banana / na * std::sqrt(0.5), 1e-6);
    EXPECT_NEAR(content_similarity(v, item_index(v, "B"), item_index(v, "C")), std::sqrt(0.5) * idf2 / nc, 1e-6);
    std::vector<Scored> out;
    ASSERT_EQ(content_similar_items(v, item_index(v, "B"), 10, out), 2);
    EXPECT_EQ(content_similar_items(v, item_index(v, "A"), 10, out), 1);
    EXPECT_EQ(out[0].index, item_index(v, "B"));
  }
}

TEST(Content, TokensAreSetsAndDuplicateRowsConcatenate) {
  // A's rows: two texts (counted together), a repeated tag (once), a number twice (mean).
  std::vector<Feature> rows = {text("A", "text", "kopi"),    text("A", "text", "kopi susu"),
                               token("A", "tags", "manis"),  token("A", "tags", "manis"),
                               token("A", "tags", "dingin"), number("A", "price", 10),
                               number("A", "price", 20),     text("B", "text", "teh susu"),
                               token("B", "tags", "manis"),  number("B", "price", 15),
                               number("C", "price", 45),     Feature{"D", "", FeatureKind::Token, "", 0}};
  Model m = build_rows(rows, "{\"weights\": {\"price\": 0, \"text\": 0}}");
  ModelView v = m.view();
  ASSERT_EQ(v.n_items(), 4);
  auto a = vector_of(v, item_index(v, "A"));
  ASSERT_EQ(a.size(), 2u);  // tags dingin, manis (price and text weigh 0)
  EXPECT_NEAR(a[0].second, std::sqrt(0.5), 1e-6);
  EXPECT_EQ(vector_of(v, item_index(v, "D")).size(), 0u);  // no features: empty vector
  EXPECT_NE(v.params_json().find("\"items_without_features\": 2"), std::string::npos) << v.params_json();
  // A-B: tags only: 1/sqrt(2).
  EXPECT_NEAR(content_similarity(v, item_index(v, "A"), item_index(v, "B")), std::sqrt(0.5), 1e-6);

  // With everything: A's price is the mean 15, equal to B's: the price cosine is 1.
  Model all = build_rows(rows, "{\"weights\": {\"text\": 0, \"tags\": 0}}");
  ModelView w = all.view();
  EXPECT_NEAR(content_similarity(w, item_index(w, "A"), item_index(w, "B")), 1.0, 1e-6);
}

TEST(Content, NumericNormalization) {
  // price 10..50: mean 30, population std sqrt(200); one item without a price and an
  // outlier that is clipped at z = 3.
  std::vector<Feature> rows;
  const double prices[] = {10, 20, 30, 40, 50};
  for (int i = 0; i < 5; ++i) rows.push_back(number("p" + std::to_string(i), "price", prices[i]));
  rows.push_back(token("none", "category", "x"));
  Model m = build_rows(rows);
  ModelView v = m.view();
  const double mean = 30, sd = std::sqrt(200.0);
  std::vector<double> theta;
  for (int i = 0; i < 5; ++i) {
    const double z = (prices[i] - mean) / sd;
    theta.push_back((z + 3) / 6 * M_PI);
    auto x = vector_of(v, item_index(v, "p" + std::to_string(i)));
    ASSERT_EQ(x.size(), 2u);
    EXPECT_NEAR(x[0].second, std::cos(theta[i]), 1e-6);
    EXPECT_NEAR(x[1].second, std::sin(theta[i]), 1e-6);
  }
  for (int a = 0; a < 5; ++a)
    for (int b = 0; b < 5; ++b)
      EXPECT_NEAR(content_similarity(v, item_index(v, "p" + std::to_string(a)), item_index(v, "p" + std::to_string(b))),
                  std::cos(theta[a] - theta[b]), 1e-6);
  // Nearest by price: p2's neighbours are p1 and p3 first (equal scores: key order).
  std::vector<Scored> out;
  content_similar_items(v, item_index(v, "p2"), 2, out);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].index, item_index(v, "p1"));
  EXPECT_EQ(out[1].index, item_index(v, "p3"));
  EXPECT_FLOAT_EQ(out[0].score, out[1].score);
  // p0 and p4 are 2.83 std apart: cosine cos(pi * 2.83 / 6) > 0 but small.
  EXPECT_NEAR(content_similarity(v, item_index(v, "p0"), item_index(v, "p4")), std::cos(M_PI * 4 / sd * 10 / 6), 1e-6);

  // An outlier: z clipped to 3, t = pi; a constant field gives z = 0 for everyone.
  std::vector<Feature> rows2;
  for (int i = 0; i < 20; ++i) rows2.push_back(number("q" + std::to_string(i), "price", 1.0));
  rows2.push_back(number("big", "price", 1e9));
  for (int i = 0; i < 3; ++i) rows2.push_back(number("c" + std::to_string(i), "weight", 7.0));
  Model m2 = build_rows(rows2);
  ModelView v2 = m2.view();
  auto big = vector_of(v2, item_index(v2, "big"));
  ASSERT_GE(big.size(), 1u);
  EXPECT_NEAR(big[0].second, -1.0, 1e-6);  // cos(pi)
  auto c0 = vector_of(v2, item_index(v2, "c0"));
  ASSERT_EQ(c0.size(), 2u);
  EXPECT_NEAR(c0[1].second, 1.0, 1e-6);  // sin(pi / 2)
  EXPECT_NEAR(content_similarity(v2, item_index(v2, "c0"), item_index(v2, "c2")), 1.0, 1e-6);
  // Non-finite numbers are data errors.
  ContentState st(KeyKind::Text, 25);
  uint32_t i = st.items.intern_bytes(reinterpret_cast<const uint8_t*>("x"), 1);
  try {
    st.add_number(i, "price", NAN);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::DataException);
  }
  EXPECT_THROW(st.add_number(i, "price", INFINITY), Error);
}

TEST(Content, GroupWeights) {
  // Two items in the same category with partly different text.
  std::vector<Feature> rows = {token("A", "category", "Kitchen"), text("A", "text", "pisau dapur tajam"),
                               token("B", "category", "Kitchen"), text("B", "text", "panci dapur besar"),
                               token("C", "category", "Garden"),  text("C", "text", "sekop tanah besar"),
                               token("D", "category", "Garden"),  text("D", "text", "pisau dapur tajam")};
  Model text_only = build_rows(rows, "{\"weights\": {\"category\": 0}}");
  Model cat_only = build_rows(rows, "{\"weights\": {\"text\": 0}}");
  ModelView vt = text_only.view(), vc = cat_only.view();
  const int64_t a = item_index(vt, "A"), b = item_index(vt, "B"), d = item_index(vt, "D");
  const double cos_text = content_similarity(vt, a, b);
  EXPECT_GT(cos_text, 0.0);
  EXPECT_LT(cos_text, 1.0);
  EXPECT_NEAR(content_similarity(vt, a, d), 1.0, 1e-6);  // same text
  EXPECT_NEAR(content_similarity(vc, a, b), 1.0, 1e-6);  // same category
  EXPECT_NEAR(content_similarity(vc, a, d), 0.0, 1e-6);
  // Both, category weight wc and text weight wt: (wc^2 + wt^2 cos_text) / (wc^2 + wt^2).
  for (double wc : {0.5, 1.0, 3.0}) {
    Model mm = build_rows(rows, "{\"weights\": {\"category\": " + std::to_string(wc) + "}}");
    ModelView v = mm.view();
    EXPECT_NEAR(content_similarity(v, a, b), (wc * wc + cos_text) / (wc * wc + 1), 1e-5) << wc;
    EXPECT_NEAR(content_similarity(v, a, d), 1 / (wc * wc + 1), 1e-5) << wc;
  }
  // So raising the category weight moves B ahead of D as A's nearest neighbour.
  std::vector<Scored> out;
  Model low = build_rows(rows, "{\"weights\": {\"category\": 0.3}}");
  content_similar_items(low.view(), a, 1, out);
  EXPECT_EQ(out[0].index, d);
  Model high = build_rows(rows, "{\"weights\": {\"category\": 3}}");
  content_similar_items(high.view(), a, 1, out);
  EXPECT_EQ(out[0].index, b);
}

namespace {

// A catalogue of `groups` groups: category, tags, Indonesian-like text and a price band
// per group, with noise.
std::vector<Feature> planted_catalogue(int groups, int per_group, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const std::vector<std::string> common = {"produk", "kualitas", "terbaik", "harga", "murah",
                                           "asli",   "baru",     "promo",   "gratis", "ongkir"};
  std::vector<std::vector<std::string>> words(groups), tags(groups);
  for (int g = 0; g < groups; ++g) {
    for (int w = 0; w < 12; ++w) words[g].push_back("kata" + std::to_string(g) + "x" + std::to_string(w));
    for (int t = 0; t < 5; ++t) tags[g].push_back("tag" + std::to_string(g) + "_" + std::to_string(t));
  }
  std::vector<Feature> rows;
  for (int g = 0; g < groups; ++g)
    for (int k = 0; k < per_group; ++k) {
      const std::string item = "item" + std::to_string(g * per_group + k);
      rows.push_back(token(item, "category", "Kategori " + std::to_string(g)));
      rows.push_back(token(item, "tags", tags[g][rng() % 5]));
      rows.push_back(token(item, "tags", tags[rng() % groups][rng() % 5]));  // noise
      std::string t;
      for (int w = 0; w < 10; ++w)
        t += (rng() % 10 < 6 ? words[g][rng() % 12] : common[rng() % common.size()]) + " ";
      rows.push_back(text(item, "text", t));
      rows.push_back(number(item, "price", 100.0 * (g + 1) + double(rng() % 50)));
    }
  std::shuffle(rows.begin(), rows.end(), rng);
  return rows;
}

}  // namespace

TEST(Content, PlantedGroupsFromMetadata) {
  const int groups = 6, per = 50;
  auto rows = planted_catalogue(groups, per, 3);
  Model m = build_rows(rows, "{\"weights\": {\"price\": 0.5}}");
  ModelView v = m.view();
  KeyDictionary keys = v.item_keys();
  auto group_of = [&](int64_t i) {
    uint64_t len;
    const uint8_t* p = keys.bytes_key(i, &len);
    return std::stoi(std::string(reinterpret_cast<const char*>(p) + 4, len - 4)) / per;
  };
  std::vector<Scored> out;
  int64_t same = 0, total = 0;
  for (int64_t i = 0; i < v.n_items(); ++i) {
    ASSERT_EQ(content_similar_items(v, i, 10, out), 10);
    int s = 0;
    for (auto& x : out) s += group_of(x.index) == group_of(i);
    EXPECT_GE(s, 8) << "item " << i;
    same += s;
    total += 10;
  }
  EXPECT_GE(double(same) / total, 0.9);
}

TEST(Content, NeighboursMatchBruteForce) {
  auto rows = planted_catalogue(4, 40, 9);
  for (const char* json : {"{}", "{\"neighbours\": 7, \"weights\": {\"tags\": 2}}", "{\"min_df\": 3}"}) {
    SCOPED_TRACE(json);
    Model m = build_rows(rows, json);
    ModelView v = m.view();
    const int64_t n = v.n_items();
    const int64_t keep = parse_content_options(json).neighbours;
    std::vector<std::vector<std::pair<int32_t, float>>> x(n);
    for (int64_t i = 0; i < n; ++i) x[i] = vector_of(v, i);
    std::vector<Scored> out;
    for (int64_t a = 0; a < n; ++a) {
      std::vector<std::pair<double, int64_t>> want;
      for (int64_t b = 0; b < n; ++b)
        if (b != a) {
          double s = dot(x[a], x[b]);
          if (s > 1e-6) want.push_back({-s, b});
        }
      std::sort(want.begin(), want.end());
      content_similar_items(v, a, 1 << 30, out);
      ASSERT_EQ(static_cast<int64_t>(out.size()), std::min<int64_t>(keep, want.size()));
      for (size_t q = 0; q < out.size(); ++q) {
        EXPECT_NEAR(out[q].score, dot(x[a], x[out[q].index]), 1e-5);
        EXPECT_NEAR(out[q].score, -want[q].first, 1e-5);
      }
    }
  }
}

TEST(Content, CommonFeaturesStillCountInSimilarity) {
  // 2,400 items: a price for every item and one of 3 categories (800 items each) are
  // common (present in more than max(2000, 0.1 N) items: only the price); candidates come
  // from the categories and tags, and each candidate's score includes the price.
  std::mt19937_64 rng(5);
  std::vector<Feature> rows;
  const int n = 2400;
  for (int i = 0; i < n; ++i) {
    const std::string item = "i" + std::to_string(i);
    rows.push_back(token(item, "category", "c" + std::to_string(i % 3)));
    rows.push_back(token(item, "tags", "t" + std::to_string(rng() % 200)));
    rows.push_back(number(item, "price", double(rng() % 1000)));
  }
  Model m = build_rows(rows, "{\"neighbours\": 5}");
  ModelView v = m.view();
  EXPECT_NE(v.params_json().find("\"common_features\": 2"), std::string::npos) << v.params_json();
  Model exact = build_rows(rows, "{\"neighbours\": 5, \"candidate_max_df\": 1}");
  EXPECT_NE(exact.view().params_json().find("\"common_features\": 0"), std::string::npos);
  std::vector<Scored> a, b;
  int64_t differ = 0;
  for (int64_t i = 0; i < v.n_items(); i += 7) {
    content_similar_items(v, i, 5, a);
    content_similar_items(exact.view(), i, 5, b);
    ASSERT_EQ(a.size(), 5u);
    for (auto& s : a) EXPECT_NEAR(s.score, content_similarity(v, i, s.index), 1e-5);
    // Every item shares its category with 799 others, so the candidates include the
    // exact answer: the lists agree (up to the order of ties, whose float sums may be
    // rounded differently).
    for (size_t q = 0; q < a.size(); ++q) {
      EXPECT_NEAR(a[q].score, b[q].score, 1e-5);
      differ += std::fabs(a[q].score - b[q].score) > 1e-5;
    }
  }
  EXPECT_EQ(differ, 0);
}

TEST(Content, RecommendFromItems) {
  auto rows = planted_catalogue(4, 30, 17);
  Model m = build_rows(rows);
  ModelView v = m.view();
  const int64_t n = v.n_items();
  std::vector<std::vector<std::pair<int32_t, float>>> x(n);
  for (int64_t i = 0; i < n; ++i) x[i] = vector_of(v, i);
  std::vector<int64_t> given = {3, 40, 3};
  std::vector<float> weights = {1.0f, 2.0f, 0.5f};
  std::vector<Scored> out;
  content_recommend_from_items(v, given, weights, 20, true, out);
  ASSERT_EQ(out.size(), 20u);
  // Brute force: cosine with the weighted profile.
  std::map<int32_t, double> profile;
  for (size_t p = 0; p < given.size(); ++p)
    for (auto& e : x[given[p]]) profile[e.first] += weights[p] * e.second;
  double pn = 0;
  for (auto& e : profile) pn += e.second * e.second;
  pn = std::sqrt(pn);
  std::vector<std::pair<double, int64_t>> want;
  for (int64_t i = 0; i < n; ++i) {
    if (i == 3 || i == 40) continue;
    double s = 0;
    for (auto& e : x[i])
      if (profile.count(e.first)) s += profile[e.first] * e.second;
    if (s / pn > 0) want.push_back({-s / pn, i});
  }
  std::sort(want.begin(), want.end());
  for (size_t q = 0; q < out.size(); ++q) {
    EXPECT_NE(out[q].index, 3);
    EXPECT_NE(out[q].index, 40);
    EXPECT_NEAR(out[q].score, -want[q].first, 1e-5);
  }
  // Without exclusion a single given item is its own best match (cosine 1).
  content_recommend_from_items(v, {7}, {}, 3, false, out);
  ASSERT_FALSE(out.empty());
  EXPECT_EQ(out[0].index, 7);
  EXPECT_NEAR(out[0].score, 1.0, 1e-5);
  EXPECT_EQ(content_recommend_from_items(v, {}, {}, 5, true, out), 0);
  EXPECT_THROW(content_recommend_from_items(v, {n}, {}, 5, true, out), Error);
  EXPECT_THROW(content_recommend_from_items(v, {1, 2}, {1.0f}, 5, true, out), Error);
}

TEST(Content, StateMergeSerializeAndPlanShape) {
  auto rows = planted_catalogue(3, 30, 21);
  auto single = state_of(rows);
  const uint64_t fp = build(*single).view().header->fingerprint;
  // Three partial states combined in another order, through serialize / deserialize.
  const size_t third = rows.size() / 3;
  auto s1 = state_of(rows, 0, third), s2 = state_of(rows, third, 2 * third), s3 = state_of(rows, 2 * third);
  s2->options_bytes = "{\"neighbours\": 100}";
  auto round_trip = [](const ContentState& s) {
    std::vector<uint8_t> bytes(s.serialized_size());
    s.serialize(bytes.data());
    return ContentState::deserialize(bytes.data(), bytes.size());
  };
  auto a = round_trip(*s3);
  a->merge(*round_trip(*s1));
  a->merge(*s2);
  EXPECT_EQ(a->options_bytes, "{\"neighbours\": 100}");
  EXPECT_EQ(a->features(), single->features());
  auto merged = round_trip(*a);
  EXPECT_EQ(build(*merged).view().header->fingerprint, fp);
  // Thread count does not matter either.
  auto again = state_of(rows);
  EXPECT_EQ(build(*again, "{}", 1).view().header->fingerprint, fp);
  // Malformed state bytes.
  std::vector<uint8_t> bytes(single->serialized_size());
  single->serialize(bytes.data());
  EXPECT_THROW(ContentState::deserialize(bytes.data(), bytes.size() - 1), Error);
  auto bad = bytes;
  bad[0] ^= 1;
  EXPECT_THROW(ContentState::deserialize(bad.data(), bad.size()), Error);
  EXPECT_THROW(ContentState::deserialize(bytes.data(), 10), Error);
}

TEST(Content, StringsFollowTextFields) {
  // "description" is text by default, "brand" a token; text_fields can change both.
  auto rows_of = [](ContentState& st) {
    auto add = [&](const char* item, const char* field, const char* value) {
      uint32_t i = st.items.intern_bytes(reinterpret_cast<const uint8_t*>(item), std::strlen(item));
      st.add_string(i, field, value);
    };
    add("A", "description", "Kopi Gayo Aceh");
    add("A", "brand", "Kopi Kita");
    add("B", "description", "Kopi Toraja");
    add("B", "brand", "Kopi Kita");
    add("C", "description", "Teh Aceh");
    add("C", "brand", "Teh Kita");
  };
  ContentState s1(KeyKind::Text, 25);
  rows_of(s1);
  Model m1 = build(s1, "{\"weights\": {\"brand\": 0}}");
  ModelView v1 = m1.view();
  EXPECT_NE(v1.params_json().find("\"description\": {\"kinds\": [\"text\"]"), std::string::npos) << v1.params_json();
  // Words: A-B share "kopi", A-C share "aceh".
  EXPECT_GT(content_similarity(v1, 0, 1), 0.0f);
  EXPECT_GT(content_similarity(v1, 0, 2), 0.0f);
  ContentState s2(KeyKind::Text, 25);
  rows_of(s2);
  Model m2 = build(s2, "{\"weights\": {\"description\": 0}}");
  ModelView v2 = m2.view();
  EXPECT_NE(v2.params_json().find("\"brand\": {\"kinds\": [\"token\"]"), std::string::npos);
  EXPECT_NEAR(content_similarity(v2, 0, 1), 1.0, 1e-6);  // same brand token
  EXPECT_NEAR(content_similarity(v2, 0, 2), 0.0, 1e-6);
  // text_fields = ["brand"]: now descriptions are whole tokens and brands are text.
  ContentState s3(KeyKind::Text, 25);
  rows_of(s3);
  Model m3 = build(s3, "{\"text_fields\": [\"brand\"], \"weights\": {\"description\": 0}}");
  ModelView v3 = m3.view();
  EXPECT_GT(content_similarity(v3, 0, 2), 0.0f);  // "kita"
  EXPECT_LT(content_similarity(v3, 0, 2), 1.0f);
  ContentState s4(KeyKind::Text, 25);
  rows_of(s4);
  Model m4 = build(s4, "{\"text_fields\": \"brand\", \"weights\": {\"brand\": 0}}");
  EXPECT_NEAR(content_similarity(m4.view(), 0, 1), 0.0, 1e-6);  // distinct description tokens
  // Kinds survive serialization.
  std::vector<uint8_t> bytes(s1.serialized_size());
  ContentState s5(KeyKind::Text, 25);
  rows_of(s5);
  s5.serialize(bytes.data());
  auto back = ContentState::deserialize(bytes.data(), bytes.size());
  EXPECT_EQ(build(*back, "{\"weights\": {\"brand\": 0}}").view().header->fingerprint, v1.header->fingerprint);
}

TEST(Content, Options) {
  ContentOptions d = parse_content_options("");
  EXPECT_EQ(d.neighbours, 100);
  EXPECT_TRUE(d.sublinear_tf);
  EXPECT_EQ(d.min_df, 1);
  EXPECT_DOUBLE_EQ(d.candidate_max_df, 0.1);
  EXPECT_DOUBLE_EQ(d.weight_of("anything"), 1.0);
  ContentOptions o = parse_content_options(
      "{\"neighbours\": 20, \"weights\": {\"category\": 1, \"text\": 1.5, \"price\": 0.5, \"na\\u00efve\": 2}, "
      "\"min_df\": 2}");
  EXPECT_EQ(o.neighbours, 20);
  EXPECT_EQ(o.min_df, 2);
  EXPECT_DOUBLE_EQ(o.weight_of("text"), 1.5);
  EXPECT_DOUBLE_EQ(o.weight_of("price"), 0.5);
  EXPECT_DOUBLE_EQ(o.weight_of("na\xC3\xAFve"), 2.0);
  EXPECT_DOUBLE_EQ(o.weight_of("tags"), 1.0);
  EXPECT_EQ(parse_content_options("{\"weights\": null}").weights.size(), 0u);
  EXPECT_TRUE(d.is_text_field("description"));
  EXPECT_FALSE(d.is_text_field("category"));
  ContentOptions t = parse_content_options("{\"text_fields\": [\"body\", \"summary\"], \"neighbours\": 5}");
  EXPECT_TRUE(t.is_text_field("summary"));
  EXPECT_FALSE(t.is_text_field("text"));
  EXPECT_EQ(t.neighbours, 5);
  EXPECT_EQ(parse_content_options("{\"text_fields\": []}").text_fields.size(), 0u);
  auto bad = [](const std::string& json) {
    try {
      parse_content_options(json);
      return std::string("accepted");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidParameter);
      return std::string(e.what());
    }
  };
  EXPECT_NE(bad("{\"weights\": {\"price\": -1}}").find("price"), std::string::npos);
  EXPECT_NE(bad("{\"weights\": {\"price\": \"high\"}}").find("price"), std::string::npos);
  EXPECT_NE(bad("{\"weights\": [1, 2]}").find("weights"), std::string::npos);
  EXPECT_NE(bad("{\"weights\": {\"a\": 1, \"a\": 2}}").find("twice"), std::string::npos);
  EXPECT_NE(bad("{\"neighbours\": 0}").find("neighbours"), std::string::npos);
  EXPECT_NE(bad("{\"candidate_max_df\": 2}").find("candidate_max_df"), std::string::npos);
  EXPECT_NE(bad("{\"weight\": {\"a\": 1}}").find("weight"), std::string::npos);
  EXPECT_NE(bad("{\"stemming\": true}").find("unknown option"), std::string::npos);
  EXPECT_NE(bad("{\"text_fields\": [1]}").find("text_fields"), std::string::npos);
  EXPECT_NE(bad("{\"text_fields\": {\"a\": 1}}").find("text_fields"), std::string::npos);
}

TEST(Content, ModelValidation) {
  auto rows = planted_catalogue(3, 20, 2);
  Model m = build_rows(rows);
  const std::vector<uint8_t> good = m.bytes();
  ModelView v = m.view();
  EXPECT_EQ(v.kind(), ModelKind::Content);
  EXPECT_EQ(v.n_users(), 0);
  EXPECT_EQ(v.user_keys().size(), 0);
  validate_model(m.data(), m.size);

  auto check = [](std::vector<uint8_t> b, bool resign) -> std::string {
    if (resign) {
      uint64_t fp = compute_fingerprint(b.data(), b.size());
      std::memcpy(b.data() + offsetof(ModelHeader, fingerprint), &fp, 8);
      const uint64_t cs = compute_checksum(b.data(), b.size());
      const uint32_t lo = static_cast<uint32_t>(cs), hi = static_cast<uint32_t>(cs >> 32);
      std::memcpy(b.data() + offsetof(ModelHeader, checksum_lo), &lo, 4);
      std::memcpy(b.data() + offsetof(ModelHeader, checksum_hi), &hi, 4);
    }
    Model c;
    c.size = b.size();
    c.words.assign((b.size() + 7) / 8, 0);
    std::memcpy(c.data(), b.data(), b.size());
    try {
      validate_model(c.data(), c.size);
      return "";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
      return e.what();
    }
  };
  auto entry = [&](SectionTag tag) {
    for (uint32_t i = 0; i < v.header->n_sections; ++i) {
      SectionEntry e;
      std::memcpy(&e, good.data() + sizeof(ModelHeader) + i * sizeof(SectionEntry), sizeof e);
      if (e.tag == static_cast<uint32_t>(tag)) return e;
    }
    ADD_FAILURE();
    return SectionEntry{};
  };
  std::mt19937_64 rng(1);
  for (int t = 0; t < 100; ++t) {
    auto b = good;
    b[4 + rng() % (b.size() - 4)] ^= 0x10;
    EXPECT_NE(check(b, false), "");
  }
  {
    // The inverted index no longer matches the vectors.
    auto b = good;
    const SectionEntry e = entry(SectionTag::FeatureItemValues);
    float x;
    std::memcpy(&x, b.data() + e.offset, 4);
    x *= 1.5f;
    std::memcpy(b.data() + e.offset, &x, 4);
    EXPECT_NE(check(b, true).find("does not match"), std::string::npos);
  }
  {
    // A feature index out of range.
    auto b = good;
    const SectionEntry e = entry(SectionTag::ItemFeatureIndices);
    int32_t big = 1 << 30;
    std::memcpy(b.data() + e.offset, &big, 4);
    EXPECT_NE(check(b, true).find("out of range"), std::string::npos);
  }
  {
    // Two features of an item swapped: not ascending.
    auto b = good;
    const SectionEntry e = entry(SectionTag::ItemFeatureIndices);
    int32_t f0, f1;
    std::memcpy(&f0, b.data() + e.offset, 4);
    std::memcpy(&f1, b.data() + e.offset + 4, 4);
    std::memcpy(b.data() + e.offset, &f1, 4);
    std::memcpy(b.data() + e.offset + 4, &f0, 4);
    EXPECT_NE(check(b, true).find("ascending"), std::string::npos);
  }
  {
    auto b = good;
    const SectionEntry e = entry(SectionTag::ItemFeatureValues);
    float inf = INFINITY;
    std::memcpy(b.data() + e.offset, &inf, 4);
    EXPECT_NE(check(b, true).find("non-finite"), std::string::npos);
  }
}

TEST(Content, EmptyAndFeaturelessCatalogues) {
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    ContentState st(kind, 0);
    CancelToken cancel;
    build_content_model(st, parse_content_options("{}"), 1, cancel, [](const std::string&) {});
    Model m = write_model(*st.result);
    validate_model(m.data(), m.size);
    EXPECT_EQ(m.view().n_items(), 0);
    EXPECT_EQ(m.view().user_keys().kind(), kind);
  }
  // Items without any usable feature (only separators in the text).
  Model m = build_rows({text("a", "text", " ,;. "), text("b", "text", "!!")});
  std::vector<Scored> out;
  EXPECT_EQ(content_similar_items(m.view(), 0, 5, out), 0);
  EXPECT_EQ(content_recommend_from_items(m.view(), {0}, {}, 5, false, out), 0);
}
