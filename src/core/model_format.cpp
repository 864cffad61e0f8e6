#include "model_format.h"

#include <cmath>

namespace recsys {

const char* model_kind_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::ImplicitAls: return "implicit_als";
    case ModelKind::BiasedMf: return "biased_mf";
    case ModelKind::Popularity: return "popularity";
    case ModelKind::ItemKnn: return "item_knn";
    case ModelKind::Content: return "content";
    case ModelKind::KMeans: return "kmeans";
    case ModelKind::Ease: return "ease";
  }
  return "unknown";
}

bool model_kind_valid(uint16_t kind) { return kind >= 1 && kind <= 7; }

namespace {

[[noreturn]] void invalid(const std::string& what) { fail(ErrorKind::InvalidModel, "invalid recsys model: " + what); }

bool key_kind_valid(uint8_t k) { return k >= 1 && k <= 3; }

const SectionEntry* section_table(const uint8_t* base) {
  return reinterpret_cast<const SectionEntry*>(base + sizeof(ModelHeader));
}

// FNV-style 64-bit hash over words, used for the content fingerprint.
struct Hasher {
  uint64_t h = 0xCBF29CE484222325ull;
  void add(const uint8_t* p, uint64_t n) {
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, p + i, 8);
      h = (h ^ w) * 0x100000001B3ull;
      h ^= h >> 29;
    }
    for (; i < n; ++i) h = (h ^ p[i]) * 0x100000001B3ull;
  }
};

}  // namespace

const uint8_t* ModelView::section(SectionTag tag, uint64_t* length) const {
  const SectionEntry* table = section_table(base);
  for (uint32_t i = 0; i < header->n_sections; ++i) {
    if (table[i].tag == static_cast<uint32_t>(tag)) {
      if (length) *length = table[i].length;
      return base + table[i].offset;
    }
  }
  if (length) *length = 0;
  return nullptr;
}

KeyDictionary ModelView::user_keys() const {
  uint64_t len = 0;
  const uint8_t* p = section(SectionTag::UserKeys, &len);
  return KeyDictionary(static_cast<KeyKind>(header->user_key_kind), n_users(), p, len);
}

KeyDictionary ModelView::item_keys() const {
  uint64_t len = 0;
  const uint8_t* p = section(SectionTag::ItemKeys, &len);
  return KeyDictionary(static_cast<KeyKind>(header->item_key_kind), n_items(), p, len);
}

std::string ModelView::params_json() const {
  uint64_t len = 0;
  const uint8_t* p = section(SectionTag::Params, &len);
  if (!p) return "{}";
  return std::string(reinterpret_cast<const char*>(p), len);
}

const double* ModelView::history(int64_t* iterations) const {
  uint64_t len = 0;
  const uint8_t* p = section(SectionTag::History, &len);
  *iterations = p ? static_cast<int64_t>(len / 16) : 0;
  return reinterpret_cast<const double*>(p);
}

ModelView ModelView::open(const uint8_t* bytes, uint64_t size) {
  if (size < sizeof(ModelHeader)) invalid("too short for a header");
  if (reinterpret_cast<uintptr_t>(bytes) % 8 != 0) invalid("buffer is not 8-byte aligned");
  ModelView v;
  v.base = bytes;
  v.size = size;
  v.header = reinterpret_cast<const ModelHeader*>(bytes);
  const ModelHeader& h = *v.header;
  if (h.magic != kModelMagic) invalid("bad magic number (not a recsys model)");
  if (h.version > kModelFormatVersion)
    invalid("format version " + std::to_string(h.version) + " was written by a newer recsys (this build reads " +
            "versions up to " + std::to_string(kModelFormatVersion) + "); update the recsys extension to read it");
  if (h.version != kModelFormatVersion)
    invalid("unsupported format version " + std::to_string(h.version) + " (this build reads version " +
            std::to_string(kModelFormatVersion) + ")");
  if (!model_kind_valid(h.kind)) invalid("unknown model kind " + std::to_string(h.kind));
  if (!key_kind_valid(h.user_key_kind) || !key_kind_valid(h.item_key_kind)) invalid("unknown key kind");
  if (h.total_bytes != size) invalid("stored size does not match the value's size");
  if (h.n_sections > 64) invalid("too many sections");
  if (h.factors > 65536) invalid("factor count out of range");
  if (h.n_users > 0xFFFFFFF0u || h.n_items > 0xFFFFFFF0u) invalid("user or item count out of range");
  uint64_t table_end = sizeof(ModelHeader) + uint64_t(h.n_sections) * sizeof(SectionEntry);
  if (table_end > size) invalid("section table runs past the end");
  const SectionEntry* table = section_table(bytes);
  for (uint32_t i = 0; i < h.n_sections; ++i) {
    const SectionEntry& s = table[i];
    if (s.offset < table_end || s.offset > size || s.length > size - s.offset)
      invalid("section " + std::to_string(s.tag) + " lies outside the value");
    if (s.offset % kSectionAlignment != 0) invalid("section " + std::to_string(s.tag) + " is misaligned");
    for (uint32_t j = 0; j < i; ++j)
      if (table[j].tag == s.tag) invalid("section " + std::to_string(s.tag) + " appears twice");
  }
  return v;
}

