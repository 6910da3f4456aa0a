#include "train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/threads.h"
#include "core/version.h"
#include "data/batch_loader.h"
#include "methods/mest_method.h"
#include "nn/models.h"
#include "optim/lr_schedule.h"
#include "sparse/scheme.h"
#include "train/checkpoint.h"
#include "train/model_setup.h"
#include "train/progress.h"
#include "train/step.h"

namespace fs = std::filesystem;

namespace mest::train {

TrainConfig resolve_defaults(TrainConfig c) {
    if (c.augment_pad < 0) c.augment_pad = (c.data == "mnist" || c.data == "fashion-mnist") ? 2 : 4;
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
        return;
    }
    if (fs::exists(dir / "config.json") || fs::exists(dir / "last")) {
        MEST_INPUT_CHECK(options.force)
            << "--out: " << dir.string()
            << " already holds a run; pass --resume to continue it or --force to replace it";
        for (const char * name : {"config.json", "metrics.jsonl", "last", "best", "summary.json"})
            fs::remove(dir / name);
    }
    std::error_code ec;
    fs::create_directories(dir, ec);
    MEST_INPUT_CHECK(!ec && fs::is_directory(dir))
        << "--out: cannot create directory " << dir.string() << " (" << ec.message() << ")";
}

// One topology.jsonl line per layer and update, and a one-line summary on stdout.
void log_mutation(std::ofstream & topology, int epoch, const std::vector<methods::LayerUpdate> & updates) {
    int64_t pruned = 0, grown = 0, nnz = 0;
    for (const auto & u : updates) {
        topology << nlohmann::json{{"epoch", epoch},
                                   {"layer", u.layer},
                                   {"prune_to", u.bounds.prune_to},
                                   {"grow_to", u.bounds.grow_to},
                                   {"pruned_units", u.stats.pruned_units},
                                   {"grown_units", u.stats.grown_units},
                                   {"nnz_before", u.stats.nnz_before},
                                   {"nnz_after", u.stats.nnz_after}}
                        .dump()
                 << "\n";
        pruned += u.stats.pruned_units;
        grown += u.stats.grown_units;
        nnz += u.stats.nnz_after;
    }
    topology.flush();
    {
        std::printf(
            "mutation before epoch %d: pruned %lld units, grown %lld (sparsity %.4f -> %.4f), %lld weights kept\n",
            epoch + 1, static_cast<long long>(pruned), static_cast<long long>(grown), updates.front().bounds.prune_to,
            updates.front().bounds.grow_to, static_cast<long long>(nnz));
        std::fflush(stdout);
    }
}

}  // namespace

