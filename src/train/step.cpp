#include "train/step.h"

#include <algorithm>
#include <vector>

#include "core/profiler.h"

namespace mest::train {

StepResult train_step(nn::Sequential<float> & model, nn::SoftmaxCrossEntropy<float> & loss,
                      optim::Sgd<float> & optimizer, const Tensor<float> & images, std::span<const int32_t> labels,
                      double lr) {
    StepResult r;
    {
        Tensor<float> logits = model.forward(images, true);
        ScopedOpTimer timer(OpKind::kLoss);
        r.per_example = loss.forward(logits, labels);
    }
    Tensor<float> dlogits;
    {
        ScopedOpTimer timer(OpKind::kLoss);
        dlogits = loss.backward();
    }
    model.backward(dlogits);
    ScopedOpTimer timer(OpKind::kOptimizer);
    r.grad_squares = optimizer.step(lr);
    r.loss = r.per_example.mean_loss;
    r.correct = r.per_example.num_correct;
    return r;
}

double gradient_pass(nn::Sequential<float> & model, const Tensor<float> & images, std::span<const int32_t> labels,
                     double logit_scale) {
    std::vector<nn::StateTensor<float>> states;
    model.collect_state(states);
    std::vector<std::vector<float>> saved;
    for (const auto & st : states) saved.emplace_back(st.values->data(), st.values->data() + st.values->size());
    nn::SoftmaxCrossEntropy<float> loss;
    Tensor<float> logits = model.forward(images, true);
    if (logit_scale != 1.0)
        for (auto & v : logits.span()) v = static_cast<float>(v * logit_scale);
    const auto out = loss.forward(logits, labels);
    Tensor<float> dlogits = loss.backward();
    if (logit_scale != 1.0)
        for (auto & v : dlogits.span()) v = static_cast<float>(v * logit_scale);
    model.backward(dlogits);
    for (std::size_t i = 0; i < states.size(); ++i)
        std::copy(saved[i].begin(), saved[i].end(), states[i].values->data());
    return out.mean_loss;
}

EvalResult evaluate(nn::Sequential<float> & model, data::BatchLoader & loader) {
    nn::SoftmaxCrossEntropy<float> loss;
    EvalResult r;
    double total_loss = 0.0;
    int64_t correct = 0;
    data::Batch batch;
    loader.start_epoch(0);
    while (loader.next(batch)) {
        const auto out = loss.forward(model.forward(batch.images, false), batch.labels);
        total_loss += out.mean_loss * static_cast<double>(batch.size());
        correct += out.num_correct;
        r.examples += batch.size();
    }
    model.release_saved();
    if (r.examples > 0) {
        r.loss = total_loss / static_cast<double>(r.examples);
        r.accuracy = static_cast<double>(correct) / static_cast<double>(r.examples);
    }
    return r;
}

}  // namespace mest::train
