// Writes the seed corpora of the fuzz harnesses into a directory:
//   DIR/model/        valid models of every kind (ALS, MF, baseline, popularity, item_knn,
//                     content, kmeans), with int, text and uuid keys, with and without
//                     seen items, trained here by the real training code
//   DIR/model_text/   the same models in their text form ("recsys:" + base64)
//   DIR/options/      valid and invalid options for every reader (byte 0 picks it), in
//                     option_bytes.h's form, written here as JSON literals
//   DIR/content/      feature rows and serialized aggregate states (fuzz_content's format)
// Usage: recsys_fuzz_corpus DIR   (the directories are created; existing files replaced)
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "../core/json_options.h"
#include "content.h"
#include "kmeans.h"
#include "knn.h"
#include "mf.h"
#include "model_format.h"
#include "option_bytes.h"
#include "popularity.h"
#include "training.h"

using namespace recsys;

namespace {

std::string g_dir;
int g_files = 0;

void write_file(const std::string& sub, const std::string& name, const void* data, size_t n) {
  const std::string path = g_dir + "/" + sub + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f || (n && std::fwrite(data, 1, n, f) != n) || std::fclose(f) != 0) {
    std::fprintf(stderr, "cannot write %s\n", path.c_str());
    std::exit(1);
  }
  ++g_files;
}

// Writes a built model (its varlena word left 0: the harness's controls) in both forms.
void write_model(const std::string& name, const ModelBuilder& b) {
  const uint64_t n = b.total_size();
  std::vector<uint64_t> words((n + 7) / 8, 0);
  uint8_t* bytes = reinterpret_cast<uint8_t*>(words.data());
  b.write(bytes);
  validate_model(bytes, n);
  write_file("model", name, bytes, n);
  std::string text(model_text_size(n) + 1, '\0');
  model_to_text(bytes, n, &text[0]);
  write_file("model_text", name, text.data(), text.size() - 1);
}

void intern_key(KeyInterner& keys, KeyKind kind, int64_t k, uint32_t* id) {
  if (kind == KeyKind::Int) {
    *id = keys.intern_int(k * 7 - 20);
  } else if (kind == KeyKind::Text) {
    const std::string s = "key-" + std::to_string(k);
    *id = keys.intern_bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  } else {
    uint8_t u[16] = {0};
    for (int b = 0; b < 8; ++b) u[15 - b] = static_cast<uint8_t>(k >> (8 * b));
    u[0] = 0xA5;
    *id = keys.intern_bytes(u, 16);
  }
}

uint32_t oid_of(KeyKind kind) { return kind == KeyKind::Int ? 20 : kind == KeyKind::Text ? 25 : 2950; }

// users x items interactions, mostly within one of 3 groups; ratings 1..5.
std::unique_ptr<TrainingState> state(KeyKind uk, KeyKind ik, int users, int items, uint64_t seed) {
  auto st = std::make_unique<TrainingState>(uk, oid_of(uk), ik, oid_of(ik));
  std::mt19937_64 rng(seed);
  for (int u = 0; u < users; ++u) {
    for (int r = 0; r < 6; ++r) {
      const int g = u % 3;
      const int it = (rng() % 4 != 0) ? (g * items / 3 + static_cast<int>(rng() % (items / 3))) % items
                                      : static_cast<int>(rng() % items);
      uint32_t ui, ii;
      intern_key(st->users, uk, u, &ui);
      intern_key(st->items, ik, it, &ii);
      st->add(ui, ii, 1.0 + static_cast<double>(rng() % 5));
    }
  }
  return st;
}

