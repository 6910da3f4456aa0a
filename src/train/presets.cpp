#include "train/presets.h"

#include <cstdint>

#include "core/error.h"

namespace mest::train {

namespace {

nlohmann::json official_cifar(const char * data) {
    return {{"data", data},     {"model", "resnet32w2"}, {"method", "mest-ems"},
            {"sparsity", 0.9},  {"epochs", 160},         {"batch-size", 64},
            {"lr", 0.1},        {"lr-min", 4e-8},        {"schedule", "cosine"},
            {"momentum", 0.9},  {"weight-decay", 1e-4},  {"update-every", 5},
            {"augment-pad", 4}, {"augment-flip", true},  {"seed", uint64_t{914}}};
}

}  // namespace

const std::vector<std::string> & preset_names() {
    static const std::vector<std::string> names{"fashion-mnist", "mest-cifar10-resnet32", "mest-cifar100-resnet32"};
    return names;
}

nlohmann::json preset_values(const std::string & name) {
    if (name == "mest-cifar10-resnet32") return official_cifar("cifar10");
    if (name == "mest-cifar100-resnet32") return official_cifar("cifar100");
    if (name == "fashion-mnist")
        return {{"data", "fashion-mnist"}, {"model", "resnet32"},  {"method", "mest-ems"}, {"scheme", "block"},
                {"sparsity", 0.9},         {"epochs", 30},         {"batch-size", 64},     {"lr", 0.1},
                {"schedule", "cosine"},    {"weight-decay", 5e-4}, {"update-every", 1},    {"augment-pad", 2}};
    std::string known;
    for (const auto & n : preset_names()) known += (known.empty() ? "" : ", ") + n;
    MEST_FAIL_INPUT() << "--preset: unknown preset '" << name << "' (known: " << known << ")";
}

}  // namespace mest::train
