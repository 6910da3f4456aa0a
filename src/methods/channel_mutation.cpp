#include "methods/channel_mutation.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "methods/unit_selection.h"

namespace mest::methods {

namespace {

void visit(nn::Module<float> & m, std::vector<nn::BasicBlock<float> *> & out) {
    if (auto * block = dynamic_cast<nn::BasicBlock<float> *>(&m)) {
        if (block->channel_scheme()) out.push_back(block);
    } else if (auto * seq = dynamic_cast<nn::Sequential<float> *>(&m)) {
        for (const auto & child : seq->modules()) visit(*child, out);
    }
}

// Sum of squares of row `slot` of a [rows, cols] weight (conv1's filter), or of its column group
// `slot` of `taps` columns over all rows (conv2's input slice).
template <typename V>
double row_squares(const V * v, const nn::channel_remap::FullLayout & l, int64_t slot) {
    double s = 0.0;
    for (int64_t c = 0; c < l.cols; ++c)
        s += static_cast<double>(v[l.at(slot, c)]) * static_cast<double>(v[l.at(slot, c)]);
    return s;
}

template <typename V>
double column_group_squares(const V * v, const nn::channel_remap::FullLayout & l, int64_t slot, int64_t taps) {
    double s = 0.0;
    for (int64_t r = 0; r < l.rows; ++r)
        for (int64_t t = 0; t < taps; ++t) {
            const double x = static_cast<double>(v[l.at(r, slot * taps + t)]);
            s += x * x;
        }
    return s;
}

}  // namespace

std::vector<nn::BasicBlock<float> *> find_channel_blocks(nn::Sequential<float> & net) {
    std::vector<nn::BasicBlock<float> *> out;
    visit(net, out);
    return out;
}

int64_t channel_count(int64_t width, double sparsity) {
    const auto kept = std::llround((1.0 - sparsity) * static_cast<double>(width));
    return std::clamp<int64_t>(kept, 1, width);
}

template <typename T>
std::vector<double> channel_importance(nn::BasicBlock<T> & block, std::span<const T> conv1_grad,
                                       std::span<const T> conv2_grad, double lambda) {
    const auto & w1 = block.conv1_weight();
    const auto & w2 = block.conv2_weight();
    const auto l1 = block.conv1_layout(), l2 = block.conv2_layout();
    const int64_t width = block.mid_channels(), taps = l2.cols / width;
    MEST_CHECK(l1.rows == width && l2.cols == width * taps) << block.name() << ": conv widths disagree";
    const bool with_grad = lambda > 0.0 && !conv1_grad.empty() && !conv2_grad.empty();
    MEST_CHECK(!with_grad || (conv1_grad.size() == w1.size() && conv2_grad.size() == w2.size()))
        << block.name() << ": gradient score length";
    std::vector<double> score(static_cast<std::size_t>(width));
    for (int64_t j = 0; j < width; ++j) {
        double s = std::sqrt(row_squares(w1.value.data(), l1, j)) +
                   std::sqrt(column_group_squares(w2.value.data(), l2, j, taps));
        if (with_grad)
            s += lambda * (std::sqrt(row_squares(conv1_grad.data(), l1, j)) +
                           std::sqrt(column_group_squares(conv2_grad.data(), l2, j, taps)));
        score[static_cast<std::size_t>(j)] = s;
    }
    return score;
}

template <typename T>
MutationStats mutate_channels(nn::BasicBlock<T> & block, const MutationBounds & bounds, std::span<const T> conv1_grad,
                              std::span<const T> conv2_grad, const MutationOptions & options, Rng & rng) {
    MEST_CHECK(bounds.grow_to <= bounds.prune_to + 1e-12) << "grow-to sparsity above prune-to";
    const int64_t logical = block.out_channels(), width = block.mid_channels();
    const std::vector<int32_t> held = block.mid_channel_ids();
    const int64_t keep = std::min(width, channel_count(logical, bounds.prune_to));
    const std::vector<int64_t> prune =
        lowest_scores(channel_importance(block, conv1_grad, conv2_grad, options.lambda), width - keep);

    std::vector<uint8_t> state(static_cast<std::size_t>(logical), 0);  // 1 survives, 2 just pruned
    for (int32_t id : held) state[static_cast<std::size_t>(id)] = 1;
    for (int64_t slot : prune) state[static_cast<std::size_t>(held[static_cast<std::size_t>(slot)])] = 2;
    std::vector<int32_t> survivors, candidates;
    for (int32_t id = 0; id < logical; ++id) {
        const uint8_t s = state[static_cast<std::size_t>(id)];
        if (s == 1) survivors.push_back(id);
        if (s == 0 || (s == 2 && options.allow_regrow)) candidates.push_back(id);
    }
    const int64_t target = std::clamp<int64_t>(channel_count(logical, bounds.grow_to), keep, logical);
    const int64_t grow = std::min<int64_t>(target - keep, static_cast<int64_t>(candidates.size()));
    // Partial Fisher-Yates over the ascending candidate list: an exactly uniform draw without replacement.
    for (int64_t i = 0; i < grow; ++i)
        std::swap(candidates[static_cast<std::size_t>(i)],
                  candidates[static_cast<std::size_t>(
                      i + static_cast<int64_t>(rng.below(static_cast<uint64_t>(candidates.size()) - i)))]);

    MutationStats stats{static_cast<int64_t>(prune.size()), grow,
                        static_cast<int64_t>(block.conv1_weight().size() + block.conv2_weight().size()), 0};
    // Prune first, then grow: a re-picked id (allow_regrow) then starts afresh like any newcomer.
    if (!prune.empty()) block.set_mid_channels(survivors, rng);
    if (grow > 0) {
        std::vector<int32_t> ids = survivors;
        ids.insert(ids.end(), candidates.begin(), candidates.begin() + grow);
        std::sort(ids.begin(), ids.end());
        block.set_mid_channels(ids, rng);
    }
    stats.nnz_after = static_cast<int64_t>(block.conv1_weight().size() + block.conv2_weight().size());
    return stats;
}

template std::vector<double> channel_importance(nn::BasicBlock<float> &, std::span<const float>, std::span<const float>,
                                                double);
template std::vector<double> channel_importance(nn::BasicBlock<double> &, std::span<const double>,
                                                std::span<const double>, double);
template MutationStats mutate_channels(nn::BasicBlock<float> &, const MutationBounds &, std::span<const float>,
                                       std::span<const float>, const MutationOptions &, Rng &);
template MutationStats mutate_channels(nn::BasicBlock<double> &, const MutationBounds &, std::span<const double>,
                                       std::span<const double>, const MutationOptions &, Rng &);

}  // namespace mest::methods
