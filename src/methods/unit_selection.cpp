#include "methods/unit_selection.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "sparse/initial_mask.h"

namespace mest::methods {

template <typename T>
double unit_importance(const sparse::BlockSparseMatrix<T> & m, int64_t first, int64_t count, std::span<const T> grad,
                       double lambda) {
    double w2 = 0.0, g2 = 0.0;
    for (int64_t i = first; i < first + count; ++i) {
        const double w = static_cast<double>(m.param().value[static_cast<std::size_t>(i)]);
        w2 += w * w;
        if (!grad.empty()) {
            const double g = static_cast<double>(grad[static_cast<std::size_t>(i)]);
            g2 += g * g;
        }
    }
    return std::sqrt(w2) + lambda * std::sqrt(g2);
}

template <typename T>
std::vector<double> unit_magnitudes(const sparse::BlockSparseMatrix<T> & m) {
    const int64_t r = m.shape().block_rows;
    std::vector<double> score(static_cast<std::size_t>(m.nnz_units()));
    for (int64_t u = 0; u < m.nnz_units(); ++u)
        score[static_cast<std::size_t>(u)] = unit_importance<T>(m, u * r, r, {}, 0.0);
    return score;
}

namespace {

std::vector<int64_t> extreme_scores(const std::vector<double> & score, int64_t count, bool lowest) {
    count = std::clamp<int64_t>(count, 0, static_cast<int64_t>(score.size()));
    std::vector<int64_t> order(score.size());
    std::iota(order.begin(), order.end(), int64_t{0});
    const auto before = [&](int64_t a, int64_t b) {
        const double sa = score[static_cast<std::size_t>(a)], sb = score[static_cast<std::size_t>(b)];
        if (sa != sb) return lowest ? sa < sb : sa > sb;
        return a < b;
    };
    std::nth_element(order.begin(), order.begin() + count, order.end(), before);
    order.resize(static_cast<std::size_t>(count));
    std::sort(order.begin(), order.end());
    return order;
}

}  // namespace

std::vector<int64_t> lowest_scores(const std::vector<double> & score, int64_t count) {
    return extreme_scores(score, count, true);
}

std::vector<int64_t> highest_scores(const std::vector<double> & score, int64_t count) {
    return extreme_scores(score, count, false);
}

template <typename T>
bool unit_stored(const sparse::BlockSparseMatrix<T> & m, sparse::UnitPosition p) {
    const int32_t * begin = m.col_idx() + m.block_ptr()[p.block];
    const int32_t * end = m.col_idx() + m.block_ptr()[p.block + 1];
    return std::binary_search(begin, end, p.col);
}

template <typename T>
std::vector<sparse::UnitPosition> random_free_units(const sparse::BlockSparseMatrix<T> & m, int64_t count,
                                                    const std::unordered_set<int64_t> & also_free, Rng & rng) {
    const auto & shape = m.shape();
    const int64_t total = shape.total_units();
    count = std::min<int64_t>(count, total - m.nnz_units() + static_cast<int64_t>(also_free.size()));
    const auto is_free = [&](int64_t id) { return !unit_stored(m, unit_at(shape, id)) || also_free.count(id) > 0; };
    std::unordered_set<int64_t> chosen;
    std::vector<sparse::UnitPosition> grow;
    const int64_t max_draws = 64 * count + 1024;
    for (int64_t draws = 0; static_cast<int64_t>(grow.size()) < count && draws < max_draws; ++draws) {
        const auto id = static_cast<int64_t>(rng.below(static_cast<uint64_t>(total)));
        if (!is_free(id) || !chosen.insert(id).second) continue;
        grow.push_back(unit_at(shape, id));
    }
    if (static_cast<int64_t>(grow.size()) < count) {
        std::vector<int64_t> free;
        for (int64_t id = 0; id < total; ++id)
            if (is_free(id) && !chosen.count(id)) free.push_back(id);
        const auto missing = count - static_cast<int64_t>(grow.size());
        sparse::partial_shuffle(free, missing, rng);
        for (int64_t i = 0; i < missing; ++i) grow.push_back(unit_at(shape, free[static_cast<std::size_t>(i)]));
    }
    return grow;
}

#define MEST_UNIT_SELECTION(T)                                                                                  \
    template double unit_importance(const sparse::BlockSparseMatrix<T> &, int64_t, int64_t, std::span<const T>, \
                                    double);                                                                    \
    template std::vector<double> unit_magnitudes(const sparse::BlockSparseMatrix<T> &);                         \
    template bool unit_stored(const sparse::BlockSparseMatrix<T> &, sparse::UnitPosition);                      \
    template std::vector<sparse::UnitPosition> random_free_units(const sparse::BlockSparseMatrix<T> &, int64_t, \
                                                                 const std::unordered_set<int64_t> &, Rng &);
MEST_UNIT_SELECTION(float)
MEST_UNIT_SELECTION(double)
#undef MEST_UNIT_SELECTION

}  // namespace mest::methods
