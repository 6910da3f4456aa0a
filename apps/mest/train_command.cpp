#include <cstdio>
#include <fstream>
#include <iterator>

#include "commands.h"
#include "core/error.h"
#include "train/json_input.h"
#include "train/presets.h"
#include "train/trainer.h"

namespace mest::app {

CLI::App * add_train_command(CLI::App & app, TrainArgs & args) {
    auto & c = args.config;
    CLI::App * cmd = app.add_subcommand("train",
                                        "Train a model and write a run directory (config.json, metrics.jsonl, "
                                        "checkpoints `last` and `best`)");
    cmd->add_option("--data", c.data, "Dataset: fashion-mnist, mnist, cifar10, cifar100")->capture_default_str();
    cmd->add_option("--data-dir", c.data_dir, "Directory of the dataset files (default: the Debian package's)");
    cmd->add_option("--model", c.model, "Model: resnet20, resnet32, resnet56, resnet32w2, vgg19, lenet5")
        ->capture_default_str();
    cmd->add_option("--method", c.method,
                    "Training method: dense; static (a fixed random sparse mask); mest (constant mutation rate, 20% "
                    "of the non-zeros per update), mest-em (elastic mutation: 20% -> 10% -> 0 at 56%/75% of "
                    "training), mest-ems (EM with the soft memory bound: grow to target-5% -> -2.5% -> target, "
                    "prune back to the target at the next update)")
        ->capture_default_str();
    cmd->add_option("--update-every", c.update_every,
                    "mest*, set: epochs between mask updates, from epoch 0 (0 = the method's default: mest* 5, set 1)")
        ->capture_default_str();
    cmd->add_option("--update-interval", c.update_interval,
                    "rigl, dsr, gmp (and set): optimizer steps between topology updates (0 = the method's default)")
        ->capture_default_str();
    cmd->add_option("--drop-fraction", c.drop_fraction,
                    "set, rigl, snfs, dsr: share of a layer's non-zeros dropped per update (< 0 = the method's "
                    "default: set/rigl 0.3, snfs 0.5)")
        ->capture_default_str();
    cmd->add_option("--drop-anneal", c.drop_anneal,
                    "set, rigl, snfs: drop-fraction schedule, constant or cosine (default: set constant, rigl and snfs "
                    "cosine)");
    cmd->add_option("--update-end", c.update_end,
                    "set, rigl, dsr, gmp: fraction of training after which the topology is frozen (< 0 = the "
                    "method's default)")
        ->capture_default_str();
    cmd->add_option("--gmp-begin", c.gmp_begin, "gmp: fraction of training at the first pruning step (< 0 = default)")
        ->capture_default_str();
    cmd->add_option("--lth-rounds", c.lth_rounds,
                    "lth: prune-rewind-retrain rounds after the dense round; --epochs is split evenly over all rounds")
        ->capture_default_str();
    cmd->add_option("--lth-rewind-epoch", c.lth_rewind_epoch,
                    "lth: rewind survivors to their weights after this many epochs of the dense round (0 = init)")
        ->capture_default_str();
    cmd->add_option("--prune-batches", c.prune_batches, "snip, grasp: training batches scored before training")
        ->capture_default_str();
    cmd->add_option("--grasp-temperature", c.grasp_temperature, "grasp: logits are divided by this while scoring")
        ->capture_default_str();
    cmd->add_option("--importance-lambda", c.importance_lambda,
                    "mest*: prune score |w| + lambda*|g| over the non-zeros (0 = magnitude only, as the released code)")
        ->capture_default_str();
    cmd->add_option("--importance-window", c.importance_window,
                    "mest*: training steps before an update whose |g| is summed (0 = the whole epoch)")
        ->capture_default_str();
    cmd->add_option("--mest-decay-at", c.mest_decay_at,
                    "mest-em, mest-ems: phase boundaries as fractions of training, comma-separated (default "
                    "0.5625,0.75: epochs 90 and 120 of the scripts' 160)");
    cmd->add_option("--mest-em-rates", c.mest_em_rates,
                    "mest-em: share of each layer's non-zeros mutated per update, one per phase (default 0.2,0.1,0)");
    cmd->add_option("--mest-soft-extra", c.mest_soft_extra,
                    "mest-ems: per phase, grow to target sparsity minus this (absolute), train, prune back at the next "
                    "update; the last must be 0 (default 0.05,0.025,0 as the scripts; the README's 0.02,0.01,0)");
    cmd->add_option("--mest-rate", c.mest_rate,
                    "mest: constant share of the non-zeros mutated per update (< 0 = the default 0.2)")
        ->capture_default_str();
    cmd->add_flag("--allow-regrow", c.allow_regrow,
                  "mest*: growth may re-pick positions pruned in the same update (the released code does)");
    cmd->add_flag("--data-efficient", c.data_efficient,
                  "Two-stage training (MEST's data efficiency): count forgetting events on all examples for "
                  "--de-stage1-epochs, then train the rest of the epochs without the least-forgotten examples; "
                  "writes RUN_DIR/forgetting.csv");
    cmd->add_option("--de-stage1-epochs", c.de_stage1_epochs,
                    "data efficiency: epochs on all examples before the removal (0 = round(epochs * 70/160), the "
                    "scripts' 70 of 160; = --epochs: forgetting statistics only)")
        ->capture_default_str();
    cmd->add_option("--de-remove", c.de_remove,
                    "data efficiency: remove the N least-forgotten examples (< 0 = not this rule)")
        ->capture_default_str();
    cmd->add_option("--de-remove-fraction", c.de_remove_fraction,
                    "data efficiency: remove this share of the examples, least forgotten first (< 0 = not this "
                    "rule; the default rule, 0.24 = the scripts' 12000 of 50000)")
        ->capture_default_str();
    cmd->add_option("--de-max-forgets", c.de_max_forgets,
                    "data efficiency: remove the examples learned and forgotten at most C times, e.g. 0 or 1 (< 0 = "
                    "not this rule)")
        ->capture_default_str();
    cmd->add_option("--scheme", c.scheme,
                    "Sparsity scheme of sparse methods: unstructured (any weights), block (block-rows x 1 columns), "
                    "pattern (3x3 kernels keep 4 taps of 8 patterns, whole kernels removed; sparsity >= 0.556), "
                    "channel (a residual block's inner filters removed with the next conv's input channels)")
        ->capture_default_str();
    cmd->add_option("--sparsity", c.sparsity, "Sparse methods: fraction of the sparse layers' weights removed")
        ->capture_default_str();
    cmd->add_option("--block-rows", c.block_rows, "Block scheme: consecutive output channels per unit")
        ->capture_default_str();
    cmd->add_option("--sparse-layers", c.sparse_layers,
                    "Which layers are sparse: residual (the 3x3 convs of the residual stages, MEST's choice; default "
                    "for ResNets) or all-but-first-last (every conv/linear but the stem and the classifier; default "
                    "for the other models)");
    cmd->add_option("--distribution", c.distribution,
                    "Per-layer sparsity: uniform (the same in every sparse layer) or erk (Erdos-Renyi-Kernel, "
                    "denser small layers, same total)")
        ->capture_default_str();
    cmd->add_option("--recompute", c.recompute,
                    "Residual blocks recompute conv2's output in backward instead of keeping it: auto (when the "
                    "convs are sparse), on, off")
        ->capture_default_str();
    cmd->add_option("--epochs", c.epochs, "Training epochs")->capture_default_str();
    cmd->add_option("--batch-size", c.batch_size, "Examples per step")->capture_default_str();
    cmd->add_option("--lr", c.lr, "Peak learning rate")->capture_default_str();
    cmd->add_option("--lr-min", c.lr_min, "Final learning rate of the cosine schedule")->capture_default_str();
    cmd->add_option("--momentum", c.momentum, "SGD momentum")->capture_default_str();
    cmd->add_flag("--nesterov", c.nesterov, "Nesterov momentum");
    cmd->add_option("--weight-decay", c.weight_decay, "L2 weight decay (all parameters)")->capture_default_str();
    cmd->add_option("--schedule", c.schedule, "Learning-rate schedule: cosine (per step) or step (x0.1 at 50% and 75%)")
        ->capture_default_str();
    cmd->add_option("--warmup-epochs", c.warmup_epochs, "Linear warm-up length in epochs")->capture_default_str();
    cmd->add_option("--seed", c.seed, "Seed of every random choice (same seed + threads = same run)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    cmd->add_option("--threads", c.threads, "Worker threads")->capture_default_str();
    cmd->add_option("--limit-train", c.limit_train, "Train on the first N examples only (0 = all)")
        ->capture_default_str();
    cmd->add_option("--limit-test", c.limit_test, "Evaluate on the first N test examples only (0 = all)")
        ->capture_default_str();
    cmd->add_option("--augment-pad", c.augment_pad, "Random-crop padding in pixels (-1: 2 for 28x28, 4 for 32x32)")
        ->capture_default_str();
    cmd->add_option("--augment-flip", c.augment_flip, "Random horizontal flips (true/false)")->capture_default_str();
    cmd->add_option("--eval-every", c.eval_every, "Evaluate on the test set every N epochs")->capture_default_str();
    cmd->add_option("--keep-checkpoints", c.keep_checkpoints,
                    "Checkpoints kept in the run directory as ckpt-<iteration> (`last` is the newest, `best` the best "
                    "epoch's)")
        ->capture_default_str();
    cmd->add_option("--checkpoint-every-steps", c.checkpoint_every_steps,
                    "Also checkpoint every N optimizer steps, inside epochs (0 = at epoch ends only); --resume "
                    "continues from the step exactly")
        ->capture_default_str();
    cmd->add_option("--on-divergence", c.on_divergence,
                    "A NaN/Inf loss or gradient: stop (exit code 3, the last checkpoint intact) or rollback (reload "
                    "`last` with the learning rate x --divergence-lr-factor, at most 3 times)")
        ->capture_default_str();
    cmd->add_option("--divergence-lr-factor", c.divergence_lr_factor,
                    "--on-divergence rollback: learning-rate multiplier per rollback")
        ->capture_default_str();
    cmd->add_option("--out", c.out, "Run directory");
    cmd->add_option("--preset", args.preset,
                    "Named recipe applied over the defaults (--config and flags override it): fashion-mnist (the "
                    "defaults: ResNet-32, 30 epochs, MEST+EM&S block 90%), mest-cifar10-resnet32 and "
                    "mest-cifar100-resnet32 (the official MEST scripts: ResNet-32 32/64/128, 160 epochs, batch 64, "
                    "lr 0.1 cosine, weight decay 1e-4, updates every 5 epochs)");
    cmd->add_option("--config", args.config_file, "JSON file of settings (keys = flag names); flags override it");
    cmd->add_option("--resume", args.resume_dir,
                    "Continue the run in RUN_DIR (or --out) from its `last` checkpoint, exactly where it stopped "
                    "(same weights and metrics as without the interruption); only --epochs (to extend), --threads "
                    "and the checkpoint and divergence flags may change")
        ->expected(0, 1)
        ->type_name("[RUN_DIR]");
    cmd->add_flag("--force", args.force, "Replace a run that already exists in --out");
    cmd->add_flag("--quiet", args.quiet, "No progress bar");
    return cmd;
}

int run_train(const CLI::App & cmd, TrainArgs & args) {
    // defaults < --preset < --config < flags given on the command line.
    nlohmann::json merged = train::to_json(train::TrainConfig{});
    if (!args.preset.empty()) {
        merged = train::to_json(train::config_from_json(train::preset_values(args.preset), train::TrainConfig{},
                                                        "--preset " + args.preset));
    }
    if (!args.config_file.empty()) {
        std::ifstream in(args.config_file);
        MEST_INPUT_CHECK(in.good()) << "--config: cannot open " << args.config_file;
        const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        const nlohmann::json file = train::parse_json_input(text, "--config " + args.config_file);
        const train::TrainConfig base = train::config_from_json(merged, train::TrainConfig{}, "--preset");
        merged = train::to_json(train::config_from_json(file, base, args.config_file));
    }
    const nlohmann::json from_cli = train::to_json(args.config);
    for (const CLI::Option * opt : cmd.get_options()) {
        const std::string key = opt->get_lnames().empty() ? "" : opt->get_lnames().front();
        if (opt->count() > 0 && from_cli.contains(key)) merged[key] = from_cli[key];
    }
    train::TrainConfig config = train::config_from_json(merged, train::TrainConfig{}, "the command line");
    train::RunOptions options;
    options.resume = cmd.count("--resume") > 0;
    if (!args.resume_dir.empty()) {
        MEST_INPUT_CHECK(config.out.empty() || config.out == args.resume_dir)
            << "--resume " << args.resume_dir << " and --out " << config.out << " name different run directories";
        config.out = args.resume_dir;
    }
    options.force = args.force;
    options.progress = !args.quiet;
    options.resume_overrides.clear();
    for (const CLI::Option * opt : cmd.get_options())
        if (opt->count() > 0 && !opt->get_lnames().empty())
            options.resume_overrides.push_back(opt->get_lnames().front());
    const train::RunSummary summary = train::run_training(config, options);
    if (!summary.message.empty())
        std::fprintf(stderr, "mest: %s%s\n", summary.exit_code == train::kDivergedExitCode ? "error: " : "",
                     summary.message.c_str());
    return summary.exit_code;
}

}  // namespace mest::app