RunSummary run_training(TrainConfig config, const RunOptions & options) {
    const auto run_start = std::chrono::steady_clock::now();
    MEST_INPUT_CHECK(!config.out.empty()) << "--out: a run directory is required";
    const fs::path dir(config.out);
    CheckpointMeta resumed;
    if (options.resume) {
        MEST_INPUT_CHECK(fs::exists(dir / "last")) << "--resume: no checkpoint " << (dir / "last").string();
        resumed = read_checkpoint_meta((dir / "last").string());
        // The checkpoint's configuration wins, except for the epoch count (to extend a run) and threads.
        TrainConfig stored = config_from_json(resumed.config, TrainConfig{}, (dir / "last").string());
        stored.epochs = config.epochs > stored.epochs ? config.epochs : stored.epochs;
        stored.threads = config.threads;
        stored.out = config.out;
        config = stored;
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
    std::unique_ptr<methods::MestMethod> mest;
    if (config.method.rfind("mest", 0) == 0) {
        methods::MestConfig mc;
        mc.variant = methods::parse_mest_variant(config.method);
        mc.schedule.target_sparsity = config.sparsity;
        mc.schedule.update_every = config.update_every;
        mc.mutation = {config.importance_lambda, config.allow_regrow};
        mc.importance_window = config.importance_window;
        mc.seed = config.seed;
        mest = std::make_unique<methods::MestMethod>(*model, sparse::parse_scheme(config.scheme), mc);
    }

    data::BatchLoader train_loader(data.train, data.norm, config.batch_size, true,
                                   data::AugmentConfig{config.augment_pad, config.augment_flip}, config.seed);
    data::BatchLoader test_loader(data.test, data.norm, std::max(config.batch_size, 256), false, data::AugmentConfig{},
                                  config.seed);
    test_loader.keep_first(config.limit_test);
    const int64_t per_epoch = train_loader.num_batches();
    optim::LrSchedule schedule(
        optim::LrScheduleConfig{config.schedule, config.lr, config.lr_min, config.warmup_epochs, {0.5, 0.75}, 0.1},
        per_epoch * config.epochs, per_epoch);

    prepare_run_dir(dir, options);
    const ModelTensors tensors = model_tensors(*model);
    int start_epoch = 0;
    int64_t iteration = 0;
    RunSummary summary;
    if (options.resume) {
        load_checkpoint((dir / "last").string(), tensors, true);
        start_epoch = resumed.epoch;
        iteration = resumed.iteration;
        summary.best_test_acc = resumed.best_test_acc;
        summary.best_epoch = resumed.best_epoch;
        summary.final_test_acc = resumed.test_acc;
        truncate_metrics(dir / "metrics.jsonl", start_epoch);
        std::printf("resuming %s at epoch %d (best test acc %.2f%%)\n", dir.string().c_str(), start_epoch + 1,
                    100.0 * resumed.best_test_acc);
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
    std::fflush(stdout);

    nn::SoftmaxCrossEntropy<float> loss;
    std::ofstream metrics(dir / "metrics.jsonl", std::ios::app);
    std::ofstream topology;
    if (mest) topology.open(dir / "topology.jsonl", std::ios::app);
    data::Batch batch;
    for (int epoch = start_epoch; epoch < config.epochs; ++epoch) {
        MemoryLedger::instance().reset_peaks();
        const auto epoch_start = std::chrono::steady_clock::now();
        if (mest) {
            const auto updates = mest->begin_epoch(epoch, config.epochs);
            if (!updates.empty()) log_mutation(topology, epoch, updates);
        }
        train_loader.start_epoch(epoch);
        ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(config.epochs), per_epoch,
                        options.progress);
        double loss_sum = 0.0;
        int64_t correct = 0, seen = 0, done = 0;
        double lr = schedule.at(iteration);
        while (train_loader.next(batch)) {
            lr = schedule.at(iteration);
            const StepResult r = train_step(*model, loss, optimizer, batch.images, batch.labels, lr);
            MEST_INPUT_CHECK(std::isfinite(r.loss)) << "training diverged: loss is " << r.loss << " at epoch "
                                                    << epoch + 1 << ", step " << iteration << " (try a lower --lr)";
            loss_sum += r.loss * static_cast<double>(batch.size());
            correct += r.correct;
            seen += batch.size();
            if (mest) mest->after_backward(epoch, config.epochs, done, per_epoch);
            ++iteration;
            ++done;
            bar.update(done, seen, loss_sum / static_cast<double>(seen),
                       static_cast<double>(correct) / static_cast<double>(seen));
        }
        bar.finish();
        const double train_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
        const bool do_eval = (epoch + 1) % config.eval_every == 0 || epoch + 1 == config.epochs;
        EvalResult test;
        if (do_eval) test = evaluate(*model, test_loader);
        const double epoch_seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
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
                         {"lr", lr},
                         {"epoch_seconds", epoch_seconds},
                         {"train_images_per_s", static_cast<double>(seen) / train_seconds},
                         {"peak_rss_bytes", rss},
                         {"ledger_peak_bytes", ledger_json()}};
        if (do_eval) {
            m["test_loss"] = test.loss;
            m["test_acc"] = test.accuracy;
        }
        metrics << m.dump() << "\n";
        metrics.flush();

        CheckpointMeta meta{config_json,           epoch + 1,         iteration, summary.final_test_acc,
                            summary.best_test_acc, summary.best_epoch};
        save_checkpoint((dir / "last").string(), meta, tensors);
        if (best) save_checkpoint((dir / "best").string(), meta, tensors);
    }
    summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - run_start).count();
    const nlohmann::json s{{"final_test_acc", summary.final_test_acc},
                           {"best_test_acc", summary.best_test_acc},
                           {"best_epoch", summary.best_epoch},
                           {"seconds", summary.seconds},
                           {"peak_rss_bytes", process_peak_rss_bytes()},
                           {"sparse_layer_sparsity", measure_sparsity(params).sparse_layer_sparsity()},
                           {"overall_sparsity", measure_sparsity(params).overall_sparsity()}};
    write_text_atomically(dir / "summary.json", s.dump(2) + "\n");
    std::printf("final test accuracy %.2f%% (best %.2f%% at epoch %d), %s, run directory %s\n",
                100.0 * summary.final_test_acc, 100.0 * summary.best_test_acc, summary.best_epoch,
                format_duration(summary.seconds).c_str(), dir.string().c_str());
    return summary;
}

}  // namespace mest::train
