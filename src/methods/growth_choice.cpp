#include "methods/growth_choice.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "core/error.h"
#include "methods/unit_selection.h"

namespace mest::methods {

double unit_norm(std::span<const float> values, int64_t unit, int64_t rows) {
    double sum = 0.0;
    for (int64_t i = unit * rows; i < (unit + 1) * rows; ++i) {
        const double v = static_cast<double>(values[static_cast<std::size_t>(i)]);
        sum += v * v;
    }
    return std::sqrt(sum);
}

GrowthChoice choose_growth(const sparse::BlockSparseMatrix<float> & m, std::span<const int64_t> dropped,
                           std::span<const float> stored_values, const sparse::GradientProbe<float> & probe,
                           std::span<const float> probe_values, int64_t count) {
    const auto & shape = m.shape();
    const int64_t rows = shape.block_rows;
    MEST_CHECK(stored_values.size() == static_cast<std::size_t>(m.nnz()) &&
               probe_values.size() == static_cast<std::size_t>(probe.nnz_units() * rows))
        << m.param().name << ": growth scores of the wrong size";
    struct Candidate {
        int64_t id, index;  // index: into the probe's units, or -1 - (stored unit)
        double score;
    };
    std::vector<Candidate> candidates;
    candidates.reserve(static_cast<std::size_t>(probe.nnz_units()) + dropped.size());
    const auto view = probe.view();
    for (int64_t b = 0; b < shape.num_blocks(); ++b)
        for (int64_t i = view.block_ptr[b]; i < view.block_ptr[b + 1]; ++i)
            candidates.push_back({b * shape.cols + view.col_idx[i], i, unit_norm(probe_values, i, rows)});
    for (int64_t u : dropped)
        candidates.push_back({unit_id(shape, m.unit_position(u)), -1 - u, unit_norm(stored_values, u, rows)});
    std::sort(candidates.begin(), candidates.end(),
              [](const Candidate & a, const Candidate & b) { return a.id < b.id; });
    std::vector<double> score(candidates.size());
    for (std::size_t i = 0; i < candidates.size(); ++i) score[i] = candidates[i].score;
    GrowthChoice choice;
    for (int64_t c : highest_scores(score, count)) {
        const int64_t index = candidates[static_cast<std::size_t>(c)].index;
        if (index >= 0) {
            choice.probe_units.push_back(index);
        } else {
            choice.regrown.push_back(-1 - index);
        }
    }
    std::sort(choice.probe_units.begin(), choice.probe_units.end());
    std::sort(choice.regrown.begin(), choice.regrown.end());
    return choice;
}

std::vector<int64_t> without(std::span<const int64_t> dropped, std::span<const int64_t> regrown) {
    std::vector<int64_t> out;
    std::set_difference(dropped.begin(), dropped.end(), regrown.begin(), regrown.end(), std::back_inserter(out));
    return out;
}

int64_t stored_unit_at(const sparse::BlockSparseMatrix<float> & m, sparse::UnitPosition p) {
    const int32_t * begin = m.col_idx() + m.block_ptr()[p.block];
    const int32_t * end = m.col_idx() + m.block_ptr()[p.block + 1];
    const int32_t * at = std::lower_bound(begin, end, p.col);
    return at != end && *at == p.col ? static_cast<int64_t>(at - m.col_idx()) : -1;
}

}  // namespace mest::methods
