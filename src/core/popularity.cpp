#include "popularity.h"

#include <chrono>
#include <cstring>

#include "options.h"
#include "training.h"
#include "serving.h"

namespace recsys {

PopularityOptions parse_popularity_options(const OptionList& options) {
  OptionReader r(options, "train_popularity");
  PopularityOptions o;
  o.by_weight = r.get_string("measure", "users", {"users", "weight"}) == "weight";
  o.store_seen = r.get_bool("store_seen", true);
  r.reject_unknown();
  return o;
}

void build_popularity_model(TrainingState& state, const PopularityOptions& options, const CancelToken& cancel,
                            const std::function<void(const std::string&)>& log_line) {
  auto t0 = std::chrono::steady_clock::now();
  const uint64_t rows_in = state.log.size();
  std::vector<uint32_t> user_order = state.users.sorted_order();
  std::vector<uint32_t> item_order = state.items.sorted_order();
  CsrMatrix ui = build_interaction_matrix(state, KeyInterner::invert(user_order), KeyInterner::invert(item_order),
                                          cancel, "train_popularity");
  state.log.clear();
  if (ui.nnz() == 0) return;  // every weight summed to 0: no usable row, NULL
  const int64_t ni = ui.cols;
  std::vector<double> pop(static_cast<size_t>(ni), 0.0);
  for (int64_t k = 0; k < ui.nnz(); ++k)
    if (ui.values[k] > 0) pop[ui.indices[k]] += options.by_weight ? ui.values[k] : 1.0;
  // Sums by weight beyond real are brought into range by a power of two (the order and
  // the ratios are kept; recorded as "weight_scale").
  const double scale = scale_into_safe_range(pop, 126);
  std::vector<float> popularity(pop.begin(), pop.end());

  auto builder = std::make_unique<ModelBuilder>();
  ModelHeader& h = builder->header;
  h.kind = static_cast<uint16_t>(ModelKind::Popularity);
  h.user_key_kind = static_cast<uint8_t>(state.users.kind());
  h.item_key_kind = static_cast<uint8_t>(state.items.kind());
  h.user_type_oid = state.user_type_oid;
  h.item_type_oid = state.item_type_oid;
  h.n_users = static_cast<uint64_t>(ui.rows);
  h.n_items = static_cast<uint64_t>(ni);
  h.n_interactions = static_cast<uint64_t>(ui.nnz());
  std::string params = std::string("{\"measure\": ") + (options.by_weight ? "\"weight\"" : "\"users\"") +
                       ", \"store_seen\": " + (options.store_seen ? "true" : "false") +
                       ", \"rows\": " + std::to_string(rows_in) +
                       ", \"rows_skipped\": " + std::to_string(state.rows_skipped) +
                       (scale != 1.0 ? ", \"weight_scale\": " + json_number(scale) : std::string()) + "}";
  builder->add(SectionTag::Params, std::vector<uint8_t>(params.begin(), params.end()));
  builder->add(SectionTag::UserKeys, state.users.dictionary_bytes(user_order));
  builder->add(SectionTag::ItemKeys, state.items.dictionary_bytes(item_order));
  if (options.store_seen) {
    std::vector<uint8_t> csr(8 * ui.indptr.size() + 4 * ui.indices.size());
    std::memcpy(csr.data(), ui.indptr.data(), 8 * ui.indptr.size());
    if (!ui.indices.empty())
      std::memcpy(csr.data() + 8 * ui.indptr.size(), ui.indices.data(), 4 * ui.indices.size());
    builder->add(SectionTag::UserItems, std::move(csr));
  }
  builder->add_array(SectionTag::PopularOrder, popularity_order(popularity));
  builder->add_array(SectionTag::ItemPopularity, popularity);
  h.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  (void)log_line;
  state.result = std::move(builder);
}

}  // namespace recsys
