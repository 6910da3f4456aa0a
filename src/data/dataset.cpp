// Dataset registry: maps a dataset name to its reader, default location and normalisation.
#include "data/dataset.h"

#include <filesystem>

#include "core/error.h"
#include "data/cifar_reader.h"
#include "data/idx_reader.h"

namespace mest::data {
namespace {

std::string joined_names() {
    std::string out;
    for (const auto & name : dataset_names()) out += (out.empty() ? "" : ", ") + name;
    return out;
}

void check_known(const std::string & name) {
    for (const auto & known : dataset_names())
        if (known == name) return;
    MEST_FAIL_INPUT() << "unknown dataset '" << name << "'; valid names: " << joined_names();
}

Dataset read_split(const std::string & name, const std::string & dir, bool train, int64_t max_examples) {
    if (name == "mnist" || name == "fashion-mnist")
        return read_idx_split(dir, train ? "train" : "t10k", 10, max_examples);
    if (name == "cifar10") return read_cifar10_split(dir, train, max_examples);
    return read_cifar100_split(dir, train, max_examples);
}

}  // namespace

const std::vector<std::string> & dataset_names() {
    static const std::vector<std::string> names = {"fashion-mnist", "mnist", "cifar10", "cifar100"};
    return names;
}

std::string default_data_dir(const std::string & name) {
    check_known(name);
    return "/usr/share/datasets/" + name;
}

DatasetShape dataset_shape(const std::string & name) {
    check_known(name);
    if (name == "mnist" || name == "fashion-mnist") return {1, 28, 28, 10};
    return {3, 32, 32, name == "cifar10" ? 10 : 100};
}

Normalization dataset_normalization(const std::string & name) {
    check_known(name);
    if (name == "mnist") return {{0.1307f}, {0.3081f}};
    if (name == "fashion-mnist") return {{0.2860f}, {0.3530f}};
    if (name == "cifar10") return {{0.4914f, 0.4822f, 0.4465f}, {0.2470f, 0.2435f, 0.2616f}};
    return {{0.5071f, 0.4865f, 0.4409f}, {0.2673f, 0.2564f, 0.2762f}};
}

DatasetPair load_dataset(const std::string & name, const std::string & dir, int64_t limit_train) {
    check_known(name);
    MEST_INPUT_CHECK(limit_train >= 0) << "--limit-train must be at least 0 (0 = all), got " << limit_train;
    const std::string root = dir.empty() ? default_data_dir(name) : dir;
    std::error_code ec;
    MEST_INPUT_CHECK(std::filesystem::is_directory(root, ec))
        << "data directory " << root << " for dataset " << name << " does not exist";

    DatasetPair out;
    out.train = read_split(name, root, true, limit_train);
    MEST_INPUT_CHECK(limit_train <= out.train.source_size) << "--limit-train " << limit_train << " exceeds the "
                                                           << out.train.source_size << " training examples of " << name;
    out.test = read_split(name, root, false, 0);
    MEST_INPUT_CHECK(out.train.channels == out.test.channels && out.train.height == out.test.height &&
                     out.train.width == out.test.width)
        << "dataset " << name << " in " << root << ": train images are " << out.train.channels << "x"
        << out.train.height << "x" << out.train.width << " but test images are " << out.test.channels << "x"
        << out.test.height << "x" << out.test.width;
    out.train.name = name + "/train";
    out.test.name = name + "/test";
    out.norm = dataset_normalization(name);
    return out;
}

}  // namespace mest::data
