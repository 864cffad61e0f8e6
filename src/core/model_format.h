// The on-disk (and in-memory) layout of a recsys model: one PostgreSQL varlena value.
//
//   byte 0     : 4-byte varlena length word, owned by PostgreSQL (the core never writes it)
//   byte 4     : ModelHeader (fixed size, little-endian, 8-byte aligned fields)
//   then       : SectionEntry[n_sections]  (tag, offset, length; offsets from byte 0)
//   then       : sections, each starting on a 16-byte boundary
//
// Every section is read in place: factors are float32 row-major, key dictionaries are
// sorted so a lookup is a binary search, and seen-items lists are CSR arrays. Opening a
// model (ModelView::open) only reads the header and section table; validate_model()
// checks every count, length, offset and value and is run on bytes from outside
// (text input, binary receive).
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"
#include "keys.h"

namespace recsys {

constexpr uint32_t kModelMagic = 0x53595352u;  // "RSYS"
constexpr uint16_t kModelFormatVersion = 1;
constexpr uint64_t kSectionAlignment = 16;
constexpr uint64_t kMaxModelBytes = 0x3FFFFFFFu;  // PostgreSQL's varlena limit (1 GB - 1)

enum class ModelKind : uint16_t {
  ImplicitAls = 1,
  BiasedMf = 2,
  Popularity = 3,
  ItemKnn = 4,
  Content = 5,
  KMeans = 6,
  Ease = 7,
};
const char* model_kind_name(ModelKind kind);
bool model_kind_valid(uint16_t kind);
// Kinds that score a user by summing the stored neighbour lists of the user's items
// (item_knn's similarities, EASE's weights): the same serving paths.
inline bool sums_neighbour_lists(ModelKind kind) { return kind == ModelKind::ItemKnn || kind == ModelKind::Ease; }

enum class SectionTag : uint32_t {
  Params = 1,          // UTF-8 JSON object: the hyperparameters and training facts
  UserKeys = 2,        // key dictionary (see keys.h)
  ItemKeys = 3,
  UserFactors = 4,     // float32 [n_users x factors]
  ItemFactors = 5,     // float32 [n_items x factors]
  UserItems = 6,       // CSR of training items: int64 indptr[n_users + 1], int32 items[nnz]
  ItemPopularity = 7,  // float32 [n_items]: number of users who interacted
  PopularOrder = 8,    // int32 [n_items]: item indices by decreasing popularity
  History = 9,         // float64 pairs [iterations x 2]: loss, seconds
  ItemNorms = 10,      // float32 [n_items]: L2 norm of each item factor row
  UserNorms = 11,      // float32 [n_users]
  UserBias = 12,       // float32 [n_users]
  ItemBias = 13,       // float32 [n_items]
  // Neighbour lists (item_knn, content): a CSR of n_items rows, each row sorted by score
  // descending (then index ascending), never containing the row's own item.
  NeighbourIndptr = 20,     // int64 [n_items + 1], from 0, non-decreasing
  NeighbourIndices = 21,    // int32 [nnz]: item indices
  NeighbourScores = 22,     // float32 [nnz]: finite similarities
  UserWeights = 23,         // float32 [nnz of UserItems]: the weight recommend gives each seen item (item_knn), >= 0
  // Content models: the L2-normalized item feature vectors (n_items x n_features) and
  // their transpose, the inverted index (n_features x n_items); n_features is given by
  // the length of FeatureItemIndptr.
  ItemFeatureIndptr = 24,   // int64 [n_items + 1]
  ItemFeatureIndices = 25,  // int32 [nnz]: feature indices, strictly ascending within a row
  ItemFeatureValues = 26,   // float32 [nnz]
  FeatureItemIndptr = 27,   // int64 [n_features + 1]
  FeatureItemIndices = 28,  // int32 [nnz]: item indices, strictly ascending within a row
  FeatureItemValues = 29,   // float32 [nnz]
  // k-means models (d = header.factors, k = length of ClusterSizes / 8).
  Centroids = 30,           // float32 [k x d], in the (standardized, if FeatureMean is present) training space
  ClusterSizes = 31,        // int64 [k]: training rows per cluster, summing to n_interactions
  FeatureMean = 32,         // float32 [d]: standardize = true: x' = (x - mean) / scale
  FeatureScale = 33,        // float32 [d], > 0
  // Hybrid (implicit ALS models extended by train_hybrid_items / train_hybrid_users):
  // 1 marks an entity whose factors were mapped from its metadata (no interactions).
  ItemFeatureOnly = 50,     // uint8 [n_items], 0 or 1
  UserFeatureOnly = 51,     // uint8 [n_users], 0 or 1
  HybridItemParams = 52,    // UTF-8 JSON object: the item mapping's options and counts
  HybridUserParams = 53,    // UTF-8 JSON object: the user mapping's
  // Factor models (implicit ALS, biased MF, hybrid): each item's most similar items by
  // cosine of the item factors, exactly as similar_items ranks them (same scores, to the
  // bit), so a call reads a list instead of scoring the catalogue. A CSR of n_items rows,
  // sorted by score descending (then index ascending), never the row's own item.
  SimilarIndptr = 60,       // int64 [n_items + 1]
  SimilarIndices = 61,      // int32 [nnz]
  SimilarScores = 62,       // float32 [nnz]
};

#pragma pack(push, 1)
struct ModelHeader {
  uint32_t varlena_length;  // PostgreSQL's; not part of the checksummed content
  uint32_t magic;
  uint16_t version;
  uint16_t kind;
  uint8_t user_key_kind;
  uint8_t item_key_kind;
  uint16_t reserved0;
  uint32_t user_type_oid;  // SQL type of the user IDs the model was trained on
  uint32_t item_type_oid;
  uint32_t factors;
  uint32_t n_sections;
  uint32_t checksum_lo;  // hash of every byte but the varlena word and these two fields,
  uint32_t checksum_hi;  // timings included: any altered byte is caught on input
  uint64_t n_users;
  uint64_t n_items;
  uint64_t n_interactions;  // distinct (user, item) pairs after summing duplicates
  uint64_t total_bytes;     // the whole value including the varlena word
  uint64_t fingerprint;     // hash of the learned content (all but timings): identity for caches and tests
  double global_mean;       // rating models; 0 otherwise
  double rating_min;
  double rating_max;
  double train_seconds;
};
struct SectionEntry {
  uint32_t tag;
  uint32_t reserved;
  uint64_t offset;
  uint64_t length;
};
#pragma pack(pop)
static_assert(sizeof(ModelHeader) == 112, "header layout");
static_assert(sizeof(SectionEntry) == 24, "section layout");

// Read-only, zero-copy access to a model's sections. Cheap to open.
struct ModelView {
  const uint8_t* base = nullptr;
  uint64_t size = 0;
  const ModelHeader* header = nullptr;