uint64_t compute_fingerprint(const uint8_t* bytes, uint64_t size) {
  ModelHeader h;
  std::memcpy(&h, bytes, sizeof h);
  h.varlena_length = 0;
  h.fingerprint = 0;
  h.train_seconds = 0;
  h.checksum_lo = h.checksum_hi = 0;
  Hasher hasher;
  hasher.add(reinterpret_cast<const uint8_t*>(&h), sizeof h);
  // Every byte after the header (section table, sections and the padding between them)
  // except the History section's. Offsets were checked by ModelView::open or written by
  // ModelBuilder::write.
  uint64_t skip_begin = size, skip_end = size;
  const SectionEntry* table = section_table(bytes);
  for (uint32_t i = 0; i < h.n_sections; ++i) {
    if (table[i].tag == static_cast<uint32_t>(SectionTag::History)) {
      skip_begin = table[i].offset;
      skip_end = table[i].offset + table[i].length;
      break;
    }
  }
  hasher.add(bytes + sizeof h, skip_begin - sizeof h);
  hasher.add(bytes + skip_end, size - skip_end);
  return hasher.h;
}

namespace {

// A CSR spread over three sections (int64 row pointers, int32 indices, float32 values).
struct CsrSections {
  const int64_t* indptr = nullptr;
  const int32_t* indices = nullptr;
  const float* values = nullptr;
  uint64_t rows = 0;
  uint64_t nnz = 0;
};

enum CsrRowOrder { kAnyOrder, kAscendingIndices, kDescendingScores };

// Checks one CSR: all three sections or none (returns false), row pointers from 0 and
// non-decreasing, sizes matching, indices in [0, cols), values finite, and the row order.
// rows = UINT64_MAX takes the row count from the row-pointer section's length.
bool read_csr(const ModelView& v, SectionTag tp, SectionTag ti, SectionTag tv, uint64_t rows, uint64_t cols,
              CsrRowOrder order, const char* what, CsrSections* out) {
  const std::string w(what);
  uint64_t lp = 0, li = 0, lv = 0;
  const uint8_t* pp = v.section(tp, &lp);
  const uint8_t* pi = v.section(ti, &li);
  const uint8_t* pv = v.section(tv, &lv);
  if (!pp && !pi && !pv) return false;
  if (!pp || !pi || !pv) invalid(w + " is incomplete");
  if (rows == UINT64_MAX) {
    if (lp < 8 || lp % 8 != 0 || lp / 8 - 1 > 0x7FFFFFFFu) invalid(w + " row pointers have the wrong size");
    rows = lp / 8 - 1;
  }
  if (lp != 8 * (rows + 1)) invalid(w + " row pointers have the wrong size");
  const int64_t* indptr = reinterpret_cast<const int64_t*>(pp);
  if (indptr[0] != 0) invalid(w + " row pointers do not start at 0");
  for (uint64_t r = 0; r < rows; ++r)
    if (indptr[r + 1] < indptr[r]) invalid(w + " row pointers are not ascending");
  const uint64_t nnz = static_cast<uint64_t>(indptr[rows]);
  if (nnz > li / 4 || li != 4 * nnz || lv != 4 * nnz) invalid(w + " has the wrong size");
  const int32_t* indices = reinterpret_cast<const int32_t*>(pi);
  const float* values = reinterpret_cast<const float*>(pv);
  for (uint64_t k = 0; k < nnz; ++k) {
    if (indices[k] < 0 || static_cast<uint64_t>(indices[k]) >= cols) invalid(w + " index out of range");
    if (!std::isfinite(values[k])) invalid(w + " holds a non-finite value");
  }
  for (uint64_t r = 0; r < rows && order != kAnyOrder; ++r)
    for (int64_t k = indptr[r] + 1; k < indptr[r + 1]; ++k) {
      if (order == kAscendingIndices && indices[k] <= indices[k - 1])
        invalid(w + " indices are not strictly ascending");
      // Score descending, ties by index ascending (what every list is built in and
      // what the serving calls return as stored).
      if (order == kDescendingScores &&
          (values[k] > values[k - 1] || (values[k] == values[k - 1] && indices[k] <= indices[k - 1])))
        invalid(w + " is not sorted by score");
    }
  if (order == kDescendingScores) {  // an item at most once per row
    std::vector<uint64_t> last_row(cols, UINT64_MAX);
    for (uint64_t r = 0; r < rows; ++r)
      for (int64_t k = indptr[r]; k < indptr[r + 1]; ++k) {
        if (last_row[indices[k]] == r) invalid(w + " hold an item twice");
        last_row[indices[k]] = r;
      }
  }
  *out = CsrSections{indptr, indices, values, rows, nnz};
  return true;
}

// Per-item lists of other items (a CSR of n_items rows sorted by score descending);
// absent is fine.
bool item_lists(const ModelView& v, SectionTag tp, SectionTag ti, SectionTag tv, const char* what) {
  const uint64_t ni = v.header->n_items;
  CsrSections lists;
  if (!read_csr(v, tp, ti, tv, ni, ni, kDescendingScores, what, &lists)) return false;
  for (uint64_t r = 0; r < ni; ++r)
    for (int64_t k = lists.indptr[r]; k < lists.indptr[r + 1]; ++k)
      if (static_cast<uint64_t>(lists.indices[k]) == r)
        invalid(std::string(what) + ": an item is listed as its own neighbour");
  return true;
}

// Sections of the item_knn, content and kmeans models (tags 20 and up).
void validate_neighbour_and_cluster_sections(const ModelView& v) {
  const ModelHeader& h = *v.header;
  const uint64_t ni = h.n_items, nu = h.n_users, d = h.factors;
  uint64_t len = 0;

  // Neighbour lists (item_knn, content, EASE) and a factor model's similar-item lists:
  // n_items rows of item indices, best first, never the row itself.
  const bool has_neighbours = item_lists(v, SectionTag::NeighbourIndptr, SectionTag::NeighbourIndices,
                                         SectionTag::NeighbourScores, "neighbour lists");
  item_lists(v, SectionTag::SimilarIndptr, SectionTag::SimilarIndices, SectionTag::SimilarScores,
             "similar-item lists");

  // Per-seen-item weights: one non-negative float per UserItems entry.
  if (const float* uw = reinterpret_cast<const float*>(v.section(SectionTag::UserWeights, &len))) {
    const uint8_t* csr = v.section(SectionTag::UserItems);
    if (!csr) invalid("user weights without a seen-items index");
    const uint64_t nnz = static_cast<uint64_t>(reinterpret_cast<const int64_t*>(csr)[nu]);
    if (len != 4 * nnz) invalid("user weights have the wrong size");
    for (uint64_t k = 0; k < nnz; ++k)
      if (!std::isfinite(uw[k]) || uw[k] < 0) invalid("user weights hold a negative or non-finite value");
  }

  // Content: item vectors and the inverted index, which must be their exact transpose.
  CsrSections fi, iv;
  const bool has_index = read_csr(v, SectionTag::FeatureItemIndptr, SectionTag::FeatureItemIndices,
                                  SectionTag::FeatureItemValues, UINT64_MAX, ni, kAscendingIndices,
                                  "feature index", &fi);
  const bool has_vectors = read_csr(v, SectionTag::ItemFeatureIndptr, SectionTag::ItemFeatureIndices,
                                    SectionTag::ItemFeatureValues, ni, has_index ? fi.rows : 0,
                                    kAscendingIndices, "item feature vectors", &iv);
  if (has_index != has_vectors) invalid("item feature vectors and feature index must come together");
  if (has_vectors) {
    if (iv.nnz != fi.nnz) invalid("feature index does not match the item feature vectors");
    std::vector<int64_t> next(fi.indptr, fi.indptr + fi.rows);
    for (uint64_t i = 0; i < ni; ++i)
      for (int64_t k = iv.indptr[i]; k < iv.indptr[i + 1]; ++k) {
        const int32_t f = iv.indices[k];
        const int64_t p = next[f]++;
        if (p >= fi.indptr[f + 1] || static_cast<uint64_t>(fi.indices[p]) != i ||
            std::memcmp(&fi.values[p], &iv.values[k], 4) != 0)
          invalid("feature index does not match the item feature vectors");
      }
  }

  // k-means: k clusters of dimension d.
  uint64_t k = 0;
  if (const int64_t* sizes = reinterpret_cast<const int64_t*>(v.section(SectionTag::ClusterSizes, &len))) {
    if (len % 8 != 0) invalid("cluster sizes have the wrong size");
    k = len / 8;
    uint64_t total = 0;
    for (uint64_t c = 0; c < k; ++c) {
      if (sizes[c] < 0 || static_cast<uint64_t>(sizes[c]) > h.n_interactions) invalid("cluster size out of range");
      total += static_cast<uint64_t>(sizes[c]);
    }
    if (total != h.n_interactions) invalid("cluster sizes do not add up to the number of rows");
  }
  if (const float* c = reinterpret_cast<const float*>(v.section(SectionTag::Centroids, &len))) {
    if (k == 0 || d == 0 || len != k * d * 4) invalid("centroids have the wrong size");
    for (uint64_t j = 0; j < k * d; ++j)
      if (!std::isfinite(c[j])) invalid("centroids hold a non-finite value");
  }
  const float* mean = reinterpret_cast<const float*>(v.section(SectionTag::FeatureMean, &len));
  if (mean && len != 4 * d) invalid("feature means have the wrong size");
  const float* scale = reinterpret_cast<const float*>(v.section(SectionTag::FeatureScale, &len));
  if (scale && len != 4 * d) invalid("feature scales have the wrong size");
  if (!mean != !scale) invalid("feature means and scales must come together");
  for (uint64_t j = 0; mean && j < d; ++j)
    if (!std::isfinite(mean[j]) || !std::isfinite(scale[j]) || !(scale[j] > 0))
      invalid("feature means or scales hold an invalid value");

  switch (v.kind()) {
    case ModelKind::ItemKnn:
    case ModelKind::Ease:
      if (!has_neighbours) invalid(std::string(model_kind_name(v.kind())) + " model without neighbour lists");
      break;
    case ModelKind::Content:
      if (!has_neighbours || !has_vectors) invalid("content model without item vectors or neighbour lists");
      break;
    case ModelKind::KMeans:
      if (!v.section(SectionTag::Centroids) || !v.section(SectionTag::ClusterSizes))
        invalid("kmeans model without centroids");
      break;
    default:
      break;
  }
}

// Hybrid: per-entity feature-only flags (0 or 1), and their parameters, on implicit ALS
// models only.
void validate_hybrid_sections(const ModelView& v) {
  const ModelHeader& h = *v.header;
  const struct {
    SectionTag flags, params;
    uint64_t n;
    const char* what;
  } sides[] = {{SectionTag::ItemFeatureOnly, SectionTag::HybridItemParams, h.n_items, "item"},
               {SectionTag::UserFeatureOnly, SectionTag::HybridUserParams, h.n_users, "user"}};
  for (const auto& s : sides) {
    uint64_t len = 0;
    const uint8_t* flags = v.section(s.flags, &len);
    if (!flags != !v.section(s.params)) invalid(std::string(s.what) + " feature-only flags and their parameters must come together");
    if (!flags) continue;
    if (v.kind() != ModelKind::ImplicitAls) invalid("feature-only flags on a model that is not implicit ALS");
    if (len != s.n) invalid(std::string(s.what) + " feature-only flags have the wrong size");
    for (uint64_t i = 0; i < len; ++i)
      if (flags[i] > 1) invalid(std::string(s.what) + " feature-only flags hold a value other than 0 or 1");
  }
}

}  // namespace

