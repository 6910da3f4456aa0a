#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/buffer.h"
#include "core/threads.h"
#include "core/version.h"
#include "data/batch_loader.h"
#include "methods/sparse_method.h"
#include "nn/models.h"
#include "optim/lr_schedule.h"
#include "report/report_page.h"
#include "sparse/scheme.h"
#include "train/checkpoint.h"
#include "train/checkpoint_files.h"
#include "train/data_efficiency.h"
#include "train/interrupt.h"
#include "train/model_setup.h"
#include "train/progress.h"
#include "train/step.h"

namespace fs = std::filesystem;

namespace mest::train {

TrainConfig resolve_defaults(TrainConfig c) {
    if (c.augment_pad < 0) c.augment_pad = (c.data == "mnist" || c.data == "fashion-mnist") ? 2 : 4;
    // MEST's official cadence is one update per 5 of 160 epochs: 32 updates whatever the run length.
    if (c.update_every == 0 && c.method.rfind("mest", 0) == 0)
        c.update_every = std::max(1, static_cast<int>(std::lround(c.epochs * 5.0 / 160.0)));
    if (c.update_every == 0 && c.method == "set") c.update_every = 1;
    resolve_data_efficiency_defaults(c);
    return c;
}

namespace {

void write_text_atomically(const fs::path & path, const std::string & text) {
    const fs::path tmp = path.string() + ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        MEST_INPUT_CHECK(out.good()) << path.string() << ": cannot write";
        out << text;
        out.flush();
        MEST_INPUT_CHECK(out.good()) << path.string() << ": write failed (disk full?)";
    }
    fs::rename(tmp, path);
}

// Keeps the metrics of epochs <= `epochs_done` (a resumed run rewrites the later ones).
void truncate_metrics(const fs::path & path, int epochs_done) {
    std::ifstream in(path);
    std::string kept, line;
    while (std::getline(in, line)) {
        try {
            if (nlohmann::json::parse(line).at("epoch").get<int>() <= epochs_done) kept += line + "\n";
        } catch (const nlohmann::json::exception &) {
            break;  // a torn last line from a crash: drop it and everything after
        }
    }
    write_text_atomically(path, kept);
}

// Drops topology.jsonl's lines written after the checkpoint: cut to the size it recorded, or (a
// format-1 checkpoint, always at an epoch boundary) the lines of later epochs.
void truncate_topology(const fs::path & path, const CheckpointMeta & at) {
    std::error_code ec;
    if (!fs::exists(path, ec)) return;
    if (at.topology_bytes >= 0) {
        if (fs::file_size(path) > static_cast<uintmax_t>(at.topology_bytes)) fs::resize_file(path, at.topology_bytes);
        return;
    }
    std::ifstream in(path);
    std::string kept, line;
    while (std::getline(in, line)) {
        try {
            const nlohmann::json j = nlohmann::json::parse(line);
            if (j.at("epoch").get<int>() < at.epoch && j.at("iteration").get<int64_t>() <= at.iteration)
                kept += line + "\n";
        } catch (const nlohmann::json::exception &) {
            break;
        }
    }
    write_text_atomically(path, kept);
}

// The checkpoint's configuration with the settings in `overrides` that a continued run may change
// taken from `given` (epochs only upwards).
TrainConfig resumed_config(const nlohmann::json & stored, const TrainConfig & given,
                           const std::vector<std::string> & overrides, const std::string & source) {
    const TrainConfig base = config_from_json(stored, TrainConfig{}, source);
    nlohmann::json merged = to_json(base);
    const nlohmann::json from = to_json(given);
    for (const std::string & key : overrides) {
        if (key == "epochs") {
            merged[key] = std::max(given.epochs, base.epochs);
        } else if (key == "threads" || key == "keep-checkpoints" || key == "checkpoint-every-steps" ||
                   key == "on-divergence" || key == "divergence-lr-factor") {
            merged[key] = from.at(key);
        }
    }
    TrainConfig c = config_from_json(merged, TrainConfig{}, source);
    c.out = given.out;
    return c;
}

// How a training attempt ended: a divergence to roll back from (the next attempt resumes from
// `last` with this learning-rate scale and rollback count), or a final summary.
struct Attempt {
    RunSummary summary;
    bool roll_back = false;
    double lr_scale = 1.0;
    int rollbacks = 0;
};

nlohmann::json ledger_json() {
    const auto snap = MemoryLedger::instance().snapshot();
    nlohmann::json j = nlohmann::json::object();
    for (int i = 0; i < kMemCategoryCount; ++i) j[mem_category_name(static_cast<MemCategory>(i))] = snap.peak[i];
    j["total"] = snap.total_peak;
    return j;
}

void prepare_run_dir(const fs::path & dir, const RunOptions & options) {
    if (options.resume) {
        MEST_INPUT_CHECK(fs::exists(dir / "last")) << "--resume: no checkpoint " << (dir / "last").string();
        // What a kill left half-written: every file it belongs to is rewritten from the checkpoint on.
        for (const auto & entry : fs::directory_iterator(dir))
            if (entry.is_regular_file() && entry.path().extension() == ".tmp") fs::remove(entry.path());
        return;
    }
    if (fs::exists(dir / "config.json") || fs::exists(dir / "last")) {
        MEST_INPUT_CHECK(options.force)
            << "--out: " << dir.string()
            << " already holds a run; pass --resume to continue it or --force to replace it";
        for (const char * name :
             {"config.json", "metrics.jsonl", "last", "best", "summary.json", "forgetting.csv", "topology.jsonl"})
            fs::remove(dir / name);
        for (const auto & old : rotated_checkpoints(dir)) fs::remove(old.second);
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    MEST_INPUT_CHECK(!ec && fs::is_directory(dir))
        << "--out: cannot create directory " << dir.string() << " (" << ec.message() << ")";
}

// Totals of the topology changes over a stretch of training, for one stdout line.
// Totals of topology updates; `+=` adds counts and keeps the latest update's nnz and bounds.
struct UpdateTally {
    int updates = 0;
    int64_t pruned = 0, grown = 0, nnz = 0;
    double prune_to = 0.0, grow_to = 0.0;

    UpdateTally & operator+=(const UpdateTally & later) {
        if (later.updates == 0) return *this;
        updates += later.updates;
        pruned += later.pruned;
        grown += later.grown;
        nnz = later.nnz;
        prune_to = later.prune_to;
        grow_to = later.grow_to;
        return *this;
    }
};

// One topology.jsonl line per layer and update; returns the update's totals.
UpdateTally log_updates(std::ofstream & topology, int epoch, int64_t iteration,
                        const std::vector<methods::LayerUpdate> & updates) {
    UpdateTally t;
    if (updates.empty()) return t;
    for (const auto & u : updates) {
        topology << nlohmann::json{{"epoch", epoch},
                                   {"iteration", iteration},
                                   {"kind", u.kind},
                                   {"layer", u.layer},
                                   {"prune_to", u.bounds.prune_to},
                                   {"grow_to", u.bounds.grow_to},
                                   {"pruned_units", u.stats.pruned_units},
                                   {"grown_units", u.stats.grown_units},
                                   {"nnz_before", u.stats.nnz_before},
                                   {"nnz_after", u.stats.nnz_after}}
                        .dump()
                 << "\n";
        t.pruned += u.stats.pruned_units;
        t.grown += u.stats.grown_units;
        t.nnz += u.stats.nnz_after;
    }
    topology.flush();
    t.updates = 1;
    t.prune_to = updates.front().bounds.prune_to;
    t.grow_to = updates.front().bounds.grow_to;
    return t;
}

void print_tally(const char * when, const std::string & kind, const UpdateTally & t) {
    if (t.updates == 0) return;
    if (t.updates == 1) {
        std::printf("%s %s: pruned %lld units, grown %lld (first layer's sparsity %.4f -> %.4f), %lld weights kept\n",
                    kind.c_str(), when, static_cast<long long>(t.pruned), static_cast<long long>(t.grown), t.prune_to,
                    t.grow_to, static_cast<long long>(t.nnz));
    } else {
        std::printf("%d topology updates %s: pruned %lld units, grown %lld, %lld weights kept\n", t.updates, when,
                    static_cast<long long>(t.pruned), static_cast<long long>(t.grown), static_cast<long long>(t.nnz));
    }
    std::fflush(stdout);
}

methods::MethodOptions method_options(const TrainConfig & c, const nn::InputSpec & input) {
    methods::MethodOptions o;
    o.method = c.method;
    o.scheme = sparse::parse_scheme(c.scheme);
    o.sparsity = c.sparsity;
    o.seed = c.seed;
    o.sgd_momentum = c.momentum;
    if (methods::method_starts_dense(c.method)) o.target_units = planned_target_units(c, input);
    o.mutation = {c.importance_lambda, c.allow_regrow};
    o.mest_schedule = mest_schedule_config(c);
    o.importance_window = c.importance_window;
    o.update_every = c.update_every;
    o.update_interval = c.update_interval;
    o.drop_fraction = c.drop_fraction;
    o.drop_anneal = c.drop_anneal;
    o.update_end = c.update_end;
    o.gmp_begin = c.gmp_begin;
    o.lth_rounds = c.lth_rounds;
    o.lth_rewind_epoch = c.lth_rewind_epoch;
    o.prune_batches = c.prune_batches;
    o.grasp_temperature = c.grasp_temperature;
    return o;
}

// One attempt at the run: fresh, resumed, or (`rollback`) resumed after a divergence.
Attempt train_attempt(TrainConfig config, const RunOptions & options, const Attempt * rollback) {
    const auto run_start = std::chrono::steady_clock::now();
    MEST_INPUT_CHECK(!config.out.empty()) << "--out: a run directory is required";
    const fs::path dir(config.out);
    CheckpointMeta resumed;
    if (options.resume) {
        MEST_INPUT_CHECK(fs::exists(dir / "last")) << "--resume: no checkpoint " << (dir / "last").string();
        resumed = read_checkpoint_meta((dir / "last").string());
        config = resumed_config(resumed.config, config, options.resume_overrides, (dir / "last").string());
    }
    config = resolve_defaults(config);
    validate(config);
    set_num_threads(config.threads);

    // Everything that can fail on bad input happens before the run directory is touched.
    data::DatasetPair data = data::load_dataset(config.data, config.data_dir, config.limit_train);
    const nn::InputSpec input{data.train.channels, data.train.height, data.train.width, data.train.num_classes};
    auto model = build_configured_model(config, input);
    Rng init_rng(config.seed);
    model->initialize(init_rng);
    std::vector<nn::Parameter<float> *> params;
    model->collect_parameters(params);
    optim::Sgd<float> optimizer(params, optim::SgdConfig{config.momentum, config.weight_decay, config.nesterov});
    std::unique_ptr<methods::SparseMethod> method = methods::make_method(*model, method_options(config, input));
    data::BatchLoader train_loader(data.train, data.norm, config.batch_size, true,
                                   data::AugmentConfig{config.augment_pad, config.augment_flip}, config.seed);
    data::BatchLoader test_loader(data.test, data.norm, std::max(config.batch_size, 256), false, data::AugmentConfig{},
                                  config.seed);
    test_loader.keep_first(config.limit_test);
    const int64_t per_epoch = train_loader.num_batches();
    const int64_t total_iterations = per_epoch * config.epochs;
    // Rounds (LTH) restart the learning-rate schedule; otherwise one schedule spans the run.
    const int round_epochs = method ? method->round_epochs(config.epochs) : 0;
    const int64_t schedule_iterations = round_epochs > 0 ? per_epoch * round_epochs : total_iterations;
    optim::LrSchedule schedule(
        optim::LrScheduleConfig{config.schedule, config.lr, config.lr_min, config.warmup_epochs, {0.5, 0.75}, 0.1},
        schedule_iterations, per_epoch);
    const double lr_scale = rollback ? rollback->lr_scale : resumed.lr_scale;  // < 1 after divergence rollbacks
    const int rollbacks = rollback ? rollback->rollbacks : resumed.rollbacks;
    const auto lr_at = [&](int64_t it) { return lr_scale * schedule.at(it % schedule_iterations); };
    // Data efficiency (train/data_efficiency.h). The LR follows epochs (schedule_iteration maps a step to
    // the full-data iteration); methods get the real step count of the planned schedule, exact from the
    // start for --de-remove(-fraction), from the switch on for --de-max-forgets.
    std::optional<DataEfficiency> de;
    if (config.data_efficient) de.emplace(DataEfficiency::for_dataset(data.train, data_efficiency_config(config)));
    const auto planned_iterations = [&] {
        return de ? de->planned_iterations(config.epochs, config.batch_size) : total_iterations;
    };
    int64_t method_total_iterations = planned_iterations();

    prepare_run_dir(dir, options);
    ModelTensors tensors = model_tensors(*model);
    tensors.method = method.get();
    if (de) tensors.aux_arrays = de->state_arrays();
    int start_epoch = 0;
    int64_t iteration = 0;
    RunSummary summary;
    if (options.resume) {
        load_checkpoint((dir / "last").string(), tensors, true);
        truncate_topology(dir / "topology.jsonl", resumed);
        start_epoch = resumed.epoch;
        iteration = resumed.iteration;
        summary.best_test_acc = resumed.best_test_acc;
        summary.best_epoch = resumed.best_epoch;
        summary.final_test_acc = resumed.test_acc;
        truncate_metrics(dir / "metrics.jsonl", start_epoch);
        if (de) {
            // Format 1 predates data efficiency, so its checkpoints never carry the arrays.
            MEST_INPUT_CHECK(resumed.format >= 2)
                << "--resume: " << (dir / "last").string() << " is a format-" << resumed.format
                << " checkpoint without data-efficiency state; resume it without --data-efficient";
            de->restore();  // the arrays came with the checkpoint
            if (de->stage2_started()) train_loader.set_subset(de->kept_rows());
            method_total_iterations = planned_iterations();
        }
        std::printf("resuming %s at epoch %d step %lld (best test acc %.2f%%)\n", dir.string().c_str(), start_epoch + 1,
                    static_cast<long long>(resumed.step_in_epoch), 100.0 * resumed.best_test_acc);
    }
    nlohmann::json config_json = to_json(config);
    nlohmann::json run_json{{"config", config_json},
                            {"version", version()},
                            {"git_commit", git_commit()},
                            {"parameters_stored",
                             [&] {
                                 std::size_t n = 0;
                                 for (auto * p : params) n += p->size();
                                 return n;
                             }()},
                            {"sparse_layer_sparsity", measure_sparsity(params).sparse_layer_sparsity()},
                            {"overall_sparsity", measure_sparsity(params).overall_sparsity()}};
    write_text_atomically(dir / "config.json", run_json.dump(2) + "\n");

    std::size_t param_count = 0;
    for (auto * p : params) param_count += p->size();
    std::printf("mest %s: %s on %s (%lld train / %lld test, %dx%dx%d), %zu parameters, %d threads\n", version(),
                config.model.c_str(), config.data.c_str(), static_cast<long long>(train_loader.num_examples()),
                static_cast<long long>(test_loader.num_examples()), static_cast<int>(input.channels),
                static_cast<int>(input.height), static_cast<int>(input.width), param_count, config.threads);
    const SparsityReport sparsity = measure_sparsity(params);
    if (config.method != "dense") {
        std::printf(
            "method %s, scheme %s: sparse layers %.2f%% sparse (%lld of %lld weights kept), all parameters "
            "%.2f%% sparse\n",
            config.method.c_str(), config.scheme.c_str(), 100.0 * sparsity.sparse_layer_sparsity(),
            static_cast<long long>(sparsity.sparse_layer_nonzeros),
            static_cast<long long>(sparsity.sparse_layer_weights), 100.0 * sparsity.overall_sparsity());
    }
    if (methods::is_mest_method(config.method)) {
        const std::string schedule_text =
            methods::describe_schedule(methods::parse_mest_variant(config.method), mest_schedule_config(config));
        std::printf("mutation schedule: %s\n", schedule_text.c_str());
    }
    std::fflush(stdout);

    nn::SoftmaxCrossEntropy<float> loss;
    std::ofstream metrics(dir / "metrics.jsonl", std::ios::app);
    std::ofstream topology;
    if (method) topology.open(dir / "topology.jsonl", std::ios::app);
    if (method && !options.resume) {
        // Scoring batches come from their own loader, so the training order is the same as without.
        data::BatchLoader scoring_loader(data.train, data.norm, config.batch_size, true,
                                         data::AugmentConfig{config.augment_pad, config.augment_flip},
                                         config.seed ^ 0x73636f7265ULL);
        scoring_loader.start_epoch(0);
        methods::TrainingAccess access;
        access.next_batch = [&](data::Batch & b) { return scoring_loader.next(b); };
        access.gradients = [&](const data::Batch & b, double logit_scale) {
            return gradient_pass(*model, b.images, b.labels, logit_scale);
        };
        const auto updates = method->before_training(access);
        if (!updates.empty()) {
            print_tally("before training", updates.front().kind, log_updates(topology, 0, 0, updates));
            const SparsityReport pruned = measure_sparsity(params);
            std::printf("sparse layers now %.2f%% sparse, all parameters %.2f%%\n",
                        100.0 * pruned.sparse_layer_sparsity(), 100.0 * pruned.overall_sparsity());
        }
    }
    // Checkpoints at epoch ends, every checkpoint_every_steps steps and on SIGINT/SIGTERM; position
    // (epochs_done, step) = steps done in epoch epochs_done, with that partial epoch's sums.
    const auto checkpoint = [&](int epochs_done, int64_t step, double loss_sum, int64_t correct, int64_t seen,
                                double seconds, bool best) {
        CheckpointMeta meta{config_json,           epochs_done,       iteration, summary.final_test_acc,
                            summary.best_test_acc, summary.best_epoch};
        meta.step_in_epoch = step;
        meta.loss_sum = loss_sum;
        meta.correct = correct;
        meta.seen = seen;
        meta.partial_epoch_seconds = seconds;
        meta.lr_scale = lr_scale;
        meta.rollbacks = rollbacks;
        metrics.flush();
        sync_file(dir / "metrics.jsonl");
        if (topology.is_open()) {
            topology.flush();
            sync_file(dir / "topology.jsonl");
            meta.topology_bytes = static_cast<int64_t>(fs::file_size(dir / "topology.jsonl"));
        }
        publish_checkpoint(dir, meta, tensors, config.keep_checkpoints, best);
    };
    const auto interrupted = [&](int epoch, int64_t step) {
        Attempt a{summary};
        const int signal = InterruptHandler::pending();
        a.summary.exit_code = 128 + signal;
        a.summary.message = "interrupted at epoch " + std::to_string(epoch + 1) + " step " + std::to_string(step) +
                            " (" + (signal == SIGTERM ? "SIGTERM" : "SIGINT") +
                            "); resume with: mest train --resume --out " + dir.string();
        return a;
    };
    const auto diverged = [&](int epoch, int64_t step, const StepResult & r) {
        char what[160];
        if (!std::isfinite(r.loss))
            std::snprintf(what, sizeof what, "the loss is %g", r.loss);
        else
            std::snprintf(what, sizeof what, "the gradients' sum of squares is %g", r.grad_squares);
        const std::string where = "epoch " + std::to_string(epoch + 1) + " step " + std::to_string(step) +
                                  " (iteration " + std::to_string(iteration) + ")";
        std::string last = "no checkpoint yet";
        if (fs::exists(dir / "last")) {
            const CheckpointMeta good = read_checkpoint_meta((dir / "last").string());
            last = (dir / "last").string() + " (epoch " + std::to_string(good.epoch + 1) + " step " +
                   std::to_string(good.step_in_epoch) + ")";
        }
        Attempt a{summary};
        if (config.on_divergence == "rollback" && rollbacks < kMaxRollbacks && fs::exists(dir / "last")) {
            a.roll_back = true;
            a.lr_scale = lr_scale * config.divergence_lr_factor;
            a.rollbacks = rollbacks + 1;
            std::printf(
                "training diverged at %s: %s; rolling back to %s with the learning rate x%g (rollback %d of %d)\n",
                where.c_str(), what, last.c_str(), a.lr_scale, a.rollbacks, kMaxRollbacks);
            std::fflush(stdout);
            return a;
        }
        a.summary.exit_code = kDivergedExitCode;
        a.summary.message = "training diverged at " + where + ": " + what + "; the last good checkpoint " + last +
                            " is left intact; " +
                            (config.on_divergence == "rollback"
                                 ? "gave up after " + std::to_string(kMaxRollbacks) + " rollbacks"
                                 : std::string("resume with a lower --lr, or run with --on-divergence rollback"));
        return a;
    };
    // A rollback needs a checkpoint to go back to, even before the first epoch ends.
    if (!options.resume && config.on_divergence == "rollback") checkpoint(0, 0, 0.0, 0, 0, 0.0, false);

    data::Batch batch;
    for (int epoch = start_epoch; epoch < config.epochs; ++epoch) {
        MemoryLedger::instance().reset_peaks();
        const auto epoch_start = std::chrono::steady_clock::now();
        // Resumed inside this epoch: its begin_epoch already happened before the checkpoint.
        const bool mid_epoch = epoch == start_epoch && resumed.step_in_epoch > 0;
        const double carried_seconds = mid_epoch ? resumed.partial_epoch_seconds : 0.0;
        if (de && de->switch_due(epoch)) {
            train_loader.set_subset(de->switch_to_stage2());
            method_total_iterations = planned_iterations();
            de->write_csv((dir / "forgetting.csv").string());
            std::printf("%s\n", de->switch_report(config.epochs, config.batch_size).c_str());
        }
        const int64_t epoch_steps = train_loader.num_batches();
        methods::StepContext ctx;
        ctx.epoch = epoch;
        ctx.epochs = config.epochs;
        ctx.steps_per_epoch = epoch_steps;
        ctx.total_iterations = method_total_iterations;
        ctx.iteration = iteration;
        ctx.lr = lr_at(schedule_iteration(epoch, 0, epoch_steps, per_epoch));
        if (method && !mid_epoch) {
            const auto updates = method->begin_epoch(ctx);
            const std::string when = "before epoch " + std::to_string(epoch + 1);
            if (!updates.empty())
                print_tally(when.c_str(), updates.front().kind, log_updates(topology, epoch, iteration, updates));
        }
        UpdateTally in_epoch;
        train_loader.start_epoch(epoch);
        MEST_INPUT_CHECK(!mid_epoch || resumed.step_in_epoch < epoch_steps)
            << "--resume: the checkpoint is at step " << resumed.step_in_epoch << " of epoch " << epoch + 1
            << ", which has " << epoch_steps << " steps here";
        if (mid_epoch) train_loader.skip_batches(resumed.step_in_epoch);
        ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(config.epochs), epoch_steps,
                        options.progress);
        double loss_sum = mid_epoch ? resumed.loss_sum : 0.0;
        int64_t correct = mid_epoch ? resumed.correct : 0, seen = mid_epoch ? resumed.seen : 0;
        int64_t done = mid_epoch ? resumed.step_in_epoch : 0;
        double lr = ctx.lr;
        while (train_loader.next(batch)) {
            lr = lr_at(schedule_iteration(epoch, done, epoch_steps, per_epoch));
            ctx.step_in_epoch = done;
            ctx.iteration = iteration;
            ctx.lr = lr;
            if (method) method->before_step(ctx);
            const StepResult r = train_step(*model, loss, optimizer, batch.images, batch.labels, lr);
            if (!std::isfinite(r.loss) || !std::isfinite(r.grad_squares)) return diverged(epoch, done, r);
            if (de) de->record(batch.positions, r.per_example.correct, epoch);
            loss_sum += r.loss * static_cast<double>(batch.size());
            correct += r.correct;
            seen += batch.size();
            if (method) {
                const auto updates = method->after_step(ctx);
                in_epoch += log_updates(topology, epoch, iteration + 1, updates);
            }
            ++iteration;
            ++done;
            bar.update(done, seen, loss_sum / static_cast<double>(seen),
                       static_cast<double>(correct) / static_cast<double>(seen));
            const bool every = config.checkpoint_every_steps > 0 && iteration % config.checkpoint_every_steps == 0;
            if (done < epoch_steps && (every || InterruptHandler::pending())) {
                const double seconds =
                    carried_seconds +
                    std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
                checkpoint(epoch, done, loss_sum, correct, seen, seconds, false);
                if (InterruptHandler::pending()) return interrupted(epoch, done);
            }
        }
        bar.finish();
        if (in_epoch.updates > 0) print_tally(("in epoch " + std::to_string(epoch + 1)).c_str(), "topology", in_epoch);
        const double train_seconds =
            carried_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        const bool do_eval = (epoch + 1) % config.eval_every == 0 || epoch + 1 == config.epochs;
        EvalResult test;
        if (do_eval) {
            return_freed_memory();
            test = evaluate(*model, test_loader);
            return_freed_memory();
        }
        const double epoch_seconds =
            carried_seconds + std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        const double train_loss = seen ? loss_sum / static_cast<double>(seen) : 0.0;
        const double train_acc = seen ? static_cast<double>(correct) / static_cast<double>(seen) : 0.0;
        const std::size_t rss = process_peak_rss_bytes();
        const bool best = do_eval && test.accuracy > summary.best_test_acc;
        if (do_eval) summary.final_test_acc = test.accuracy;
        if (best) {
            summary.best_test_acc = test.accuracy;
            summary.best_epoch = epoch + 1;
        }
        char test_text[16] = "   -   ";
        if (do_eval) std::snprintf(test_text, sizeof test_text, "%6.2f%%", 100.0 * test.accuracy);
        std::printf("epoch %3d/%d  loss %.4f  train %6.2f%%  test %s  lr %.5f  %s (%.0f img/s)  peak %s\n", epoch + 1,
                    config.epochs, train_loss, 100.0 * train_acc, test_text, lr, format_duration(epoch_seconds).c_str(),
                    static_cast<double>(seen) / train_seconds, format_bytes(rss).c_str());
        std::fflush(stdout);

        nlohmann::json m{{"epoch", epoch + 1},
                         {"iteration", iteration},
                         {"train_loss", train_loss},
                         {"train_acc", train_acc},
                         {"train_examples", seen},
                         {"lr", lr},
                         {"epoch_seconds", epoch_seconds},
                         {"train_images_per_s", static_cast<double>(seen) / train_seconds},
                         {"peak_rss_bytes", rss},
                         {"sparse_layer_sparsity", measure_sparsity(params).sparse_layer_sparsity()},
                         {"ledger_peak_bytes", ledger_json()}};
        if (do_eval) {
            m["test_loss"] = test.loss;
            m["test_acc"] = test.accuracy;
        }
        metrics << m.dump() << "\n";
        metrics.flush();

        checkpoint(epoch + 1, 0, 0.0, 0, 0, 0.0, best);
        if (InterruptHandler::pending() && epoch + 1 < config.epochs) return interrupted(epoch + 1, 0);
    }
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    const nlohmann::json s{{"final_test_acc", summary.final_test_acc},
                           {"best_test_acc", summary.best_test_acc},
                           {"best_epoch", summary.best_epoch},
                           {"seconds", summary.seconds},
                           {"peak_rss_bytes", process_peak_rss_bytes()},
                           {"sparse_layer_sparsity", measure_sparsity(params).sparse_layer_sparsity()},
                           {"overall_sparsity", measure_sparsity(params).overall_sparsity()}};
    nlohmann::json with_passes = s;
    const int64_t full_passes = static_cast<int64_t>(config.epochs) * data.train.size;
    with_passes["sample_passes"] = de ? de->sample_passes() : full_passes;
    with_passes["sample_passes_saved"] = de ? full_passes - de->sample_passes() : 0;
    if (de) {
        de->write_csv((dir / "forgetting.csv").string());
        with_passes["unforgettable_0"] = de->stage1_counts().unforgettable;
        with_passes["forgotten_at_most_1"] = de->stage1_counts().at_most_one;
        std::printf("%s\n", de->final_report(config.epochs).c_str());
    }
    write_text_atomically(dir / "summary.json", with_passes.dump(2) + "\n");
    std::printf("final test accuracy %.2f%% (best %.2f%% at epoch %d), %s, run directory %s\n",
                100.0 * summary.final_test_acc, 100.0 * summary.best_test_acc, summary.best_epoch,
                format_duration(summary.seconds).c_str(), dir.string().c_str());
    report::write_run_report_or_warn(dir.string());
    return Attempt{summary};
}

}  // namespace

RunSummary run_training(TrainConfig config, const RunOptions & options) {
    InterruptHandler interrupts;
    RunOptions attempt_options = options;
    std::optional<Attempt> rollback;
    for (;;) {
        Attempt a = train_attempt(config, attempt_options, rollback ? &*rollback : nullptr);
        if (!a.roll_back) return a.summary;
        attempt_options.resume = true;  // from `last`, everything rebuilt as a resumed process would
        rollback = a;
    }
}

}  // namespace mest::train
