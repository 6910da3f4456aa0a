// The one table of training methods: names, which start dense, and how each is built.
#include "core/error.h"
#include "methods/dsr_method.h"
#include "methods/gmp_method.h"
#include "methods/grasp_method.h"
#include "methods/lth_method.h"
#include "methods/mest_method.h"
#include "methods/rigl_method.h"
#include "methods/set_method.h"
#include "methods/snfs_method.h"
#include "methods/snip_method.h"
#include "methods/sparse_method.h"

namespace mest::methods {

const std::vector<std::string> & method_names() {
    static const std::vector<std::string> names{"dense", "static", "mest", "mest-em", "mest-ems", "set", "snip",
                                                "grasp", "dsr",    "gmp",  "lth",     "snfs",     "rigl"};
    return names;
}

bool method_starts_dense(const std::string & method) {
    if (method == "snip" || method == "grasp") return true;
    if (method == "gmp" || method == "lth") return true;
    return false;
}

std::unique_ptr<SparseMethod> make_method(nn::Sequential<float> & net, const MethodOptions & options) {
    const std::string & m = options.method;
    if (m == "dense" || m == "static") return nullptr;
    if (is_mest_method(m)) {
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
    if (m == "rigl") return std::make_unique<RiglMethod>(net, options);
    if (m == "snfs") return std::make_unique<SnfsMethod>(net, options);
    if (m == "dsr") return std::make_unique<DsrMethod>(net, options);
    if (m == "gmp") return std::make_unique<GmpMethod>(net, options);
    if (m == "lth") return std::make_unique<LthMethod>(net, options);
    if (m == "snip") return std::make_unique<SnipMethod>(net, options);
    if (m == "grasp") return std::make_unique<GraspMethod>(net, options);
    std::string known;
    for (const auto & n : method_names()) known += (known.empty() ? "" : ", ") + n;
    MEST_FAIL_INPUT() << "--method: unknown method '" << m << "' (known: " << known << ")";
}

}  // namespace mest::methods