uint64_t hash_bytes(uint64_t h, const uint8_t* bytes, uint64_t n) {
  Hasher hasher;
  hasher.h = h;
  hasher.add(bytes, n);
  return hasher.h;
}

uint64_t compute_checksum(const uint8_t* bytes, uint64_t size) {
  ModelHeader h;
  std::memcpy(&h, bytes, sizeof h);
  h.varlena_length = 0;
  h.checksum_lo = h.checksum_hi = 0;
  Hasher hasher;
  hasher.add(reinterpret_cast<const uint8_t*>(&h), sizeof h);
  hasher.add(bytes + sizeof h, size - sizeof h);
  return hasher.h;
}

void validate_model(const uint8_t* bytes, uint64_t size) {
  ModelView v = ModelView::open(bytes, size);
  const ModelHeader& h = *v.header;
  const uint64_t nu = h.n_users, ni = h.n_items, f = h.factors;

  auto expect_len = [&](SectionTag tag, uint64_t want, const char* what) {
    uint64_t len = 0;
    if (v.section(tag, &len) && len != want) invalid(std::string(what) + " has the wrong size");
  };
  auto check_finite = [&](SectionTag tag, const char* what) {
    uint64_t len = 0;
    const float* p = reinterpret_cast<const float*>(v.section(tag, &len));
    if (!p) return;
    for (uint64_t i = 0; i < len / 4; ++i)
      if (!std::isfinite(p[i])) invalid(std::string(what) + " holds a non-finite value");
  };

  uint64_t len = 0;
  const uint8_t* p = v.section(SectionTag::UserKeys, &len);
  if (!p) invalid("user dictionary is missing");
  KeyDictionary::validate(static_cast<KeyKind>(h.user_key_kind), static_cast<int64_t>(nu), p, len);
  p = v.section(SectionTag::ItemKeys, &len);
  if (!p) invalid("item dictionary is missing");
  KeyDictionary::validate(static_cast<KeyKind>(h.item_key_kind), static_cast<int64_t>(ni), p, len);

  expect_len(SectionTag::UserFactors, nu * f * 4, "user factors");
  expect_len(SectionTag::ItemFactors, ni * f * 4, "item factors");
  expect_len(SectionTag::ItemPopularity, ni * 4, "item popularity");
  expect_len(SectionTag::PopularOrder, ni * 4, "popularity order");
  expect_len(SectionTag::ItemNorms, ni * 4, "item norms");
  expect_len(SectionTag::UserNorms, nu * 4, "user norms");
  expect_len(SectionTag::UserBias, nu * 4, "user biases");
  expect_len(SectionTag::ItemBias, ni * 4, "item biases");
  check_finite(SectionTag::UserFactors, "user factors");
  check_finite(SectionTag::ItemFactors, "item factors");
  check_finite(SectionTag::ItemPopularity, "item popularity");
  check_finite(SectionTag::ItemNorms, "item norms");
  check_finite(SectionTag::UserNorms, "user norms");
  check_finite(SectionTag::UserBias, "user biases");
  check_finite(SectionTag::ItemBias, "item biases");
  if (!std::isfinite(h.global_mean) || !std::isfinite(h.rating_min) || !std::isfinite(h.rating_max))
    invalid("rating statistics are not finite");

  if (const int32_t* order = v.section_as<int32_t>(SectionTag::PopularOrder)) {
    std::vector<bool> seen(ni, false);
    for (uint64_t i = 0; i < ni; ++i) {
      if (order[i] < 0 || static_cast<uint64_t>(order[i]) >= ni || seen[order[i]])
        invalid("popularity order is not a permutation of the items");
      seen[order[i]] = true;
    }
    // recommend_popular returns the order as stored: it must rank by popularity.
    if (const float* pop = v.section_as<float>(SectionTag::ItemPopularity))
      for (uint64_t i = 1; i < ni; ++i)
        if (pop[order[i]] > pop[order[i - 1]] || (pop[order[i]] == pop[order[i - 1]] && order[i] < order[i - 1]))
          invalid("popularity order does not rank the items by popularity");
  }
  if (const uint8_t* csr = v.section(SectionTag::UserItems, &len)) {
    if (len < 8 * (nu + 1)) invalid("seen-items index is too short");
    const int64_t* indptr = reinterpret_cast<const int64_t*>(csr);
    if (indptr[0] != 0) invalid("seen-items index does not start at 0");
    for (uint64_t u = 0; u < nu; ++u)
      if (indptr[u + 1] < indptr[u]) invalid("seen-items index is not ascending");
    uint64_t nnz = static_cast<uint64_t>(indptr[nu]);
    if (nnz > (len - 8 * (nu + 1)) / 4 || len != 8 * (nu + 1) + 4 * nnz)
      invalid("seen-items section has the wrong size");
    const int32_t* items = reinterpret_cast<const int32_t*>(csr + 8 * (nu + 1));
    for (uint64_t u = 0; u < nu; ++u)
      for (int64_t k = indptr[u]; k < indptr[u + 1]; ++k) {
        if (items[k] < 0 || static_cast<uint64_t>(items[k]) >= ni) invalid("seen item index out of range");
        if (k > indptr[u] && items[k] <= items[k - 1]) invalid("seen items are not strictly ascending");
      }
  }
  if (v.section(SectionTag::History, &len) && len % 16 != 0) invalid("training history has the wrong size");
  for (SectionTag tag : {SectionTag::Params, SectionTag::HybridItemParams, SectionTag::HybridUserParams})
    if (const uint8_t* s = v.section(tag, &len))
      for (uint64_t i = 0; i < len; ++i)
        if (s[i] == 0) invalid("parameters hold a NUL byte");
  validate_neighbour_and_cluster_sections(v);
  validate_hybrid_sections(v);
  if ((v.kind() == ModelKind::ImplicitAls || v.kind() == ModelKind::BiasedMf) &&
      (!v.user_factors() || !v.item_factors()))
    invalid("factor model without factors");
  const uint64_t checksum = compute_checksum(bytes, size);
  if (static_cast<uint32_t>(checksum) != h.checksum_lo || static_cast<uint32_t>(checksum >> 32) != h.checksum_hi)
    invalid("checksum mismatch (the bytes were altered)");
  if (compute_fingerprint(bytes, size) != h.fingerprint) invalid("fingerprint mismatch (the bytes were altered)");
}

