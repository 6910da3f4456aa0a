// `mest bench --layers`: every distinct 3x3 conv shape of ResNet-32 at the given batch, forward,
// backward-data, backward-weights and both gradients as training computes them (one kernel for
// sparse layers, the two calls for dense), dense (oneDNN) against each sparse scheme at several
// sparsities. Medians over repetitions; ratios are dense time / sparse time in the same process.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "kernels/conv_dnnl.h"
#include "kernels/kernel_registry.h"
#include "nn/sparse_conv2d.h"
#include "sparse/initial_mask.h"

namespace mest::app {

namespace {

double median_ms(int reps, const std::function<void()> & fn) {
    fn();  // warm-up: primitive creation, workspace growth
    std::vector<double> t;
    for (int i = 0; i < reps; ++i) {
        const auto t0 = std::chrono::steady_clock::now();
        fn();
        t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

struct Timings {
    double fwd, bwd_data, bwd_weights, bwd;
};

// Backward-data alone is not a registry entry (layers run both gradients in one kernel); the
// column follows the registry's active one.
void sparse_backward_data(const kernels::ConvGeometry & g, const kernels::BlockSparseView & v, const float * values,
                          const float * dy, float * dx) {
    if (kernels::active_kernels() == kernels::KernelImpl::kReference) {
        kernels::sparse_conv2d_backward_data_reference<float>(g, v, values, dy, dx);
    } else {
        kernels::sparse_conv2d_backward_data(g, v, values, dy, dx);
    }
}

// The sparse layer's three kernels and the combined backward, through the registry.
Timings time_sparse(int reps, const kernels::ConvGeometry & g, const kernels::BlockSparseView & v, const float * values,
                    const std::vector<float> & src, const std::vector<float> & dy, std::vector<float> & dst,
                    std::vector<float> & dx, std::vector<float> & grads) {
    const auto & k = kernels::registry();
    return {
        median_ms(reps, [&] { k.sparse_conv2d_forward(g, v, values, src.data(), dst.data(), nullptr, nullptr); }),
        median_ms(reps, [&] { sparse_backward_data(g, v, values, dy.data(), dx.data()); }),
        median_ms(reps, [&] { k.sparse_conv2d_backward_weights(g, v, src.data(), dy.data(), grads.data(), nullptr); }),
        median_ms(reps, [&] {
            k.sparse_conv2d_backward(g, v, values, src.data(), dy.data(), dx.data(), grads.data(), nullptr);
        })};
}

}  // namespace

int run_layer_bench(const BenchArgs & args) {
    struct Layer {
        const char * name;
        int64_t cin, cout, size, stride;
    };
    const Layer layers[] = {{"16->16 @32x32", 16, 16, 32, 1},
                            {"16->32 @32x32 s2", 16, 32, 32, 2},
                            {"32->32 @16x16", 32, 32, 16, 1},
                            {"32->64 @16x16 s2", 32, 64, 16, 2},
                            {"64->64 @8x8", 64, 64, 8, 1}};
    const double sparsities[] = {0.8, 0.9, 0.95, 0.98};
    const int reps = std::max(3, args.steps);
    Rng rng(1);
    nlohmann::json rows = nlohmann::json::array();
    std::printf("%-18s %-16s %9s %9s %9s %9s   %s\n", "layer", "variant", "fwd ms", "bwd-d ms", "bwd-w ms", "bwd ms",
                "speedup vs dense (fwd/bwd-d/bwd-w/bwd)");
    for (const Layer & L : layers) {
        const kernels::ConvGeometry g{args.batch, L.cin, L.size, L.size, L.cout, 3, 3, L.stride, 1};
        std::vector<float> src(static_cast<std::size_t>(g.src_count())), dy(static_cast<std::size_t>(g.dst_count()));
        for (auto & v : src) v = static_cast<float>(rng.normal());
        for (auto & v : dy) v = static_cast<float>(rng.normal());
        std::vector<float> dst(dy.size()), dx(src.size()), w(static_cast<std::size_t>(g.weight_count())), dw(w.size());
        for (auto & v : w) v = static_cast<float>(rng.normal());
        kernels::DnnlConv2d dense(g, false);
        const auto dense_timings = [&](kernels::DnnlConv2d & conv, const std::vector<float> & x,
                                       const std::vector<float> & gy, const std::vector<float> & weight,
                                       std::vector<float> & y, std::vector<float> & gx, std::vector<float> & gw) {
            const double fwd = median_ms(reps, [&] { conv.forward(x.data(), weight.data(), nullptr, y.data()); });
            const double data = median_ms(reps, [&] { conv.backward_data(gy.data(), weight.data(), gx.data()); });
            const double weights =
                median_ms(reps, [&] { conv.backward_weights(x.data(), gy.data(), gw.data(), nullptr); });
            return Timings{fwd, data, weights, data + weights};
        };
        const Timings d = dense_timings(dense, src, dy, w, dst, dx, dw);
        std::printf("%-18s %-16s %9.3f %9.3f %9.3f %9.3f\n", L.name, "dense", d.fwd, d.bwd_data, d.bwd_weights, d.bwd);
        rows.push_back({{"layer", L.name},
                        {"variant", "dense"},
                        {"fwd_ms", d.fwd},
                        {"bwd_data_ms", d.bwd_data},
                        {"bwd_weights_ms", d.bwd_weights},
                        {"bwd_ms", d.bwd}});
        const auto report = [&](const std::string & variant, const Timings & t) {
            std::printf("%-18s %-16s %9.3f %9.3f %9.3f %9.3f   %.2fx / %.2fx / %.2fx / %.2fx\n", L.name,
                        variant.c_str(), t.fwd, t.bwd_data, t.bwd_weights, t.bwd, d.fwd / t.fwd,
                        d.bwd_data / t.bwd_data, d.bwd_weights / t.bwd_weights, d.bwd / t.bwd);
            rows.push_back({{"layer", L.name},
                            {"variant", variant},
                            {"fwd_ms", t.fwd},
                            {"bwd_data_ms", t.bwd_data},
                            {"bwd_weights_ms", t.bwd_weights},
                            {"bwd_ms", t.bwd},
                            {"speedup_fwd", d.fwd / t.fwd},
                            {"speedup_bwd_data", d.bwd_data / t.bwd_data},
                            {"speedup_bwd_weights", d.bwd_weights / t.bwd_weights},
                            {"speedup_bwd", d.bwd / t.bwd}});
        };
        for (const char * scheme : {"unstructured", "block", "pattern"}) {
            for (double s : sparsities) {
                const auto kind = sparse::parse_scheme(scheme);
                const nn::SparseConvConfig config{
                    {L.cin, L.cout, 3, L.stride, 1, false}, kind == sparse::Scheme::kBlock ? 4 : 1, s};
                nn::SparseConv2d<float> layer(
                    "bench", config, sparse::random_scheme_units(kind, nn::sparse_matrix_shape(config), 3, 3, s, rng));
                layer.initialize(rng);
                auto & m = layer.weights();
                const kernels::BlockSparseView v = m.view(true);
                const float * values = m.param().value.data();
                std::vector<float> grads(m.param().size());
                const Timings t = time_sparse(reps, g, v, values, src, dy, dst, dx, grads);
                char variant[32];
                std::snprintf(variant, sizeof variant, "%s %.0f%%", scheme, 100 * s);
                report(variant, t);
            }
        }
        // Channel scheme: the same layer physically narrowed, as a block's conv1 (filters removed)
        // and as its conv2 (input channels removed), run by oneDNN.
        for (double s : sparsities) {
            for (const bool narrow_out : {true, false}) {
                const int64_t cin = narrow_out ? L.cin : std::max<int64_t>(1, std::llround((1 - s) * L.cin));
                const int64_t cout = narrow_out ? std::max<int64_t>(1, std::llround((1 - s) * L.cout)) : L.cout;
                const kernels::ConvGeometry gn{args.batch, cin, L.size, L.size, cout, 3, 3, L.stride, 1};
                std::vector<float> nsrc(static_cast<std::size_t>(gn.src_count()), 0.5f),
                    ndy(static_cast<std::size_t>(gn.dst_count()), 0.5f), ndst(ndy.size()), ndx(nsrc.size()),
                    nw(static_cast<std::size_t>(gn.weight_count()), 0.1f), ndw(nw.size());
                kernels::DnnlConv2d narrow(gn, false);
                const Timings t = dense_timings(narrow, nsrc, ndy, nw, ndst, ndx, ndw);
                char variant[32];
                std::snprintf(variant, sizeof variant, "channel-%s %.0f%%", narrow_out ? "out" : "in", 100 * s);
                report(variant, t);
                // The same narrow layer as a full block-sparse matrix through mest's kernels.
                const nn::SparseConvConfig full{{cin, cout, 3, L.stride, 1, false}, 4, 0.0};
                nn::SparseConv2d<float> layer("bench", full, rng);
                auto & m = layer.weights();
                const kernels::BlockSparseView v = m.view(true);
                std::vector<float> grads(m.param().size());
                const float * values = m.param().value.data();
                const Timings k = time_sparse(reps, gn, v, values, nsrc, ndy, ndst, ndx, grads);
                std::snprintf(variant, sizeof variant, "chan-%s-mk %.0f%%", narrow_out ? "out" : "in", 100 * s);
                report(variant, k);
            }
        }
    }
    if (args.json) std::printf("%s\n", rows.dump().c_str());
    return 0;
}

}  // namespace mest::app
