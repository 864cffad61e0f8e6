// KeyInterner (ingest-time interning) and KeyDictionary (the sorted, in-place model
// section) for integer, text and uuid keys.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "keys.h"

using recsys::ErrorKind;
using recsys::KeyDictionary;
using recsys::KeyInterner;
using recsys::KeyKind;

namespace {

const uint8_t* bytes_of(const std::string& s) { return reinterpret_cast<const uint8_t*>(s.data()); }

uint32_t intern(KeyInterner& in, const std::string& s) { return in.intern_bytes(bytes_of(s), s.size()); }

std::string key_at(const KeyInterner& in, uint32_t id) {
  uint64_t len = 0;
  const uint8_t* p = in.bytes_key(id, &len);
  return std::string(reinterpret_cast<const char*>(p), len);
}

std::string dict_key_at(const KeyDictionary& d, int64_t index) {
  uint64_t len = 0;
  const uint8_t* p = d.bytes_key(index, &len);
  return std::string(reinterpret_cast<const char*>(p), len);
}

int64_t dict_find(const KeyDictionary& d, const std::string& s) { return d.find_bytes(bytes_of(s), s.size()); }

// A sixteen-byte uuid key built from two words (big-endian so memcmp order = (hi, lo)).
std::string uuid_key(uint64_t hi, uint64_t lo) {
  std::string s(16, '\0');
  for (int i = 0; i < 8; ++i) {
    s[i] = static_cast<char>(hi >> (56 - 8 * i));
    s[8 + i] = static_cast<char>(lo >> (56 - 8 * i));
  }
  return s;
}

std::vector<uint8_t> state_of(const KeyInterner& in) {
  std::vector<uint8_t> buf(in.state_size());
  uint8_t* end = in.write_state(buf.data());
  EXPECT_EQ(end, buf.data() + buf.size());
  return buf;
}

// Expects Error(InvalidModel) from a throwing statement.
#define EXPECT_INVALID_MODEL(stmt)                                      \
  do {                                                                  \
    try {                                                               \
      stmt;                                                             \
      ADD_FAILURE() << "no exception from: " #stmt;                     \
    } catch (const recsys::Error& e) {                                  \
      EXPECT_EQ(e.kind(), ErrorKind::InvalidModel) << e.what();         \
    } catch (...) {                                                     \
      ADD_FAILURE() << "an exception other than recsys::Error: " #stmt; \
    }                                                                   \
  } while (0)

void put_u64(std::vector<uint8_t>& buf, size_t at, uint64_t v) { std::memcpy(buf.data() + at, &v, 8); }

// Serialized text dictionary for keys given in dictionary order (not checked here).
std::vector<uint8_t> text_dict(const std::vector<std::string>& keys) {
  std::vector<uint8_t> out(8 * (keys.size() + 1));
  uint64_t pos = 0;
  put_u64(out, 0, 0);
  std::string blob;
  for (size_t i = 0; i < keys.size(); ++i) {
    blob += keys[i];
    pos += keys[i].size();
    put_u64(out, 8 * (i + 1), pos);
  }
  out.insert(out.end(), blob.begin(), blob.end());
  return out;
}

std::vector<uint8_t> int_dict(const std::vector<int64_t>& keys) {
  std::vector<uint8_t> out(8 * keys.size());
  if (!keys.empty()) std::memcpy(out.data(), keys.data(), out.size());
  return out;
}

}  // namespace

// ---------------------------------------------------------------- interning

TEST(KeyInterner, IntIdsAreDenseInArrivalOrder) {
  KeyInterner in(KeyKind::Int);
  EXPECT_EQ(in.kind(), KeyKind::Int);
  EXPECT_EQ(in.size(), 0u);
  EXPECT_EQ(in.intern_int(500), 0u);
  EXPECT_EQ(in.intern_int(-7), 1u);
  EXPECT_EQ(in.intern_int(500), 0u);
  EXPECT_EQ(in.intern_int(0), 2u);
  EXPECT_EQ(in.intern_int(std::numeric_limits<int64_t>::min()), 3u);
  EXPECT_EQ(in.intern_int(std::numeric_limits<int64_t>::max()), 4u);
  EXPECT_EQ(in.intern_int(-7), 1u);
  EXPECT_EQ(in.intern_int(std::numeric_limits<int64_t>::min()), 3u);
  EXPECT_EQ(in.size(), 5u);
  EXPECT_EQ(in.int_key(0), 500);
  EXPECT_EQ(in.int_key(1), -7);
  EXPECT_EQ(in.int_key(3), std::numeric_limits<int64_t>::min());
}