ModelBuilder::ModelBuilder() {
  header.magic = kModelMagic;
  header.version = kModelFormatVersion;
}

void ModelBuilder::add(SectionTag tag, std::vector<uint8_t> bytes) {
  Pending p{tag, std::move(bytes), nullptr, 0};
  p.length = p.owned.size();
  sections_.push_back(std::move(p));
}

void ModelBuilder::add_borrowed(SectionTag tag, const void* data, uint64_t length) {
  sections_.push_back(Pending{tag, {}, static_cast<const uint8_t*>(data), length});
}

uint64_t ModelBuilder::total_size() const {
  uint64_t pos = sizeof(ModelHeader) + sections_.size() * sizeof(SectionEntry);
  for (auto& s : sections_) pos = align_up(pos, kSectionAlignment) + s.length;
  return pos;
}

void ModelBuilder::write(uint8_t* dst) const {
  uint64_t total = total_size();
  if (total > kMaxModelBytes)
    fail(ErrorKind::ProgramLimit, "the model would take " + std::to_string(total) +
                                      " bytes, more than PostgreSQL's 1 GB limit for one value; use fewer factors "
                                      "or set store_seen to false");
  ModelHeader h = header;
  h.magic = kModelMagic;
  h.version = kModelFormatVersion;
  h.n_sections = static_cast<uint32_t>(sections_.size());
  h.total_bytes = total;
  h.fingerprint = 0;
  std::memcpy(dst + 4, reinterpret_cast<const uint8_t*>(&h) + 4, sizeof h - 4);
  SectionEntry* table = reinterpret_cast<SectionEntry*>(dst + sizeof(ModelHeader));
  uint64_t pos = sizeof(ModelHeader) + sections_.size() * sizeof(SectionEntry);
  for (size_t i = 0; i < sections_.size(); ++i) {
    uint64_t start = align_up(pos, kSectionAlignment);
    if (start > pos) std::memset(dst + pos, 0, start - pos);
    const Pending& s = sections_[i];
    SectionEntry e{static_cast<uint32_t>(s.tag), 0, start, s.length};
    std::memcpy(&table[i], &e, sizeof e);
    const uint8_t* src = s.data ? s.data : s.owned.data();
    if (s.length) std::memcpy(dst + start, src, s.length);
    pos = start + s.length;
  }
  uint64_t fp = compute_fingerprint(dst, total);
  std::memcpy(dst + offsetof(ModelHeader, fingerprint), &fp, 8);
  uint64_t cs = compute_checksum(dst, total);
  uint32_t lo = static_cast<uint32_t>(cs), hi = static_cast<uint32_t>(cs >> 32);
  std::memcpy(dst + offsetof(ModelHeader, checksum_lo), &lo, 4);
  std::memcpy(dst + offsetof(ModelHeader, checksum_hi), &hi, 4);
}

