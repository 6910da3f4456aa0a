// The fully resolved configuration of a training run. JSON keys equal the CLI flag names, so a
// --config file, config.json in a run directory and the command line all speak one vocabulary.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "methods/mest_schedule.h"

namespace mest::train {

struct TrainConfig {
    std::string data = "fashion-mnist";
    std::string data_dir;  // "" = the dataset's default directory
    std::string model = "resnet32";
    std::string method = "mest-ems";       // methods::method_names(): dense, static, mest*, baselines
    std::string scheme = "block";          // sparse methods: unstructured | block | pattern | channel
    double sparsity = 0.9;                 // sparse methods: fraction of the sparse layers' weights removed
    int block_rows = 4;                    // block scheme: output channels per unit
    std::string sparse_layers;             // residual | all-but-first-last; "" = residual for ResNets, else the other
    std::string distribution = "uniform";  // uniform | erk: how the sparsity is spread over the sparse layers
    std::string recompute = "auto";        // auto | on | off: recompute conv2 outputs in backward (auto: sparse)
    int update_every = 0;              // mest*, set: epochs between mask updates (0 = default, see resolve_defaults)
    int64_t update_interval = 0;       // rigl, dsr, gmp (and set): steps between updates (0 = method default)
    double drop_fraction = -1.0;       // set, rigl, snfs, dsr: share dropped per update (< 0 = method default)
    std::string drop_anneal;           // set, rigl, snfs: constant | cosine ("" = method default)
    double update_end = -1.0;          // set, rigl, dsr, gmp: fraction of training with updates (< 0 = default)
    double gmp_begin = -1.0;           // gmp: fraction of training at the first pruning step (< 0 = default)
    int lth_rounds = 3;                // lth: prune-rewind-retrain rounds after the dense round
    int lth_rewind_epoch = 0;          // lth: rewind to the weights after this many epochs (0 = init)
    int prune_batches = 1;             // snip, grasp: batches scored before training
    double grasp_temperature = 200.0;  // grasp: logits are divided by this while scoring
    double importance_lambda = 0.0;    // mest*: importance |w| + lambda*|g| (0 = magnitude, the released code)
    int64_t importance_window = 0;     // mest*: steps of |g| before an update (0 = the whole epoch)
    bool allow_regrow = false;         // mest*: growth may re-pick units pruned in the same update
    std::string mest_decay_at;         // mest-em(s): phase boundaries, fractions of training ("" = 0.5625,0.75)
    std::string mest_em_rates;         // mest-em: share of the non-zeros mutated per phase ("" = 0.2,0.1,0)
    std::string mest_soft_extra;       // mest-ems: grow-to = target - extra per phase ("" = 0.05,0.025,0)
    double mest_rate = -1.0;           // mest: constant share of the non-zeros mutated (< 0 = 0.2)
    bool data_efficient = false;       // two-stage training without the least-forgotten examples
    int de_stage1_epochs = 0;          // data efficiency: epochs on all data (0 = round(epochs * 70/160))
    int64_t de_remove = -1;            // data efficiency: drop the N least forgotten (< 0 = not this rule)
    double de_remove_fraction = -1.0;  // data efficiency: drop this share (< 0 = not this rule; default 0.24)
    int de_max_forgets = -1;           // data efficiency: drop learned examples forgotten <= C times (< 0 = not)
    int epochs = 30;
    int batch_size = 64;
    double lr = 0.1;
    double lr_min = 0.0;
    double momentum = 0.9;
    bool nesterov = false;
    double weight_decay = 5e-4;
    std::string schedule = "cosine";
    double warmup_epochs = 0.0;
    uint64_t seed = 914;
    int threads = 2;
    int64_t limit_train = 0;
    int64_t limit_test = 0;
    int augment_pad = -1;  // -1 = per dataset: 2 for 28x28 images, 4 for 32x32
    bool augment_flip = true;
    std::string out;  // run directory
    int eval_every = 1;
    int keep_checkpoints = 2;            // ckpt-<iteration> files kept in the run directory (`last` = newest)
    int64_t checkpoint_every_steps = 0;  // also checkpoint every N optimizer steps (0 = at epoch ends only)
    std::string on_divergence = "stop";  // stop | rollback: what a non-finite loss or gradient does
    double divergence_lr_factor = 0.5;   // rollback: learning-rate multiplier applied at each rollback
};

nlohmann::json to_json(const TrainConfig & config);
// Starts from `base` and applies the keys of `j`; unknown keys and wrong types are input errors
// naming `source` (a file path or "--config").
TrainConfig config_from_json(const nlohmann::json & j, const TrainConfig & base, const std::string & source);
// The MEST mutation schedule of the --mest-* fields (input errors name the flag).
methods::MestScheduleConfig mest_schedule_config(const TrainConfig & config);
// Range checks on every field; throws an input error naming the flag.
void validate(const TrainConfig & config);

}  // namespace mest::train