TEST(KeyInterner, IntSmallNonNegativeAndHashedKeysAgree) {
  // Small non-negative keys may take a direct-indexed path and others a hash table; a
  // key seen first on one path must keep its id when later looked up on the other.
  KeyInterner in(KeyKind::Int);
  std::unordered_map<int64_t, uint32_t> want;
  want.reserve(400000);
  int64_t mismatches = 0, first_bad = 0;
  auto check = [&](int64_t key) {
    auto it = want.find(key);
    uint32_t expect = it == want.end() ? static_cast<uint32_t>(want.size()) : it->second;
    uint32_t got = in.intern_int(key);
    if (got != expect && mismatches++ == 0) first_bad = key;
    want.emplace(key, expect);
  };
  const int64_t far[] = {1000000, (int64_t(1) << 24) - 1, int64_t(1) << 24, (int64_t(1) << 24) + 1, 3000000,
                         -1, -65536, std::numeric_limits<int64_t>::max()};
  for (int64_t k : far) check(k);  // few keys yet: these go through the hash table
  std::mt19937_64 rng(42);
  std::vector<int64_t> dense(200000);
  for (size_t i = 0; i < dense.size(); ++i) dense[i] = static_cast<int64_t>(i);
  std::shuffle(dense.begin(), dense.end(), rng);
  for (size_t i = 0; i < dense.size(); ++i) {
    check(dense[i]);
    if (i % 1000 == 0) check(static_cast<int64_t>(rng() % 5000000));  // sparse keys meanwhile
  }
  // The far keys again, now that a direct table may cover some of them.
  for (int64_t k : far) check(k);
  for (int64_t k = 0; k < 200000; k += 17) check(k);
  for (int i = 0; i < 2000; ++i) check(static_cast<int64_t>(rng() % 5000000));
  EXPECT_EQ(mismatches, 0) << "first wrong id for key " << first_bad;
  EXPECT_EQ(in.size(), want.size());
  int64_t wrong_keys = 0, wrong_ranks = 0;
  for (auto& kv : want) wrong_keys += in.int_key(kv.second) != kv.first;
  EXPECT_EQ(wrong_keys, 0);
  // The sorted order is the numeric order of every key.
  std::vector<std::pair<int64_t, uint32_t>> sorted(want.begin(), want.end());
  std::sort(sorted.begin(), sorted.end());
  std::vector<uint32_t> order = in.sorted_order();
  ASSERT_EQ(order.size(), sorted.size());
  for (size_t r = 0; r < sorted.size(); ++r) wrong_ranks += order[r] != sorted[r].second;
  EXPECT_EQ(wrong_ranks, 0);
}

TEST(KeyInterner, TextIdsAreDenseAndRepeatsMatch) {
  KeyInterner in(KeyKind::Text);
  const std::string zero1("a\0b", 3), zero2("a\0c", 3), just_zero("\0", 1), two_zeros("\0\0", 2);
  EXPECT_EQ(intern(in, "alice"), 0u);
  EXPECT_EQ(intern(in, ""), 1u);
  EXPECT_EQ(intern(in, zero1), 2u);
  EXPECT_EQ(intern(in, zero2), 3u);
  EXPECT_EQ(intern(in, "a"), 4u);  // a prefix of zero1 is a different key
  EXPECT_EQ(intern(in, just_zero), 5u);
  EXPECT_EQ(intern(in, two_zeros), 6u);
  EXPECT_EQ(intern(in, "\xff\xfe"), 7u);
  EXPECT_EQ(in.size(), 8u);
  // Repeats, including the empty key through a null pointer.
  EXPECT_EQ(intern(in, ""), 1u);
  EXPECT_EQ(in.intern_bytes(nullptr, 0), 1u);
  EXPECT_EQ(intern(in, zero1), 2u);
  EXPECT_EQ(intern(in, zero2), 3u);
  EXPECT_EQ(intern(in, just_zero), 5u);
  EXPECT_EQ(intern(in, two_zeros), 6u);
  EXPECT_EQ(intern(in, "alice"), 0u);
  EXPECT_EQ(in.size(), 8u);
  EXPECT_EQ(key_at(in, 0), "alice");
  EXPECT_EQ(key_at(in, 1), "");
  EXPECT_EQ(key_at(in, 2), zero1);
  EXPECT_EQ(key_at(in, 6), two_zeros);
  EXPECT_EQ(key_at(in, 7), "\xff\xfe");
}

