// Content-based model: item similarity from product metadata alone (no interactions),
// for cold-start items, "similar products" on a product page and recommendations from
// a basket or a browsing session.
//
// Input: per item, a list of features, each (field name, kind, value):
//   * token  : a categorical value or a tag ("category" = "Kitchen", "tags" = "vegan");
//              feature "field=value" with weight 1 (a set: a token repeated for the same
//              item counts once); the value is used as given (case-sensitive, no trimming).
//   * text   : free text, tokenized by tokenize_text() (below); feature "field:word"
//              with TF-IDF weight (1 + ln count) * idf, idf = ln((1 + N) / (1 + df)) + 1
//              (scikit-learn's smooth idf, sublinear tf), N = number of items with at
//              least one word in that field, df = number of those items containing the word.
//              sublinear_tf = false uses the raw count instead of 1 + ln count.
//   * number : a numeric attribute (price, weight, rating). Over the items that have the
//              field it is z-scored, z = (x - mean) / std (population std; z = 0 when
//              std = 0), clipped to [-3, 3] and encoded as the unit 2-vector
//              (cos t, sin t), t = (z + 3) / 6 * pi: two items' similarity in that field
//              is cos(t_a - t_b) = cos(pi * dz / 6), 1 for equal values, 0.87 one std
//              apart, 0.5 two, 0 three, -1 at opposite extremes. (A plain z-score would
//              lose its magnitude in the field's L2 normalization below.)
// The SQL layer maps a jsonb row onto these: a string value goes to add_string (free text
// when its field is in the option "text_fields", default ["text", "description",
// "title", "name"], else a token), each string of an array to add_token, a number to
// add_number.
//
// Every field is a group: its features are L2-normalized, multiplied by the field's
// weight (option "weights": {"field": w}, default 1; 0 drops the field), and the whole
// item vector is L2-normalized; similarity is the cosine. For two items having the same
// fields, it is the average of the per-field cosines weighted by w^2.
//
// Rows for the same item are concatenated: tokens form one set, texts are counted
// together as one document, and several numbers for one field are averaged.
// Items present without any feature have an empty vector: no neighbours, never
// recommended.
//
// Neighbours: the best `neighbours` items of each item (cosine > 0, score desc, index
// asc), by sparse accumulation over an inverted index. Features present in more than
// max(2000, candidate_max_df x N) items (numeric fields in large catalogues, very common
// words or categories) do not generate candidates: a pair is found only through a
// less common shared feature; its similarity is then exact, common features included.
// Catalogues of up to 2,000 items, or candidate_max_df = 1, are exact.
//
// Tokenization: text is UTF-8; a word is a maximal run of ASCII letters and digits and
// non-ASCII letters (every multibyte character except the Unicode punctuation and
// symbol blocks listed in content.cpp: Latin-1 punctuation, General Punctuation,
// currency, CJK and full-width punctuation, ...). ASCII is lowercased, and so are the
// Latin-1, Latin Extended-A, Greek and Cyrillic capitals. No stemming and no stop words
// (Indonesian "makanan" and "makan" stay distinct, "buah-buahan" gives "buah" and
// "buahan"); one-character ASCII words ("a", "5") are dropped; invalid UTF-8 bytes
// separate words. Scripts without spaces (CJK, Thai) give one word per run.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "keys.h"
#include "knn.h"
#include "model_format.h"
#include "options.h"
#include "parallel.h"
#include "sparse.h"
#include "topk.h"

namespace recsys {

// String: a JSON string value whose treatment is decided at training time: free text if
// its field is one of the option "text_fields", else a token.
enum class FeatureKind : uint8_t { Text = 1, Token = 2, Number = 3, String = 4 };

// Words of a UTF-8 text as described above, in order (duplicates kept).
std::vector<std::string> tokenize_text(const char* text, uint64_t length);
inline std::vector<std::string> tokenize_text(const std::string& s) { return tokenize_text(s.data(), s.size()); }

// The state of the train_content aggregate: interned item keys, field names and the
// feature rows, with combine / serialize for parallel aggregation.
class ContentState {
 public:
  ContentState(KeyKind item_kind, uint32_t item_type_oid);

  KeyInterner items;  // the SQL layer interns each row's item here (also items without features)
  uint32_t item_type_oid;
  // The options of the first row that had any, as the SQL layer encoded them (opaque to
  // the core; see TrainingState::options_bytes).
  std::string options_bytes;
  uint64_t rows_skipped = 0;  // rows with a NULL item

