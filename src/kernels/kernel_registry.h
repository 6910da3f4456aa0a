// The one table of mest's hand-written kernels. Every entry is a kernel under its name with its
// plain scalar reference and its optimized version (Highway, dispatched at run time to the best
// SIMD target the CPU runs). Three readers, one table:
//   - the layers call each entry's `active` version: optimized, or the reference for every kernel
//     when the environment has MEST_KERNELS=reference (tells a kernel bug from a model bug);
//   - the kernel tests compare each optimized entry against its reference entry on every target,
//     and a registry test checks that the layers really dispatch through the table;
//   - `mest bench --kernels reference|optimized` times the whole training step on either column.
#pragma once
#include <string>
#include <utility>

#include "kernels/norm_act.h"
#include "kernels/sparse_conv.h"
#include "kernels/sparse_linear.h"

namespace mest::kernels {

// X(name) for every registered kernel; kernels::name is the optimized version. Only kernels a layer
// dispatches are here: norm_act.h's float-mask relu_backward and relu_mask_pack remain as the
// forms the bit-mask kernels are tested against, sparse_linear_backward_data and
// sparse_conv2d_backward_data as the one-product forms of sparse_linear_backward and
// sparse_conv2d_backward (the layers always call the latter; backward_weights alone when no input
// gradient is wanted).
#define MEST_FOR_EACH_KERNEL(X)       \
    X(sparse_conv2d_forward)          \
    X(sparse_conv2d_backward)         \
    X(sparse_conv2d_backward_weights) \
    X(sparse_linear_forward)          \
    X(sparse_linear_backward_weights) \
    X(sparse_linear_backward)         \
    X(plane_sums)                     \
    X(scale_shift)                    \
    X(bn_backward_sums)               \
    X(bn_backward_apply)              \
    X(relu_backward_bits)             \
    X(add_masked_bits)                \
    X(bn_add_relu)                    \
    X(bn_backward_sums_bits)          \
    X(bn_backward_apply_bits)         \
    X(bn_relu_backward_sums)          \
    X(bn_relu_backward_apply)

enum class KernelImpl { kReference, kOptimized };
const char * kernel_impl_name(KernelImpl impl);                               // reference | optimized
KernelImpl parse_kernel_impl(const std::string & text, const char * source);  // input error naming source

template <typename Fn>
struct Kernel {
    const char * name;
    Fn * reference;
    Fn * optimized;
    Fn * active;

    template <typename... Args>
    void operator()(Args &&... args) const {
        active(std::forward<Args>(args)...);
    }
    Fn * version(KernelImpl impl) const { return impl == KernelImpl::kReference ? reference : optimized; }
    // What a layer runs: the active version, or the reference when the layer alone asks for it
    // (set_backend(ConvBackend::kReference), the gradient checks' fp32 ground truth).
    Fn * for_layer(bool force_reference) const { return force_reference ? reference : active; }
};

struct KernelRegistry {
#define MEST_KERNEL_FIELD(name) Kernel<decltype(kernels::name)> name;
    MEST_FOR_EACH_KERNEL(MEST_KERNEL_FIELD)
#undef MEST_KERNEL_FIELD

    // fn(entry) for every entry, in table order.
    template <typename Fn>
    void for_each(Fn && fn) const {
#define MEST_KERNEL_VISIT(name) fn(name);
        MEST_FOR_EACH_KERNEL(MEST_KERNEL_VISIT)
#undef MEST_KERNEL_VISIT
    }
    template <typename Fn>
    void for_each(Fn && fn) {
#define MEST_KERNEL_VISIT(name) fn(name);
        MEST_FOR_EACH_KERNEL(MEST_KERNEL_VISIT)
#undef MEST_KERNEL_VISIT
    }
};

// The table, its active column chosen by MEST_KERNELS (optimized when unset) on first use; an
// unknown value is an input error naming the variable.
const KernelRegistry & registry();
KernelImpl active_kernels();
// Makes `impl` every entry's active version. Between runs only (no kernel may be running).
void use_kernels(KernelImpl impl);
// Tests only: the table itself, to route one entry through a probe.
KernelRegistry & registry_for_testing();

}  // namespace mest::kernels
