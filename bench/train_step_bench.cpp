// Google Benchmark: one dense training step (forward, loss, backward, SGD) of the CIFAR ResNets on
// random 3x32x32 data, with the ledger's peak bytes per category and the process peak RSS as
// counters. `mest bench` prints the same measurement as one JSON line for side-by-side runs with
// ../shared/anchors/torch_step.py.
#include <benchmark/benchmark.h>

#include "core/threads.h"
#include "nn/models.h"
#include "train/step.h"

namespace {

void train_step_benchmark(benchmark::State & state, const char * model_name) {
    const int batch = static_cast<int>(state.range(0));
    const int threads = static_cast<int>(state.range(1));
    mest::set_num_threads(threads);
    auto model = mest::nn::build_model<float>(model_name, mest::nn::InputSpec{3, 32, 32, 10});
    mest::Rng rng(0);
    model->initialize(rng);
    std::vector<mest::nn::Parameter<float> *> params;
    model->collect_parameters(params);
    mest::optim::Sgd<float> sgd(params, mest::optim::SgdConfig{0.9, 1e-4, false});
    mest::nn::SoftmaxCrossEntropy<float> loss;
    mest::Tensor<float> images(mest::Shape{batch, 3, 32, 32}, mest::MemCategory::kData);
    for (auto & v : images.span()) v = static_cast<float>(rng.normal());
    std::vector<int32_t> labels(static_cast<std::size_t>(batch));
    for (auto & l : labels) l = static_cast<int32_t>(rng.below(10));
    mest::train::train_step(*model, loss, sgd, images, labels, 0.1);  // warm-up: primitive creation
    mest::MemoryLedger::instance().reset_peaks();
    for (auto _ : state) mest::train::train_step(*model, loss, sgd, images, labels, 0.1);
    const auto snap = mest::MemoryLedger::instance().snapshot();
    for (int i = 0; i < mest::kMemCategoryCount; ++i) {
        state.counters[std::string("MB_") + mest::mem_category_name(static_cast<mest::MemCategory>(i))] =
            static_cast<double>(snap.peak[i]) / (1 << 20);
    }
    state.counters["MB_peak_rss"] = static_cast<double>(mest::process_peak_rss_bytes()) / (1 << 20);
    state.counters["img_per_s"] =
        benchmark::Counter(static_cast<double>(batch), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK_CAPTURE(train_step_benchmark, resnet32, "resnet32")
    ->Args({64, 2})
    ->Args({64, 1})
    ->Args({128, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);
BENCHMARK_CAPTURE(train_step_benchmark, resnet32w2, "resnet32w2")
    ->Args({64, 2})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime()
    ->MinTime(3.0);

BENCHMARK_MAIN();
