#include "keys.h"

#include <algorithm>

namespace recsys {

const char* key_kind_name(KeyKind kind) {
  switch (kind) {
    case KeyKind::Int: return "integer";
    case KeyKind::Text: return "text";
    case KeyKind::Uuid: return "uuid";
  }
  return "unknown";
}

// splitmix64's finalizer: a strong, cheap mix for integer keys.
uint64_t hash_int(int64_t key) {
  uint64_t z = static_cast<uint64_t>(key) + 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// A word-at-a-time multiplicative hash for byte strings.
uint64_t hash_bytes(const uint8_t* data, uint64_t length) {
  uint64_t h = 0x243F6A8885A308D3ull ^ (length * 0x9E3779B97F4A7C15ull);
  uint64_t i = 0;
  for (; i + 8 <= length; i += 8) {
    uint64_t w;
    std::memcpy(&w, data + i, 8);
    h = (h ^ w) * 0xFF51AFD7ED558CCDull;
    h ^= h >> 32;
  }
  uint64_t tail = 0;
  for (uint64_t j = 0; i < length; ++i, ++j) tail |= static_cast<uint64_t>(data[i]) << (8 * j);
  h = (h ^ tail) * 0xC4CEB9FE1A85EC53ull;
  return static_cast<uint64_t>(hash_int(static_cast<int64_t>(h)));
}

KeyDictionary::KeyDictionary(KeyKind kind, int64_t n, const uint8_t* data, uint64_t length)
    : kind_(kind), n_(n) {
  if (kind == KeyKind::Int) {
    ints_ = reinterpret_cast<const int64_t*>(data);
  } else if (kind == KeyKind::Uuid) {
    blob_ = data;
  } else {
    offsets_ = reinterpret_cast<const uint64_t*>(data);
    blob_ = data + 8 * static_cast<uint64_t>(n + 1);
  }
  (void)length;
}

int64_t KeyDictionary::find_int(int64_t key) const {
  if (kind_ != KeyKind::Int) return -1;
  const int64_t* end = ints_ + n_;
  const int64_t* it = std::lower_bound(ints_, end, key);
  return (it != end && *it == key) ? it - ints_ : -1;
}

const uint8_t* KeyDictionary::bytes_key(int64_t index, uint64_t* length) const {
  if (kind_ == KeyKind::Uuid) {
    *length = 16;
    return blob_ + 16 * index;
  }
  *length = offsets_[index + 1] - offsets_[index];
  return blob_ + offsets_[index];
}

int64_t KeyDictionary::find_bytes(const uint8_t* key, uint64_t length) const {
  if (kind_ == KeyKind::Int) return -1;
  if (kind_ == KeyKind::Uuid && length != 16) return -1;
  int64_t lo = 0, hi = n_;
  while (lo < hi) {
    int64_t mid = lo + (hi - lo) / 2;
    uint64_t mlen;
    const uint8_t* m = bytes_key(mid, &mlen);
    int c = compare_bytes(m, mlen, key, length);
    if (c == 0) return mid;
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return -1;
}

void KeyDictionary::validate(KeyKind kind, int64_t n, const uint8_t* data, uint64_t length) {
  auto bad = [](const std::string& what) { fail(ErrorKind::InvalidModel, "invalid key dictionary: " + what); };
  if (n < 0) bad("negative count");
  uint64_t un = static_cast<uint64_t>(n);
  if (kind == KeyKind::Int) {
    if (un > length / 8 || length != 8 * un) bad("size does not match the key count");
    const int64_t* k = reinterpret_cast<const int64_t*>(data);
    for (uint64_t i = 1; i < un; ++i)
      if (!(k[i - 1] < k[i])) bad("integer keys are not strictly ascending");
  } else if (kind == KeyKind::Uuid) {
    if (un > length / 16 || length != 16 * un) bad("size does not match the key count");
    for (uint64_t i = 1; i < un; ++i)
      if (std::memcmp(data + 16 * (i - 1), data + 16 * i, 16) >= 0) bad("uuid keys are not strictly ascending");
  } else if (kind == KeyKind::Text) {
    if (un > (length / 8) || length < 8 * (un + 1)) bad("size cannot hold the offsets");
    const uint64_t* off = reinterpret_cast<const uint64_t*>(data);
    uint64_t blob_len = length - 8 * (un + 1);
    if (off[0] != 0 || off[un] != blob_len) bad("offsets do not cover the key bytes");
    for (uint64_t i = 0; i < un; ++i)
      if (off[i] > off[i + 1] || off[i + 1] > blob_len) bad("offsets are out of order or out of range");
    const uint8_t* blob = data + 8 * (un + 1);
    for (uint64_t i = 1; i < un; ++i)
      if (compare_bytes(blob + off[i - 1], off[i] - off[i - 1], blob + off[i], off[i + 1] - off[i]) >= 0)
        bad("text keys are not strictly ascending");
  } else {
    bad("unknown key kind");
  }
}

KeyInterner::KeyInterner(KeyKind kind) : kind_(kind) {
  if (kind != KeyKind::Int) offsets_.push_back(0);
  slots_.assign(1024, 0);
  slot_tags_.assign(1024, 0);
  mask_ = 1023;
}

uint64_t KeyInterner::hash_at(uint32_t id) const {
  if (kind_ == KeyKind::Int) return hash_int(ints_[id]);
  return hash_bytes(blob_.data() + offsets_[id], offsets_[id + 1] - offsets_[id]);
}

void KeyInterner::grow() {
  uint64_t cap = (mask_ + 1) * 2;
  std::vector<uint32_t> slots(cap, 0), tags(cap, 0);
  uint64_t mask = cap - 1;
  for (uint32_t id = 0; id < count_; ++id) {
    uint64_t h = hash_at(id);
    uint64_t s = h & mask;
    while (slots[s] != 0) s = (s + 1) & mask;
    slots[s] = id + 1;
    tags[s] = static_cast<uint32_t>(h >> 32);
  }
  slots_.swap(slots);
  slot_tags_.swap(tags);
  mask_ = mask;
}

// Keys the inline intern_int() did not find in the direct table: new direct keys, keys
// that make the direct table grow, and keys outside it (hashed).
uint32_t KeyInterner::intern_int_slow(int64_t key) {
  if (key >= 0 && key < kDirectLimit) {
    uint64_t k = static_cast<uint64_t>(key);
    if (k < direct_.size()) {
      uint32_t v = direct_[k];
      if (v != 0) return v - 1;
    } else if (k < 4 * count_ + 65536) {
      // Grow the direct table while it stays dense relative to the keys seen; keys
      // already hashed move to it lazily through the hashed path below.
      uint64_t cap = std::max<uint64_t>(direct_.size() * 2, 65536);
      while (cap <= k) cap *= 2;
      direct_.resize(std::min<uint64_t>(cap, kDirectLimit), 0);
    }
    if (k < direct_.size()) {
      uint32_t id = intern_int_hashed(key);
      direct_[k] = id + 1;
      return id;
    }
  }
  return intern_int_hashed(key);
}

uint32_t KeyInterner::intern_int_hashed(int64_t key) {
  uint64_t h = hash_int(key);
  uint32_t tag = static_cast<uint32_t>(h >> 32);
  uint64_t s = h & mask_;
  for (;;) {
    uint32_t v = slots_[s];
    if (v == 0) break;
    if (slot_tags_[s] == tag && ints_[v - 1] == key) return v - 1;
    s = (s + 1) & mask_;
  }
  if (count_ >= 0xFFFFFFF0u) fail(ErrorKind::ProgramLimit, "too many distinct IDs (more than 4 billion)");
  uint32_t id = static_cast<uint32_t>(count_++);
  ints_.push_back(key);
  slots_[s] = id + 1;
  slot_tags_[s] = tag;
  if (count_ * 2 > mask_ + 1) grow();
  return id;
}

uint32_t KeyInterner::intern_bytes(const uint8_t* key, uint64_t length) {
  uint64_t h = hash_bytes(key, length);
  uint32_t tag = static_cast<uint32_t>(h >> 32);
  uint64_t s = h & mask_;
  for (;;) {
    uint32_t v = slots_[s];
    if (v == 0) break;
    if (slot_tags_[s] == tag) {
      uint64_t o = offsets_[v - 1], len = offsets_[v] - o;
      if (len == length && (length == 0 || std::memcmp(blob_.data() + o, key, length) == 0)) return v - 1;
    }
    s = (s + 1) & mask_;
  }
  if (count_ >= 0xFFFFFFF0u) fail(ErrorKind::ProgramLimit, "too many distinct IDs (more than 4 billion)");
  uint32_t id = static_cast<uint32_t>(count_++);
  blob_.insert(blob_.end(), key, key + length);
  offsets_.push_back(blob_.size());
  slots_[s] = id + 1;
  slot_tags_[s] = tag;
  if (count_ * 2 > mask_ + 1) grow();
  return id;
}

std::vector<uint32_t> KeyInterner::sorted_order() const {
  std::vector<uint32_t> order(count_);
  for (uint32_t i = 0; i < count_; ++i) order[i] = i;
  if (kind_ == KeyKind::Int) {
    std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) { return ints_[a] < ints_[b]; });
  } else {
    std::sort(order.begin(), order.end(), [this](uint32_t a, uint32_t b) {
      return compare_bytes(blob_.data() + offsets_[a], offsets_[a + 1] - offsets_[a], blob_.data() + offsets_[b],
                           offsets_[b + 1] - offsets_[b]) < 0;
    });
  }
  return order;
}

std::vector<uint32_t> KeyInterner::invert(const std::vector<uint32_t>& order) {
  std::vector<uint32_t> rank(order.size());
  for (uint32_t r = 0; r < order.size(); ++r) rank[order[r]] = r;
  return rank;
}

std::vector<uint8_t> KeyInterner::dictionary_bytes(const std::vector<uint32_t>& order) const {
  std::vector<uint8_t> out;
  uint64_t n = order.size();
  if (kind_ == KeyKind::Int) {
    out.resize(8 * n);
    int64_t* k = reinterpret_cast<int64_t*>(out.data());
    for (uint64_t r = 0; r < n; ++r) k[r] = ints_[order[r]];
  } else if (kind_ == KeyKind::Uuid) {
    out.resize(16 * n);
    for (uint64_t r = 0; r < n; ++r) std::memcpy(out.data() + 16 * r, blob_.data() + offsets_[order[r]], 16);
  } else {
    out.resize(8 * (n + 1) + blob_.size());
    uint64_t* off = reinterpret_cast<uint64_t*>(out.data());
    uint8_t* dst = out.data() + 8 * (n + 1);
    uint64_t pos = 0;
    off[0] = 0;
    for (uint64_t r = 0; r < n; ++r) {
      uint64_t o = offsets_[order[r]], len = offsets_[order[r] + 1] - o;
      if (len) std::memcpy(dst + pos, blob_.data() + o, len);
      pos += len;
      off[r + 1] = pos;
    }
  }
  return out;
}

uint64_t KeyInterner::state_size() const {
  // count, then Int: keys; Text/Uuid: blob length, offsets[count + 1], blob.
  if (kind_ == KeyKind::Int) return 8 + 8 * count_;
  return 16 + 8 * (count_ + 1) + blob_.size();
}

uint8_t* KeyInterner::write_state(uint8_t* dst) const {
  uint64_t n = count_;
  std::memcpy(dst, &n, 8);
  dst += 8;
  if (kind_ == KeyKind::Int) {
    if (n) std::memcpy(dst, ints_.data(), 8 * n);
    return dst + 8 * n;
  }
  uint64_t blen = blob_.size();
  std::memcpy(dst, &blen, 8);
  dst += 8;
  std::memcpy(dst, offsets_.data(), 8 * (n + 1));
  dst += 8 * (n + 1);
  if (blen) std::memcpy(dst, blob_.data(), blen);
  return dst + blen;
}

const uint8_t* KeyInterner::read_state(const uint8_t* src, const uint8_t* end) {
  auto bad = []() { fail(ErrorKind::InvalidModel, "malformed aggregate state"); };
  auto need = [&](uint64_t bytes) {
    if (static_cast<uint64_t>(end - src) < bytes) bad();
  };
  uint64_t n;
  need(8);
  std::memcpy(&n, src, 8);
  src += 8;
  if (n > 0xFFFFFFF0u) bad();
  if (kind_ == KeyKind::Int) {
    need(8 * n);
    for (uint64_t i = 0; i < n; ++i) {
      int64_t k;
      std::memcpy(&k, src + 8 * i, 8);
      if (intern_int(k) != i) bad();
    }
    return src + 8 * n;
  }
  uint64_t blen;
  need(8);
  std::memcpy(&blen, src, 8);
  src += 8;
  need(8 * (n + 1));
  std::vector<uint64_t> off(n + 1);
  std::memcpy(off.data(), src, 8 * (n + 1));
  src += 8 * (n + 1);
  need(blen);
  if (off[0] != 0 || off[n] != blen) bad();
  for (uint64_t i = 0; i < n; ++i) {
    if (off[i] > off[i + 1] || off[i + 1] > blen) bad();
    if (kind_ == KeyKind::Uuid && off[i + 1] - off[i] != 16) bad();
    if (intern_bytes(src + off[i], off[i + 1] - off[i]) != i) bad();
  }
  return src + blen;
}

uint64_t KeyInterner::memory_bytes() const {
  return ints_.capacity() * 8 + offsets_.capacity() * 8 + blob_.capacity() + slots_.capacity() * 8 +
         direct_.capacity() * 4;
}

}  // namespace recsys
