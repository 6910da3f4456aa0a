// IDX parsing with full validation: a damaged download should fail loudly at load time, naming the
// file, instead of training on garbage.
#include "data/idx_reader.h"

#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>
#include <vector>

#include "core/error.h"

namespace mest::data {
namespace {

constexpr uint32_t kImagesMagic = 0x00000803;  // unsigned bytes, 3 dims
constexpr uint32_t kLabelsMagic = 0x00000801;  // unsigned bytes, 1 dim
// Far above any IDX dataset (Fashion-MNIST train is 4.7e7) but stops a corrupt header from asking
// for terabytes.
constexpr double kMaxElements = 1e8;
// Deflate's maximum compression ratio (zlib's technical details: 1032:1); the gzip frame only adds.
constexpr std::size_t kMaxDeflateRatio = 1032;

std::string hex32(uint32_t value) {
    char text[16];
    std::snprintf(text, sizeof(text), "0x%08x", value);
    return text;
}

// gzopen detects the 0x1f8b gzip magic itself and reads other files unchanged, so one code path
// serves raw and compressed files.
class IdxFile {
public:
    explicit IdxFile(std::string path) : path_(std::move(path)) {
        file_ = gzopen(path_.c_str(), "rb");
        if (file_ == nullptr) MEST_FAIL_INPUT() << "cannot open " << path_ << ": " << std::strerror(errno);
        std::error_code ec;
        file_bytes_ = static_cast<std::size_t>(std::filesystem::file_size(path_, ec));
        if (ec) file_bytes_ = std::numeric_limits<std::size_t>::max() / kMaxDeflateRatio;  // no bound known
        // 1 MiB buffers for the datasets, less for small files (zlib allocates three times this).
        gzbuffer(file_, static_cast<unsigned>(std::clamp<std::size_t>(file_bytes_, 1 << 16, 1 << 20)));
    }
    ~IdxFile() {
        if (file_ != nullptr) gzclose_r(file_);
    }
    IdxFile(const IdxFile &) = delete;
    IdxFile & operator=(const IdxFile &) = delete;

    const std::string & path() const { return path_; }

    uint32_t read_u32_be() {
        unsigned char bytes[4];
        read_exact(bytes, 4);
        return (uint32_t{bytes[0]} << 24) | (uint32_t{bytes[1]} << 16) | (uint32_t{bytes[2]} << 8) | bytes[3];
    }

    void read_exact(void * dst, std::size_t bytes) {
        const std::size_t expected = consumed_ + bytes;
        if (read(dst, bytes) < bytes) {
            int errnum = Z_OK;
            gzerror(file_, &errnum);
            // zlib reports a gzip stream cut short as a soft Z_BUF_ERROR and just returns fewer bytes.
            MEST_FAIL_INPUT() << "IDX file " << path_ << " is truncated: expected " << expected
                              << " bytes (decompressed), got " << consumed_
                              << (errnum == Z_BUF_ERROR ? " (gzip stream ends early)" : "");
        }
    }

    // Called before allocating for the next `bytes` (decompressed) bytes, so that a header claiming
    // far more data than the file holds is an input error, not a huge allocation. A raw file must
    // hold them; gzip data expands at most kMaxDeflateRatio-fold. Valid only after the first read,
    // which lets zlib tell raw from gzip.
    void expect_available(std::size_t bytes) {
        const bool raw = gzdirect(file_) == 1;
        const std::size_t limit = raw ? file_bytes_ : file_bytes_ * kMaxDeflateRatio;
        if (consumed_ <= limit && bytes <= limit - consumed_) return;
        if (raw)
            MEST_FAIL_INPUT() << "IDX file " << path_ << " is truncated: expected " << consumed_ + bytes
                              << " bytes (decompressed), got " << file_bytes_;
        MEST_FAIL_INPUT() << "IDX file " << path_ << " is truncated: expected " << consumed_ + bytes
                          << " bytes (decompressed), more than its " << file_bytes_ << " gzip bytes can hold";
    }

    // Reads and drops `bytes`, still decompressing them so that corruption there is caught.
    void skip_exact(std::size_t bytes) {
        std::vector<unsigned char> scratch(std::min<std::size_t>(bytes, 1 << 20));
        while (bytes > 0) {
            const std::size_t chunk = std::min(bytes, scratch.size());
            read_exact(scratch.data(), chunk);
            bytes -= chunk;
        }
    }

    // Reading past the data also makes zlib verify the gzip CRC and length trailer.
    void expect_end() {
        unsigned char extra;
        if (read(&extra, 1) != 0)
            MEST_FAIL_INPUT() << "IDX file " << path_ << " has trailing bytes after the " << consumed_ - 1
                              << " bytes its header describes";
        int errnum = Z_OK;
        gzerror(file_, &errnum);
        MEST_INPUT_CHECK(errnum != Z_BUF_ERROR)
            << "IDX file " << path_ << " is truncated: the gzip stream ends before its trailer";
    }

private:
    std::size_t read(void * dst, std::size_t bytes) {
        auto * out = static_cast<unsigned char *>(dst);
        std::size_t done = 0;
        while (done < bytes) {
            const auto chunk = static_cast<unsigned>(std::min<std::size_t>(bytes - done, std::size_t{1} << 30));
            const int got = gzread(file_, out + done, chunk);
            if (got < 0) fail_corrupt();
            if (got == 0) break;
            done += static_cast<std::size_t>(got);
        }
        consumed_ += done;
        return done;
    }

