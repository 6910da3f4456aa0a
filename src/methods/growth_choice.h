// Growth by a dense score (RigL: |gradient|, SNFS: |momentum|): the candidates are every unit a
// layer does not store, scored from values aligned with a GradientProbe's unit list, plus the units
// the same update just dropped, scored from values aligned with the layer's own stored units. The
// score of a unit is the L2 norm of its block_rows values; ties go to the lower position
// (block-major), so the choice is a function of the scores alone.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "sparse/block_sparse_matrix.h"
#include "sparse/gradient_probe.h"

namespace mest::methods {

// L2 norm of values [unit * rows, unit * rows + rows).
double unit_norm(std::span<const float> values, int64_t unit, int64_t rows);

struct GrowthChoice {
    std::vector<int64_t> regrown;      // dropped stored units picked again (ascending): they simply stay
    std::vector<int64_t> probe_units;  // probe units picked (ascending): genuinely new units
};

// The `count` best candidates (fewer if fewer exist). `dropped`: stored unit indices, ascending.
// stored_values: nnz long (only the dropped units are read); probe_values: probe.nnz_units() *
// block_rows long.
GrowthChoice choose_growth(const sparse::BlockSparseMatrix<float> & m, std::span<const int64_t> dropped,
                           std::span<const float> stored_values, const sparse::GradientProbe<float> & probe,
                           std::span<const float> probe_values, int64_t count);

// `dropped` without the units in `regrown` (both ascending).
std::vector<int64_t> without(std::span<const int64_t> dropped, std::span<const int64_t> regrown);

// Index of the stored unit at `p`, or -1.
int64_t stored_unit_at(const sparse::BlockSparseMatrix<float> & m, sparse::UnitPosition p);

}  // namespace mest::methods