  // Feature rows for an interned item. Field names and values are bytes (UTF-8 text).
  // add_number throws DataException for NaN or infinite values.
  void add_text(uint32_t item, const std::string& field, const char* text, uint64_t length);
  void add_text(uint32_t item, const std::string& field, const std::string& text) {
    add_text(item, field, text.data(), text.size());
  }
  void add_token(uint32_t item, const std::string& field, const std::string& value);
  void add_number(uint32_t item, const std::string& field, double value);
  // A string whose kind follows "text_fields" (what the SQL layer calls for a jsonb
  // string; array elements are tokens, numbers are numbers).
  void add_string(uint32_t item, const std::string& field, const std::string& value);

  uint64_t features() const { return records_.size(); }
  // Appends another state's items and features (the combine step).
  void merge(const ContentState& other);

  uint64_t serialized_size() const;
  void serialize(uint8_t* dst) const;  // exactly serialized_size() bytes
  // Throws InvalidModel for malformed bytes.
  static std::unique_ptr<ContentState> deserialize(const uint8_t* src, uint64_t size);

  struct Record {
    uint32_t item;
    uint32_t field;
    uint32_t kind;    // FeatureKind
    uint32_t length;  // text / token bytes
    uint64_t offset;  // into the byte blob
    double number;
  };
  const std::vector<Record>& records() const { return records_; }
  const KeyInterner& fields() const { return fields_; }
  // Bytes of a text or token record.
  const char* record_bytes(const Record& r) const { return blob_.data() + r.offset; }

  // Set by finalization (as TrainingState).
  std::unique_ptr<BackgroundJob> job;
  std::unique_ptr<ModelBuilder> result;
  bool finalized = false;

 private:
  void add(uint32_t item, const std::string& field, FeatureKind kind, const char* bytes, uint64_t length,
           double number);
  KeyInterner fields_{KeyKind::Text};
  std::vector<Record> records_;
  std::vector<char> blob_;
};

struct ContentOptions {
  std::vector<std::pair<std::string, double>> weights;  // per field; others 1
  // Fields whose add_string values are free text (the others are tokens).
  std::vector<std::string> text_fields = {"text", "description", "title", "name"};
  int64_t neighbours = 100;
  bool sublinear_tf = true;
  int64_t min_df = 1;               // text words in fewer items are dropped
  double candidate_max_df = 0.1;    // see the file comment
  bool verbose = false;
  int threads = 0;
  double weight_of(const std::string& field) const;
  bool is_text_field(const std::string& field) const;
};
// Parses train_content options: {"weights": {"category": 1, "text": 1, "price": 0.5},
// "text_fields": ["description", "title"], "neighbours", "sublinear_tf", "min_df",
// "candidate_max_df", "verbose", "threads"}. "weights" (an object of non-negative
// numbers) and "text_fields" (an array of strings, or one string; replaces the default
// ["text", "description", "title", "name"]) are the nested values.
ContentOptions parse_content_options(const OptionList& options);
// The options that shape the feature vectors, read for another function (`context`
// names it in errors) so the hybrid models describe metadata exactly as train_content
// does: "weights" and "text_fields", then (read_feature_counting) "sublinear_tf" and
// "min_df".
ContentOptions read_feature_options(OptionReader& r, const std::string& context);
void read_feature_counting(OptionReader& r, ContentOptions& o);

// The L2-normalized feature vectors build_content_model stores: one row per item of
// state.items in sorted key order, columns the features in key order; `empty_items`
// counts the rows without any feature.
CsrMatrix content_feature_vectors(const ContentState& state, const ContentOptions& options, const CancelToken& cancel,
                                  int64_t* empty_items);

// Leaves a ModelKind::Content model in state.result: Params, UserKeys (empty, of the item
// key kind; n_users = 0), ItemKeys, ItemFeatureIndptr/Indices/Values,
// FeatureItemIndptr/Indices/Values (the inverted index) and NeighbourIndptr/Indices/Scores.
void build_content_model(ContentState& state, const ContentOptions& options, int threads, const CancelToken& cancel,
                         const std::function<void(const std::string&)>& log_line);

// The item's k most similar items (the stored lists).
int64_t content_similar_items(const ModelView& model, int64_t item, int64_t k, std::vector<Scored>& out);

// Top-k items by cosine to the profile sum_j weights[j] * vector(items[j]) (weights empty
// = all 1; finite, may be negative to push away), through the inverted index; only
// positive scores are returned, the given items skipped when exclude_given. Item
// indices must be in range.
int64_t content_recommend_from_items(const ModelView& model, const std::vector<int64_t>& items,
                                     const std::vector<float>& weights, int64_t k, bool exclude_given,
                                     std::vector<Scored>& out);

// The cosine of two items' stored vectors (e.g. to explain or re-rank).
float content_similarity(const ModelView& model, int64_t a, int64_t b);

}  // namespace recsys