// ---- text form: "recsys:" + base64 of bytes [4, size) ----

namespace {
const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const char kPrefix[] = "recsys:";
constexpr uint64_t kPrefixLen = sizeof(kPrefix) - 1;

int b64_value(unsigned char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

uint64_t model_text_size(uint64_t size) { return kPrefixLen + 4 * ((size - 4 + 2) / 3); }

void model_to_text(const uint8_t* bytes, uint64_t size, char* dst) {
  const uint8_t* p = bytes + 4;
  uint64_t n = size - 4;
  char* out = dst;
  std::memcpy(out, kPrefix, kPrefixLen);
  out += kPrefixLen;
  uint64_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t(p[i]) << 16) | (uint32_t(p[i + 1]) << 8) | p[i + 2];
    *out++ = kB64[v >> 18];
    *out++ = kB64[(v >> 12) & 63];
    *out++ = kB64[(v >> 6) & 63];
    *out++ = kB64[v & 63];
  }
  if (i < n) {
    uint32_t v = uint32_t(p[i]) << 16;
    if (i + 1 < n) v |= uint32_t(p[i + 1]) << 8;
    *out++ = kB64[v >> 18];
    *out++ = kB64[(v >> 12) & 63];
    *out++ = (i + 1 < n) ? kB64[(v >> 6) & 63] : '=';
    *out++ = '=';
  }
  *out = '\0';
}

