// Selection primitives the methods share, all over a layer's stored units or its empty ones, never
// over a dense tensor: per-unit scores, the k lowest (ties by index, so a seed fixes the topology),
// and exact uniform sampling of empty units.
#pragma once
#include <cstdint>
#include <span>
#include <unordered_set>
#include <vector>

#include "core/rng.h"
#include "sparse/block_sparse_matrix.h"

namespace mest::methods {

// ||w_unit||_2 + lambda * ||g_unit||_2 over `count` consecutive stored values from `first`
// (grad: per stored value, or empty).
template <typename T>
double unit_importance(const sparse::BlockSparseMatrix<T> & m, int64_t first, int64_t count, std::span<const T> grad,
                       double lambda);
// ||w_unit||_2 of every stored unit.
template <typename T>
std::vector<double> unit_magnitudes(const sparse::BlockSparseMatrix<T> & m);

// Indices of the `count` smallest scores, ascending by index; ties by index.
std::vector<int64_t> lowest_scores(const std::vector<double> & score, int64_t count);
// Indices of the `count` largest scores, ascending by index; ties by index.
std::vector<int64_t> highest_scores(const std::vector<double> & score, int64_t count);

inline int64_t unit_id(const sparse::BlockSparseShape & s, sparse::UnitPosition p) {
    return static_cast<int64_t>(p.block) * s.cols + p.col;
}
inline sparse::UnitPosition unit_at(const sparse::BlockSparseShape & s, int64_t id) {
    return {static_cast<int32_t>(id / s.cols), static_cast<int32_t>(id % s.cols)};
}

template <typename T>
bool unit_stored(const sparse::BlockSparseMatrix<T> & m, sparse::UnitPosition p);

// `count` distinct units drawn uniformly among those not stored in `m` plus `also_free` (unit ids
// of stored units that may be re-picked, e.g. just pruned), fewer if fewer exist. O(count) draws
// while the layer is sparse; lists the free units once when it is dense.
template <typename T>
std::vector<sparse::UnitPosition> random_free_units(const sparse::BlockSparseMatrix<T> & m, int64_t count,
                                                    const std::unordered_set<int64_t> & also_free, Rng & rng);

}  // namespace mest::methods
