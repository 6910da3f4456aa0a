// `mest inspect CHECKPOINT`: what a checkpoint's model looks like, layer by layer: logical shape,
// how it is stored (dense, or the scheme's compressed form), non-zeros, sparsity, and for the
// pattern scheme the kernels per pattern. Reads no dataset.
#include <cstdio>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "report/checkpoint_inspection.h"

namespace mest::app {

CLI::App * add_inspect_command(CLI::App & app, InspectArgs & args) {
    CLI::App * cmd = app.add_subcommand(
        "inspect", "Per-layer shape, scheme, non-zeros and sparsity of a checkpoint (pattern histogram too)");
    cmd->add_option("checkpoint", args.checkpoint, "Checkpoint file (RUN_DIR/best or RUN_DIR/last)")->required();
    cmd->add_flag("--json", args.json, "Print one JSON object instead of a table");
    return cmd;
}

int run_inspect(const InspectArgs & args) {
    const report::CheckpointInspection c = report::inspect_checkpoint(args.checkpoint);
    if (args.json) {
        std::printf("%s\n", report::to_json(c).dump().c_str());
        return 0;
    }
    std::printf("%s: %s, method %s, scheme %s, epoch %d; %lld of %lld parameters stored (%.2f%% sparse)\n",
                args.checkpoint.c_str(), c.model.c_str(), c.method.c_str(), c.scheme.c_str(), c.epoch,
                static_cast<long long>(c.stored), static_cast<long long>(c.parameters),
                100.0 * (1.0 - static_cast<double>(c.stored) / static_cast<double>(c.parameters)));
    std::printf("%-28s %-16s %-30s %9s %9s %8s  %s\n", "layer", "shape", "storage", "weights", "nonzeros", "sparsity",
                "patterns P1..P8");
    for (const auto & l : c.sparse_layers) {
        std::string hist;
        for (const int64_t count : l.pattern_histogram) hist += std::to_string(count) + " ";
        std::printf("%-28s %-16s %-30s %9lld %9lld %7.2f%%  %s\n", l.name.c_str(), l.shape.c_str(), l.storage.c_str(),
                    static_cast<long long>(l.weights), static_cast<long long>(l.nonzeros), 100.0 * l.sparsity,
                    hist.c_str());
    }
    return 0;
}

}  // namespace mest::app
