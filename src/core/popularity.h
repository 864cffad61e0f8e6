// The popularity baseline as a real model kind: items ranked by how many users
// interacted with them (or by total weight), each user's seen items excluded. Every
// evaluation can put it beside a learned model in the same query.
#pragma once
#include <functional>
#include <string>

#include "parallel.h"
#include "training.h"

namespace recsys {

struct PopularityOptions {
  bool by_weight = false;  // rank by total positive weight instead of number of users
  bool store_seen = true;
  bool verbose = false;  // not options of train_popularity: the fields every trainer's options have
  int threads = 0;
};
// Parses train_popularity options: "measure": "users" | "weight", "store_seen".
PopularityOptions parse_popularity_options(const OptionList& options);

// Leaves a ModelKind::Popularity model in state.result: Params, UserKeys, ItemKeys,
// ItemPopularity, PopularOrder and (if store_seen) UserItems.
void build_popularity_model(TrainingState& state, const PopularityOptions& options, const CancelToken& cancel,
                            const std::function<void(const std::string&)>& log_line);

}  // namespace recsys
