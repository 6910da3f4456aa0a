// The one table of training methods: names, which start dense, and how each is built.
#include "core/error.h"
#include "methods/mest_method.h"
#include "methods/set_method.h"
#include "methods/sparse_method.h"

namespace mest::methods {

const std::vector<std::string> & method_names() {
    static const std::vector<std::string> names{"dense", "static", "mest", "mest-em", "mest-ems", "set"};
    return names;
}

bool method_starts_dense(const std::string & /*method*/) {
    return false;
}

std::unique_ptr<SparseMethod> make_method(nn::Sequential<float> & net, const MethodOptions & options) {
    const std::string & m = options.method;
    if (m == "dense" || m == "static") return nullptr;
    if (m == "mest" || m == "mest-em" || m == "mest-ems") {
        MestConfig config;
        config.variant = parse_mest_variant(m);
        config.schedule = options.mest_schedule;
        config.schedule.target_sparsity = options.sparsity;
        if (options.update_every > 0) config.schedule.update_every = options.update_every;
        config.mutation = options.mutation;
        config.importance_window = options.importance_window;
        config.seed = options.seed;
        return std::make_unique<MestMethod>(net, options.scheme, config);
    }
    if (m == "set") return std::make_unique<SetMethod>(net, options);
    std::string known;
    for (const auto & n : method_names()) known += (known.empty() ? "" : ", ") + n;
    MEST_FAIL_INPUT() << "--method: unknown method '" << m << "' (known: " << known << ")";
}

}  // namespace mest::methods