    [[noreturn]] void fail_corrupt() {
        int errnum = Z_OK;
        const char * message = gzerror(file_, &errnum);
        if (errnum == Z_ERRNO) MEST_FAIL_INPUT() << "cannot read " << path_ << ": " << std::strerror(errno);
        // zlib prefixes its message with the path, which ours already names.
        std::string detail = message;
        if (detail.rfind(path_ + ": ", 0) == 0) detail.erase(0, path_.size() + 2);
        MEST_FAIL_INPUT() << "corrupt gzip data in " << path_ << ": " << detail;
        std::abort();  // unreachable: the builder throws
    }

    std::string path_;
    gzFile file_ = nullptr;
    std::size_t consumed_ = 0;
    std::size_t file_bytes_ = 0;  // on disk (compressed, for gzip)
};

// Distributions name these files with a dash or a dot before "idx", compressed or not.
std::string find_idx_file(const std::string & dir, const std::string & base) {
    std::string dotted = base;
    dotted[dotted.rfind('-', dotted.find("idx"))] = '.';
    const std::vector<std::string> candidates = {dir + "/" + base, dir + "/" + base + ".gz", dir + "/" + dotted,
                                                 dir + "/" + dotted + ".gz"};
    for (const auto & path : candidates) {
        std::error_code ec;
        if (std::filesystem::is_regular_file(path, ec)) return path;
    }
    std::string tried;
    for (const auto & path : candidates) tried += (tried.empty() ? "" : ", ") + path;
    MEST_FAIL_INPUT() << "missing IDX file " << base << ": tried " << tried;
    return {};
}

void expect_magic(IdxFile & file, uint32_t expected, const char * what) {
    const uint32_t magic = file.read_u32_be();
    MEST_INPUT_CHECK(magic == expected) << "IDX file " << file.path() << " has wrong magic: found " << hex32(magic)
                                        << ", expected " << hex32(expected) << " (" << what << ")";
}

// Returns the example count; the labels are validated against `num_classes` and the first
// `keep` stored.
int64_t read_labels(const std::string & path, int num_classes, int64_t keep, Buffer<int32_t> & out) {
    IdxFile file(path);
    expect_magic(file, kLabelsMagic, "IDX labels, unsigned bytes, 1 dim");
    const uint32_t count = file.read_u32_be();
    MEST_INPUT_CHECK(count > 0 && count <= kMaxElements)
        << "IDX file " << path << " has an implausible label count " << count;
    file.expect_available(count);
    std::vector<uint8_t> raw(count);
    file.read_exact(raw.data(), raw.size());
    file.expect_end();
    for (uint32_t i = 0; i < count; ++i)
        MEST_INPUT_CHECK(raw[i] < num_classes) << "IDX file " << path << ": label of example " << i << " is "
                                               << int{raw[i]} << ", outside [0, " << num_classes << ")";
    const int64_t kept = keep == 0 ? count : std::min<int64_t>(keep, count);
    out = Buffer<int32_t>(static_cast<std::size_t>(kept), MemCategory::kData);
    for (int64_t i = 0; i < kept; ++i) out[i] = raw[i];
    return count;
}

}  // namespace

Dataset read_idx_split(const std::string & dir, const std::string & prefix, int num_classes, int64_t max_examples) {
    MEST_CHECK(max_examples >= 0) << max_examples;
    const std::string images_path = find_idx_file(dir, prefix + "-images-idx3-ubyte");
    const std::string labels_path = find_idx_file(dir, prefix + "-labels-idx1-ubyte");

    Dataset out;
    const int64_t label_count = read_labels(labels_path, num_classes, max_examples, out.labels);

    IdxFile file(images_path);
    expect_magic(file, kImagesMagic, "IDX images, unsigned bytes, 3 dims");
    const uint32_t count = file.read_u32_be();
    const uint32_t rows = file.read_u32_be();
    const uint32_t cols = file.read_u32_be();
    MEST_INPUT_CHECK(count > 0 && rows > 0 && cols > 0 && static_cast<double>(count) * rows * cols <= kMaxElements)
        << "IDX file " << images_path << " has implausible dimensions " << count << " x " << rows << " x " << cols;
    MEST_INPUT_CHECK(count == label_count) << "IDX image file " << images_path << " holds " << count
                                           << " examples but label file " << labels_path << " holds " << label_count;

    file.expect_available(static_cast<std::size_t>(count) * rows * cols);

    out.channels = 1;
    out.height = static_cast<int>(rows);
    out.width = static_cast<int>(cols);
    out.num_classes = num_classes;
    out.source_size = count;
    out.size = static_cast<int64_t>(out.labels.size());
    const auto example_bytes = static_cast<std::size_t>(rows) * cols;
    out.images = Buffer<uint8_t>(static_cast<std::size_t>(out.size) * example_bytes, MemCategory::kData);
    file.read_exact(out.images.data(), out.images.size());
    file.skip_exact(static_cast<std::size_t>(count - out.size) * example_bytes);
    file.expect_end();

    out.example_ids.resize(static_cast<std::size_t>(out.size));
    for (int64_t i = 0; i < out.size; ++i) out.example_ids[i] = i;
    return out;
}

}  // namespace mest::data
