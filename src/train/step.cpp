#include "train/step.h"

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
    optimizer.step(lr);
    r.loss = r.per_example.mean_loss;
    r.correct = r.per_example.num_correct;
    return r;
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
