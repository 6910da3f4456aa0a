// Sparse fully connected kernels: the sparse reference against a dense reference (through a dense
// copy of the weight made for the test only), and the optimized kernels against the sparse
// reference on every SIMD target this machine runs, over odd shapes, batch sizes, block heights
// and sparsities 0, 0.5, 0.9, 0.98 and 1.0.
#include "kernels/sparse_linear.h"

#include <gtest/gtest.h>
#include <hwy/targets.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/threads.h"
#include "nn/sparse_conv2d.h"  // random_units
#include "sparse/block_sparse_matrix.h"
#include "test_util/sparse_kernel_checks.h"

namespace mest {
namespace {

using test::expect_close;
using test::random_vector;
using test::view_of;

struct DenseResult {
    std::vector<float> y, dx, dw;
};

// y = x W^T, dx = dy W, dW = dy^T x on the dense copy, accumulated in double.
DenseResult dense_reference(const std::vector<float> & w, int64_t in, int64_t out, int64_t batch,
                            const std::vector<float> & x, const std::vector<float> & dy) {
    DenseResult r{std::vector<float>(static_cast<std::size_t>(batch * out)),
                  std::vector<float>(static_cast<std::size_t>(batch * in)),
                  std::vector<float>(static_cast<std::size_t>(out * in))};
    const auto at = [](int64_t i) { return static_cast<std::size_t>(i); };
    for (int64_t n = 0; n < batch; ++n)
        for (int64_t o = 0; o < out; ++o) {
            double acc = 0.0;
            for (int64_t i = 0; i < in; ++i) acc += static_cast<double>(x[at(n * in + i)]) * w[at(o * in + i)];
            r.y[at(n * out + o)] = static_cast<float>(acc);
        }
    for (int64_t n = 0; n < batch; ++n)
        for (int64_t i = 0; i < in; ++i) {
            double acc = 0.0;
            for (int64_t o = 0; o < out; ++o) acc += static_cast<double>(dy[at(n * out + o)]) * w[at(o * in + i)];
            r.dx[at(n * in + i)] = static_cast<float>(acc);
        }
    for (int64_t o = 0; o < out; ++o)
        for (int64_t i = 0; i < in; ++i) {
            double acc = 0.0;
            for (int64_t n = 0; n < batch; ++n) acc += static_cast<double>(dy[at(n * out + o)]) * x[at(n * in + i)];
            r.dw[at(o * in + i)] = static_cast<float>(acc);
        }
    return r;
}

// The dense gradient picked at the stored values (zero for the rows a partial block pads with).
std::vector<float> at_nonzeros(const sparse::BlockSparseMatrix<float> & m, const std::vector<float> & dense) {
    const auto & s = m.shape();
    std::vector<float> out(m.param().size());
    for (int64_t u = 0; u < m.nnz_units(); ++u) {
        const auto pos = m.unit_position(u);
        for (int64_t r = 0; r < s.block_rows; ++r) {
            const int64_t row = pos.block * s.block_rows + r;
            out[static_cast<std::size_t>(u * s.block_rows + r)] =
                row < s.rows ? dense[static_cast<std::size_t>(row * s.cols + pos.col)] : 0.0f;
        }
    }
    return out;
}

struct Outputs {
    std::vector<float> y, dx, dw;
};

Outputs run_optimized(const sparse::BlockSparseMatrix<float> & m, int64_t batch, const std::vector<float> & x,
                      const std::vector<float> & dy) {
    const auto w = view_of(m);
    const float * values = m.param().value.data();
    // Poisoned: every output element must be written.
    Outputs o{std::vector<float>(dy.size(), NAN), std::vector<float>(x.size(), NAN),
              std::vector<float>(m.param().size(), NAN)};
    kernels::sparse_linear_forward(w, values, batch, x.data(), o.y.data());
    kernels::sparse_linear_backward_data(w, values, batch, dy.data(), o.dx.data());
    kernels::sparse_linear_backward_weights(w, batch, x.data(), dy.data(), o.dw.data());
    return o;
}

// Single-threaded: ~1000 tiny cases would otherwise pay an OpenMP fork/join per kernel call (ruinous
// on a loaded machine); the tests below run the parallel paths.
class SingleThread {
public:
    SingleThread() : saved_(num_threads()) { set_num_threads(1); }
    ~SingleThread() { set_num_threads(saved_); }
    SingleThread(const SingleThread &) = delete;
    SingleThread & operator=(const SingleThread &) = delete;

private:
    int saved_;
};

TEST(SparseLinearKernels, MatchReferencesOnEveryTarget) {
    const SingleThread single_thread;
    uint64_t seed = 20260311;
    int64_t checked = 0;
    for (int64_t block_rows : {1, 2, 4, 3}) {
        for (int64_t in : {1, 7, 33, 130}) {
            for (int64_t out : {1, 5, 10, 17}) {
                for (int64_t batch : {1, 3, 64}) {
                    for (double sparsity : {0.0, 0.5, 0.9, 0.98, 1.0}) {
                        Rng rng(seed++);
                        const sparse::BlockSparseShape shape{out, in, block_rows};
                        sparse::BlockSparseMatrix<float> m("w", Shape{out, in}, shape,
                                                           nn::random_units(shape, sparsity, rng));
                        // Padded rows of a partial last block get values too: no kernel may read them.
                        for (auto & v : m.param().value.span()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
                        m.check_invariants();
                        const auto x = random_vector(static_cast<std::size_t>(batch * in), rng);
                        const auto dy = random_vector(static_cast<std::size_t>(batch * out), rng);
                        const auto w = view_of(m);
                        const float * values = m.param().value.data();
                        SCOPED_TRACE("seed " + std::to_string(seed - 1) + " in " + std::to_string(in) + " out " +
                                     std::to_string(out) + " batch " + std::to_string(batch) + " block_rows " +
                                     std::to_string(block_rows) + " sparsity " + std::to_string(sparsity));

                        std::vector<float> y_ref(dy.size()), dx_ref(x.size()), dw_ref(m.param().size());
                        kernels::sparse_linear_forward_reference(w, values, batch, x.data(), y_ref.data());
                        kernels::sparse_linear_backward_data_reference(w, values, batch, dy.data(), dx_ref.data());
                        kernels::sparse_linear_backward_weights_reference(w, batch, x.data(), dy.data(), dw_ref.data());

                        const auto dense = dense_reference(m.to_dense_for_testing(), in, out, batch, x, dy);
                        expect_close(y_ref, dense.y, "forward reference vs dense");
                        expect_close(dx_ref, dense.dx, "backward-data reference vs dense");
                        expect_close(dw_ref, at_nonzeros(m, dense.dw), "backward-weights reference vs dense");

                        for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
                            hwy::SetSupportedTargetsForTest(target);
                            SCOPED_TRACE(hwy::TargetName(target));
                            const Outputs o = run_optimized(m, batch, x, dy);
                            expect_close(o.y, y_ref, "forward");
                            expect_close(o.dx, dx_ref, "backward-data");
                            expect_close(o.dw, dw_ref, "backward-weights");
                            ++checked;
                        }
                        hwy::SetSupportedTargetsForTest(0);
                        if (HasFatalFailure()) return;
                    }
                }
            }
        }
    }
    EXPECT_GE(checked, 4 * 4 * 4 * 3 * 5);
}

// Shapes of real heads and hidden layers, batch sizes that leave ragged vector tiles, block
// heights above the kernels' 4-row register tile, and the combined backward against the parts.
TEST(SparseLinearKernels, LargerShapesTallBlocksAndCombinedBackward) {
    struct Case {
        int64_t in, out, batch, block_rows;
        double sparsity;
    };
    uint64_t seed = 77;
    for (const Case & c : {Case{512, 10, 128, 1, 0.9}, Case{256, 120, 130, 4, 0.9}, Case{300, 37, 17, 8, 0.7},
                           Case{64, 64, 100, 6, 0.5}, Case{1, 1, 1, 1, 0.0}, Case{9, 3, 2, 5, 0.0}}) {
        Rng rng(seed++);
        const sparse::BlockSparseShape shape{c.out, c.in, c.block_rows};
        sparse::BlockSparseMatrix<float> m("w", Shape{c.out, c.in}, shape, nn::random_units(shape, c.sparsity, rng));
        for (auto & v : m.param().value.span()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
        const auto x = random_vector(static_cast<std::size_t>(c.batch * c.in), rng);
        const auto dy = random_vector(static_cast<std::size_t>(c.batch * c.out), rng);
        const auto w = view_of(m);
        const float * values = m.param().value.data();
        SCOPED_TRACE("in " + std::to_string(c.in) + " out " + std::to_string(c.out) + " batch " +
                     std::to_string(c.batch) + " block_rows " + std::to_string(c.block_rows));
        std::vector<float> y_ref(dy.size()), dx_ref(x.size()), dw_ref(m.param().size());
        kernels::sparse_linear_forward_reference(w, values, c.batch, x.data(), y_ref.data());
        kernels::sparse_linear_backward_data_reference(w, values, c.batch, dy.data(), dx_ref.data());
        kernels::sparse_linear_backward_weights_reference(w, c.batch, x.data(), dy.data(), dw_ref.data());
        const auto dense = dense_reference(m.to_dense_for_testing(), c.in, c.out, c.batch, x, dy);
        expect_close(y_ref, dense.y, "forward reference vs dense");
        expect_close(dx_ref, dense.dx, "backward-data reference vs dense");
        expect_close(dw_ref, at_nonzeros(m, dense.dw), "backward-weights reference vs dense");
        for (int64_t target : hwy::SupportedAndGeneratedTargets()) {
            hwy::SetSupportedTargetsForTest(target);
            SCOPED_TRACE(hwy::TargetName(target));
            const Outputs o = run_optimized(m, c.batch, x, dy);
            expect_close(o.y, y_ref, "forward");
            expect_close(o.dx, dx_ref, "backward-data");
            expect_close(o.dw, dw_ref, "backward-weights");
            std::vector<float> dx(x.size(), NAN), dw(m.param().size(), NAN);
            kernels::sparse_linear_backward(w, values, c.batch, x.data(), dy.data(), dx.data(), dw.data());
            EXPECT_EQ(dx, o.dx);
            EXPECT_EQ(dw, o.dw);
        }
        hwy::SetSupportedTargetsForTest(0);
    }
}

// Each output is computed by one thread in a fixed order: bit-identical at any thread count.
TEST(SparseLinearKernels, ResultsDoNotDependOnTheThreadCount) {
    Rng rng(5);
    const sparse::BlockSparseShape shape{256, 512, 4};
    sparse::BlockSparseMatrix<float> m("w", Shape{256, 512}, shape, nn::random_units(shape, 0.5, rng));
    for (auto & v : m.param().value.span()) v = static_cast<float>(rng.uniform(-1.0, 1.0));
    const int64_t batch = 96;
    const auto x = random_vector(static_cast<std::size_t>(batch * 512), rng);
    const auto dy = random_vector(static_cast<std::size_t>(batch * 256), rng);
    const Outputs many = run_optimized(m, batch, x, dy);
    const int saved = num_threads();
    set_num_threads(1);
    const Outputs one = run_optimized(m, batch, x, dy);
    set_num_threads(saved);
    EXPECT_EQ(many.y, one.y);
    EXPECT_EQ(many.dx, one.dx);
    EXPECT_EQ(many.dw, one.dw);
}

}  // namespace
}  // namespace mest
