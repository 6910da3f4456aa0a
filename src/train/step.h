// One optimisation step and one evaluation pass: the pieces the CLI's training loop and the
// step benchmark share.
#pragma once
#include <span>

#include "data/batch_loader.h"
#include "nn/cross_entropy.h"
#include "nn/sequential.h"
#include "optim/sgd.h"

namespace mest::train {

struct StepResult {
    double loss = 0.0;
    int64_t correct = 0;
    double grad_squares = 0.0;  // sum of the squared gradients SGD applied (non-finite: diverged)
    nn::CrossEntropyResult<float> per_example;
};

// forward -> loss -> backward (overwrites every gradient) -> SGD step.
StepResult train_step(nn::Sequential<float> & model, nn::SoftmaxCrossEntropy<float> & loss,
                      optim::Sgd<float> & optimizer, const Tensor<float> & images, std::span<const int32_t> labels,
                      double lr);

// forward (training mode) -> logits * logit_scale -> loss -> backward, no optimizer step: every
// parameter's grad holds dL/dw of the batch. BN running statistics are left as they were, so
// scoring passes (SNIP, GraSP) do not disturb the model. Returns the mean loss.
double gradient_pass(nn::Sequential<float> & model, const Tensor<float> & images, std::span<const int32_t> labels,
                     double logit_scale = 1.0);

struct EvalResult {
    double loss = 0.0;
    double accuracy = 0.0;
    int64_t examples = 0;
};

EvalResult evaluate(nn::Sequential<float> & model, data::BatchLoader & loader);

}  // namespace mest::train
