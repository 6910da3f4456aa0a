// CIFAR binary parsing. The files have no header, so the size and the label bytes are the only
// things to check: a truncated download shows up as a size that is not a whole number of records.
#include "data/cifar_reader.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "core/error.h"

namespace mest::data {
namespace {

constexpr int kChannels = 3;
constexpr int kSide = 32;
constexpr int64_t kPixelBytes = kChannels * kSide * kSide;
constexpr int64_t kRecordsPerRead = 1024;

struct CifarFormat {
    int label_bytes;     // CIFAR-100 stores the coarse label first
    int classes;         // of the label that is kept (the last label byte)
    int coarse_classes;  // 0 where there is no coarse label
};

bool is_file(const std::string & path) {
    std::error_code ec;
    return std::filesystem::is_regular_file(path, ec);
}

// The official archives unpack into a subdirectory; accept `dir` pointing at either level.
std::string resolve_dir(const std::string & dir, const std::string & subdir, const std::string & probe) {
    const std::string flat = dir + "/" + probe;
    const std::string nested = dir + "/" + subdir + "/" + probe;
    if (is_file(flat)) return dir;
    if (is_file(nested)) return dir + "/" + subdir;
    MEST_FAIL_INPUT() << "missing CIFAR file " << probe << ": tried " << flat << ", " << nested;
    return {};
}

int64_t record_count(const std::string & path, int64_t record_bytes) {
    MEST_INPUT_CHECK(is_file(path)) << "missing CIFAR file " << path;
    std::error_code ec;
    const auto bytes = static_cast<int64_t>(std::filesystem::file_size(path, ec));
    MEST_INPUT_CHECK(!ec) << "cannot read " << path << ": " << ec.message();
    MEST_INPUT_CHECK(bytes > 0 && bytes % record_bytes == 0)
        << "CIFAR file " << path << " is " << bytes << " bytes, not a positive multiple of the " << record_bytes
        << "-byte record (truncated?)";
    return bytes / record_bytes;
}

Dataset read_cifar_files(const std::vector<std::string> & paths, const CifarFormat & format, int64_t max_examples) {
    MEST_CHECK(max_examples >= 0) << max_examples;
    const int64_t record_bytes = format.label_bytes + kPixelBytes;
    std::vector<int64_t> counts;
    int64_t total = 0;
    for (const auto & path : paths) {
        counts.push_back(record_count(path, record_bytes));
        total += counts.back();
    }

    Dataset out;
    out.channels = kChannels;
    out.height = kSide;
    out.width = kSide;
    out.num_classes = format.classes;
    out.source_size = total;
    out.size = max_examples == 0 ? total : std::min(max_examples, total);
    out.images = Buffer<uint8_t>(static_cast<std::size_t>(out.size * kPixelBytes), MemCategory::kData);
    out.labels = Buffer<int32_t>(static_cast<std::size_t>(out.size), MemCategory::kData);
    out.example_ids.resize(static_cast<std::size_t>(out.size));

    // Every record is read, even past max_examples, so a bad label anywhere fails the same way.
    const int64_t largest = counts.empty() ? 0 : *std::max_element(counts.begin(), counts.end());
    std::vector<uint8_t> chunk(static_cast<std::size_t>(std::min(kRecordsPerRead, largest) * record_bytes));
    int64_t row = 0;
    for (std::size_t f = 0; f < paths.size(); ++f) {
        const std::string & path = paths[f];
        std::unique_ptr<std::FILE, int (*)(std::FILE *)> file(std::fopen(path.c_str(), "rb"), &std::fclose);
        MEST_INPUT_CHECK(file != nullptr) << "cannot open " << path << ": " << std::strerror(errno);
        for (int64_t first = 0; first < counts[f]; first += kRecordsPerRead) {
            const int64_t n = std::min(kRecordsPerRead, counts[f] - first);
            const auto want = static_cast<std::size_t>(n * record_bytes);
            MEST_INPUT_CHECK(std::fread(chunk.data(), 1, want, file.get()) == want)
                << "cannot read " << path << ": file shrank while reading";
            for (int64_t r = 0; r < n; ++r, ++row) {
                const uint8_t * record = chunk.data() + r * record_bytes;
                if (format.coarse_classes > 0) {
                    MEST_INPUT_CHECK(record[0] < format.coarse_classes)
                        << "CIFAR file " << path << ": record " << first + r << " has coarse label " << int{record[0]}
                        << ", outside [0, " << format.coarse_classes << ")";
                }
                const int label = record[format.label_bytes - 1];
                MEST_INPUT_CHECK(label < format.classes)
                    << "CIFAR file " << path << ": record " << first + r << " has label " << label << ", outside [0, "
                    << format.classes << ")";
                if (row >= out.size) continue;
                out.labels[row] = label;
                out.example_ids[row] = row;
                std::memcpy(out.images.data() + row * kPixelBytes, record + format.label_bytes, kPixelBytes);
            }
        }
    }
    return out;
}

}  // namespace

Dataset read_cifar10_split(const std::string & dir, bool train, int64_t max_examples) {
    const std::string first = train ? "data_batch_1.bin" : "test_batch.bin";
    const std::string root = resolve_dir(dir, "cifar-10-batches-bin", first);
    std::vector<std::string> paths;
    if (train) {
        for (int i = 1; i <= 5; ++i) paths.push_back(root + "/data_batch_" + std::to_string(i) + ".bin");
    } else {
        paths.push_back(root + "/" + first);
    }
    return read_cifar_files(paths, CifarFormat{1, 10, 0}, max_examples);
}

Dataset read_cifar100_split(const std::string & dir, bool train, int64_t max_examples) {
    const std::string file = train ? "train.bin" : "test.bin";
    const std::string root = resolve_dir(dir, "cifar-100-binary", file);
    return read_cifar_files({root + "/" + file}, CifarFormat{2, 100, 20}, max_examples);
}

}  // namespace mest::data
