// The state of a training aggregate (interned keys + interaction log), its parallel
// combine / serialize form, and the pipelines that turn it into a model.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "als.h"
#include "keys.h"
#include "model_format.h"
#include "options.h"
#include "parallel.h"
#include "sparse.h"

namespace recsys {

struct Triplet {
  uint32_t user;
  uint32_t item;
  float weight;
};

// Append-only storage in fixed-size chunks: no reallocation copies while ingesting, and
// the append is a store plus a counter check.
class InteractionLog {
 public:
  static constexpr uint64_t kChunk = 1 << 16;
  InteractionLog() = default;
  InteractionLog(InteractionLog&& other) noexcept { *this = std::move(other); }
  InteractionLog& operator=(InteractionLog&& other) noexcept {
    chunks_ = std::move(other.chunks_);
    tail_ = other.tail_;
    fill_ = other.fill_;
    size_ = other.size_;
    other.chunks_.clear();
    other.tail_ = nullptr;
    other.fill_ = kChunk;
    other.size_ = 0;
    return *this;
  }
  void add(uint32_t user, uint32_t item, float weight) {
    if (fill_ == kChunk) new_chunk();
    tail_[fill_++] = Triplet{user, item, weight};
    ++size_;
  }
  // Appends n rows copied from bytes that need not be aligned; check(rows, count) sees
  // each copied run before it is committed and may throw to reject it.
  template <class Check>
  void append_bytes(const uint8_t* src, uint64_t n, Check check) {
    while (n > 0) {
      if (fill_ == kChunk) new_chunk();
      const uint64_t m = n < kChunk - fill_ ? n : kChunk - fill_;
      std::memcpy(tail_ + fill_, src, m * sizeof(Triplet));
      check(static_cast<const Triplet*>(tail_ + fill_), m);
      fill_ += m;
      size_ += m;
      src += m * sizeof(Triplet);
      n -= m;
    }
  }
  // Calls f(rows, count) for each chunk's rows in order (bulk reads without per-row indexing).
  template <class F>
  void for_each_chunk(F f) const {
    for (size_t c = 0; c < chunks_.size(); ++c) {
      const uint64_t count = c + 1 < chunks_.size() ? kChunk : fill_;
      f(static_cast<const Triplet*>(chunks_[c].get()), count);
    }
  }
  uint64_t size() const { return size_; }
  const Triplet& operator[](uint64_t i) const { return chunks_[i / kChunk][i % kChunk]; }
  void clear() {
    chunks_.clear();
    chunks_.shrink_to_fit();
    size_ = 0;
    tail_ = nullptr;
    fill_ = kChunk;
  }
  uint64_t memory_bytes() const { return chunks_.size() * kChunk * sizeof(Triplet); }

 private:
  void new_chunk() {
    chunks_.emplace_back(new Triplet[kChunk]);
    tail_ = chunks_.back().get();
    fill_ = 0;
  }
  std::vector<std::unique_ptr<Triplet[]>> chunks_;
  Triplet* tail_ = nullptr;  // the last chunk (the chunks never move, so moves keep it valid)
  uint64_t fill_ = kChunk;   // rows in the last chunk
  uint64_t size_ = 0;
};

// What the aggregate accumulates.
class TrainingState {
 public:
  TrainingState(KeyKind user_kind, uint32_t user_type_oid, KeyKind item_kind, uint32_t item_type_oid);

  KeyInterner users;
  KeyInterner items;
  InteractionLog log;
  uint32_t user_type_oid;
  uint32_t item_type_oid;
  // The options of the first row that had any, as the SQL layer encoded them (the jsonb
  // value's bytes): opaque to the core, carried through combine / serialize and compared
  // byte for byte; the SQL layer decodes them into an OptionList for the parse functions.
  std::string options_bytes;
  uint64_t rows_skipped = 0;  // rows with a NULL user, item or weight

  // Adds one row; throws DataException for a NaN, infinite or out-of-range weight.
  void add(uint32_t user, uint32_t item, double weight) {
    if (!(std::fabs(weight) <= 3.0e38)) reject_weight(weight);  // false for NaN too
    log.add(user, item, static_cast<float>(weight));
  }
  [[noreturn]] static void reject_weight(double weight);
  // Appends another state's keys and rows (the combine step of a parallel plan).
  void merge(const TrainingState& other);

  uint64_t serialized_size() const;
  void serialize(uint8_t* dst) const;  // exactly serialized_size() bytes
  static std::unique_ptr<TrainingState> deserialize(const uint8_t* src, uint64_t size);

  // Set by finalization; owned here so that a PostgreSQL error between steps cannot
  // leak them (the state is freed by a memory-context callback).
  std::unique_ptr<BackgroundJob> job;
  std::unique_ptr<ModelBuilder> result;
  bool finalized = false;
};

// The user x item matrix with duplicate (user, item) rows summed (in double, in an
// order fixed by sorting, so row order never changes the result) and zero sums dropped.
// Rows and columns are the final (sorted-key) indices. A pair whose weights sum beyond
// the range of real throws DataException naming `trainer` ("weights too large").
CsrMatrix build_interaction_matrix(const TrainingState& state, const std::vector<uint32_t>& user_rank,
                                   const std::vector<uint32_t>& item_rank, const CancelToken& cancel,
                                   const char* trainer = "training");

// Safe range for trainers whose result does not depend on a common scale of the values
// (cosine similarities, the ranking of one user's scores, relative popularity): when the
// largest |value| exceeds 2^max_exponent, every value is multiplied by the power of two
// that brings it to 2^max_exponent or below (exact, short of underflow), so the sums
// built from them stay inside the float range. Returns the factor applied: 1 when the
// values are already in range, the case of every ordinary input, whose models are
// therefore unchanged.
double scale_into_safe_range(std::vector<float>& values, int max_exponent);
double scale_into_safe_range(std::vector<double>& values, int max_exponent);

// Factor models: throws DataException naming `trainer` when the learned factors are not
// finite or a user-item score |x_u| |y_i| could exceed the range of real (the typical
// cause: weights or ratings too large for the float solve). O((users + items) f).
void check_factor_range(const float* user_factors, int64_t n_users, const float* item_factors, int64_t n_items,
                        int factors, const char* trainer);

// Validates a finished model's bytes with the model reader's own validation, so that a
// trainer can never return a value the type's input function (pg_restore, COPY)
// refuses; throws DataException naming `trainer` and the likely cause otherwise.
void check_trained_model(const uint8_t* bytes, uint64_t size, const char* trainer);

struct AlsTrainingOptions {
  AlsParams als;
  int64_t similar_items = -1;  // stored similar-item lists per item (-1: similar_list_length's default)
  bool store_seen = true;
  bool verbose = false;
  int threads = 0;  // 0 = the caller's default
};
// Reads train_als options; throws InvalidParameter naming the bad option.
AlsTrainingOptions parse_als_options(const OptionList& options);

// Runs the whole ALS pipeline on the state and leaves the model in state.result (none
// when no (user, item) pair has a non-zero weight sum: the aggregate then returns NULL).
// `log_line` receives progress lines (from the training thread).
void build_als_model(TrainingState& state, const AlsTrainingOptions& options, int threads,
                     const CancelToken& cancel, const std::function<void(const std::string&)>& log_line);

}  // namespace recsys
