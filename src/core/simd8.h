// The small SIMD layer shared by the factor-model kernels (als.cpp, mf.cpp): GCC/Clang
// vector extensions of 8 floats (one AVX register, two SSE registers elsewhere). Every
// reduction runs in a fixed lane order, so results depend only on the values, never on
// alignment, scheduling or the number of threads.
#pragma once
#include <cstring>
#ifdef __AVX__
#include <immintrin.h>
#endif

namespace recsys {
namespace simd {

typedef float v8f __attribute__((vector_size(32)));
// These vectors never cross an ABI boundary (internal inline helpers), so the warning
// that passing them changes the ABI on targets without AVX does not apply.
#pragma GCC diagnostic ignored "-Wpsabi"

// Unaligned load of 8 floats.
inline v8f load8(const float* p) {
  v8f v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

// Unaligned store of 8 floats.
inline void store8(float* p, v8f v) { std::memcpy(p, &v, sizeof v); }

// 8 copies of s.
inline v8f splat8(float s) { return v8f{s, s, s, s, s, s, s, s}; }

// a * b + c, fused when the target has FMA.
inline v8f fmadd8(v8f a, v8f b, v8f c) {
#ifdef __FMA__
  return _mm256_fmadd_ps(a, b, c);
#else
  return a * b + c;
#endif
}

// Sum of the 8 lanes as ((0+4)+(2+6)) + ((1+5)+(3+7)).
inline float hsum8(v8f v) {
#ifdef __AVX__
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_shuffle_ps(q, q, 1)));
#else
  return ((v[0] + v[4]) + (v[2] + v[6])) + ((v[1] + v[5]) + (v[3] + v[7]));
#endif
}

// a.b over nv blocks of 8 floats (two accumulators, then one horizontal sum). V > 0
// fixes nv at compile time, which unrolls the loop and keeps the sums in registers.
template <int V>
inline float dot8_blocks(const float* __restrict a, const float* __restrict b, int nv) {
  if (V > 0) nv = V;
  v8f acc0 = v8f{}, acc1 = v8f{};
  int q = 0;
  for (; q + 1 < nv; q += 2) {
    acc0 = fmadd8(load8(a + 8 * q), load8(b + 8 * q), acc0);
    acc1 = fmadd8(load8(a + 8 * q + 8), load8(b + 8 * q + 8), acc1);
  }
  if (q < nv) acc0 = fmadd8(load8(a + 8 * q), load8(b + 8 * q), acc0);
  return hsum8(acc0 + acc1);
}

}  // namespace simd
}  // namespace recsys
