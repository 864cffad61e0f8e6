// libFuzzer harness: the option readers of every training aggregate and serving
// function (OptionReader and the parse_*_options of each model kind).
//
// Input: byte 0 picks the reader, the rest is an options object in the byte form of
// option_bytes.h (the typed values the SQL layer reads from jsonb). Every reader must
// return or throw Error(InvalidParameter); the parsed values must lie in their
// documented ranges.
#include <cmath>
#include <string>

#include "content.h"
#include "fuzz_common.h"
#include "option_bytes.h"
#include "kmeans.h"
#include "knn.h"
#include "mf.h"
#include "options.h"
#include "popularity.h"
#include "training.h"

using namespace recsys;

namespace {

enum Reader { kAls, kMf, kBaseline, kPopularity, kItemKnn, kContent, kKMeans, kGeneric, kReaders };

// Reads `options` with reader `which` and checks what it returned.
void read_options(int which, const OptionList& options) {
  switch (which) {
    case kAls: {
      AlsTrainingOptions o = parse_als_options(options);
      FUZZ_CHECK(o.threads >= 0);
      break;
    }
    case kMf: {
      MfTrainingOptions o = parse_mf_options(options);
      FUZZ_CHECK(o.threads >= 0);
      break;
    }
    case kBaseline: {
      BaselineTrainingOptions o = parse_baseline_options(options);
      FUZZ_CHECK(o.threads >= 0);
      break;
    }
    case kPopularity:
      (void)parse_popularity_options(options);
      break;
    case kItemKnn: {
      ItemKnnOptions o = parse_item_knn_options(options);
      FUZZ_CHECK(o.neighbours > 0);
      break;
    }
    case kContent: {
      ContentOptions o = parse_content_options(options);
      FUZZ_CHECK(o.neighbours > 0 && o.min_df >= 1);
      FUZZ_CHECK(o.candidate_max_df >= 0 && o.candidate_max_df <= 1);
      for (const auto& w : o.weights) {
        FUZZ_CHECK(std::isfinite(w.second) && w.second >= 0);
        FUZZ_CHECK(o.weight_of(w.first) == w.second);
      }
      for (const auto& f : o.text_fields) FUZZ_CHECK(o.is_text_field(f));
      break;
    }
    case kKMeans: {
      KMeansOptions o = parse_kmeans_options(options);
      FUZZ_CHECK(o.k >= 1);
      break;
    }
    default: {
      // What the metric functions do: typed getters, then unknown names rejected.
      OptionReader r(options, "fuzz");
      (void)r.has("k");
      const int64_t k = r.get_int("k", 10, 1, 1000000);
      FUZZ_CHECK(k >= 1 && k <= 1000000);
      const double t = r.get_double("threshold", 0.5, -1e6, 1e6);
      FUZZ_CHECK(t >= -1e6 && t <= 1e6);
      (void)r.get_bool("exclude_seen", true);
      const std::string m = r.get_string("measure", "users", {"users", "weight"});
      FUZZ_CHECK(m == "users" || m == "weight");
      r.reject_unknown();
      break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 65536) return 0;
  const OptionList options = recsys_fuzz::decode_options(data + 1, size - 1);
  try {
    read_options(data[0] % kReaders, options);
  } catch (const Error& e) {
    FUZZ_CHECK(e.kind() == ErrorKind::InvalidParameter);
  }
  // json_escape must give a quoted JSON string for any bytes.
  const std::string text(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::string q = json_escape(text);
  FUZZ_CHECK(q.size() >= 2 && q.front() == '"' && q.back() == '"');
  (void)json_number(static_cast<double>(size) / 3.0);
  return 0;
}
