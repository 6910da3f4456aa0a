// Direct NCHW convolution, the readable reference every optimized conv kernel is tested against.
// Templated so gradient checks can run in double precision.
//   src [N, Cin, H, W], weights [Cout, Cin, kh, kw], bias [Cout] or null, dst [N, Cout, Ho, Wo]
#pragma once
#include "kernels/conv_geometry.h"

namespace mest::kernels {

template <typename T>
void conv2d_forward_reference(const ConvGeometry & g, const T * src, const T * weights, const T * bias, T * dst) {
    const int64_t ho = g.out_height(), wo = g.out_width();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.batch; ++n) {
        for (int64_t oc = 0; oc < g.out_channels; ++oc) {
            T * out = dst + (n * g.out_channels + oc) * ho * wo;
            for (int64_t i = 0; i < ho * wo; ++i) out[i] = bias ? bias[oc] : T(0);
            for (int64_t ic = 0; ic < g.in_channels; ++ic) {
                const T * in = src + (n * g.in_channels + ic) * g.in_height * g.in_width;
                const T * w = weights + (oc * g.in_channels + ic) * g.kernel_h * g.kernel_w;
                for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
                    for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
                        const T wv = w[ky * g.kernel_w + kx];
                        for (int64_t oy = 0; oy < ho; ++oy) {
                            const int64_t iy = oy * g.stride - g.pad + ky;
                            if (iy < 0 || iy >= g.in_height) continue;
                            for (int64_t ox = 0; ox < wo; ++ox) {
                                const int64_t ix = ox * g.stride - g.pad + kx;
                                if (ix < 0 || ix >= g.in_width) continue;
                                out[oy * wo + ox] += wv * in[iy * g.in_width + ix];
                            }
                        }
                    }
                }
            }
        }
    }
}

// diff_src = conv_transpose(diff_dst, weights); overwrites diff_src.
template <typename T>
void conv2d_backward_data_reference(const ConvGeometry & g, const T * diff_dst, const T * weights, T * diff_src) {
    const int64_t ho = g.out_height(), wo = g.out_width();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < g.batch; ++n) {
        for (int64_t ic = 0; ic < g.in_channels; ++ic) {
            T * din = diff_src + (n * g.in_channels + ic) * g.in_height * g.in_width;
            for (int64_t i = 0; i < g.in_height * g.in_width; ++i) din[i] = T(0);
            for (int64_t oc = 0; oc < g.out_channels; ++oc) {
                const T * dout = diff_dst + (n * g.out_channels + oc) * ho * wo;
                const T * w = weights + (oc * g.in_channels + ic) * g.kernel_h * g.kernel_w;
                for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
                    for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
                        const T wv = w[ky * g.kernel_w + kx];
                        for (int64_t oy = 0; oy < ho; ++oy) {
                            const int64_t iy = oy * g.stride - g.pad + ky;
                            if (iy < 0 || iy >= g.in_height) continue;
                            for (int64_t ox = 0; ox < wo; ++ox) {
                                const int64_t ix = ox * g.stride - g.pad + kx;
                                if (ix < 0 || ix >= g.in_width) continue;
                                din[iy * g.in_width + ix] += wv * dout[oy * wo + ox];
                            }
                        }
                    }
                }
            }
        }
    }
}

// diff_weights (and diff_bias when non-null) overwritten with the batch sums.
template <typename T>
void conv2d_backward_weights_reference(const ConvGeometry & g, const T * src, const T * diff_dst, T * diff_weights,
                                       T * diff_bias) {
    const int64_t ho = g.out_height(), wo = g.out_width();
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t oc = 0; oc < g.out_channels; ++oc) {
        for (int64_t ic = 0; ic < g.in_channels; ++ic) {
            for (int64_t ky = 0; ky < g.kernel_h; ++ky) {
                for (int64_t kx = 0; kx < g.kernel_w; ++kx) {
                    T acc = T(0);
                    for (int64_t n = 0; n < g.batch; ++n) {
                        const T * in = src + (n * g.in_channels + ic) * g.in_height * g.in_width;
                        const T * dout = diff_dst + (n * g.out_channels + oc) * ho * wo;
                        for (int64_t oy = 0; oy < ho; ++oy) {
                            const int64_t iy = oy * g.stride - g.pad + ky;
                            if (iy < 0 || iy >= g.in_height) continue;
                            for (int64_t ox = 0; ox < wo; ++ox) {
                                const int64_t ix = ox * g.stride - g.pad + kx;
                                if (ix < 0 || ix >= g.in_width) continue;
                                acc += in[iy * g.in_width + ix] * dout[oy * wo + ox];
                            }
                        }
                    }
                    diff_weights[((oc * g.in_channels + ic) * g.kernel_h + ky) * g.kernel_w + kx] = acc;
                }
            }
        }
    }
    if (diff_bias) {
        for (int64_t oc = 0; oc < g.out_channels; ++oc) {
            T acc = T(0);
            for (int64_t n = 0; n < g.batch; ++n) {
                const T * dout = diff_dst + (n * g.out_channels + oc) * ho * wo;
                for (int64_t i = 0; i < ho * wo; ++i) acc += dout[i];
            }
            diff_bias[oc] = acc;
        }
    }
}

}  // namespace mest::kernels
