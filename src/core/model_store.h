// The file layout of the shared model store (src/pg/store.cpp): one file per model,
// mapped read-only by every backend that serves the model, so the OS page cache holds
// one copy of it for the whole server.
//
//   offset 0      StoreHeader (padded to kStoreHeaderBytes, a page)
//   offset 4096   the model's bytes, exactly as PostgreSQL stores them (varlena word first)
//   then          the serving data derived from it, each part 64-byte aligned:
//                 the ItemOrder columns of a factor model (item, position, factors copy,
//                 bias, bound) and, for implicit ALS, Y^T Y (item_gram) for fold-in.
//
// plan_store_file says where every part goes (the writer writes the pieces; gaps are
// zeros); open_store_file checks a mapped file and gives the model and the derived data
// as views into it, reading nothing but the header unless asked for full verification.
#pragma once
#include <cstdint>
#include <vector>

#include "model_format.h"
#include "serving.h"

namespace recsys {

constexpr uint32_t kStoreLayoutVersion = 1;
constexpr uint64_t kStoreHeaderBytes = 4096;
constexpr uint64_t kStorePartAlignment = 64;

enum StoreFlags : uint32_t {
  kStoreHasOrder = 1,
  kStoreOrderFactors = 2,
  kStoreOrderBias = 4,
  kStoreHasGram = 8,
};

#pragma pack(push, 1)
struct StoreHeader {
  char magic[8];  // "RSYSSTOR"
  uint32_t layout_version;
  uint32_t flags;
  uint64_t file_bytes;
  uint64_t model_offset;
  uint64_t model_bytes;
  uint8_t model_header[sizeof(ModelHeader)];  // a copy of the model's header (varlena word included)
  int64_t n_items;
  uint32_t factors;
  uint32_t reserved;
  uint64_t item_offset, position_offset, factors_offset, bias_offset, bound_offset, gram_offset;
  uint64_t derived_hash;  // hash of the derived parts, in file order
  uint64_t header_hash;   // hash of this struct with header_hash = 0
};
#pragma pack(pop)
static_assert(sizeof(StoreHeader) < kStoreHeaderBytes, "store header fits its page");

struct StorePiece {
  uint64_t offset;
  const void* data;
  uint64_t length;
};
struct StorePlan {
  StoreHeader header{};            // written at offset 0 (not a piece: the plan may be copied)
  std::vector<StorePiece> pieces;  // the model, then the derived parts
};

// Where the model (size bytes at `model`, a valid model) and its derived data go: order
// (build_item_order on the model, may be null) and gram (f x f, may be null). Every
// pointer must outlive the plan's use. Throws Error(InvalidModel) on inconsistent parts.
StorePlan plan_store_file(const uint8_t* model, uint64_t size, const ItemOrder* order, const std::vector<double>* gram);

// The size a store file for a model of `size` bytes would have at most (with a copy of
// the item factors when copy_factors), from its header alone: for budgets.
uint64_t store_file_bound(const ModelHeader& h, bool copy_factors);

// A mapped store file, opened.
struct StoreView {
  ModelView model;
  ItemOrder order;  // borrowed columns; empty when the file holds none
  bool has_order = false;
  const double* gram = nullptr;  // f x f, or null
};

// Checks the mapped bytes of a store file (size bytes at p, page aligned) against the
// header the caller expects the model to have (`expected`: the sizeof(ModelHeader) first
// bytes of the model value; the varlena word is not compared): magic, layout version,
// sizes, every part's offset and length, the header's own hash and the model's section
// table. With full, also the model's whole-value checksum and the derived parts' hash
// (reads every byte). Throws Error(InvalidModel) naming the first problem.
void open_store_file(const uint8_t* p, uint64_t size, const uint8_t* expected, bool full, StoreView* out);

// The name of a model's store file: <fingerprint>-<checksum>-<bytes>.model (hex, hex, decimal).
std::string store_file_name(const ModelHeader& h);

}  // namespace recsys
