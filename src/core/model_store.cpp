// The shared model store's file layout (see model_store.h).
#include "model_store.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <string>

namespace recsys {

namespace {

constexpr char kStoreMagic[8] = {'R', 'S', 'Y', 'S', 'S', 'T', 'O', 'R'};

[[noreturn]] void bad(const std::string& what) { fail(ErrorKind::InvalidModel, "invalid recsys store file: " + what); }

uint64_t store_align(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

uint64_t header_hash(const StoreHeader& h) {
  StoreHeader c = h;
  c.header_hash = 0;
  return hash_bytes(kHashSeed, reinterpret_cast<const uint8_t*>(&c), sizeof c);
}

}  // namespace

std::string store_file_name(const ModelHeader& h) {
  const uint64_t checksum = (static_cast<uint64_t>(h.checksum_hi) << 32) | h.checksum_lo;
  char name[96];
  std::snprintf(name, sizeof name, "%016" PRIx64 "-%016" PRIx64 "-%" PRIu64 ".model", h.fingerprint, checksum,
                h.total_bytes);
  return name;
}

uint64_t store_file_bound(const ModelHeader& h, bool copy_factors) {
  const uint64_t n = h.n_items, f = h.factors;
  uint64_t total = kStoreHeaderBytes + store_align(h.total_bytes, kStorePartAlignment);
  // item, position, bias, bound (4 bytes each per item), the factors copy, the Gram matrix
  total += 4 * (store_align(n * 4, kStorePartAlignment) + kStorePartAlignment);
  if (copy_factors) total += store_align(n * f * 4, kStorePartAlignment);
  total += store_align(f * f * 8, kStorePartAlignment);
  return total;
}

StorePlan plan_store_file(const uint8_t* model, uint64_t size, const ItemOrder* order, const std::vector<double>* gram) {
  if (size < sizeof(ModelHeader)) bad("model too short");
  StorePlan plan;
  StoreHeader& h = plan.header;
  std::memcpy(h.magic, kStoreMagic, sizeof h.magic);
  h.layout_version = kStoreLayoutVersion;
  std::memcpy(h.model_header, model, sizeof(ModelHeader));
  ModelHeader mh;
  std::memcpy(&mh, model, sizeof mh);
  h.n_items = static_cast<int64_t>(mh.n_items);
  h.factors = mh.factors;
  h.model_offset = kStoreHeaderBytes;
  h.model_bytes = size;
  uint64_t at = store_align(kStoreHeaderBytes + size, kStorePartAlignment);
  const uint64_t n = mh.n_items, f = mh.factors;
  plan.pieces.push_back({h.model_offset, model, size});
  uint64_t dh = kHashSeed;
  auto part = [&](uint64_t* offset, const void* data, uint64_t length) {
    *offset = at;
    plan.pieces.push_back({at, data, length});
    dh = hash_bytes(dh, static_cast<const uint8_t*>(data), length);
    at = store_align(at + length, kStorePartAlignment);
  };
  if (order != nullptr && !order->item.empty()) {
    if (order->item.size() != n || order->position.size() != n || order->bound.size() != n ||
        !(order->factors.empty() || order->factors.size() == n * f) || !(order->bias.empty() || order->bias.size() == n))
      bad("item order does not match the model");
    h.flags |= kStoreHasOrder;
    part(&h.item_offset, order->item.data(), n * 4);
    part(&h.position_offset, order->position.data(), n * 4);
    part(&h.bound_offset, order->bound.data(), n * 4);
    if (!order->factors.empty()) {
      h.flags |= kStoreOrderFactors;
      part(&h.factors_offset, order->factors.data(), n * f * 4);
    }
    if (!order->bias.empty()) {
      h.flags |= kStoreOrderBias;
      part(&h.bias_offset, order->bias.data(), n * 4);
    }
  }
  if (gram != nullptr && !gram->empty()) {
    if (gram->size() != f * f) bad("Gram matrix does not match the model");
    h.flags |= kStoreHasGram;
    part(&h.gram_offset, gram->data(), f * f * 8);
  }
  h.file_bytes = at;
  h.derived_hash = dh;
  h.header_hash = header_hash(h);
  return plan;
}

void open_store_file(const uint8_t* p, uint64_t size, const uint8_t* expected, bool full, StoreView* out) {
  if (size < kStoreHeaderBytes) bad("shorter than its header");
  StoreHeader h;
  std::memcpy(&h, p, sizeof h);
  if (std::memcmp(h.magic, kStoreMagic, sizeof h.magic) != 0) bad("bad magic");
  if (h.layout_version != kStoreLayoutVersion) bad("layout version " + std::to_string(h.layout_version));
  if (header_hash(h) != h.header_hash) bad("header hash mismatch");
  if (h.file_bytes != size) bad("file size " + std::to_string(size) + ", header says " + std::to_string(h.file_bytes));
  // The model's header must be the one the caller read from the table (the varlena word
  // aside): fingerprint, checksum, sizes and counts alike.
  if (std::memcmp(h.model_header + 4, expected + 4, sizeof(ModelHeader) - 4) != 0)
    bad("the model's header differs from the value's");
  if (h.model_offset != kStoreHeaderBytes || h.model_bytes > size - h.model_offset ||
      h.model_bytes < sizeof(ModelHeader))
    bad("model part out of bounds");
  const uint8_t* model = p + h.model_offset;
  if (std::memcmp(model + 4, expected + 4, sizeof(ModelHeader) - 4) != 0) bad("model bytes differ from the header");
  ModelHeader mh;
  std::memcpy(&mh, model, sizeof mh);
  if (mh.total_bytes != h.model_bytes) bad("model size mismatch");
  out->model = ModelView::open(model, h.model_bytes);
  const uint64_t n = mh.n_items, f = mh.factors;
  if (static_cast<uint64_t>(h.n_items) != n || h.factors != f) bad("counts differ from the model's");
  const uint64_t derived_start = h.model_offset + h.model_bytes;
  auto check_part = [&](uint64_t offset, uint64_t length, const char* what) {
    if (offset < derived_start || offset % kStorePartAlignment != 0 || offset > size || length > size - offset)
      bad(std::string(what) + " out of bounds");
  };
  uint64_t dh = kHashSeed;
  auto take = [&](uint64_t offset, uint64_t length) {
    if (full) dh = hash_bytes(dh, p + offset, length);
    return p + offset;
  };
  out->has_order = false;
  out->gram = nullptr;
  if (h.flags & kStoreHasOrder) {
    if (!has_item_order(out->model)) bad("an item order for a model without one");
    check_part(h.item_offset, n * 4, "item order");
    check_part(h.position_offset, n * 4, "item positions");
    check_part(h.bound_offset, n * 4, "item bounds");
    out->order.item.borrow(reinterpret_cast<const int32_t*>(take(h.item_offset, n * 4)), n);
    out->order.position.borrow(reinterpret_cast<const int32_t*>(take(h.position_offset, n * 4)), n);
    out->order.bound.borrow(reinterpret_cast<const float*>(take(h.bound_offset, n * 4)), n);
    if (h.flags & kStoreOrderFactors) {
      check_part(h.factors_offset, n * f * 4, "item factors copy");
      out->order.factors.borrow(reinterpret_cast<const float*>(take(h.factors_offset, n * f * 4)), n * f);
    }
    const bool model_bias = out->model.section(SectionTag::ItemBias) != nullptr;
    if (((h.flags & kStoreOrderBias) != 0) != model_bias) bad("item biases differ from the model's");
    if (h.flags & kStoreOrderBias) {
      check_part(h.bias_offset, n * 4, "item biases");
      out->order.bias.borrow(reinterpret_cast<const float*>(take(h.bias_offset, n * 4)), n);
    }
    out->has_order = n > 0;
  }
  if (h.flags & kStoreHasGram) {
    check_part(h.gram_offset, f * f * 8, "Gram matrix");
    out->gram = reinterpret_cast<const double*>(take(h.gram_offset, f * f * 8));
  }
  if (full) {
    if (dh != h.derived_hash) bad("derived data hash mismatch");
    const uint64_t checksum = (static_cast<uint64_t>(mh.checksum_hi) << 32) | mh.checksum_lo;
    if (compute_checksum(model, h.model_bytes) != checksum) bad("model checksum mismatch");
  }
}

}  // namespace recsys
