// `mest inspect CHECKPOINT`: what a checkpoint's model looks like, layer by layer: logical shape,
// how it is stored (dense, or the scheme's compressed form), non-zeros, sparsity, and for the
// pattern scheme the kernels per pattern. Reads no dataset.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data/dataset.h"
#include "methods/channel_mutation.h"
#include "methods/sparse_layer_handles.h"
#include "sparse/pattern_structure.h"
#include "train/checkpoint.h"
#include "train/model_setup.h"

namespace mest::app {

CLI::App * add_inspect_command(CLI::App & app, InspectArgs & args) {
    CLI::App * cmd = app.add_subcommand(
        "inspect", "Per-layer shape, scheme, non-zeros and sparsity of a checkpoint (pattern histogram too)");
    cmd->add_option("checkpoint", args.checkpoint, "Checkpoint file (RUN_DIR/best or RUN_DIR/last)")->required();
    cmd->add_flag("--json", args.json, "Print one JSON object instead of a table");
    return cmd;
}

int run_inspect(const InspectArgs & args) {
    const train::CheckpointMeta meta = train::read_checkpoint_meta(args.checkpoint);
    const train::TrainConfig config = train::config_from_json(meta.config, train::TrainConfig{}, args.checkpoint);
    const data::DatasetShape shape = data::dataset_shape(config.data);
    auto model = train::build_configured_model(
        config, nn::InputSpec{shape.channels, shape.height, shape.width, shape.num_classes});
    const auto tensors = train::model_tensors(*model);
    train::load_checkpoint(args.checkpoint, tensors, false);

    const bool sparse_method = config.method != "dense";
    const auto scheme = sparse::parse_scheme(sparse_method ? config.scheme : "dense");
    std::map<std::string, methods::SparseLayerHandle> compressed;
    for (const auto & h : methods::find_sparse_layers(*model, scheme)) compressed[h.weights->param().name] = h;
    // Channel scheme: a block's conv1 and conv2 hold its kept channels (logical ids), whatever kernels run them.
    std::map<std::string, nn::BasicBlock<float> *> channel_block;
    for (auto * block : methods::find_channel_blocks(*model)) {
        channel_block[block->conv1_weight().name] = block;
        channel_block[block->conv2_weight().name] = block;
    }

    nlohmann::json layers = nlohmann::json::array();
    int64_t logical_total = 0, stored_total = 0;
    for (const auto * p : tensors.params) {
        const int64_t logical = p->shape.numel(), stored = static_cast<int64_t>(p->size());
        logical_total += logical;
        stored_total += stored;
        if (!p->sparse) continue;
        nlohmann::json layer{{"name", p->name},
                             {"shape", p->shape.str()},
                             {"weights", logical},
                             {"nonzeros", stored},
                             {"sparsity", 1.0 - static_cast<double>(stored) / static_cast<double>(logical)}};
        const auto it = compressed.find(p->name);
        if (const auto ch = channel_block.find(p->name); ch != channel_block.end()) {
            const auto & block = *ch->second;
            std::string storage = "channel scheme, ";
            storage.append(std::to_string(block.mid_channels())).append("/");
            storage.append(std::to_string(block.out_channels())).append(" channels");
            layer["storage"] = storage;
            layer["channel_ids"] = block.mid_channel_ids();
        } else if (it == compressed.end()) {
            layer["storage"] = "narrow dense (channel scheme)";
        } else {
            const auto & w = *it->second.weights;
            layer["storage"] =
                it->second.pattern ? "pattern kernels" : (w.shape().block_rows > 1 ? "block" : "unstructured");
            layer["block_rows"] = w.shape().block_rows;
            if (it->second.pattern) {
                const auto hist = sparse::pattern_histogram(w);
                layer["pattern_histogram"] = std::vector<int64_t>(hist.begin(), hist.end());
            }
        }
        layers.push_back(layer);
    }
    const nlohmann::json j{{"checkpoint", args.checkpoint}, {"model", config.model},
                           {"method", config.method},       {"scheme", sparse_method ? config.scheme : "dense"},
                           {"epoch", meta.epoch},           {"parameters", logical_total},
                           {"stored", stored_total},        {"sparse_layers", layers}};
    if (args.json) {
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    std::printf("%s: %s, method %s, scheme %s, epoch %d; %lld of %lld parameters stored (%.2f%% sparse)\n",
                args.checkpoint.c_str(), config.model.c_str(), config.method.c_str(),
                j["scheme"].get<std::string>().c_str(), meta.epoch, static_cast<long long>(stored_total),
                static_cast<long long>(logical_total),
                100.0 * (1.0 - static_cast<double>(stored_total) / static_cast<double>(logical_total)));
    std::printf("%-28s %-16s %-30s %9s %9s %8s  %s\n", "layer", "shape", "storage", "weights", "nonzeros", "sparsity",
                "patterns P1..P8");
    for (const auto & l : layers) {
        std::string hist;
        if (l.contains("pattern_histogram"))
            for (const auto & c : l["pattern_histogram"]) hist += std::to_string(c.get<int64_t>()) + " ";
        std::printf("%-28s %-16s %-30s %9lld %9lld %7.2f%%  %s\n", l["name"].get<std::string>().c_str(),
                    l["shape"].get<std::string>().c_str(), l["storage"].get<std::string>().c_str(),
                    static_cast<long long>(l["weights"].get<int64_t>()),
                    static_cast<long long>(l["nonzeros"].get<int64_t>()), 100.0 * l["sparsity"].get<double>(),
                    hist.c_str());
    }
    return 0;
}

}  // namespace mest::app
