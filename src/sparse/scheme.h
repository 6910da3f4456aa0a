// The sparsity schemes a sparse layer can follow, and which unit each one prunes and grows:
//   unstructured  one weight                       (BlockSparseMatrix, block_rows = 1)
//   block         a block_rows x 1 column piece    (BlockSparseMatrix, block_rows = 4 by default)
//   pattern       a 3x3 kernel keeping 4 taps of one library pattern (block_rows = 1 storage,
//                 4 units per kernel); non-3x3 layers fall back to unstructured
//   channel       a whole output filter of a block's first conv, with the matching input channel
//                 of the second conv: both become physically smaller dense layers
#pragma once
#include <string>
#include <vector>

namespace mest::sparse {

enum class Scheme { kDense, kUnstructured, kBlock, kPattern, kChannel };

const std::vector<std::string> & scheme_names();  // dense, unstructured, block, pattern, channel
// Throws an input error naming --scheme and the valid names.
Scheme parse_scheme(const std::string & name);
std::string scheme_name(Scheme scheme);

// Which layers of a model are sparse.
enum class SparseLayers { kResidual, kAllButFirstLast };
const std::vector<std::string> & sparse_layer_names();  // residual, all-but-first-last
SparseLayers parse_sparse_layers(const std::string & name);

// How the global sparsity is spread over the sparse layers.
enum class Distribution { kUniform, kErk };
const std::vector<std::string> & distribution_names();  // uniform, erk
Distribution parse_distribution(const std::string & name);

}  // namespace mest::sparse