TEST(KeyInterner, EmptyTextAsFirstKey) {
  KeyInterner in(KeyKind::Text);
  EXPECT_EQ(in.intern_bytes(nullptr, 0), 0u);
  EXPECT_EQ(intern(in, ""), 0u);
  EXPECT_EQ(intern(in, "x"), 1u);
  EXPECT_EQ(key_at(in, 0), "");
}

TEST(KeyInterner, UuidIdsAreDense) {
  KeyInterner in(KeyKind::Uuid);
  std::string a = uuid_key(1, 2), b = uuid_key(1, 3), z = uuid_key(0, 0), f = uuid_key(~0ull, ~0ull);
  EXPECT_EQ(intern(in, a), 0u);
  EXPECT_EQ(intern(in, z), 1u);
  EXPECT_EQ(intern(in, b), 2u);
  EXPECT_EQ(intern(in, a), 0u);
  EXPECT_EQ(intern(in, f), 3u);
  EXPECT_EQ(intern(in, z), 1u);
  EXPECT_EQ(in.size(), 4u);
  EXPECT_EQ(key_at(in, 1), z);
  EXPECT_EQ(key_at(in, 3), f);
}

TEST(KeyInterner, IntGrowthPastManyRehashes) {
  KeyInterner in(KeyKind::Int);
  const uint32_t n = 200000;
  // Keys with structure (multiples of a large stride, negatives) to stress the hash.
  auto key = [](uint32_t i) { return (static_cast<int64_t>(i) - 100000) * 4096 + (i % 3); };
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(in.intern_int(key(i)), i) << i;
  EXPECT_EQ(in.size(), n);
  for (uint32_t i = 0; i < n; i += 7) ASSERT_EQ(in.intern_int(key(i)), i) << i;
  for (uint32_t i = 0; i < n; i += 997) EXPECT_EQ(in.int_key(i), key(i));
  EXPECT_EQ(in.size(), n);
  EXPECT_GT(in.memory_bytes(), uint64_t(n) * 8);
}

TEST(KeyInterner, TextGrowthPastManyRehashes) {
  KeyInterner in(KeyKind::Text);
  const uint32_t n = 200000;
  auto key = [](uint32_t i) {
    std::string s = "user-" + std::to_string(i);
    if (i % 5 == 0) s.push_back('\0');  // distinct from the key without the zero byte
    if (i % 11 == 0) s = std::string(i % 40, 'q') + s;
    return s;
  };
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(intern(in, key(i)), i) << i;
  EXPECT_EQ(in.size(), n);
  for (uint32_t i = 0; i < n; i += 13) ASSERT_EQ(intern(in, key(i)), i) << i;
  for (uint32_t i = 0; i < n; i += 1009) EXPECT_EQ(key_at(in, i), key(i));
  EXPECT_EQ(in.size(), n);
}

TEST(KeyInterner, UuidGrowthPastManyRehashes) {
  KeyInterner in(KeyKind::Uuid);
  const uint32_t n = 100000;
  for (uint32_t i = 0; i < n; ++i) ASSERT_EQ(intern(in, uuid_key(i % 17, i)), i);
  for (uint32_t i = 0; i < n; i += 3) ASSERT_EQ(intern(in, uuid_key(i % 17, i)), i);
  EXPECT_EQ(in.size(), n);
}

// ---------------------------------------------------------------- sorting and dictionary

