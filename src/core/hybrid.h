// Hybrid cold start: an implicit ALS model extended with the entities that only have
// metadata (Gantner et al., "Learning Attribute-to-Feature Mappings for Cold-Start
// Recommendations", ICDM 2010).
//
// Given a trained ALS model and metadata rows for items (or users) in train_content's
// feature conventions, a ridge regression maps feature vectors to factors,
//   W = argmin ||X_w W - (F_w - mu)||^2 + lambda ||W||^2,
// fitted on the warm entities that have metadata (X_w: their content feature vectors,
// exactly those of build_content_model; F_w: their ALS factors; mu: the mean of those
// factors). Every entity with metadata that the model does not know gets the factors
// mu + x W (an entity without any feature: mu) and is flagged feature-only
// (SectionTag::ItemFeatureOnly / UserFeatureOnly). Warm entities keep their ALS factors
// bit for bit, so the model is still an implicit ALS model and every serving path
// (recommend, recommend_all, score, similar_items, fold-in, filters) ranks warm and
// feature-only entities together.
//
// Running it again on a hybrid model first drops the feature-only entities of that side
// (the metadata given now replaces them), so refreshing after new products arrive reruns
// only this step: the collaborative part is never retrained. The other side's mapping
// is kept.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "content.h"
#include "model_format.h"
#include "options.h"
#include "parallel.h"

namespace recsys {

enum class HybridSide { Items, Users };

// "train_hybrid_items" / "train_hybrid_users".
const char* hybrid_function_name(HybridSide side);

struct HybridOptions {
  ContentOptions features;  // weights, text_fields, sublinear_tf, min_df (as train_content)
  double lambda = 1.0;      // ridge penalty
  bool verbose = false;
  int threads = 0;
  // Up to this many features the ridge system is factored densely (Cholesky), beyond it
  // is solved by conjugate gradients; not an option (tests compare the two).
  int64_t dense_max_features = 3000;
};
// Reads {"lambda", "weights", "text_fields", "sublinear_tf", "min_df", "verbose",
// "threads"}; throws InvalidParameter naming the bad option.
HybridOptions parse_hybrid_options(const OptionList& options, HybridSide side);

// Throws FeatureNotSupported unless the model is an implicit ALS model (hybrid or not).
void require_hybrid_base(const ModelView& base, HybridSide side);

// The base model extended as described above (base must have been validated). Throws
// DataException when no entity with metadata is in the model (nothing to learn from).
std::unique_ptr<ModelBuilder> build_hybrid_model(const ModelView& base, const ContentState& meta, HybridSide side,
                                                 const HybridOptions& options, const CancelToken& cancel,
                                                 const std::function<void(const std::string&)>& log_line);

// Warm and feature-only counts of a model (feature-only = flagged); false when the model
// has no hybrid sections.
struct HybridCounts {
  int64_t warm_items = 0, feature_only_items = 0, warm_users = 0, feature_only_users = 0;
};
bool hybrid_counts(const ModelView& m, HybridCounts* out);

}  // namespace recsys
