// Compressed sparse rows: the user x item interaction matrix and its transpose.
#pragma once
#include <cstdint>
#include <vector>

#include "common.h"
#include "parallel.h"

namespace recsys {

struct CsrMatrix {
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int64_t> indptr;   // rows + 1 entries
  std::vector<int32_t> indices;  // column of each entry, ascending within a row
  std::vector<float> values;     // summed weight of each entry
  int64_t nnz() const { return static_cast<int64_t>(indices.size()); }
};

// The transpose (item x user), built in O(nnz); rows stay sorted by column. With
// threads > 1 each thread fills the output rows of its own range of columns (ranges of
// equal entry counts), scanning the input in order: the same result for any count.
CsrMatrix transpose(const CsrMatrix& m, int threads = 1);

}  // namespace recsys