TEST(KeyDictionary, IntRoundTripSortsNumerically) {
  KeyInterner in(KeyKind::Int);
  std::vector<int64_t> keys = {5, -1, std::numeric_limits<int64_t>::max(), 0, -1000000000000LL,
                               std::numeric_limits<int64_t>::min(), 42, -2, 1, 7};
  for (int64_t k : keys) in.intern_int(k);
  std::vector<uint32_t> order = in.sorted_order();
  ASSERT_EQ(order.size(), keys.size());
  std::vector<uint32_t> rank = KeyInterner::invert(order);
  ASSERT_EQ(rank.size(), keys.size());
  for (uint32_t r = 0; r < order.size(); ++r) EXPECT_EQ(rank[order[r]], r);

  std::vector<int64_t> sorted = keys;
  std::sort(sorted.begin(), sorted.end());
  for (uint32_t r = 0; r < order.size(); ++r) EXPECT_EQ(in.int_key(order[r]), sorted[r]) << r;

  std::vector<uint8_t> bytes = in.dictionary_bytes(order);
  ASSERT_EQ(bytes.size(), 8 * keys.size());
  EXPECT_NO_THROW(KeyDictionary::validate(KeyKind::Int, keys.size(), bytes.data(), bytes.size()));
  KeyDictionary d(KeyKind::Int, keys.size(), bytes.data(), bytes.size());
  EXPECT_EQ(d.kind(), KeyKind::Int);
  EXPECT_EQ(d.size(), static_cast<int64_t>(keys.size()));
  for (size_t r = 0; r < sorted.size(); ++r) {
    EXPECT_EQ(d.int_key(r), sorted[r]);
    EXPECT_EQ(d.find_int(sorted[r]), static_cast<int64_t>(r));
  }
  // The rank of each provisional id matches the dictionary's index.
  for (uint32_t id = 0; id < keys.size(); ++id) EXPECT_EQ(d.find_int(in.int_key(id)), rank[id]);
  EXPECT_EQ(d.find_int(std::numeric_limits<int64_t>::min()), 0);
  EXPECT_EQ(d.find_int(std::numeric_limits<int64_t>::max()), static_cast<int64_t>(keys.size()) - 1);
  for (int64_t absent : {int64_t(3), int64_t(-3), int64_t(6), std::numeric_limits<int64_t>::min() + 1,
                         std::numeric_limits<int64_t>::max() - 1, int64_t(43)})
    EXPECT_EQ(d.find_int(absent), -1) << absent;
  // A text lookup on an integer dictionary finds nothing.
  EXPECT_EQ(dict_find(d, "5"), -1);
}

TEST(KeyDictionary, TextRoundTripSortsBytewiseShorterPrefixFirst) {
  KeyInterner in(KeyKind::Text);
  std::vector<std::string> keys = {"b",
                                   "ab",
                                   "",
                                   "a",
                                   std::string("a\0", 2),
                                   std::string("a\0b", 3),
                                   "abc",
                                   "\x7f",
                                   "\x80",
                                   "\xff",
                                   "B",
                                   std::string("\0", 1),
                                   "aa",
                                   "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"};
  for (auto& k : keys) intern(in, k);
  std::vector<uint32_t> order = in.sorted_order();
  std::vector<std::string> want = keys;
  // std::string compares char_traits<char>, which compares as unsigned char (memcmp):
  // the shorter of two strings with a common prefix comes first.
  std::sort(want.begin(), want.end());
  const std::vector<std::string> explicit_order = {"",
                                                   std::string("\0", 1),
                                                   "B",
                                                   "a",
                                                   std::string("a\0", 2),
                                                   std::string("a\0b", 3),
                                                   "aa",
                                                   "ab",
                                                   "abc",
                                                   "b",
                                                   "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz",
                                                   "\x7f",
                                                   "\x80",
                                                   "\xff"};
  ASSERT_EQ(want, explicit_order);
  ASSERT_EQ(order.size(), want.size());
  for (size_t r = 0; r < order.size(); ++r) EXPECT_EQ(key_at(in, order[r]), want[r]) << r;

  std::vector<uint8_t> bytes = in.dictionary_bytes(order);
  EXPECT_NO_THROW(KeyDictionary::validate(KeyKind::Text, keys.size(), bytes.data(), bytes.size()));
  KeyDictionary d(KeyKind::Text, keys.size(), bytes.data(), bytes.size());
  std::vector<uint32_t> rank = KeyInterner::invert(order);
  for (size_t r = 0; r < want.size(); ++r) {
    EXPECT_EQ(dict_key_at(d, r), want[r]);
    EXPECT_EQ(dict_find(d, want[r]), static_cast<int64_t>(r)) << r;
  }
  for (uint32_t id = 0; id < keys.size(); ++id) EXPECT_EQ(dict_find(d, key_at(in, id)), rank[id]);
  for (const std::string& absent : {std::string("c"), std::string("A"), std::string("a\0a", 3),
                                    std::string("\0\0", 2), std::string("abcd"), std::string("\xfe"),
                                    std::string("aaa"), std::string("zzzz")})
    EXPECT_EQ(dict_find(d, absent), -1) << absent;
  EXPECT_EQ(d.find_int(0), -1);
}