uint64_t model_text_decoded_size(const char* text, uint64_t length) {
  if (length < kPrefixLen || std::memcmp(text, kPrefix, kPrefixLen) != 0)
    invalid("text form must start with \"recsys:\"");
  uint64_t n = length - kPrefixLen;
  if (n % 4 != 0 || n == 0) invalid("text form has a truncated base64 body");
  const char* b = text + kPrefixLen;
  uint64_t pad = (b[n - 1] == '=') + (b[n - 2] == '=');
  return 4 + (n / 4) * 3 - pad;
}

void model_from_text(const char* text, uint64_t length, uint8_t* dst, uint64_t dst_size) {
  uint64_t want = model_text_decoded_size(text, length);
  if (want != dst_size) invalid("decoded size mismatch");
  const unsigned char* b = reinterpret_cast<const unsigned char*>(text + kPrefixLen);
  uint64_t n = length - kPrefixLen;
  uint8_t* out = dst + 4;
  uint64_t o = 0, limit = dst_size - 4;
  for (uint64_t i = 0; i < n; i += 4) {
    int v[4];
    for (int j = 0; j < 4; ++j) {
      bool pad_ok = i + 4 == n && j >= 2 && b[i + j] == '=';
      v[j] = pad_ok ? 0 : b64_value(b[i + j]);
      if (v[j] < 0) invalid("text form holds a character that is not base64");
      if (pad_ok && j == 2 && b[i + 3] != '=') invalid("misplaced base64 padding");
    }
    uint32_t w = (uint32_t(v[0]) << 18) | (uint32_t(v[1]) << 12) | (uint32_t(v[2]) << 6) | uint32_t(v[3]);
    uint8_t bytes3[3] = {uint8_t(w >> 16), uint8_t(w >> 8), uint8_t(w)};
    for (int j = 0; j < 3 && o < limit; ++j) out[o++] = bytes3[j];
  }
}

}  // namespace recsys