  ModelKind kind() const { return static_cast<ModelKind>(header->kind); }
  int factors() const { return static_cast<int>(header->factors); }
  int64_t n_users() const { return static_cast<int64_t>(header->n_users); }
  int64_t n_items() const { return static_cast<int64_t>(header->n_items); }

  // Pointer to a section's bytes and its length, or nullptr if absent.
  const uint8_t* section(SectionTag tag, uint64_t* length = nullptr) const;
  template <class T>
  const T* section_as(SectionTag tag) const {
    return reinterpret_cast<const T*>(section(tag));
  }
  KeyDictionary user_keys() const;
  KeyDictionary item_keys() const;
  const float* user_factors() const { return section_as<float>(SectionTag::UserFactors); }
  const float* item_factors() const { return section_as<float>(SectionTag::ItemFactors); }
  std::string params_json() const;
  const double* history(int64_t* iterations) const;  // (loss, seconds) pairs

  // Opens bytes as a model: checks magic, version, sizes and the section table only.
  // Throws Error(InvalidModel).
  static ModelView open(const uint8_t* bytes, uint64_t size);
};

// Full validation of bytes from outside: every count, offset, length, ordering and
// float value. Throws Error(InvalidModel) describing the first problem.
void validate_model(const uint8_t* bytes, uint64_t size);

// Collects sections, then writes the model into a buffer of exactly total_size() bytes.
class ModelBuilder {
 public:
  ModelHeader header{};

  ModelBuilder();
  // Adds a section that owns its bytes.
  void add(SectionTag tag, std::vector<uint8_t> bytes);
  template <class T>
  void add_array(SectionTag tag, const std::vector<T>& values) {
    std::vector<uint8_t> bytes(values.size() * sizeof(T));
    if (!bytes.empty()) std::memcpy(bytes.data(), values.data(), bytes.size());
    add(tag, std::move(bytes));
  }
  // Adds a section whose bytes live elsewhere (must outlive write()).
  void add_borrowed(SectionTag tag, const void* data, uint64_t length);

  uint64_t total_size() const;
  // Writes header, table and sections into dst (total_size() bytes, 8-byte aligned);
  // leaves the first 4 bytes (PostgreSQL's length word) untouched and sets the
  // fingerprint.
  void write(uint8_t* dst) const;

 private:
  struct Pending {
    SectionTag tag;
    std::vector<uint8_t> owned;
    const uint8_t* data;
    uint64_t length;
  };
  std::vector<Pending> sections_;
};

// The fingerprint of a written model: a 64-bit hash of every byte except the varlena
// word, the fingerprint field, train_seconds and the History section (timings differ
// between otherwise identical runs).
uint64_t compute_fingerprint(const uint8_t* bytes, uint64_t size);
// The whole-value checksum stored in checksum_lo/hi (see ModelHeader).
uint64_t compute_checksum(const uint8_t* bytes, uint64_t size);
// The hash both use, over n bytes, continuing from h (start with kHashSeed).
constexpr uint64_t kHashSeed = 0xCBF29CE484222325ull;
uint64_t hash_bytes(uint64_t h, const uint8_t* bytes, uint64_t n);

// Base64 text form used by the type's text input/output ("recsys:" prefix).
// Length of the text form of a model of `size` bytes (without a terminating NUL).
uint64_t model_text_size(uint64_t size);
// Writes the text form and a terminating NUL into dst (model_text_size(size) + 1 bytes).
void model_to_text(const uint8_t* bytes, uint64_t size, char* dst);
// Decoded size for a text value, or throws Error(InvalidModel); then decode into dst.
uint64_t model_text_decoded_size(const char* text, uint64_t length);
void model_from_text(const char* text, uint64_t length, uint8_t* dst, uint64_t dst_size);

}  // namespace recsys
