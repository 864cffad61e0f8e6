// User and item IDs of the user's own SQL type (int2/int4/int8, text/varchar, uuid).
//
// KeyInterner maps each distinct key seen during ingest to a dense provisional index,
// in arrival order. At the end the keys are sorted (numerically, or bytewise for text
// and uuid) and the final index of a key is its rank, so the model does not depend on
// row order, and the serialized dictionary is a sorted array searched in place.
//
// Serialized dictionary (a model section):
//   Int : int64 keys[n], strictly ascending
//   Uuid: 16-byte keys[n], strictly ascending by memcmp
//   Text: uint64 offsets[n + 1] (offsets[0] = 0) followed by the concatenated bytes;
//         keys strictly ascending by (memcmp of the common prefix, then length)
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace recsys {

enum class KeyKind : uint8_t { Int = 1, Text = 2, Uuid = 3 };
const char* key_kind_name(KeyKind kind);

// Bytewise order of text keys: memcmp of the common prefix, then the shorter first.
inline int compare_bytes(const uint8_t* a, uint64_t alen, const uint8_t* b, uint64_t blen) {
  uint64_t n = alen < blen ? alen : blen;
  int c = n ? std::memcmp(a, b, n) : 0;
  if (c != 0) return c;
  return alen < blen ? -1 : (alen > blen ? 1 : 0);
}

// A sorted dictionary read in place from a model section.
class KeyDictionary {
 public:
  KeyDictionary() = default;
  KeyDictionary(KeyKind kind, int64_t n, const uint8_t* data, uint64_t length);

  KeyKind kind() const { return kind_; }
  int64_t size() const { return n_; }
  // Index of a key, or -1.
  int64_t find_int(int64_t key) const;
  int64_t find_bytes(const uint8_t* key, uint64_t length) const;
  int64_t int_key(int64_t index) const { return ints_[index]; }
  // Text or uuid key bytes.
  const uint8_t* bytes_key(int64_t index, uint64_t* length) const;

  // Serialized size of a dictionary of this kind; throws InvalidModel when the section
  // cannot hold n keys, when offsets are out of range, or keys are not strictly sorted.
  static void validate(KeyKind kind, int64_t n, const uint8_t* data, uint64_t length);

 private:
  KeyKind kind_ = KeyKind::Int;
  int64_t n_ = 0;
  const int64_t* ints_ = nullptr;
  const uint64_t* offsets_ = nullptr;
  const uint8_t* blob_ = nullptr;
};

// Interns keys during ingest; provisional indices are dense, in arrival order.
class KeyInterner {
 public:
  explicit KeyInterner(KeyKind kind);
  KeyKind kind() const { return kind_; }
  uint32_t size() const { return static_cast<uint32_t>(count_); }

  // The hot path of ingest: a dense non-negative key already seen costs one load.
  uint32_t intern_int(int64_t key) {
    const uint64_t k = static_cast<uint64_t>(key);  // negative keys wrap past any size
    if (k < direct_.size()) {
      const uint32_t v = direct_[k];
      if (v != 0) return v - 1;
    }
    return intern_int_slow(key);
  }
  uint32_t intern_bytes(const uint8_t* key, uint64_t length);  // text or 16-byte uuid

  int64_t int_key(uint32_t id) const { return ints_[id]; }
  const uint8_t* bytes_key(uint32_t id, uint64_t* length) const {
    *length = offsets_[id + 1] - offsets_[id];
    return blob_.data() + offsets_[id];
  }

  // Provisional ids in final (sorted) order: order[rank] = provisional id.
  std::vector<uint32_t> sorted_order() const;
  // rank_of[provisional id] = final index, from sorted_order().
  static std::vector<uint32_t> invert(const std::vector<uint32_t>& order);
  // Serialized sorted dictionary (see the file comment).
  std::vector<uint8_t> dictionary_bytes(const std::vector<uint32_t>& order) const;

  // Serialized interner state for parallel aggregation: keys in provisional order.
  uint64_t state_size() const;
  uint8_t* write_state(uint8_t* dst) const;
  // Reads a state written by write_state into an empty interner; returns the end.
  const uint8_t* read_state(const uint8_t* src, const uint8_t* end);

  uint64_t memory_bytes() const;

 private:
  void grow();
  uint64_t hash_at(uint32_t id) const;

  KeyKind kind_;
  uint64_t count_ = 0;
  std::vector<int64_t> ints_;        // Int keys by id
  std::vector<uint64_t> offsets_;    // Text/Uuid: blob offsets by id (count + 1)
  std::vector<uint8_t> blob_;        // Text/Uuid bytes
  std::vector<uint32_t> slots_;      // open addressing: id + 1, 0 = empty
  std::vector<uint32_t> slot_tags_;  // upper hash bits for quick rejection
  uint64_t mask_ = 0;
  // Int keys in [0, direct_.size()) are found by direct indexing (id + 1, 0 = absent):
  // dense serial IDs, the common case, then cost one memory access and no hashing.
  std::vector<uint32_t> direct_;
  static constexpr int64_t kDirectLimit = int64_t(1) << 24;
  uint32_t intern_int_slow(int64_t key);
  uint32_t intern_int_hashed(int64_t key);
};

uint64_t hash_int(int64_t key);
uint64_t hash_bytes(const uint8_t* data, uint64_t length);

}  // namespace recsys
