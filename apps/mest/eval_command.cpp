#include <cstdio>

#include "commands.h"
#include "core/threads.h"
#include "data/batch_loader.h"
#include "nn/models.h"
#include "train/checkpoint.h"
#include "train/model_setup.h"
#include "train/step.h"

namespace mest::app {

CLI::App * add_eval_command(CLI::App & app, EvalArgs & args) {
    CLI::App * cmd = app.add_subcommand("eval", "Evaluate a checkpoint on a test set");
    cmd->add_option("checkpoint", args.checkpoint, "Checkpoint file (RUN_DIR/best or RUN_DIR/last)")->required();
    cmd->add_option("--data", args.data, "Dataset (default: the one the checkpoint was trained on)");
    cmd->add_option("--data-dir", args.data_dir, "Directory of the dataset files");
    cmd->add_option("--threads", args.threads, "Worker threads")->capture_default_str();
    cmd->add_option("--batch-size", args.batch_size, "Examples per forward pass")->capture_default_str();
    cmd->add_option("--limit-test", args.limit_test, "Evaluate the first N test examples only (0 = all)");
    cmd->add_flag("--json", args.json, "Print one JSON object instead of text");
    return cmd;
}

int run_eval(const EvalArgs & args) {
    set_num_threads(args.threads);
    MEST_INPUT_CHECK(args.batch_size >= 1) << "--batch-size must be at least 1";
    MEST_INPUT_CHECK(args.limit_test >= 0) << "--limit-test must be >= 0";
    const train::CheckpointMeta meta = train::read_checkpoint_meta(args.checkpoint);
    const train::TrainConfig trained = train::config_from_json(meta.config, train::TrainConfig{}, args.checkpoint);
    const std::string data_name = args.data.empty() ? trained.data : args.data;
    const std::string data_dir = args.data.empty() && args.data_dir.empty() ? trained.data_dir : args.data_dir;
    data::DatasetPair data = data::load_dataset(data_name, data_dir, 1);
    const nn::InputSpec input{data.test.channels, data.test.height, data.test.width, data.test.num_classes};
    auto model = train::build_configured_model(trained, input);
    train::load_checkpoint(args.checkpoint, train::model_tensors(*model), false);
    data::BatchLoader loader(data.test, data.norm, args.batch_size, false, data::AugmentConfig{}, 0);
    loader.keep_first(args.limit_test);
    const train::EvalResult r = train::evaluate(*model, loader);
    if (args.json) {
        const nlohmann::json j{{"checkpoint", args.checkpoint}, {"model", trained.model}, {"data", data_name},
                               {"epoch", meta.epoch},           {"examples", r.examples}, {"test_loss", r.loss},
                               {"test_acc", r.accuracy}};
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("%s (%s, epoch %d) on %s test: accuracy %.2f%%  loss %.4f  (%lld examples)\n",
                    args.checkpoint.c_str(), trained.model.c_str(), meta.epoch, data_name.c_str(), 100.0 * r.accuracy,
                    r.loss, static_cast<long long>(r.examples));
    }
    return 0;
}

}  // namespace mest::app