void models() {
  const auto log = [](const std::string&) {};
  CancelToken never;
  const KeyKind kinds[3] = {KeyKind::Int, KeyKind::Text, KeyKind::Uuid};
  int n = 0;
  for (KeyKind uk : kinds)
    for (bool seen : {true, false}) {
      const KeyKind ik = kinds[(n++) % 3];
      const std::string tag = std::string(key_kind_name(uk)) + "_" + key_kind_name(ik) + (seen ? "" : "_noseen");
      const std::string store = seen ? "true" : "false";
      {
        auto st = state(uk, ik, 12, 9, 1);
        build_als_model(*st, parse_als_options("{\"factors\": 3, \"iterations\": 2, \"store_seen\": " + store + "}"),
                        1, never, log);
        write_model("als_" + tag, *st->result);
      }
      {
        auto st = state(uk, ik, 10, 12, 2);
        build_mf_model(*st, parse_mf_options("{\"factors\": 9, \"epochs\": 2, \"store_seen\": " + store + "}"), 1,
                       never, log);
        write_model("mf_" + tag, *st->result);
      }
      {
        auto st = state(uk, ik, 8, 6, 3);
        build_baseline_model(*st, parse_baseline_options("{\"epochs\": 2, \"store_seen\": " + store + "}"), 1,
                             never, log);
        write_model("baseline_" + tag, *st->result);
      }
      {
        auto st = state(uk, ik, 7, 6, 4);
        build_popularity_model(*st, parse_popularity_options("{\"store_seen\": " + store + "}"), never, log);
        write_model("popularity_" + tag, *st->result);
      }
      {
        auto st = state(uk, ik, 15, 9, 5);
        build_item_knn_model(*st, parse_item_knn_options("{\"neighbours\": 4, \"store_seen\": " + store + "}"), 1,
                             never, log);
        write_model("item_knn_" + tag, *st->result);
      }
    }
  for (KeyKind ik : kinds) {
    ContentState st(ik, oid_of(ik));
    const char* cats[3] = {"tea", "coffee", "cocoa"};
    for (int i = 0; i < 7; ++i) {
      uint32_t id;
      intern_key(st.items, ik, i, &id);
      st.add_token(id, "category", cats[i % 3]);
      st.add_string(id, "title", std::string("Green Tea no ") + std::to_string(i % 4) + " ÉTÉ");
      st.add_number(id, "price", 1.5 * i);
    }
    build_content_model(st, parse_content_options("{\"neighbours\": 3}"), 1, never, log);
    write_model(std::string("content_") + key_kind_name(ik), *st.result);
  }
  for (bool standardize : {false, true}) {
    KMeansState st;
    for (int i = 0; i < 12; ++i) {
      const float x[3] = {static_cast<float>(i % 3) * 10, static_cast<float>(i % 2), static_cast<float>(i) / 4};
      st.add(x, 3);
    }
    build_kmeans_model(st, parse_kmeans_options(std::string("{\"k\": 3, \"standardize\": ") +
                                                (standardize ? "true" : "false") + "}"),
                       1, never, log);
    write_model(standardize ? "kmeans_standardized" : "kmeans", *st.result);
  }
}

