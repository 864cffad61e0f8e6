// Test helper: a written model held in 8-byte-aligned storage (as PostgreSQL hands a
// detoasted value to the serving code), and write_model to produce one from a builder.
#pragma once
#include <cstdint>
#include <vector>

#include "model_format.h"

namespace recsys_test {

struct Model {
  std::vector<uint64_t> words;
  uint64_t size = 0;
  const uint8_t* data() const { return reinterpret_cast<const uint8_t*>(words.data()); }
  uint8_t* data() { return reinterpret_cast<uint8_t*>(words.data()); }
  recsys::ModelView view() const { return recsys::ModelView::open(data(), size); }
  std::vector<uint8_t> bytes() const { return std::vector<uint8_t>(data(), data() + size); }
};

inline Model write_model(const recsys::ModelBuilder& b) {
  Model m;
  m.size = b.total_size();
  m.words.assign((m.size + 7) / 8, 0);
  b.write(m.data());
  return m;
}

}  // namespace recsys_test
