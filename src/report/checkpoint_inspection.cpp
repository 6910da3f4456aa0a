#include "report/checkpoint_inspection.h"

#include <map>

#include "data/dataset.h"
#include "methods/channel_mutation.h"
#include "methods/sparse_layer_handles.h"
#include "sparse/pattern_structure.h"
#include "train/checkpoint.h"
#include "train/model_setup.h"

namespace mest::report {

CheckpointInspection inspect_checkpoint(const std::string & path) {
    const train::CheckpointMeta meta = train::read_checkpoint_meta(path);
    const train::TrainConfig config = train::config_from_json(meta.config, train::TrainConfig{}, path);
    const data::DatasetShape shape = data::dataset_shape(config.data);
    auto model = train::build_configured_model(
        config, nn::InputSpec{shape.channels, shape.height, shape.width, shape.num_classes});
    const auto tensors = train::model_tensors(*model);
    train::load_checkpoint(path, tensors, false);

    const bool sparse_method = config.method != "dense";
    CheckpointInspection out;
    out.checkpoint = path;
    out.model = config.model;
    out.method = config.method;
    out.scheme = sparse_method ? config.scheme : "dense";
    out.epoch = meta.epoch;
    const auto scheme = sparse::parse_scheme(out.scheme);
    std::map<std::string, methods::SparseLayerHandle> compressed;
    for (const auto & h : methods::find_sparse_layers(*model, scheme)) compressed[h.weights->param().name] = h;
    // Channel scheme: a block's conv1 and conv2 hold its kept channels (logical ids), whatever kernels run them.
    std::map<std::string, nn::BasicBlock<float> *> channel_block;
    for (auto * block : methods::find_channel_blocks(*model)) {
        channel_block[block->conv1_weight().name] = block;
        channel_block[block->conv2_weight().name] = block;
    }

    for (const auto * p : tensors.params) {
        const int64_t logical = p->shape.numel(), stored = static_cast<int64_t>(p->size());
        out.parameters += logical;
        out.stored += stored;
        if (!p->sparse) continue;
        LayerInspection layer;
        layer.name = p->name;
        layer.shape = p->shape.str();
        layer.weights = logical;
        layer.nonzeros = stored;
        layer.sparsity = 1.0 - static_cast<double>(stored) / static_cast<double>(logical);
        const auto it = compressed.find(p->name);
        if (const auto ch = channel_block.find(p->name); ch != channel_block.end()) {
            const auto & block = *ch->second;
            layer.storage = "channel scheme, ";
            layer.storage.append(std::to_string(block.mid_channels())).append("/");
            layer.storage.append(std::to_string(block.out_channels())).append(" channels");
            layer.channel_block = true;
            layer.channel_ids = block.mid_channel_ids();
        } else if (it == compressed.end()) {
            layer.storage = "narrow dense (channel scheme)";
        } else {
            const auto & w = *it->second.weights;
            layer.storage =
                it->second.pattern ? "pattern kernels" : (w.shape().block_rows > 1 ? "block" : "unstructured");
            layer.block_rows = static_cast<int>(w.shape().block_rows);
            if (it->second.pattern) {
                const auto hist = sparse::pattern_histogram(w);
                layer.pattern_histogram.assign(hist.begin(), hist.end());
            }
        }
        out.sparse_layers.push_back(std::move(layer));
    }
    return out;
}

nlohmann::json to_json(const CheckpointInspection & c) {
    nlohmann::json layers = nlohmann::json::array();
    for (const auto & l : c.sparse_layers) {
        nlohmann::json layer{{"name", l.name},         {"shape", l.shape},       {"weights", l.weights},
                             {"nonzeros", l.nonzeros}, {"sparsity", l.sparsity}, {"storage", l.storage}};
        if (l.channel_block) layer["channel_ids"] = l.channel_ids;
        if (l.block_rows > 0) layer["block_rows"] = l.block_rows;
        if (!l.pattern_histogram.empty()) layer["pattern_histogram"] = l.pattern_histogram;
        layers.push_back(layer);
    }
    return nlohmann::json{{"checkpoint", c.checkpoint}, {"model", c.model},       {"method", c.method},
                          {"scheme", c.scheme},         {"epoch", c.epoch},       {"parameters", c.parameters},
                          {"stored", c.stored},         {"sparse_layers", layers}};
}

}  // namespace mest::report