void options() {
  // Byte 0 picks the reader (fuzz_options.cpp: als, mf, baseline, popularity, item_knn,
  // content, kmeans, generic).
  const std::vector<std::vector<std::string>> texts = {
      {"{}", "{\"factors\": 8, \"iterations\": 5, \"regularization\": 0.1, \"alpha\": 40}", "{\"factors\": -1}",
       "{\"seed\": 1e400}", "null", ""},
      {"{\"factors\": 4, \"epochs\": 3, \"lr_schedule\": \"adagrad\", \"holdout_fraction\": 0.2}",
       "{\"lr_schedule\": \"sometimes\"}", "{\"learning_rate\": \"fast\"}"},
      {"{\"epochs\": 3, \"reg_user\": 10, \"reg_item\": 5}", "{\"epochs\": 3, \"epochs\": 4}"},
      {"{\"measure\": \"weight\", \"store_seen\": false}", "{\"measure\": 1}"},
      {"{\"similarity\": \"bm25\", \"k1\": 1.5, \"b\": 0.5, \"neighbours\": 20}", "{\"similarity\": \"jaccard\"}",
       "{\"neighbours\": 0}"},
      {"{\"weights\": {\"category\": 1, \"text\": 0.5}, \"text_fields\": [\"title\", \"description\"], "
       "\"neighbours\": 10}",
       "{\"text_fields\": \"title\", \"min_df\": 2}", "{\"weights\": {\"a\": -1}}",
       "{\"weights\": {\"a\": \"b\"}}", "{\"text_fields\": [1, 2]}"},
      {"{\"k\": 3, \"n_init\": 2, \"standardize\": true, \"tol\": 0.001}", "{\"n_init\": 2}", "{\"k\": 2.5}"},
      {"{\"k\": 5, \"threshold\": 0.25, \"exclude_seen\": false, \"measure\": \"users\"}",
       "{\"k\": 1, \"other\": null}", "{\"measure\": \"\\u0075sers\\n\"}", "{\"k\": 1, \"k\": 2}",
       "{\"measure\": [\"users\"]}", "{\"threshold\": 1e400}"},
  };
  for (size_t r = 0; r < texts.size(); ++r)
    for (size_t j = 0; j < texts[r].size(); ++j) {
      const std::string bytes =
          std::string(1, static_cast<char>(r)) + recsys_fuzz::encode_options(test_support::json_options(texts[r][j]));
      write_file("options", "r" + std::to_string(r) + "_" + std::to_string(j), bytes.data(), bytes.size());
    }
}

// Feature rows in fuzz_content's format.
void content() {
  auto row = [](std::string& s, int item, int kind, int field, const std::string& value) {
    s += static_cast<char>(item);
    s += static_cast<char>(kind);
    s += static_cast<char>(field);
    s += static_cast<char>(value.size());
    s += value;
  };
  for (int mode = 1; mode <= 3; ++mode) {
    std::string s(1, static_cast<char>(mode));
    for (int i = 0; i < 6; ++i) {
      row(s, i, 0, 0, "Fresh green tea leaves, " + std::to_string(i) + " grams: Ünïcödé text");
      row(s, i, 1, 2, i % 2 ? "tea" : "coffee");
      row(s, i, 2, 4, std::to_string(1.25 * i));
      row(s, i, 3, 1, "Title " + std::to_string(i % 3));
      row(s, i, 3, 5, "acme");
    }
    write_file("content", "rows_" + std::to_string(mode), s.data(), s.size());
    std::string o = s;
    o += static_cast<char>(0xFF);
    o += recsys_fuzz::encode_options(test_support::json_options(
        "{\"weights\": {\"category\": 2, \"price\": 0.5}, \"text_fields\": [\"description\"], \"min_df\": 1}"));
    write_file("content", "rows_options_" + std::to_string(mode), o.data(), o.size());
  }
  // Serialized aggregate states (mode 0).
  for (KeyKind ik : {KeyKind::Int, KeyKind::Text}) {
    ContentState st(ik, oid_of(ik));
    st.options_bytes = "opaque to the core";
    for (int i = 0; i < 5; ++i) {
      uint32_t id;
      intern_key(st.items, ik, i, &id);
      st.add_text(id, "description", "a text about item " + std::to_string(i % 2));
      st.add_token(id, "tags", "t" + std::to_string(i % 3));
      st.add_number(id, "price", i);
    }
    std::vector<uint8_t> bytes(1 + st.serialized_size(), 0);
    st.serialize(bytes.data() + 1);
    write_file("content", std::string("state_") + key_kind_name(ik), bytes.data(), bytes.size());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  g_dir = argv[1];
  for (const char* sub : {"", "/model", "/model_text", "/options", "/content"}) {
    const std::string d = g_dir + sub;
    if (mkdir(d.c_str(), 0755) != 0 && errno != EEXIST) {
      std::perror(d.c_str());
      return 1;
    }
  }
  try {
    models();
    options();
    content();
  } catch (const Error& e) {
    std::fprintf(stderr, "corpus: %s\n", e.what());
    return 1;
  }
  std::printf("wrote %d seed files into %s\n", g_files, g_dir.c_str());
  return 0;
}
