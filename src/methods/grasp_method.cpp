#include "methods/grasp_method.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

namespace mest::methods {

namespace {

// The examples of one source batch chosen for the balanced batch being built.
struct Chosen {
    data::Batch source;  // owns a copy: the stream may overwrite its batch in place
    std::vector<int64_t> rows;
};

data::Batch gather(const std::vector<Chosen> & parts) {
    data::Batch out;
    int64_t n = 0;
    for (const auto & p : parts) n += static_cast<int64_t>(p.rows.size());
    if (n == 0) return out;
    Shape shape = parts.front().source.images.shape();
    const int64_t per_example = shape.numel() / shape[0];
    shape.dims[0] = n;
    out.images = Tensor<float>(shape, MemCategory::kActivations);
    int64_t i = 0;
    for (const auto & p : parts) {
        const auto & src = p.source;
        MEST_CHECK(src.images.numel() / src.images.dim(0) == per_example) << "batches of different image sizes";
        for (const int64_t row : p.rows) {
            std::memcpy(out.images.data() + i * per_example, src.images.data() + row * per_example,
                        static_cast<std::size_t>(per_example) * sizeof(float));
            const auto r = static_cast<std::size_t>(row);
            out.labels.push_back(src.labels[r]);
            if (r < src.example_ids.size()) out.example_ids.push_back(src.example_ids[r]);
            if (r < src.positions.size()) out.positions.push_back(src.positions[r]);
            ++i;
        }
    }
    return out;
}

data::Batch copy_batch(const data::Batch & b) {
    data::Batch c = b;
    c.images = b.images.clone(MemCategory::kActivations);
    return c;
}

}  // namespace

std::vector<data::Batch> class_balanced_batches(const std::function<bool(data::Batch &)> & next_batch,
                                                int64_t num_classes, int64_t per_class, int count) {
    MEST_CHECK(num_classes > 0 && per_class > 0);
    std::vector<data::Batch> out;
    data::Batch pending;  // the stream's current batch, and the next row of it to look at
    int64_t cursor = 0;
    bool ended = false;
    for (int b = 0; b < count && !ended; ++b) {
        std::vector<int64_t> have(static_cast<std::size_t>(num_classes), 0);
        int64_t full = 0;
        std::vector<Chosen> parts;
        while (full < num_classes) {
            if (cursor >= pending.size()) {
                data::Batch next;
                if (!next_batch(next)) {
                    ended = true;
                    break;
                }
                pending = copy_batch(next);
                cursor = 0;
                continue;
            }
            const int32_t label = pending.labels[static_cast<std::size_t>(cursor)];
            MEST_INPUT_CHECK(label >= 0 && label < num_classes)
                << "--method grasp: label " << label << " outside the model's " << num_classes << " classes";
            auto & n = have[static_cast<std::size_t>(label)];
            if (n < per_class) {
                if (parts.empty() || parts.back().source.images.data() != pending.images.data())
                    parts.push_back({pending, {}});
                parts.back().rows.push_back(cursor);
                if (++n == per_class) ++full;
            }
            ++cursor;
        }
        data::Batch batch = gather(parts);
        if (batch.size() > 0) out.push_back(std::move(batch));
    }
    return out;
}

GraspMethod::GraspMethod(nn::Sequential<float> & net, const MethodOptions & options)
    : net_(net),
      batches_(options.prune_batches >= 1 ? options.prune_batches : 1),
      temperature_(options.grasp_temperature > 0.0 ? options.grasp_temperature : 200.0) {
    check_prune_at_init_scheme(options, "grasp");
    layers_ = find_sparse_layers(net, options.scheme);
    MEST_INPUT_CHECK(!layers_.empty()) << "--method grasp: the model has no sparse layers";
    targets_ = resolve_target_units(layers_, options);
}

std::vector<data::Batch> GraspMethod::balanced_batches(TrainingAccess & access) {
    // The class count is the model's output width, known once an input shape is.
    data::Batch first;
    MEST_INPUT_CHECK(access.next_batch(first)) << "--method grasp: no training batch to score";
    const Shape logits = net_.output_shape(first.images.shape());
    MEST_CHECK(logits.rank == 2) << "logits " << logits.str();
    bool replayed = false;
    const auto stream = [&](data::Batch & b) {
        if (!replayed) {
            replayed = true;
            b = first;
            return true;
        }
        return access.next_batch(b);
    };
    auto batches = class_balanced_batches(stream, logits[1], kSamplesPerClass, batches_);
    MEST_INPUT_CHECK(!batches.empty()) << "--method grasp: no training example to score";
    return batches;
}

GraspEstimate GraspMethod::estimate(TrainingAccess & access, const std::vector<data::Batch> & batches,
                                    double eps_scale) {
    const double logit_scale = 1.0 / temperature_;
    GraspEstimate e{LayerValues(layers_), LayerValues(layers_), 0.0};
    for (const auto & b : batches) {
        access.gradients(b, logit_scale);
        add_gradients(layers_, e.gradient);
    }
    const double g_norm = std::sqrt(squared_norm(e.gradient));
    if (g_norm == 0.0) return e;  // flat loss: Hg = 0
    LayerValues theta(layers_);
    copy_values(layers_, theta);
    const double theta_norm = std::sqrt(squared_norm(theta));
    // All-zero weights give S = 0 whatever Hg is; the step then is eps_scale in absolute terms.
    e.eps = eps_scale * (theta_norm > 0.0 ? theta_norm : 1.0) / g_norm;
    for (const double sign : {1.0, -1.0}) {
        for (std::size_t l = 0; l < layers_.size(); ++l) {
            auto & value = layers_[l].weights->param().value;
            const auto t = theta.layer(l);
            const auto g = e.gradient.layer(l);
            for (std::size_t k = 0; k < value.size(); ++k)
                value[k] = static_cast<float>(static_cast<double>(t[k]) + sign * e.eps * static_cast<double>(g[k]));
        }
        for (const auto & b : batches) {
            access.gradients(b, logit_scale);
            add_gradients(layers_, e.hessian_gradient, sign / (2.0 * e.eps));
        }
    }
    restore_values(layers_, theta);
    return e;
}

Buffer<float> GraspMethod::unit_scores(const LayerValues & hessian_gradient) const {
    return sum_over_units(layers_, [&](std::size_t l, int64_t k) {
        const auto w = static_cast<double>(layers_[l].weights->param().value[static_cast<std::size_t>(k)]);
        return -w * static_cast<double>(hessian_gradient.layer(l)[static_cast<std::size_t>(k)]);
    });
}

std::vector<LayerUpdate> GraspMethod::prune(std::span<const float> unit_scores) {
    const auto offsets = unit_offsets(layers_);
    const Buffer<uint8_t> keep =
        select_global(unit_scores, offsets, std::accumulate(targets_.begin(), targets_.end(), int64_t{0}), false);
    return prune_unselected(layers_, offsets, keep.span());
}

std::vector<LayerUpdate> GraspMethod::before_training(TrainingAccess & access) {
    Buffer<float> scores;
    {
        const auto batches = balanced_batches(access);
        const GraspEstimate e = estimate(access, batches);
        scores = unit_scores(e.hessian_gradient);
    }
    return prune(scores.span());
}

}  // namespace mest::methods