TEST(KeyDictionary, UuidRoundTripSortsBytewise) {
  KeyInterner in(KeyKind::Uuid);
  std::vector<std::string> keys = {uuid_key(5, 1), uuid_key(0, 9), uuid_key(~0ull, 0), uuid_key(0x80ull << 56, 0),
                                   uuid_key(0x7full << 56, ~0ull), uuid_key(5, 0), uuid_key(0, 0)};
  for (auto& k : keys) intern(in, k);
  std::vector<uint32_t> order = in.sorted_order();
  std::vector<std::string> want = keys;
  std::sort(want.begin(), want.end());
  for (size_t r = 0; r < order.size(); ++r) EXPECT_EQ(key_at(in, order[r]), want[r]) << r;
  std::vector<uint8_t> bytes = in.dictionary_bytes(order);
  ASSERT_EQ(bytes.size(), 16 * keys.size());
  EXPECT_NO_THROW(KeyDictionary::validate(KeyKind::Uuid, keys.size(), bytes.data(), bytes.size()));
  KeyDictionary d(KeyKind::Uuid, keys.size(), bytes.data(), bytes.size());
  for (size_t r = 0; r < want.size(); ++r) {
    EXPECT_EQ(dict_key_at(d, r), want[r]);
    EXPECT_EQ(dict_find(d, want[r]), static_cast<int64_t>(r));
  }
  EXPECT_EQ(dict_find(d, uuid_key(5, 2)), -1);
  EXPECT_EQ(dict_find(d, uuid_key(1, 0)), -1);
  // Wrong length: never found, even as a prefix of a key.
  EXPECT_EQ(dict_find(d, want[0].substr(0, 15)), -1);
  EXPECT_EQ(dict_find(d, want[0] + "x"), -1);
}

TEST(KeyDictionary, LargeRandomRoundTrip) {
  std::mt19937_64 rng(99);
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text}) {
    KeyInterner in(kind);
    std::set<int64_t> int_set;
    std::set<std::string> text_set;
    for (int i = 0; i < 20000; ++i) {
      if (kind == KeyKind::Int) {
        int64_t k = static_cast<int64_t>(rng()) >> (rng() % 60);
        int_set.insert(k);
        in.intern_int(k);
      } else {
        std::string s(rng() % 6, '\0');
        for (auto& c : s) c = static_cast<char>(rng() % 4);  // small alphabet with zero bytes
        text_set.insert(s);
        intern(in, s);
      }
    }
    std::vector<uint32_t> order = in.sorted_order();
    std::vector<uint8_t> bytes = in.dictionary_bytes(order);
    int64_t n = in.size();
    ASSERT_NO_THROW(KeyDictionary::validate(kind, n, bytes.data(), bytes.size()));
    KeyDictionary d(kind, n, bytes.data(), bytes.size());
    int64_t r = 0;
    if (kind == KeyKind::Int) {
      ASSERT_EQ(n, static_cast<int64_t>(int_set.size()));
      for (int64_t k : int_set) {
        EXPECT_EQ(d.int_key(r), k);
        EXPECT_EQ(d.find_int(k), r++);
      }
    } else {
      ASSERT_EQ(n, static_cast<int64_t>(text_set.size()));
      for (const std::string& k : text_set) {
        EXPECT_EQ(dict_key_at(d, r), k);
        EXPECT_EQ(dict_find(d, k), r++);
      }
      EXPECT_EQ(dict_find(d, std::string("\x05")), -1);
      EXPECT_EQ(dict_find(d, std::string(6, '\0')), -1);
    }
  }
}

TEST(KeyDictionary, EmptyDictionaries) {
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    KeyInterner in(kind);
    std::vector<uint32_t> order = in.sorted_order();
    EXPECT_TRUE(order.empty());
    EXPECT_TRUE(KeyInterner::invert(order).empty());
    std::vector<uint8_t> bytes = in.dictionary_bytes(order);
    EXPECT_EQ(bytes.size(), kind == KeyKind::Text ? 8u : 0u);
    EXPECT_NO_THROW(KeyDictionary::validate(kind, 0, bytes.data(), bytes.size()));
    KeyDictionary d(kind, 0, bytes.data(), bytes.size());
    EXPECT_EQ(d.size(), 0);
    EXPECT_EQ(d.find_int(1), -1);
    EXPECT_EQ(dict_find(d, kind == KeyKind::Uuid ? uuid_key(0, 0) : std::string("")), -1);
  }
}

// ---------------------------------------------------------------- KeyDictionary::validate

