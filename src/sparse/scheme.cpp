#include "sparse/scheme.h"

#include "core/error.h"

namespace mest::sparse {

namespace {

std::string joined(const std::vector<std::string> & names) {
    std::string s;
    for (const auto & n : names) s += (s.empty() ? "" : ", ") + n;
    return s;
}

template <typename E>
E parse_named(const std::string & name, const std::vector<std::string> & names, const char * flag) {
    for (std::size_t i = 0; i < names.size(); ++i)
        if (names[i] == name) return static_cast<E>(i);
    MEST_FAIL_INPUT() << flag << ": unknown value '" << name << "' (valid: " << joined(names) << ")";
}

}  // namespace

const std::vector<std::string> & scheme_names() {
    static const std::vector<std::string> names{"dense", "unstructured", "block", "pattern", "channel"};
    return names;
}

Scheme parse_scheme(const std::string & name) {
    return parse_named<Scheme>(name, scheme_names(), "--scheme");
}

std::string scheme_name(Scheme scheme) {
    return scheme_names()[static_cast<std::size_t>(scheme)];
}

const std::vector<std::string> & sparse_layer_names() {
    static const std::vector<std::string> names{"residual", "all-but-first-last"};
    return names;
}

SparseLayers parse_sparse_layers(const std::string & name) {
    return parse_named<SparseLayers>(name, sparse_layer_names(), "--sparse-layers");
}

const std::vector<std::string> & distribution_names() {
    static const std::vector<std::string> names{"uniform", "erk"};
    return names;
}

Distribution parse_distribution(const std::string & name) {
    return parse_named<Distribution>(name, distribution_names(), "--distribution");
}

}  // namespace mest::sparse
