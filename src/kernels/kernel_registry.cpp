#include "kernels/kernel_registry.h"

#include <cstdlib>

#include "core/error.h"

namespace mest::kernels {

namespace {

KernelRegistry make_registry() {
    // The conv and linear references are templates (gradient checks run them in double); the
    // table holds their fp32 instances.
    KernelRegistry r{
        {"sparse_conv2d_forward", &sparse_conv2d_forward_reference<float>, &sparse_conv2d_forward, nullptr},
        {"sparse_conv2d_backward", &sparse_conv2d_backward_reference<float>, &sparse_conv2d_backward, nullptr},
        {"sparse_conv2d_backward_weights", &sparse_conv2d_backward_weights_reference<float>,
         &sparse_conv2d_backward_weights, nullptr},
        {"sparse_linear_forward", &sparse_linear_forward_reference<float>, &sparse_linear_forward, nullptr},
        {"sparse_linear_backward_weights", &sparse_linear_backward_weights_reference<float>,
         &sparse_linear_backward_weights, nullptr},
        {"sparse_linear_backward", &sparse_linear_backward_reference<float>, &sparse_linear_backward, nullptr},
        {"plane_sums", &plane_sums_reference, &plane_sums, nullptr},
        {"scale_shift", &scale_shift_reference, &scale_shift, nullptr},
        {"bn_backward_sums", &bn_backward_sums_reference, &bn_backward_sums, nullptr},
        {"bn_backward_apply", &bn_backward_apply_reference, &bn_backward_apply, nullptr},
        {"relu_backward_bits", &relu_backward_bits_reference, &relu_backward_bits, nullptr},
        {"add_masked_bits", &add_masked_bits_reference, &add_masked_bits, nullptr},
        {"bn_add_relu", &bn_add_relu_reference, &bn_add_relu, nullptr},
        {"bn_backward_sums_bits", &bn_backward_sums_bits_reference, &bn_backward_sums_bits, nullptr},
        {"bn_backward_apply_bits", &bn_backward_apply_bits_reference, &bn_backward_apply_bits, nullptr},
        {"bn_relu_backward_sums", &bn_relu_backward_sums_reference, &bn_relu_backward_sums, nullptr},
        {"bn_relu_backward_apply", &bn_relu_backward_apply_reference, &bn_relu_backward_apply, nullptr},
    };
    const char * env = std::getenv("MEST_KERNELS");
    const KernelImpl impl = env ? parse_kernel_impl(env, "MEST_KERNELS") : KernelImpl::kOptimized;
    r.for_each([&](auto & k) { k.active = k.version(impl); });
    return r;
}

KernelRegistry & table() {
    static KernelRegistry r = make_registry();
    return r;
}

}  // namespace

const char * kernel_impl_name(KernelImpl impl) {
    return impl == KernelImpl::kReference ? "reference" : "optimized";
}

KernelImpl parse_kernel_impl(const std::string & text, const char * source) {
    if (text == "reference") return KernelImpl::kReference;
    if (text == "optimized") return KernelImpl::kOptimized;
    MEST_FAIL_INPUT() << source << ": unknown kernels '" << text << "' (valid: optimized, reference)";
}

const KernelRegistry & registry() {
    return table();
}

KernelImpl active_kernels() {
    const auto & k = table().plane_sums;
    return k.active == k.reference ? KernelImpl::kReference : KernelImpl::kOptimized;
}

void use_kernels(KernelImpl impl) {
    table().for_each([&](auto & k) { k.active = k.version(impl); });
}

KernelRegistry & registry_for_testing() {
    return table();
}

}  // namespace mest::kernels