TEST(KeyDictionaryValidate, IntRejectsUnsortedDuplicateAndWrongSize) {
  auto ok = int_dict({-5, 0, 3, 9});
  EXPECT_NO_THROW(KeyDictionary::validate(KeyKind::Int, 4, ok.data(), ok.size()));
  auto unsorted = int_dict({-5, 3, 0, 9});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, 4, unsorted.data(), unsorted.size()));
  auto dup = int_dict({-5, 0, 0, 9});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, 4, dup.data(), dup.size()));
  // Signed order: INT64_MIN first, not after positives.
  auto unsigned_order = int_dict({0, 1, std::numeric_limits<int64_t>::min()});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, 3, unsigned_order.data(), unsigned_order.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, 3, ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, 5, ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, 4, ok.data(), ok.size() - 1));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, -1, ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, std::numeric_limits<int64_t>::max(), ok.data(),
                                               ok.size()));
  // A count whose byte size wraps around to the section length (8 * (2^61 + 4) = 32
  // mod 2^64) must be rejected, not used to read 2^61 keys.
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Int, (int64_t(1) << 61) + 4, ok.data(), ok.size()));
}

TEST(KeyDictionaryValidate, UuidRejectsUnsortedDuplicateAndWrongSize) {
  std::string a = uuid_key(0, 1), b = uuid_key(0, 2), c = uuid_key(1, 0);
  auto make = [](const std::vector<std::string>& keys) {
    std::vector<uint8_t> out;
    for (auto& k : keys) out.insert(out.end(), k.begin(), k.end());
    return out;
  };
  auto ok = make({a, b, c});
  EXPECT_NO_THROW(KeyDictionary::validate(KeyKind::Uuid, 3, ok.data(), ok.size()));
  auto unsorted = make({a, c, b});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Uuid, 3, unsorted.data(), unsorted.size()));
  auto dup = make({a, b, b});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Uuid, 3, dup.data(), dup.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Uuid, 2, ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Uuid, 3, ok.data(), ok.size() - 8));
  // 16 * (2^60 + 3) = 48 mod 2^64.
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Uuid, (int64_t(1) << 60) + 3, ok.data(), ok.size()));
}

TEST(KeyDictionaryValidate, TextRejectsUnsortedDuplicateBadOffsetsAndWrongSize) {
  std::vector<std::string> keys = {"", "a", std::string("a\0", 2), "ab", "b"};
  auto ok = text_dict(keys);
  const int64_t n = static_cast<int64_t>(keys.size());
  EXPECT_NO_THROW(KeyDictionary::validate(KeyKind::Text, n, ok.data(), ok.size()));

  auto unsorted = text_dict({"", "ab", "a", "b"});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, 4, unsorted.data(), unsorted.size()));
  auto longer_first = text_dict({"ab", "a"});  // prefix must come first
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, 2, longer_first.data(), longer_first.size()));
  auto dup = text_dict({"a", "b", "b"});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, 3, dup.data(), dup.size()));
  auto dup_empty = text_dict({"", ""});
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, 2, dup_empty.data(), dup_empty.size()));

  // offsets[0] != 0
  auto bad = ok;
  put_u64(bad, 0, 1);
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, bad.data(), bad.size()));
  // The last offset does not match the blob length (too small, too large).
  bad = ok;
  put_u64(bad, 8 * n, 3);
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, bad.data(), bad.size()));
  bad = ok;
  put_u64(bad, 8 * n, 1000);
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, bad.data(), bad.size()));
  // A middle offset out of order, or far out of range (would read outside the section).
  bad = ok;
  put_u64(bad, 8 * 3, 0);
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, bad.data(), bad.size()));
  bad = ok;
  put_u64(bad, 8 * 2, ~0ull);
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, bad.data(), bad.size()));
  bad = ok;
  put_u64(bad, 8 * 2, 1ull << 40);
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, bad.data(), bad.size()));

  // Wrong sizes: too short for the offsets, a count that does not match.
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, ok.data(), 8 * n));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, ok.data(), 0));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n, ok.data(), ok.size() - 1));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n - 1, ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, n + 1, ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(KeyKind::Text, -1, ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(
      KeyDictionary::validate(KeyKind::Text, std::numeric_limits<int64_t>::max(), ok.data(), ok.size()));
  EXPECT_INVALID_MODEL(KeyDictionary::validate(static_cast<KeyKind>(9), 0, ok.data(), ok.size()));
}

// ---------------------------------------------------------------- aggregate state

