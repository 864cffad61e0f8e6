// libFuzzer harness: the model reader and every serving call on the models it accepts.
//
// Input: the bytes of a model value (see model_format.h). Its first 4 bytes are the
// varlena length word, which the core never reads; the harness takes them as its own
// controls instead:
//   byte 0, bit 0 clear: repair the header's total_bytes, checksum and fingerprint
//                        before validation, so that mutated structure reaches the
//                        section checks and, when accepted, the serving code (without
//                        it almost every mutation would stop at the checksum);
//           bit 0 set:   validate the bytes exactly as given.
//   bytes 0-3:           the seed of the k, user and item choices below.
// Bytes that ModelView::open or validate_model reject must be rejected with
// Error(InvalidModel); bytes they accept must survive every serving call with small k
// and in-range indices (ASan and UBSan check every read), each call returning a list of
// at most k distinct, in-range items or throwing a recsys::Error.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "content.h"
#include "fuzz_common.h"
#include "kmeans.h"
#include "knn.h"
#include "mf.h"
#include "model_format.h"
#include "parallel.h"
#include "serving.h"

using namespace recsys;
using recsys_fuzz::Aligned;
using recsys_fuzz::Choices;

namespace {

// The answer of a serving call: throws recsys::Error or returns a list of at most k
// distinct items in [0, n), best first when every score is finite.
void check_list(const std::vector<Scored>& out, int64_t returned, int64_t k, int64_t n) {
  FUZZ_CHECK(returned == static_cast<int64_t>(out.size()));
  FUZZ_CHECK(static_cast<int64_t>(out.size()) <= std::max<int64_t>(k, 0));
  std::vector<int32_t> seen;
  bool finite = true;
  for (const Scored& s : out) {
    FUZZ_CHECK(s.index >= 0 && s.index < n);
    seen.push_back(s.index);
    finite = finite && std::isfinite(s.score);
  }
  std::sort(seen.begin(), seen.end());
  FUZZ_CHECK(std::adjacent_find(seen.begin(), seen.end()) == seen.end());
  for (size_t q = 1; finite && q < out.size(); ++q) FUZZ_CHECK(!ranks_before(out[q], out[q - 1]));
}

// Runs one serving call; a recsys::Error (NotSupported, InvalidParameter, ...) is an
// answer, anything else escapes and libFuzzer reports it.
template <class F>
void call(F f) {
  try {
    f();
  } catch (const Error&) {
  }
}

void repair(uint8_t* bytes, uint64_t size) {
  ModelHeader h;
  std::memcpy(&h, bytes, sizeof h);
  h.total_bytes = size;
  std::memcpy(bytes, &h, sizeof h);
  try {
    (void)ModelView::open(bytes, size);  // compute_fingerprint needs a sound table
  } catch (const Error&) {
    return;
  }
  h.fingerprint = compute_fingerprint(bytes, size);
  std::memcpy(bytes, &h, sizeof h);
  const uint64_t cs = compute_checksum(bytes, size);
  h.checksum_lo = static_cast<uint32_t>(cs);
  h.checksum_hi = static_cast<uint32_t>(cs >> 32);
  std::memcpy(bytes, &h, sizeof h);
}

// The key dictionaries: every lookup of a stored key finds its index.
void exercise_keys(const KeyDictionary& d, Choices& c) {
  for (int r = 0; r < 4 && d.size() > 0; ++r) {
    const int64_t i = c.below(d.size());
    if (d.kind() == KeyKind::Int) {
      FUZZ_CHECK(d.find_int(d.int_key(i)) == i);
      (void)d.find_int(static_cast<int64_t>(c.next()));
    } else {
      uint64_t len = 0;
      const uint8_t* p = d.bytes_key(i, &len);
      FUZZ_CHECK(d.find_bytes(p, len) == i);
      const uint8_t probe[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
      (void)d.find_bytes(probe, d.kind() == KeyKind::Uuid ? 16 : c.below(17));
    }
  }
}

void exercise(const ModelView& v, Choices& c) {
  const int64_t nu = v.n_users(), ni = v.n_items();
  std::vector<Scored> out;
  (void)v.params_json();
  int64_t iterations = 0;
  (void)v.history(&iterations);
  exercise_keys(v.user_keys(), c);
  exercise_keys(v.item_keys(), c);
  for (ServingCall sc : {ServingCall::Recommend, ServingCall::RecommendAll, ServingCall::SimilarItems,
                         ServingCall::SimilarUsers, ServingCall::Score, ServingCall::UserFactors,
                         ServingCall::ItemFactors, ServingCall::RankingMetrics})
    call([&] { check_serving_call(v, sc); });

  const int64_t k = c.below(12);
  ItemOrder order;
  bool have_order = false;
  if (has_item_order(v)) {
    call([&] {
      build_item_order(v, order, c.coin());
      have_order = true;
    });
    if (have_order) {
      FUZZ_CHECK(static_cast<int64_t>(order.item.size()) == ni);
      for (size_t p = 1; p < order.bound.size(); ++p) FUZZ_CHECK(!(order.bound[p] > order.bound[p - 1]));
    }
  }
  call([&] { check_list(out, recommend_popular(v, k, out), k, ni); });
  for (int r = 0; r < 3 && nu > 0; ++r) {
    const int64_t u = c.below(nu);
    const bool exclude = c.coin();
    call([&] { check_list(out, recommend_user(v, u, k, exclude, out), k, ni); });
    if (have_order) {
      call([&] { check_list(out, recommend_user(v, u, k, exclude, out, &order), k, ni); });
    }
    call([&] { check_list(out, similar_users(v, u, k, out), k, nu); });
    if (ni > 0) {
      const int64_t i = c.below(ni);
      call([&] { (void)score_pair(v, u, i); });
      call([&] { (void)predict_pair(v, u, i); });
      call([&] { (void)predict_pair(v, -1, i); });
      call([&] { (void)predict_pair(v, u, -1); });
    }
    call([&] { (void)seen_items(v, u); });
  }
  call([&] { (void)predict_pair(v, -1, -1); });
  if (nu > 0) {
    std::vector<int64_t> users;
    const int64_t n = 1 + c.below(5);
    for (int64_t j = 0; j < n; ++j) users.push_back(c.below(nu));
    std::vector<std::vector<Scored>> batch;
    CancelToken never;
    const bool exclude = c.coin();
    call([&] {
      recommend_batch(v, users, k, exclude, 1 + static_cast<int>(c.below(2)), never, batch,
                      have_order ? &order : nullptr);
      FUZZ_CHECK(batch.size() == users.size());
      for (const auto& list : batch) check_list(list, static_cast<int64_t>(list.size()), k, ni);
    });
  }
  for (int r = 0; r < 3 && ni > 0; ++r) {
    const int64_t i = c.below(ni);
    call([&] { check_list(out, similar_items(v, i, k, out), k, ni); });
    call([&] { check_list(out, stored_neighbours(v, i, k, out), k, ni); });
    call([&] { (void)content_similarity(v, i, c.below(ni)); });
    std::vector<int64_t> items;
    std::vector<float> weights;
    const int64_t n = c.below(4);
    const bool weighted = c.coin();
    for (int64_t j = 0; j < n; ++j) {
      items.push_back(c.below(ni));
      if (weighted) weights.push_back(static_cast<float>(c.below(5)) - 2.0f);
    }
    const bool exclude = c.coin();
    call([&] { check_list(out, knn_recommend_from_items(v, items, weights, k, exclude, out), k, ni); });
    call([&] { check_list(out, content_recommend_from_items(v, items, weights, k, exclude, out), k, ni); });
  }
  // k-means: what model_info and recsys.cluster do.
  int64_t clusters = 0, d = 0;
  call([&] {
    clusters = kmeans_clusters(v);
    d = kmeans_dimension(v);
  });
  if (clusters > 0 && d > 0 && d <= 4096) {
    std::vector<float> centre(static_cast<size_t>(d));
    for (int64_t j = 0; j < std::min<int64_t>(clusters, 8); ++j)
      call([&] { kmeans_centroid(v, static_cast<int32_t>(j), c.coin(), centre.data()); });
    std::vector<float> x(static_cast<size_t>(d));
    for (float& e : x) e = static_cast<float>(c.below(2001)) / 100.0f - 10.0f;
    call([&] {
      float dist = 0;
      const int32_t j = kmeans_assign(v, x.data(), static_cast<int>(d), &dist);
      FUZZ_CHECK(j >= 0 && j < clusters);
    });
  }
}

// The text form of an accepted model reads back to the same bytes.
void check_text_round_trip(const uint8_t* bytes, uint64_t size) {
  std::string text(model_text_size(size) + 1, '\0');
  model_to_text(bytes, size, &text[0]);
  text.resize(text.size() - 1);
  const uint64_t n = model_text_decoded_size(text.data(), text.size());
  FUZZ_CHECK(n == size);
  Aligned back(nullptr, 0);
  back.words.assign((n + 7) / 8 + 1, 0);
  back.size = n;
  model_from_text(text.data(), text.size(), back.data(), n);
  FUZZ_CHECK(std::memcmp(back.data() + 4, bytes + 4, size - 4) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > (uint64_t(1) << 20)) return 0;
  Aligned buf(data, size);
  uint32_t control = 0;
  if (size >= 4) std::memcpy(&control, data, 4);
  if (size >= sizeof(ModelHeader) && !(control & 1)) repair(buf.data(), size);
  try {
    validate_model(buf.data(), size);
  } catch (const Error& e) {
    FUZZ_CHECK(e.kind() == ErrorKind::InvalidModel);
    return 0;
  }
  check_text_round_trip(buf.data(), size);
  const ModelView v = ModelView::open(buf.data(), size);
  Choices c(control);
  exercise(v, c);
  return 0;
}
