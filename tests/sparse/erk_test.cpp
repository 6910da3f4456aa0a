// ERK layer densities against the values RigL's allocator gives for MEST's ResNet-32 (32/64/128,
// every conv and the classifier prunable; baselines-reference.md section 2.1), the kept-weight
// budget, and the capacity clamp.
#include "sparse/erk.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

namespace mest {
namespace {

// The prunable tensors of the GraSP/MEST ResNet-32 on CIFAR-10, with names.
std::vector<std::pair<std::string, sparse::ErkLayer>> resnet32w2_layers() {
    std::vector<std::pair<std::string, sparse::ErkLayer>> layers;
    layers.push_back({"conv1", {{32, 3, 3, 3}}});
    const int64_t widths[] = {32, 64, 128};
    int64_t in = 32;
    for (int stage = 0; stage < 3; ++stage) {
        for (int b = 0; b < 5; ++b) {
            std::string id = "l";
            id += std::to_string(stage + 1);
            id += '.';
            id += std::to_string(b);
            const int64_t out = widths[stage];
            layers.push_back({id + std::string(".conv1"), {{out, in, 3, 3}}});
            layers.push_back({id + std::string(".conv2"), {{out, out, 3, 3}}});
            if (in != out) layers.push_back({id + std::string(".shortcut"), {{out, in, 1, 1}}});
            in = out;
        }
    }
    layers.push_back({"fc", {{10, 128}}});
    return layers;
}

TEST(Erk, MatchesRiglAllocatorOnMestResNet32) {
    const auto named = resnet32w2_layers();
    std::vector<sparse::ErkLayer> layers;
    int64_t total = 0;
    for (const auto & [name, l] : named) {
        layers.push_back(l);
        int64_t n = 1;
        for (int64_t d : l.shape) n *= d;
        total += n;
    }
    EXPECT_EQ(total, 1855584);
    const std::map<double, std::map<std::string, double>> expected{{0.90,
                                                                    {{"conv1", 1.0},
                                                                     {"l1.0.conv1", 0.290},
                                                                     {"l2.0.conv1", 0.211},
                                                                     {"l2.0.shortcut", 1.0},
                                                                     {"l2.1.conv1", 0.139},
                                                                     {"l3.0.conv1", 0.102},
                                                                     {"l3.0.shortcut", 0.903},
                                                                     {"l3.1.conv1", 0.068},
                                                                     {"fc", 1.0}}},
                                                                   {0.95,
                                                                    {{"conv1", 0.887},
                                                                     {"l1.0.conv1", 0.142},
                                                                     {"l2.0.conv1", 0.103},
                                                                     {"l2.0.shortcut", 0.894},
                                                                     {"l2.1.conv1", 0.068},
                                                                     {"l3.0.conv1", 0.050},
                                                                     {"l3.0.shortcut", 0.443},
                                                                     {"l3.1.conv1", 0.033},
                                                                     {"fc", 1.0}}},
                                                                   {0.98,
                                                                    {{"conv1", 0.350},
                                                                     {"l1.0.conv1", 0.056},
                                                                     {"l2.0.conv1", 0.041},
                                                                     {"l2.0.shortcut", 0.353},
                                                                     {"l2.1.conv1", 0.027},
                                                                     {"l3.0.conv1", 0.020},
                                                                     {"l3.0.shortcut", 0.175},
                                                                     {"l3.1.conv1", 0.013},
                                                                     {"fc", 0.795}}}};
    for (const auto & [s, want] : expected) {
        const auto d = sparse::erk_densities(layers, s);
        double kept = 0.0;
        for (std::size_t i = 0; i < named.size(); ++i) {
            int64_t n = 1;
            for (int64_t x : named[i].second.shape) n *= x;
            kept += d[i] * static_cast<double>(n);
            const auto it = want.find(named[i].first);
            if (it != want.end()) {
                EXPECT_NEAR(d[i], it->second, 6e-4) << named[i].first << " at " << s;
            }
        }
        EXPECT_NEAR(kept / static_cast<double>(total), 1.0 - s, 1e-4) << s;
    }
}

TEST(Erk, CapacityClampPinsLayersAtTheirMaximum) {
    // Pattern layers can keep at most 4/9 of their weights.
    const std::vector<sparse::ErkLayer> layers{{{16, 16, 3, 3}, 4.0 / 9.0}, {{64, 64, 3, 3}, 4.0 / 9.0}};
    const auto d = sparse::erk_densities(layers, 0.6);
    EXPECT_NEAR(d[0], 4.0 / 9.0, 1e-12);
    EXPECT_LE(d[1], 4.0 / 9.0 + 1e-12);
    const double kept = d[0] * 2304 + d[1] * 36864;
    EXPECT_NEAR(kept, 0.4 * (2304 + 36864), 2.0);
    // Uniform shapes give uniform densities.
    const std::vector<sparse::ErkLayer> same{{{32, 32, 3, 3}}, {{32, 32, 3, 3}}};
    for (double x : sparse::erk_densities(same, 0.9)) EXPECT_NEAR(x, 0.1, 1e-3);
}

}  // namespace
}  // namespace mest