TEST(KeyInternerState, RoundTripAllKinds) {
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    KeyInterner in(kind);
    for (uint32_t i = 0; i < 5000; ++i) {
      uint32_t v = (i * 7919u) % 5003u;
      if (kind == KeyKind::Int)
        in.intern_int(static_cast<int64_t>(v) * -1000003 + 17);
      else if (kind == KeyKind::Text)
        intern(in, v % 97 == 0 ? std::string() : std::string("k\0", 2) + std::to_string(v));
      else
        intern(in, uuid_key(v, ~static_cast<uint64_t>(v)));
    }
    std::vector<uint8_t> buf = state_of(in);
    // Trailing bytes (the next part of a larger state) are left alone.
    buf.push_back(0xAB);
    KeyInterner back(kind);
    const uint8_t* end = back.read_state(buf.data(), buf.data() + buf.size());
    EXPECT_EQ(end, buf.data() + buf.size() - 1);
    ASSERT_EQ(back.size(), in.size());
    for (uint32_t id = 0; id < in.size(); ++id) {
      if (kind == KeyKind::Int)
        ASSERT_EQ(back.int_key(id), in.int_key(id));
      else
        ASSERT_EQ(key_at(back, id), key_at(in, id));
    }
    EXPECT_EQ(back.sorted_order(), in.sorted_order());
    // The copy still interns: old keys keep their ids, new keys get the next id.
    if (kind == KeyKind::Int) {
      EXPECT_EQ(back.intern_int(in.int_key(123)), 123u);
      EXPECT_EQ(back.intern_int(1), in.size());
    } else {
      EXPECT_EQ(intern(back, key_at(in, 77)), 77u);
      EXPECT_EQ(intern(back, kind == KeyKind::Uuid ? uuid_key(~0ull, 1) : "fresh"), in.size());
    }
  }
}

TEST(KeyInternerState, EmptyRoundTrip) {
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    KeyInterner in(kind);
    std::vector<uint8_t> buf = state_of(in);
    KeyInterner back(kind);
    EXPECT_EQ(back.read_state(buf.data(), buf.data() + buf.size()), buf.data() + buf.size());
    EXPECT_EQ(back.size(), 0u);
  }
}

TEST(KeyInternerState, EveryTruncationThrows) {
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    KeyInterner in(kind);
    for (int i = 0; i < 20; ++i) {
      if (kind == KeyKind::Int)
        in.intern_int(i * 3 - 10);
      else if (kind == KeyKind::Text)
        intern(in, std::string(i % 4, 'x') + std::to_string(i));
      else
        intern(in, uuid_key(i, i));
    }
    std::vector<uint8_t> full = state_of(in);
    for (size_t len = 0; len < full.size(); ++len) {
      // A fresh heap copy of exactly len bytes, so ASan sees any read past the end.
      std::vector<uint8_t> cut(full.begin(), full.begin() + len);
      KeyInterner back(kind);
      EXPECT_INVALID_MODEL(back.read_state(cut.data(), cut.data() + cut.size()));
    }
  }
}

TEST(KeyInternerState, MalformedStatesThrow) {
  // Huge counts.
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    for (uint64_t n : {~0ull, 0xFFFFFFF1ull, 1ull << 61, 1ull << 62, 0x2000000000000000ull + 1}) {
      std::vector<uint8_t> buf(64, 0);
      put_u64(buf, 0, n);
      KeyInterner back(kind);
      EXPECT_INVALID_MODEL(back.read_state(buf.data(), buf.data() + buf.size()));
    }
  }
  // Int state with a duplicate key.
  {
    std::vector<uint8_t> buf(8 * 4);
    put_u64(buf, 0, 3);
    put_u64(buf, 8, 5);
    put_u64(buf, 16, 6);
    put_u64(buf, 24, 5);
    KeyInterner back(KeyKind::Int);
    EXPECT_INVALID_MODEL(back.read_state(buf.data(), buf.data() + buf.size()));
  }
  // Text states: count, blob length, offsets[n + 1], blob.
  auto text_state = [](std::vector<uint64_t> off, uint64_t blen, std::string blob) {
    std::vector<uint8_t> buf(16 + 8 * off.size());
    put_u64(buf, 0, off.size() - 1);
    put_u64(buf, 8, blen);
    for (size_t i = 0; i < off.size(); ++i) put_u64(buf, 16 + 8 * i, off[i]);
    buf.insert(buf.end(), blob.begin(), blob.end());
    return buf;
  };
  {
    auto ok = text_state({0, 1, 3}, 3, "abc");
    KeyInterner back(KeyKind::Text);
    EXPECT_EQ(back.read_state(ok.data(), ok.data() + ok.size()), ok.data() + ok.size());
    EXPECT_EQ(back.size(), 2u);
  }
  const std::vector<std::vector<uint8_t>> bad_text = {
      text_state({1, 1, 3}, 3, "abc"),                // offsets[0] != 0
      text_state({0, 1, 2}, 3, "abc"),                // last offset != blob length
      text_state({0, 2, 1, 3}, 3, "abc"),             // offsets descend
      text_state({0, ~0ull, 3}, 3, "abc"),            // offset far out of range
      text_state({0, 1, 3}, 4, "abc"),                // blob length beyond the input
      text_state({0, 1, 3}, ~0ull, "abc"),            // absurd blob length
      text_state({0, 1, 2}, 2, "aa"),                 // duplicate key
      text_state({0, 0, 0}, 0, ""),                   // duplicate empty key
  };
  for (size_t i = 0; i < bad_text.size(); ++i) {
    KeyInterner back(KeyKind::Text);
    SCOPED_TRACE("text case " + std::to_string(i));
    EXPECT_INVALID_MODEL(back.read_state(bad_text[i].data(), bad_text[i].data() + bad_text[i].size()));
  }
  // Uuid keys must be 16 bytes each.
  {
    auto bad = text_state({0, 15, 32}, 32, std::string(32, 'u'));
    KeyInterner back(KeyKind::Uuid);
    EXPECT_INVALID_MODEL(back.read_state(bad.data(), bad.data() + bad.size()));
    auto ok = text_state({0, 16, 32}, 32, std::string(16, 'u') + std::string(16, 'v'));
    KeyInterner back2(KeyKind::Uuid);
    EXPECT_NO_THROW(back2.read_state(ok.data(), ok.data() + ok.size()));
    EXPECT_EQ(back2.size(), 2u);
  }
  // Reading into an interner that already holds keys is refused, not merged.
  {
    KeyInterner src(KeyKind::Int);
    src.intern_int(1);
    src.intern_int(2);
    auto buf = state_of(src);
    KeyInterner back(KeyKind::Int);
    back.intern_int(2);
    EXPECT_INVALID_MODEL(back.read_state(buf.data(), buf.data() + buf.size()));
  }
}

