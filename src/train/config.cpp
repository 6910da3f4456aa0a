#include "train/config.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <type_traits>

#include "core/error.h"
#include "data/dataset.h"
#include "methods/sparse_method.h"
#include "nn/models.h"
#include "sparse/scheme.h"

namespace mest::train {

namespace {

// One table drives both directions so a new field cannot be serialised but not parsed.
template <typename Fn>
void for_each_field(TrainConfig & c, Fn && fn) {
    fn("data", c.data);
    fn("data-dir", c.data_dir);
    fn("model", c.model);
    fn("method", c.method);
    fn("scheme", c.scheme);
    fn("sparsity", c.sparsity);
    fn("block-rows", c.block_rows);
    fn("sparse-layers", c.sparse_layers);
    fn("distribution", c.distribution);
    fn("recompute", c.recompute);
    fn("update-every", c.update_every);
    fn("update-interval", c.update_interval);
    fn("drop-fraction", c.drop_fraction);
    fn("drop-anneal", c.drop_anneal);
    fn("update-end", c.update_end);
    fn("gmp-begin", c.gmp_begin);
    fn("lth-rounds", c.lth_rounds);
    fn("lth-rewind-epoch", c.lth_rewind_epoch);
    fn("prune-batches", c.prune_batches);
    fn("grasp-temperature", c.grasp_temperature);
    fn("importance-lambda", c.importance_lambda);
    fn("importance-window", c.importance_window);
    fn("allow-regrow", c.allow_regrow);
    fn("mest-decay-at", c.mest_decay_at);
    fn("mest-em-rates", c.mest_em_rates);
    fn("mest-soft-extra", c.mest_soft_extra);
    fn("mest-rate", c.mest_rate);
    fn("data-efficient", c.data_efficient);
    fn("de-stage1-epochs", c.de_stage1_epochs);
    fn("de-remove", c.de_remove);
    fn("de-remove-fraction", c.de_remove_fraction);
    fn("de-max-forgets", c.de_max_forgets);
    fn("epochs", c.epochs);
    fn("batch-size", c.batch_size);
    fn("lr", c.lr);
    fn("lr-min", c.lr_min);
    fn("momentum", c.momentum);
    fn("nesterov", c.nesterov);
    fn("weight-decay", c.weight_decay);
    fn("schedule", c.schedule);
    fn("warmup-epochs", c.warmup_epochs);
    fn("seed", c.seed);
    fn("threads", c.threads);
    fn("limit-train", c.limit_train);
    fn("limit-test", c.limit_test);
    fn("augment-pad", c.augment_pad);
    fn("augment-flip", c.augment_flip);
    fn("out", c.out);
    fn("eval-every", c.eval_every);
    fn("keep-checkpoints", c.keep_checkpoints);
    fn("checkpoint-every-steps", c.checkpoint_every_steps);
    fn("on-divergence", c.on_divergence);
    fn("divergence-lr-factor", c.divergence_lr_factor);
}

bool contains(const std::vector<std::string> & names, const std::string & value) {
    for (const auto & n : names)
        if (n == value) return true;
    return false;
}

bool is_control(char ch) {
    const auto byte = static_cast<unsigned char>(ch);
    return byte < 0x20 || byte == 0x7f;
}

// `text` with control characters as \xNN, so a message about it stays on one line.
std::string printable(const std::string & text) {
    std::string out;
    for (const char ch : text) {
        if (!is_control(ch)) {
            out += ch;
            continue;
        }
        char escaped[8];
        std::snprintf(escaped, sizeof escaped, "\\x%02x", static_cast<unsigned char>(ch));
        out += escaped;
    }
    return out;
}

std::string join(const std::vector<std::string> & names) {
    std::string s;
    for (const auto & n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

}  // namespace

nlohmann::json to_json(const TrainConfig & config) {
    nlohmann::json j = nlohmann::json::object();
    TrainConfig copy = config;
    for_each_field(copy, [&](const char * key, auto & value) { j[key] = value; });
    return j;
}

TrainConfig config_from_json(const nlohmann::json & j, const TrainConfig & base, const std::string & source) {
    MEST_INPUT_CHECK(j.is_object()) << source << ": expected a JSON object";
    TrainConfig c = base;
    std::vector<std::string> known;
    for_each_field(c, [&](const char * key, auto & value) {
        known.emplace_back(key);
        if (!j.contains(key)) return;
        const nlohmann::json & v = j.at(key);
        using Field = std::decay_t<decltype(value)>;
        // nlohmann converts silently between numbers and booleans (1.9 -> 1, true -> 1, -1 -> 2^64-1).
        bool type_ok;
        if constexpr (std::is_same_v<Field, bool>)
            type_ok = v.is_boolean();
        else if constexpr (std::is_same_v<Field, std::string>)
            type_ok = v.is_string();
        else if constexpr (std::is_floating_point_v<Field>)
            type_ok = v.is_number();
        else if constexpr (std::is_unsigned_v<Field>)
            type_ok = v.is_number_unsigned();
        else
            type_ok = v.is_number_integer();
        MEST_INPUT_CHECK(type_ok) << source << ": key '" << key << "' has the wrong type (" << v.type_name() << ")";
        // get_to would wrap an integer the field cannot hold (4294967297 -> int 1) without a word.
        if constexpr (std::is_integral_v<Field> && !std::is_same_v<Field, bool>) {
            const bool in_range = v.is_number_unsigned()
                                      ? v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<Field>::max())
                                      : v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<Field>::min());
            MEST_INPUT_CHECK(in_range) << source << ": key '" << key << "' is out of range (" << v.dump() << ")";
        }
        // Strings end up in messages and file names; a control character there is never meant.
        if constexpr (std::is_same_v<Field, std::string>) {
            const auto & text = v.get_ref<const std::string &>();
            MEST_INPUT_CHECK(std::none_of(text.begin(), text.end(), is_control))
                << source << ": key '" << key << "' holds a control character";
        }
        try {
            v.get_to(value);
        } catch (const nlohmann::json::exception &) {
            MEST_FAIL_INPUT() << source << ": key '" << key << "' has the wrong type (" << v.type_name() << ")";
        }
    });
    for (const auto & [key, value] : j.items()) {
        (void)value;
        MEST_INPUT_CHECK(contains(known, key)) << source << ": unknown key '" << printable(key) << "'";
    }
    return c;
}

methods::MestScheduleConfig mest_schedule_config(const TrainConfig & c) {
    const methods::MestVariant variant =
        methods::is_mest_method(c.method) ? methods::parse_mest_variant(c.method) : methods::MestVariant::kVanilla;
    return methods::mest_schedule_from_flags(
        {variant, c.mest_decay_at, c.mest_em_rates, c.mest_soft_extra, c.mest_rate});
}

void validate(const TrainConfig & c) {
    MEST_INPUT_CHECK(contains(data::dataset_names(), c.data))
        << "--data: unknown dataset '" << c.data << "' (valid: " << join(data::dataset_names()) << ")";
    MEST_INPUT_CHECK(contains(nn::model_names(), c.model))
        << "--model: unknown model '" << c.model << "' (valid: " << join(nn::model_names()) << ")";
    MEST_INPUT_CHECK(contains(methods::method_names(), c.method))
        << "--method: unknown method '" << c.method << "' (valid: " << join(methods::method_names()) << ")";
    MEST_INPUT_CHECK(!methods::method_starts_dense(c.method) || c.scheme == "unstructured" || c.scheme == "block")
        << "--method " << c.method << " prunes from a dense start, which --scheme " << c.scheme
        << " cannot represent (use unstructured or block)";
    MEST_INPUT_CHECK(c.update_every >= 0)
        << "--update-every must be >= 0 (0 = the method's default), got " << c.update_every;
    MEST_INPUT_CHECK(c.update_interval >= 0)
        << "--update-interval must be >= 0 (0 = the method's default), got " << c.update_interval;
    MEST_INPUT_CHECK(std::isfinite(c.drop_fraction) && c.drop_fraction < 1.0)
        << "--drop-fraction must be below 1 (< 0 = the method's default), got " << c.drop_fraction;
    MEST_INPUT_CHECK(c.drop_anneal.empty() || c.drop_anneal == "constant" || c.drop_anneal == "cosine")
        << "--drop-anneal: unknown value '" << c.drop_anneal << "' (valid: constant, cosine)";
    MEST_INPUT_CHECK(std::isfinite(c.update_end) && c.update_end <= 1.0)
        << "--update-end must be at most 1 (< 0 = the method's default), got " << c.update_end;
    MEST_INPUT_CHECK(std::isfinite(c.gmp_begin) && c.gmp_begin < 1.0)
        << "--gmp-begin must be below 1 (< 0 = the method's default), got " << c.gmp_begin;
    MEST_INPUT_CHECK(c.lth_rounds >= 1 && c.lth_rounds <= 100)
        << "--lth-rounds must be in [1, 100], got " << c.lth_rounds;
    MEST_INPUT_CHECK(c.lth_rewind_epoch >= 0) << "--lth-rewind-epoch must be >= 0, got " << c.lth_rewind_epoch;
    MEST_INPUT_CHECK(c.prune_batches >= 1 && c.prune_batches <= 1000)
        << "--prune-batches must be in [1, 1000], got " << c.prune_batches;
    MEST_INPUT_CHECK(std::isfinite(c.grasp_temperature) && c.grasp_temperature > 0)
        << "--grasp-temperature must be positive, got " << c.grasp_temperature;
    MEST_INPUT_CHECK(std::isfinite(c.importance_lambda) && c.importance_lambda >= 0)
        << "--importance-lambda must be >= 0, got " << c.importance_lambda;
    (void)mest_schedule_config(c);
    MEST_INPUT_CHECK(c.importance_window >= 0) << "--importance-window must be >= 0, got " << c.importance_window;
    MEST_INPUT_CHECK(c.scheme != "dense" && contains(sparse::scheme_names(), c.scheme))
        << "--scheme: unknown scheme '" << c.scheme << "' (valid: unstructured, block, pattern, channel)";
    MEST_INPUT_CHECK(c.sparse_layers.empty() || contains(sparse::sparse_layer_names(), c.sparse_layers))
        << "--sparse-layers: unknown value '" << c.sparse_layers << "' (valid: " << join(sparse::sparse_layer_names())
        << ")";
    MEST_INPUT_CHECK(c.recompute == "auto" || c.recompute == "on" || c.recompute == "off")
        << "--recompute: unknown value '" << c.recompute << "' (valid: auto, on, off)";
    MEST_INPUT_CHECK(contains(sparse::distribution_names(), c.distribution))
        << "--distribution: unknown value '" << c.distribution << "' (valid: " << join(sparse::distribution_names())
        << ")";
    MEST_INPUT_CHECK(std::isfinite(c.sparsity) && c.sparsity >= 0.0 && c.sparsity <= 1.0)
        << "--sparsity must be in [0, 1], got " << c.sparsity;
    MEST_INPUT_CHECK(c.block_rows >= 1 && c.block_rows <= 64)
        << "--block-rows must be in [1, 64], got " << c.block_rows;
    MEST_INPUT_CHECK(c.epochs >= 1 && c.epochs <= 100000) << "--epochs must be in [1, 100000], got " << c.epochs;
    MEST_INPUT_CHECK(c.batch_size >= 1 && c.batch_size <= 65536)
        << "--batch-size must be in [1, 65536], got " << c.batch_size;
    MEST_INPUT_CHECK(std::isfinite(c.lr) && c.lr > 0) << "--lr must be a positive number, got " << c.lr;
    MEST_INPUT_CHECK(std::isfinite(c.lr_min) && c.lr_min >= 0 && c.lr_min <= c.lr)
        << "--lr-min must be in [0, lr], got " << c.lr_min;
    MEST_INPUT_CHECK(std::isfinite(c.momentum) && c.momentum >= 0 && c.momentum < 1)
        << "--momentum must be in [0, 1), got " << c.momentum;
    MEST_INPUT_CHECK(!c.nesterov || c.momentum > 0) << "--nesterov needs --momentum > 0";
    MEST_INPUT_CHECK(std::isfinite(c.weight_decay) && c.weight_decay >= 0)
        << "--weight-decay must be >= 0, got " << c.weight_decay;
    MEST_INPUT_CHECK(c.schedule == "cosine" || c.schedule == "step")
        << "--schedule: unknown schedule '" << c.schedule << "' (valid: cosine, step)";
    MEST_INPUT_CHECK(std::isfinite(c.warmup_epochs) && c.warmup_epochs >= 0 && c.warmup_epochs < c.epochs)
        << "--warmup-epochs must be in [0, epochs), got " << c.warmup_epochs;
    MEST_INPUT_CHECK(c.threads >= 1 && c.threads <= 1024) << "--threads must be in [1, 1024], got " << c.threads;
    MEST_INPUT_CHECK(c.limit_train >= 0) << "--limit-train must be >= 0, got " << c.limit_train;
    MEST_INPUT_CHECK(c.limit_test >= 0) << "--limit-test must be >= 0, got " << c.limit_test;
    MEST_INPUT_CHECK(c.augment_pad >= -1 && c.augment_pad <= 16) << "--augment-pad must be in [-1, 16]";
    MEST_INPUT_CHECK(c.eval_every >= 1) << "--eval-every must be >= 1, got " << c.eval_every;
    MEST_INPUT_CHECK(c.keep_checkpoints >= 1 && c.keep_checkpoints <= 1000)
        << "--keep-checkpoints must be in [1, 1000], got " << c.keep_checkpoints;
    MEST_INPUT_CHECK(c.checkpoint_every_steps >= 0)
        << "--checkpoint-every-steps must be >= 0 (0 = at epoch ends only), got " << c.checkpoint_every_steps;
    MEST_INPUT_CHECK(c.on_divergence == "stop" || c.on_divergence == "rollback")
        << "--on-divergence: unknown value '" << c.on_divergence << "' (valid: stop, rollback)";
    MEST_INPUT_CHECK(std::isfinite(c.divergence_lr_factor) && c.divergence_lr_factor > 0 && c.divergence_lr_factor < 1)
        << "--divergence-lr-factor must be in (0, 1), got " << c.divergence_lr_factor;
    // Negative removal settings mean "not this rule"; de-stage1-epochs 0 means the default.
    const int rules = (c.de_remove >= 0) + (c.de_remove_fraction >= 0) + (c.de_max_forgets >= 0);
    MEST_INPUT_CHECK(c.data_efficient || (rules == 0 && c.de_stage1_epochs == 0))
        << "--de-stage1-epochs, --de-remove, --de-remove-fraction and --de-max-forgets need --data-efficient";
    MEST_INPUT_CHECK(c.de_stage1_epochs == 0 || (c.de_stage1_epochs >= 1 && c.de_stage1_epochs <= c.epochs))
        << "--de-stage1-epochs must be in [1, epochs] (epochs: statistics only; 0 = round(epochs * 70/160)), got "
        << c.de_stage1_epochs;
    MEST_INPUT_CHECK(rules <= 1) << "--de-remove, --de-remove-fraction and --de-max-forgets exclude each other";
    MEST_INPUT_CHECK(std::isfinite(c.de_remove_fraction) && c.de_remove_fraction < 1.0)
        << "--de-remove-fraction must be below 1, got " << c.de_remove_fraction;
}

}  // namespace mest::train
