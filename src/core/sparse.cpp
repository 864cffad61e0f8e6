#include "sparse.h"

#include <algorithm>
#include <string>

namespace recsys {

// Counting-sort transpose: count entries per column, prefix-sum, then scatter rows in
// ascending order so every output row comes out sorted by (original) row index.
CsrMatrix transpose(const CsrMatrix& m, int threads) {
  if (m.rows < 0 || m.cols < 0 || static_cast<int64_t>(m.indptr.size()) != m.rows + 1 ||
      m.values.size() != m.indices.size() || m.indptr.front() != 0 || m.indptr.back() != m.nnz())
    fail(ErrorKind::Internal, "transpose: malformed CSR matrix");
  for (int64_t r = 0; r < m.rows; ++r)
    if (m.indptr[static_cast<size_t>(r) + 1] < m.indptr[static_cast<size_t>(r)])
      fail(ErrorKind::Internal, "transpose: row pointers decrease");
  if (m.rows > INT32_MAX) fail(ErrorKind::ProgramLimit, "transpose: too many rows for 32-bit column indices");

  CsrMatrix t;
  t.rows = m.cols;
  t.cols = m.rows;
  const int64_t nnz = m.nnz();
  t.indptr.assign(static_cast<size_t>(t.rows) + 1, 0);
  t.indices.resize(static_cast<size_t>(nnz));
  t.values.resize(static_cast<size_t>(nnz));

  for (int64_t k = 0; k < nnz; ++k) {
    const int32_t c = m.indices[static_cast<size_t>(k)];
    if (c < 0 || c >= m.cols) fail(ErrorKind::Internal, "transpose: column index " + std::to_string(c) + " out of range");
    ++t.indptr[static_cast<size_t>(c) + 1];
  }
  for (int64_t c = 0; c < t.rows; ++c) t.indptr[static_cast<size_t>(c) + 1] += t.indptr[static_cast<size_t>(c)];

  // Output rows (input columns) split into ranges holding about equal numbers of entries.
  threads = std::max(1, std::min(threads, 64));
  if (nnz < (int64_t(1) << 16)) threads = 1;
  std::vector<int64_t> bounds{0};
  for (int k = 1; k < threads; ++k) {
    const int64_t target = nnz * k / threads;
    const int64_t c = std::upper_bound(t.indptr.begin(), t.indptr.end(), target) - t.indptr.begin() - 1;
    bounds.push_back(std::max(bounds.back(), std::min<int64_t>(c, t.rows)));
  }
  bounds.push_back(t.rows);
  // Each range: scan the rows in order and scatter its columns' entries, so every output
  // row comes out sorted by input row. Ranges write disjoint parts of the output.
  auto fill_range = [&](int64_t c_lo, int64_t c_hi) {
    std::vector<int64_t> next(t.indptr.begin() + c_lo, t.indptr.begin() + c_hi);
    for (int64_t r = 0; r < m.rows; ++r) {
      const int64_t end = m.indptr[static_cast<size_t>(r) + 1];
      for (int64_t k = m.indptr[static_cast<size_t>(r)]; k < end; ++k) {
        const int64_t c = m.indices[static_cast<size_t>(k)];
        if (c < c_lo || c >= c_hi) continue;
        const size_t dst = static_cast<size_t>(next[static_cast<size_t>(c - c_lo)]++);
        t.indices[dst] = static_cast<int32_t>(r);
        t.values[dst] = m.values[static_cast<size_t>(k)];
      }
    }
  };
  if (threads == 1) {
    fill_range(0, t.rows);
  } else {
    CancelToken never;
    parallel_for(threads, threads, never, [&](int64_t task, int) { fill_range(bounds[task], bounds[task + 1]); });
  }
  return t;
}

}  // namespace recsys