TEST(KeyInternerState, RandomGarbageAndByteFlipsNeverCrash) {
  std::mt19937_64 rng(1234);
  for (KeyKind kind : {KeyKind::Int, KeyKind::Text, KeyKind::Uuid}) {
    // Garbage with a plausible small count up front, so parsing goes past the count.
    for (int trial = 0; trial < 2000; ++trial) {
      std::vector<uint8_t> buf(rng() % 200);
      for (auto& b : buf) b = static_cast<uint8_t>(rng());
      if (buf.size() >= 8 && trial % 2 == 0) put_u64(buf, 0, rng() % 8);
      if (buf.size() >= 16 && trial % 4 == 0) put_u64(buf, 8, rng() % 64);
      KeyInterner back(kind);
      try {
        const uint8_t* end = back.read_state(buf.data(), buf.data() + buf.size());
        EXPECT_GE(end, buf.data());
        EXPECT_LE(end, buf.data() + buf.size());
      } catch (const recsys::Error& e) {
        EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
      }
    }
    // Every single-byte flip of a valid state.
    KeyInterner in(kind);
    for (int i = 0; i < 6; ++i) {
      if (kind == KeyKind::Int)
        in.intern_int(i * 1000 - 2500);
      else if (kind == KeyKind::Text)
        intern(in, std::string(i, 'k'));
      else
        intern(in, uuid_key(i, 7 * i));
    }
    std::vector<uint8_t> full = state_of(in);
    for (size_t at = 0; at < full.size(); ++at) {
      for (uint8_t mask : {uint8_t(0xFF), uint8_t(0x01), uint8_t(0x80)}) {
        std::vector<uint8_t> buf = full;
        buf[at] ^= mask;
        KeyInterner back(kind);
        try {
          const uint8_t* end = back.read_state(buf.data(), buf.data() + buf.size());
          EXPECT_LE(end, buf.data() + buf.size());
        } catch (const recsys::Error& e) {
          EXPECT_EQ(e.kind(), ErrorKind::InvalidModel);
        }
      }
    }
  }
}

TEST(KeyHash, DistinguishesZeroBytesAndLength) {
  const uint8_t z[16] = {0};
  std::set<uint64_t> hashes;
  for (uint64_t len = 0; len <= 16; ++len) hashes.insert(recsys::hash_bytes(z, len));
  EXPECT_EQ(hashes.size(), 17u);
  EXPECT_NE(recsys::hash_int(0), recsys::hash_int(1));
  EXPECT_EQ(recsys::hash_int(-5), recsys::hash_int(-5));
  EXPECT_STREQ(recsys::key_kind_name(KeyKind::Int), "integer");
  EXPECT_STREQ(recsys::key_kind_name(KeyKind::Text), "text");
  EXPECT_STREQ(recsys::key_kind_name(KeyKind::Uuid), "uuid");
}
