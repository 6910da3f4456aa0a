#include "optim/sgd.h"

namespace mest::optim {

template <typename T>
Sgd<T>::Sgd(std::vector<nn::Parameter<T> *> params, SgdConfig config) : params_(std::move(params)), config_(config) {
    for (auto * p : params_) {
        if (config_.momentum != 0.0 && p->state.empty())
            p->state.emplace_back(p->size(), MemCategory::kOptimizerState, true);
    }
}

template <typename T>
double Sgd<T>::step(double lr) {
    const T mom = static_cast<T>(config_.momentum);
    const T rate = static_cast<T>(lr);
    double grad_squares = 0.0;
    for (auto * p : params_) {
        const T wd = p->decay ? static_cast<T>(config_.weight_decay) : T(0);
        T * w = p->value.data();
        const T * g = p->grad.data();
        const int64_t n = static_cast<int64_t>(p->size());
        T squares = 0;
        if (config_.momentum == 0.0) {
            for (int64_t i = 0; i < n; ++i) {
                squares += g[i] * g[i];
                w[i] -= rate * (g[i] + wd * w[i]);
            }
            grad_squares += static_cast<double>(squares);
            continue;
        }
        MEST_CHECK(!p->state.empty() && p->state[0].size() == p->size()) << p->name << ": momentum buffer size";
        T * buf = p->state[0].data();
        const bool nesterov = config_.nesterov;
#pragma omp parallel for simd schedule(static) reduction(+ : squares) if (n > 65536)
        for (int64_t i = 0; i < n; ++i) {
            squares += g[i] * g[i];
            const T d = g[i] + wd * w[i];
            buf[i] = mom * buf[i] + d;
            w[i] -= rate * (nesterov ? d + mom * buf[i] : buf[i]);
        }
        grad_squares += static_cast<double>(squares);
    }
    return grad_squares;
}

template class Sgd<float>;
template class Sgd<double>;

}  // namespace mest::optim
