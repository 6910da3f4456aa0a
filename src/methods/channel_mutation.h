// MEST mutation for the channel scheme (--scheme channel). The released MEST code has no channel
// growth (mest-reference.md §9.4), so this rule is mest's own definition (§17.12):
//   unit       one inner channel j of a residual block: conv1's filter j, BN1's channel j and
//              conv2's input channel j (all its C_out x 3 x 3 weights), removed and added together
//   importance ||conv1 filter j||_2 + ||conv2 input slice j||_2, plus lambda * (the same two norms of
//              |g| summed over the importance window) when lambda > 0; BN1's affine does not count
//   counts     a sparsity s keeps round((1 - s) * C) channels, at least 1 (C = the block's output
//              width, as SparseLayerFactory::channel_mid_width): prune to the count at prune_to
//              (never adding), then grow to the count at grow_to (never below what was kept)
//   pruning    the lowest-importance channels; ties by physical slot, i.e. by logical id
//   growth     logical ids drawn uniformly without replacement from those not held; ids pruned in
//              the same update are excluded unless MutationOptions::allow_regrow (then a re-picked id
//              starts afresh like any newcomer)
//   newcomers  conv2 input slice ZERO (the network function is unchanged by growth, MEST's zero-init),
//              conv1 filter drawn from conv1's He init, BN1 gamma 1 / beta 0 / running mean 0 / var 1,
//              all optimizer state zero. A channel zero on both sides would be a fixed point (zero
//              activation after BN1 with beta 0, zero gradients: dead forever); with the random filter
//              its activation is non-zero, so its conv2 slice gets a gradient at the first step and
//              conv1's filter from the second on.
// The block is resized physically (BasicBlock::set_mid_channels): its width always equals the
// channels it holds; no masks, no zero channels left in place. Each physical slot carries the
// logical channel id (which of the C dense filters) it holds, kept in ascending order.
#pragma once
#include <cstdint>
#include <span>
#include <vector>

#include "core/rng.h"
#include "methods/mest_schedule.h"
#include "methods/mutation.h"
#include "nn/basic_block.h"
#include "nn/sequential.h"

namespace mest::methods {

// The channel-scheme residual blocks of a model (BasicBlock::channel_scheme()), in forward order.
std::vector<nn::BasicBlock<float> *> find_channel_blocks(nn::Sequential<float> & net);

// Channels a block of `width` logical channels keeps at `sparsity`: round((1 - s) * width) in [1, width].
int64_t channel_count(int64_t width, double sparsity);

// The importance of each physical inner slot (rule above). conv1_grad / conv2_grad: summed |g| per
// stored value of conv1's / conv2's weight, or empty (then lambda is ignored).
template <typename T>
std::vector<double> channel_importance(nn::BasicBlock<T> & block, std::span<const T> conv1_grad,
                                       std::span<const T> conv2_grad, double lambda);

// One mutation of one block. Units in the stats are channels; nnz counts the stored weights of
// conv1 + conv2. New ids and new conv1 filters are drawn from `rng`, in that order.
template <typename T>
MutationStats mutate_channels(nn::BasicBlock<T> & block, const MutationBounds & bounds, std::span<const T> conv1_grad,
                              std::span<const T> conv2_grad, const MutationOptions & options, Rng & rng);

}  // namespace mest::methods
