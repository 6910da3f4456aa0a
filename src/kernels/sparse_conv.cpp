#include "kernels/sparse_conv.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/workspace.h"
#include "kernels/norm_act.h"
#include "kernels/tile_dispatch.h"

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/sparse_conv.cpp"
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>

#ifndef MEST_SPARSE_CONV_ONCE
#define MEST_SPARSE_CONV_ONCE
namespace mest::kernels {
namespace {

// Vectors may read past a padded row (into the next one) and past the last plane by up to one tile;
// this slack keeps those reads inside the buffer. The extra lanes are never stored.
constexpr int64_t kSlackFloats = 4 * 64 * 2;

int64_t ceil_div(int64_t a, int64_t b) {
    return (std::max<int64_t>(a, 0) + b - 1) / b;
}

int64_t round_up(int64_t x, int64_t m) {
    return ceil_div(x, m) * m;
}

// The zero-padded input split into stride x stride phase planes, phase (a, b) holding padded
// element (s*y + a, s*x + b) at (y, x). Tap (ky, kx) of a stride-s conv then reads phase
// (ky % s, kx % s) shifted by (ky / s, kx / s): every stride becomes a stride-1 correlation over
// flattened phase rows, with no strided loads and no wasted lanes. Stride 1 is plain padding.
struct PhaseGeometry {
    int64_t s, hph, wph, pp;  // stride, phase plane height and width, phase plane size
    int64_t channel_stride() const { return s * s * pp; }
    int64_t tap_offset(int64_t ky, int64_t kx) const { return ((ky % s) * s + kx % s) * pp + (ky / s) * wph + kx / s; }
};

PhaseGeometry phase_geometry(int64_t h, int64_t w, int64_t pad, int64_t s) {
    const int64_t hph = ceil_div(h + 2 * pad, s), wph = ceil_div(w + 2 * pad, s);
    return {s, hph, wph, hph * wph};
}

// Where each vector of a flattened correlation result goes: rows of `width` computed positions of
// which the first `cols` are real. The real lanes of one vector are consecutive in the dense
// output, so a vector is one (compressed) store at `offset`, never a copy through a temporary.
struct StorePlan {
    int64_t vectors = 0;          // vectors covering the flattened span
    std::vector<int64_t> offset;  // dense index of the first real lane
    std::vector<int32_t> count;   // real lanes
    std::vector<int32_t> gather;  // per vector: its real lanes' indices first, in order
    std::vector<uint8_t> inside;  // a full vector stored at `offset` stays inside the plane
};

StorePlan make_store_plan(int64_t rows, int64_t cols, int64_t width, int64_t lanes, int64_t extra_vectors) {
    StorePlan plan;
    const int64_t span = rows * width;
    plan.vectors = ceil_div(span, lanes);
    const int64_t total = plan.vectors + extra_vectors;
    plan.offset.assign(static_cast<std::size_t>(total), 0);
    plan.count.assign(static_cast<std::size_t>(total), 0);
    plan.gather.assign(static_cast<std::size_t>(total * lanes), 0);
    plan.inside.assign(static_cast<std::size_t>(total), 0);
    for (int64_t k = 0; k < plan.vectors; ++k) {
        for (int64_t j = 0; j < lanes; ++j) {
            const int64_t pos = k * lanes + j;
            if (pos >= span || pos % width >= cols) continue;
            const int32_t n = plan.count[static_cast<std::size_t>(k)]++;
            if (n == 0) plan.offset[static_cast<std::size_t>(k)] = pos / width * cols + pos % width;
            plan.gather[static_cast<std::size_t>(k * lanes + n)] = static_cast<int32_t>(j);
        }
        plan.inside[static_cast<std::size_t>(k)] = plan.offset[static_cast<std::size_t>(k)] + lanes <= rows * cols;
    }
    return plan;
}

}  // namespace
}  // namespace mest::kernels
#endif

HWY_BEFORE_NAMESPACE();
namespace mest::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using D = hn::ScalableTag<float>;
using V = hn::Vec<D>;

// out[2m] = even[m], out[2m + 1] = odd[m] for the w entries of out.
HWY_INLINE void interleave_rows(const float * even, const float * odd, float * out, int64_t w) {
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    int64_t m = 0;
    for (; 2 * (m + lanes) <= w; m += lanes)
        hn::StoreInterleaved2(hn::LoadU(d, even + m), hn::LoadU(d, odd + m), d, out + 2 * m);
    for (; 2 * m < w; ++m) {
        out[2 * m] = even[m];
        if (2 * m + 1 < w) out[2 * m + 1] = odd[m];
    }
}

// Lanes [0, n) of p, the rest zero, never reading p[n] or later. AVX2 and AVX-512 mask the load;
// the other targets emulate a masked load with a full one, so they go through a buffer.
HWY_INLINE V load_first(const float * p, int64_t n) {
    const D d;
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
    return hn::MaskedLoad(hn::FirstN(d, static_cast<size_t>(n)), d, p);
#else
    HWY_ALIGN float buffer[hwy::kMaxVectorSize / sizeof(float)] = {};
    for (int64_t i = 0; i < n; ++i) buffer[i] = p[i];
    return hn::Load(d, buffer);
#endif
}

// The gaps between staged rows are a few floats to a few rows: a memset call each cost more
// than the stores.
HWY_INLINE void zero_floats(float * p, int64_t n) {
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    int64_t i = 0;
    for (; i + lanes <= n; i += lanes) hn::StoreU(hn::Zero(d), d, p + i);
    for (; i < n; ++i) p[i] = 0.0f;
}

// The row stager: dst[x] = f(src[x]) for x < n, f the BN+ReLU transform (or identity), in
// ScaleShift's vector arithmetic (norm_act.cpp) for every element, the partial last vector included:
// a staged value is bit-identical to the a1 a separate BN+ReLU pass writes, and BN's backward
// rebuilds the same ReLU mask. Transforming in registers on the way stores each row once: a
// transform pass over the just-stored row reloaded it across two stores, which stalls forwarding.
struct RowStager {
    V scale, shift;
    bool transform, relu;

    HWY_INLINE V apply(V x) const {
        if (!transform) return x;
        const V v = hn::MulAdd(x, scale, shift);
        return relu ? hn::Max(v, hn::Zero(D())) : v;
    }

    // dst[x] = f(src[x]) for x < n, where src_room floats may be read at src and dst_room written
    // at dst (both at least n; n keeps dst[n] and later as they were). The partial last vector is
    // a full load and a full store with zeros past n where those fit, masked only where they do
    // not: a masked store was 40% of the staging on a Zen 3, far slower there than a plain one.
    HWY_INLINE void copy(const float * src, float * dst, int64_t n, int64_t src_room, int64_t dst_room) const {
        const D d;
        const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
        int64_t x = 0;
        for (; x + lanes <= n; x += lanes) hn::StoreU(apply(hn::LoadU(d, src + x)), d, dst + x);
        if (x == n) return;
        const auto real = hn::FirstN(d, static_cast<size_t>(n - x));
        const V v = apply(x + lanes <= src_room ? hn::LoadU(d, src + x) : load_first(src + x, n - x));
        if (x + lanes <= dst_room) {
            hn::StoreU(hn::IfThenElseZero(real, v), d, dst + x);
        } else {
            hn::BlendedStore(v, real, d, dst + x);
        }
    }

    // dst[x] = f(src[s*x]) for x < n, never reading past src[s*(n-1)].
    HWY_INLINE void copy_strided(const float * src, int64_t s, float * dst, int64_t n) const {
        const D d;
        const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
        for (int64_t x = 0; x < n; x += lanes) {
            const int64_t count = std::min(lanes, n - x);
            V v;
#if HWY_TARGET != HWY_SCALAR
            if (s == 2) {  // the even lanes of two vectors: 2*count - 1 floats from src + 2x
                const float * p = src + 2 * x;
                const int64_t need = 2 * count - 1;
                const V lo = need >= lanes ? hn::LoadU(d, p) : load_first(p, need);
                const V hi = need > lanes ? load_first(p + lanes, need - lanes) : hn::Zero(d);
                v = hn::ConcatEven(d, hi, lo);
            } else
#endif
            {
                HWY_ALIGN float gathered[hwy::kMaxVectorSize / sizeof(float)] = {};
                for (int64_t i = 0; i < count; ++i) gathered[i] = src[s * (x + i)];
                v = hn::Load(d, gathered);
            }
            if (count == lanes) {
                hn::StoreU(apply(v), d, dst + x);
            } else {
                hn::BlendedStore(apply(v), hn::FirstN(d, static_cast<size_t>(count)), d, dst + x);
            }
        }
    }
};

HWY_INLINE RowStager row_stager(const InputTransform * transform, int64_t channel) {
    const D d;
    return {hn::Set(d, transform ? transform->scale[channel] : 1.0f),
            hn::Set(d, transform ? transform->shift[channel] : 0.0f), transform != nullptr,
            transform != nullptr && transform->relu};
}

// One plane of `plane_floats`: rows x cols values of src (transformed) at dst + first + r * pitch,
// zeros everywhere else. Only the gaps are zeroed: zeroing the whole plane first wrote every
// value twice.
HWY_INLINE void stage_plane(const float * src, int64_t rows, int64_t cols, const RowStager & stager, int64_t first,
                            int64_t pitch, int64_t plane_floats, float * dst) {
    zero_floats(dst, first);
    for (int64_t r = 0; r < rows; ++r) {
        float * row = dst + first + r * pitch;
        // Past its end, a row's last vector writes zeros where a gap or a later row goes.
        stager.copy(src + r * cols, row, cols, (rows - r) * cols, plane_floats - first - r * pitch);
        if (r + 1 < rows) zero_floats(row + cols, pitch - cols);
    }
    const int64_t tail = first + (rows - 1) * pitch + cols;
    zero_floats(dst + tail, plane_floats - tail);
}

// One image's gradient planes [planes, h, w] in zero planes of `plane_stride` floats with rows of
// `width`: the gradient laid out on the phase planes' flattened rows, so every weight gradient is
// one flat dot product.
void widen_image(const float * src, int64_t planes, int64_t h, int64_t w, int64_t width, int64_t plane_stride,
                 float * out) {
    const RowStager identity = row_stager(nullptr, 0);
    for (int64_t p = 0; p < planes; ++p)
        stage_plane(src + p * h * w, h, w, identity, 0, width, plane_stride, out + p * plane_stride);
}

// One image's gradient planes [planes, ho, wo] at offset (q, q) in zero planes of [hu, wu], so
// every tap of the backward-data correlation reads inside the plane.
void pad_image(const float * src, int64_t planes, int64_t ho, int64_t wo, int64_t q, int64_t hu, int64_t wu,
               float * out) {
    const RowStager identity = row_stager(nullptr, 0);
    for (int64_t p = 0; p < planes; ++p)
        stage_plane(src + p * ho * wo, ho, wo, identity, q * wu + q, wu, hu * wu, out + p * hu * wu);
}

// Phase planes of one image's `channels` planes [h, w]; written whole (borders included), each
// copied row transformed on the way.
void phase_image(const float * src, int64_t channels, int64_t h, int64_t w, int64_t pad, const PhaseGeometry & pg,
                 const InputTransform * transform, float * out) {
    const int64_t s = pg.s, wph = pg.wph;
    if (s == 1) {  // each row is [pad zeros | w values | pad zeros], rows back to back
        for (int64_t p = 0; p < channels; ++p)
            stage_plane(src + p * h * w, h, w, row_stager(transform, p), pad * wph + pad, wph, pg.pp, out + p * pg.pp);
        return;
    }
    // Zero whole planes, then copy the interior rows.
    std::memset(out, 0, static_cast<std::size_t>(channels * pg.channel_stride()) * sizeof(float));
    for (int64_t p = 0; p < channels; ++p) {
        const float * in = src + p * h * w;
        const RowStager stager = row_stager(transform, p);
        for (int64_t a = 0; a < s; ++a) {
            for (int64_t b = 0; b < s; ++b) {
                float * dst = out + ((p * s + a) * s + b) * pg.pp;
                // Columns x whose source column s*x + b - pad lies inside the image.
                const int64_t x0 = std::min(wph, ceil_div(pad - b, s));
                const int64_t x1 = std::clamp(ceil_div(w + pad - b, s), x0, wph);
                for (int64_t y = 0; y < pg.hph; ++y) {
                    const int64_t iy = s * y + a - pad;
                    if (iy < 0 || iy >= h) continue;
                    float * row = dst + y * wph;
                    const float * srow = in + iy * w;
                    stager.copy_strided(srow + (s * x0 + b - pad), s, row + x0, x1 - x0);
                }
            }
        }
    }
}

// One image's planes [channels, h, w] as three copies each, copy c shifted by c - 1 columns
// (zeros shifted in) with one zero row above and below, transformed on the way: the input side of
// the aligned-rows backward-weights, where tap (ky, kx) reads copy kx at ky rows from its start,
// aligned like the gradient rows it is dotted with.
void shifted_copies_image(const float * src, int64_t channels, int64_t h, int64_t w, const InputTransform * transform,
                          float * out) {
    const int64_t plane = (h + 2) * w;
    for (int64_t p = 0; p < channels; ++p) {
        const RowStager stager = row_stager(transform, p);
        const float * in = src + p * h * w;
        for (int64_t c = 0; c < 3; ++c) {
            float * dst = out + (p * 3 + c) * plane;
            const int64_t shift = c - 1;  // row[x] = in[x + shift]
            const int64_t x0 = std::max<int64_t>(0, -shift), x1 = std::min(w, w - shift);
            zero_floats(dst, w);
            for (int64_t y = 0; y < h; ++y) {
                float * row = dst + (y + 1) * w;
                zero_floats(row, x0);
                stager.copy(in + y * w + x0 + shift, row + x0, x1 - x0, (h - y) * w - x0 - shift,
                            plane - (y + 1) * w - x0);
                zero_floats(row + x1, w - x1);
            }
            zero_floats(dst + (h + 1) * w, w);
        }
    }
}

// Inverse of phase_image for one image: padded element (s*y + a, s*x + b) of phase (a, b) back to
// (s*y + a - pad, s*x + b - pad) of the dense planes; the border is dropped.
void unphase_image(const float * phases, int64_t channels, int64_t h, int64_t w, int64_t pad, const PhaseGeometry & pg,
                   float * out) {
    const int64_t s = pg.s;
    for (int64_t p = 0; p < channels; ++p) {
        for (int64_t iy = 0; iy < h; ++iy) {
            const int64_t a = (iy + pad) % s, y = (iy + pad) / s;
            float * row = out + (p * h + iy) * w;
            if (s == 2) {
                // Even columns come from phase pad % 2, odd ones from the other.
                const float * phase = phases + (p * s + a) * s * pg.pp + y * pg.wph;
                interleave_rows(phase + (pad % 2) * pg.pp + pad / 2, phase + ((pad + 1) % 2) * pg.pp + (pad + 1) / 2,
                                row, w);
                continue;
            }
            for (int64_t b = 0; b < s; ++b) {
                const float * src = phases + ((p * s + a) * s + b) * pg.pp + y * pg.wph;
                // Columns ix with (ix + pad) % s == b, read from phase column (ix + pad) / s.
                const int64_t ix0 = ((b - pad) % s + s) % s;
                const float * col = src + (ix0 + pad) / s;
                for (int64_t ix = ix0, k = 0; ix < w; ix += s, ++k) row[ix] = col[k];
            }
        }
    }
}

// Register budget: AVX-512 has 32 vector registers, the others 16. A forward tile keeps R*T
// accumulators, R broadcast weights and an input live; more than fit spills on every FMA.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int kRegisters = 32;
#else
constexpr int kRegisters = 16;
#endif
constexpr int kAccumulators = kRegisters * 3 / 4;  // weight-gradient tiles: U*R of them

// Tile = R rows x NI images x NV vectors (T = NI*NV). One input load feeds R FMAs and one weight
// broadcast feeds T, so tiles span several images when a plane is only a few vectors (8x8, 16x16).
// A tile holds its R broadcast weights and streams the inputs through; where that leaves too few
// accumulators (4 rows on 16 registers: 2 vectors), it holds its T inputs instead and broadcasts
// the weights one at a time (4 rows x 3 vectors).
constexpr int broadcasts_held_tile(int rows) {
    return (kRegisters - rows - 2) / rows;
}
constexpr int inputs_held_tile(int rows) {
    return rows > 1 ? (kRegisters - 1) / (rows + 1) : 0;
}
constexpr int max_tile(int rows) {
    return std::min(12, std::max(broadcasts_held_tile(rows), inputs_held_tile(rows)));
}
constexpr int max_vectors(int rows) {
    return std::min(8, max_tile(rows));
}
constexpr int images_for(int rows, int nv) {
    return std::max(1, std::min(8, max_tile(rows) / nv));
}

// Shifted tiles keep a second set of accumulators for the shifted entries' sums.
// R rows: 2*R*T accumulators, R broadcast weights and an input.
constexpr int shifted_tile(int rows) {
    return std::min(12, (kRegisters - rows - 2) / (2 * rows));
}
constexpr int shifted_images_for(int rows, int nv) {
    return std::max(1, std::min(8, shifted_tile(rows) / nv));
}

// The share of `threads` threads' time that does work when `batch` images go out in tasks of
// `task_images` round robin: the busiest thread sets the time.
double thread_balance(int64_t batch, int64_t task_images, int threads) {
    const int64_t tasks = ceil_div(batch, task_images);
    const int64_t busiest = std::min<int64_t>(ceil_div(tasks, threads) * task_images, batch);
    return static_cast<double>(batch) / static_cast<double>(std::min<int64_t>(threads, tasks) * busiest);
}

// Picks NV for a plane of `vectors` vectors and `batch` images: the fewest computed vectors, times a
// penalty for tiles too small to hide the FMA latency and amortise the broadcasts and for a thread
// left idle by an uneven split of the batch; ties go to fewer wasted vectors, then to fewer images,
// whose staged inputs are more likely to stay in L1.
template <int R>
int choose_tile(int64_t vectors, int64_t batch) {
    const int good = std::min(max_tile(R), R == 1 ? 12 : R == 2 ? 6 : 4);
    const int threads = std::max(1, omp_get_max_threads());
    int best = 1;
    double best_eff = -1.0, best_fill = 0.0;
    for (int nv = 1; nv <= max_vectors(R); ++nv) {
        const int ni = images_for(R, nv);
        const double fill = static_cast<double>(vectors) / static_cast<double>(round_up(vectors, nv));
        const double eff = fill * thread_balance(batch, ni, threads) *
                           std::min(1.0, static_cast<double>(nv * std::min<int64_t>(ni, batch)) / good);
        if (eff > best_eff + 1e-9 || (eff > best_eff - 1e-9 && fill >= best_fill)) {
            best_eff = std::max(eff, best_eff);
            best_fill = fill;
            best = nv;
        }
    }
    return best;
}

// A batch of flat stride-1 correlations: output plane (n, row) = sum over the entries of its
// group of weight * input plane of image n shifted by the entry's offset. Groups are row blocks
// (forward) or input channels (backward-data); entry e of a group has R weights at weights + e*R.
// Each task builds the padded (or phase-split) input of its images in a per-thread buffer that
// stays in cache for all groups: the padded copy never travels to memory.
struct Correlation {
    int64_t image_floats;  // padded input of one image
    const int64_t * offsets;
    const float * weights;
    const int32_t * group_ptr;
    int64_t groups, rows, batch;
    float * out;
    int64_t out_image, out_plane;
    const StorePlan * plan;
    const float * source;  // what prepare(n) reads: source_image floats per image
    int64_t source_image;
    const float * second_source = nullptr;  // and, when it reads two tensors, the other one
    int64_t second_source_image = 0;
    // 0: a task stages one tile's images. Otherwise as many tiles' images as fit in this many
    // floats (at least one tile, at most a thread's share of the batch), for a task_done that
    // works on all of a task's staged images at once.
    int64_t task_budget_floats = 0;
    // The aligned-rows layout (correlate<..., kShifted = true>, see correlate_tile_shifted): rows of
    // this many vectors; group_ptr then holds three ranges per group, the entries of column shift
    // -1, 0 and +1.
    int64_t row_vectors = 0;
    int64_t row_width = 0;  // with row_vectors 0: rows of this many floats, several to a vector
};

// A task's staging reads its images' source from L3 or memory, and nothing overlapped those reads
// with FMAs. Each task therefore prefetches (into L2) the source of the task its thread runs next,
// a few lines per tile, so the reads are in flight while the current task computes.
struct PrefetchCursor {
    const char * next = nullptr;
    const char * end = nullptr;
    int64_t lines_per_step = 0;

    PrefetchCursor() = default;
    PrefetchCursor(const float * begin, int64_t floats, int64_t steps)
        : next(reinterpret_cast<const char *>(begin)),
          end(reinterpret_cast<const char *>(begin + floats)),
          lines_per_step(ceil_div(floats * static_cast<int64_t>(sizeof(float)), 64 * std::max<int64_t>(steps, 1))) {}

    void step() {
        for (int64_t i = 0; i < lines_per_step && next < end; ++i, next += 64) __builtin_prefetch(next, 0, 2);
    }
};

template <int R, int NI, int NV>
HWY_INLINE void correlate_tile(D d, const float * const * base, const int64_t * offsets, const float * weights,
                               int64_t entries, V (&acc)[R][NI][NV]) {
    const size_t lanes = hn::Lanes(d);
    for (int r = 0; r < R; ++r)
        for (int i = 0; i < NI; ++i)
            for (int v = 0; v < NV; ++v) acc[r][i][v] = hn::Zero(d);
    if constexpr (NI * NV > broadcasts_held_tile(R)) {
        for (int64_t e = 0; e < entries; ++e) {
            const int64_t o = offsets[e];
            V x[NI][NV];
            for (int i = 0; i < NI; ++i)
                for (int v = 0; v < NV; ++v) x[i][v] = hn::LoadU(d, base[i] + o + v * lanes);
            for (int r = 0; r < R; ++r) {
                const V wv = hn::Set(d, weights[e * R + r]);
                for (int i = 0; i < NI; ++i)
                    for (int v = 0; v < NV; ++v) acc[r][i][v] = hn::MulAdd(wv, x[i][v], acc[r][i][v]);
            }
        }
    } else {
        for (int64_t e = 0; e < entries; ++e) {
            const int64_t o = offsets[e];
            V wv[R];
            for (int r = 0; r < R; ++r) wv[r] = hn::Set(d, weights[e * R + r]);
            for (int i = 0; i < NI; ++i) {
                const float * p = base[i] + o;
                for (int v = 0; v < NV; ++v) {
                    const V x = hn::LoadU(d, p + v * lanes);
                    for (int r = 0; r < R; ++r) acc[r][i][v] = hn::MulAdd(wv[r], x, acc[r][i][v]);
                }
            }
        }
    }
}

// Whether from_previous / from_next below have an implementation on this target: x86 AVX2 and
// AVX-512, and the single-block 128-bit targets (SSE4, NEON).
#if (HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2) || (HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE && HWY_MAX_BYTES == 16)
constexpr bool kRowShift = true;
#else
constexpr bool kRowShift = false;
#endif

// Lanes k .. k + L - 1 of the 2L lanes [lo, hi] (L lanes a vector): the vector k lanes along a
// row that continues from lo into hi.
template <int k>
HWY_INLINE V lanes_across(D d, V lo, V hi) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    (void)d;
    return V{_mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(hi.raw), _mm512_castps_si512(lo.raw), k))};
#elif HWY_ARCH_X86 && HWY_TARGET == HWY_AVX2
    (void)d;
    const __m256i middle = _mm256_castps_si256(_mm256_permute2f128_ps(lo.raw, hi.raw, 0x21));  // lo's top, hi's bottom
    if constexpr (k < 4) {
        return V{_mm256_castsi256_ps(_mm256_alignr_epi8(middle, _mm256_castps_si256(lo.raw), 4 * k))};
    } else {
        return V{_mm256_castsi256_ps(_mm256_alignr_epi8(_mm256_castps_si256(hi.raw), middle, 4 * (k - 4)))};
    }
#elif HWY_TARGET != HWY_SCALAR && !HWY_HAVE_SCALABLE && HWY_MAX_BYTES == 16
    return hn::CombineShiftRightLanes<k>(d, hi, lo);
#else
    (void)d;
    (void)lo;
    return hi;  // never called: kRowShift is false
#endif
}

// Lane i of the result is lane i - 1 of cur, lane 0 the last lane of prev: a row moved one
// column right. And the other way: lane i is lane i + 1 of cur, the last lane next's first.
HWY_INLINE V from_previous(D d, V prev, V cur) {
    return lanes_across<static_cast<int>(hn::MaxLanes(D())) - 1>(d, prev, cur);
}

HWY_INLINE V from_next(D d, V cur, V next) {
    return lanes_across<1>(d, cur, next);
}

// acc += part moved one column along its rows: output x takes the sum at x - 1 (kFromLeft) or x + 1.
template <bool kFromLeft, int R, int NI, int NV>
HWY_INLINE void add_shifted(D d, const V (&part)[R][NI][NV], int64_t row_vectors, hn::Mask<D> keep,
                            V (&acc)[R][NI][NV]) {
    for (int r = 0; r < R; ++r)
        for (int i = 0; i < NI; ++i)
            for (int v = 0; v < NV; ++v) {
                const V sum = part[r][i][v];
                V moved;
                if (row_vectors == 0) {
                    moved = kFromLeft ? from_previous(d, hn::Zero(d), sum) : from_next(d, sum, hn::Zero(d));
                    moved = hn::IfThenElseZero(keep, moved);
                } else if (kFromLeft) {
                    moved = from_previous(d, v % row_vectors == 0 ? hn::Zero(d) : part[r][i][v > 0 ? v - 1 : 0], sum);
                } else {
                    const bool last = v % row_vectors == row_vectors - 1;
                    moved = from_next(d, sum, last ? hn::Zero(d) : part[r][i][v + 1 < NV ? v + 1 : v]);
                }
                acc[r][i][v] = hn::Add(acc[r][i][v], moved);
            }
}

// The aligned-rows tile of a 3x3 stride-1 pad-1 correlation over planes a whole number of
// vectors wide, staged with one zero row above and below and no padding columns. On the usual
// padded rows (w + 2 wide), two taps in three load across two cache lines, which costs the
// load port twice and made these R=1 tiles load-bound. Here every load is at whole rows from
// a plane's start, so aligned, and each column shift is applied once per tile to the sum of its
// entries, by moving the lanes of the summed vectors one column along their row (zero shifted
// in at the row's ends, where the padding was). A tile is whole rows (NV a multiple of
// row_vectors), so a row's neighbour vectors are in it. Rows shorter than a vector (row_vectors
// 0) shift inside each vector, with the lanes that start (end) a row zeroed: keep_up (keep_down).
template <int R, int NI, int NV>
HWY_INLINE void correlate_tile_shifted(D d, const float * const * base, const int64_t * offsets, const float * weights,
                                       const int32_t * ranges, int64_t row_vectors, hn::Mask<D> keep_up,
                                       hn::Mask<D> keep_down, V (&acc)[R][NI][NV]) {
    const auto sum_range = [&](int j, V(&sums)[R][NI][NV]) {
        correlate_tile<R, NI, NV>(d, base, offsets + ranges[j], weights + ranges[j] * R, ranges[j + 1] - ranges[j],
                                  sums);
    };
    sum_range(1, acc);  // no column shift
    V part[R][NI][NV];
    if (ranges[1] > ranges[0]) {  // column shift -1
        sum_range(0, part);
        add_shifted<true>(d, part, row_vectors, keep_up, acc);
    }
    if (ranges[3] > ranges[2]) {  // column shift +1
        sum_range(2, part);
        add_shifted<false>(d, part, row_vectors, keep_down, acc);
    }
}

HWY_INLINE void store_planned(D d, V v, const StorePlan & plan, int64_t k, float * plane) {
    const int32_t count = plan.count[static_cast<std::size_t>(k)];
    float * out = plane + plan.offset[static_cast<std::size_t>(k)];
    if (count == static_cast<int32_t>(hn::Lanes(d))) {
        hn::StoreU(v, d, out);
    } else if (count > 0) {
        // Gather the real lanes to the front with one permute (Compress would rebuild its lookup
        // table on the stack per call on AVX2). A full store is cheaper than a masked one; its
        // junk tail lands on lanes that the plane's next vectors (stored later by the same task)
        // overwrite. Only near the plane's end, where the tail would reach another plane, must
        // the store stop at `count`.
        const auto idx = hn::SetTableIndices(d, plan.gather.data() + k * static_cast<int64_t>(hn::Lanes(d)));
        const V packed = hn::TableLookupLanes(v, idx);
        if (plan.inside[static_cast<std::size_t>(k)]) {
            hn::StoreU(packed, d, out);
        } else {
            hn::BlendedStore(packed, hn::FirstN(d, static_cast<size_t>(count)), d, out);
        }
    }
}

// Per-thread slices of a workspace slot, each with a zeroed tail for the reads past the last plane
// (zero, not garbage: a denormal there would slow every FMA that touches it).
struct ThreadBuffers {
    float * base;
    int64_t stride;
    float * get(int thread, int64_t used) const {
        float * p = base + thread * stride;
        std::memset(p + used, 0, static_cast<std::size_t>(stride - used) * sizeof(float));
        return p;
    }
};

ThreadBuffers thread_buffers(WorkspaceSlot slot, int threads, int64_t floats) {
    const int64_t stride = round_up(floats + kSlackFloats, 16);
    float * base =
        static_cast<float *>(workspace_get(slot, static_cast<std::size_t>(stride * threads) * sizeof(float)));
    return {base, stride};
}

// The lanes of a vector of rows `width` floats wide that do not start (`ends`: end) a row; all
// lanes when width is 0.
HWY_INLINE hn::Mask<D> row_lanes(int64_t width, bool ends) {
    const D d;
    HWY_ALIGN float keep[hwy::kMaxVectorSize / sizeof(float)] = {};
    for (int64_t j = 0; j < static_cast<int64_t>(hn::Lanes(d)); ++j)
        keep[j] = width == 0 || j % width != (ends ? width - 1 : 0) ? 1.0f : 0.0f;
    return hn::Ne(hn::Load(d, keep), hn::Zero(d));
}

// Without `staged_out`, results go straight to c.out. With it, each image's results go to a
// per-thread buffer of `staged_out` floats (planes of c.out_plane) and finish(n, buffer) places them.
// After its tiles, a task calls task_done(first image, images, staged inputs).
template <int R, int NV, bool kShifted, typename Prepare, typename Finish, typename TaskDone>
void correlate(const Correlation & c, WorkspaceSlot slot, const Prepare & prepare, int64_t staged_out,
               const Finish & finish, const TaskDone & task_done) {
    constexpr int NI = kShifted ? shifted_images_for(R, NV) : images_for(R, NV);
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    const int64_t vectors = c.plan->vectors;
    int64_t tiles_per_task = 1;
    if (c.task_budget_floats > 0) {
        // The most tiles within the budget, among the counts that split the batch most evenly.
        const int max_threads = std::max(1, omp_get_max_threads());
        const int64_t most = std::clamp<int64_t>(c.task_budget_floats / (NI * c.image_floats), 1,
                                                 std::max<int64_t>(ceil_div(ceil_div(c.batch, max_threads), NI), 1));
        double best = -1.0;
        for (int64_t t = 1; t <= most; ++t) {
            const double balance = thread_balance(c.batch, NI * t, max_threads);
            if (balance >= best - 1e-9) {
                best = std::max(best, balance);
                tiles_per_task = t;
            }
        }
    }
    const int64_t task_images = NI * tiles_per_task, tasks = ceil_div(c.batch, task_images);
    const int threads = std::max(1, std::min<int>(omp_get_max_threads(), static_cast<int>(tasks)));
    const int64_t staged_floats = round_up(task_images * staged_out, 16), in_floats = task_images * c.image_floats;
    const ThreadBuffers buffers = thread_buffers(slot, threads, staged_floats + in_floats);
    const hn::Mask<D> keep_up = row_lanes(c.row_width, false), keep_down = row_lanes(c.row_width, true);
#pragma omp parallel num_threads(threads)
    {
        float * staged = buffers.get(omp_get_thread_num(), staged_floats + in_floats);
        float * local = staged + staged_floats;
        const int nt = omp_get_num_threads();
        // Static: a thread knows its next task, whose source it prefetches.
#pragma omp for schedule(static, 1)
        for (int64_t task = 0; task < tasks; ++task) {
            const int64_t t0 = task * task_images, t_images = std::min<int64_t>(task_images, c.batch - t0);
            for (int64_t i = 0; i < t_images; ++i) prepare(t0 + i, local + i * c.image_floats);
            // Reads run past the last staged image (junk lanes, never stored): keep them finite.
            if (t_images < task_images) zero_floats(local + t_images * c.image_floats, kSlackFloats);
            PrefetchCursor prefetch, prefetch_second;
            if (task + nt < tasks) {
                const int64_t next_t0 = (task + nt) * task_images;
                const int64_t next_images = std::min<int64_t>(task_images, c.batch - next_t0);
                const int64_t steps = c.groups * ceil_div(vectors, NV) * ceil_div(t_images, NI);
                if (c.source != nullptr)
                    prefetch = PrefetchCursor(c.source + next_t0 * c.source_image, next_images * c.source_image, steps);
                if (c.second_source != nullptr)
                    prefetch_second = PrefetchCursor(c.second_source + next_t0 * c.second_source_image,
                                                     next_images * c.second_source_image, steps);
            }
            for (int64_t s0 = 0; s0 < t_images; s0 += NI) {
                const int64_t images = std::min<int64_t>(NI, t_images - s0);
                for (int64_t grp = 0; grp < c.groups; ++grp) {
                    const int32_t * ranges = c.group_ptr + (kShifted ? 3 * grp : grp);
                    const int64_t begin = ranges[0], entries = ranges[kShifted ? 3 : 1] - begin;
                    const int64_t rows_valid = std::min<int64_t>(R, c.rows - grp * R);
                    const int64_t * offsets = c.offsets + begin;
                    const float * weights = c.weights + begin * R;
                    for (int64_t k0 = 0; k0 < vectors; k0 += NV) {
                        // Images past the batch repeat the last one: computed, never stored.
                        const float * base[NI];
                        for (int i = 0; i < NI; ++i)
                            base[i] = local + (s0 + std::min<int64_t>(i, images - 1)) * c.image_floats + k0 * lanes;
                        V acc[R][NI][NV];
                        prefetch.step();
                        prefetch_second.step();
                        if constexpr (kShifted) {
                            correlate_tile_shifted<R, NI, NV>(d, base, c.offsets, c.weights, ranges, c.row_vectors,
                                                              keep_up, keep_down, acc);
                        } else {
                            correlate_tile<R, NI, NV>(d, base, offsets, weights, entries, acc);
                        }
                        for (int64_t r = 0; r < rows_valid; ++r) {
                            for (int64_t i = 0; i < images; ++i) {
                                float * image = staged_out > 0 ? staged + (s0 + i) * staged_out
                                                               : c.out + (t0 + s0 + i) * c.out_image;
                                float * plane = image + (grp * R + r) * c.out_plane;
                                for (int v = 0; v < NV; ++v) store_planned(d, acc[r][i][v], *c.plan, k0 + v, plane);
                            }
                        }
                    }
                }
            }
            if (staged_out > 0)
                for (int64_t i = 0; i < t_images; ++i) finish(t0 + i, staged + i * staged_out);
            task_done(t0, t_images, local);
        }
    }
}

template <int R, typename Prepare, typename Finish, typename TaskDone>
void run_correlation(const Correlation & c, WorkspaceSlot slot, const Prepare & prepare, int64_t staged_out,
                     const Finish & finish, const TaskDone & task_done) {
    dispatch_int<1, max_vectors(R)>(choose_tile<R>(c.plan->vectors, c.batch), [&](auto nv) {
        correlate<R, decltype(nv)::value, false>(c, slot, prepare, staged_out, finish, task_done);
    });
}

// The tile of the aligned-rows forward: NV a multiple of the row's vectors (0 when none fits),
// scored as choose_tile scores.
template <int R>
int choose_shifted_tile(int64_t vectors, int64_t row_vectors, int64_t batch) {
    // One vector a tile (AVX2, four rows) is half the padded path's tile: not worth the alignment.
    if (shifted_tile(R) < 2) return 0;
    const int threads = std::max(1, omp_get_max_threads());
    int best = 0;
    double best_eff = -1.0;
    for (int nv : {1, 2, 4, 8}) {
        if (nv > shifted_tile(R) || nv % std::max<int64_t>(row_vectors, 1) != 0) continue;
        const int ni = shifted_images_for(R, nv);
        const double fill = static_cast<double>(vectors) / static_cast<double>(round_up(vectors, nv));
        const double eff = fill * thread_balance(batch, ni, threads) *
                           std::min(1.0, static_cast<double>(nv * std::min<int64_t>(ni, batch)) / shifted_tile(R));
        if (eff > best_eff + 1e-9) {
            best_eff = eff;
            best = nv;
        }
    }
    return best;
}

template <int R, typename Prepare, typename TaskDone>
void run_shifted_correlation(const Correlation & c, int nv, WorkspaceSlot slot, const Prepare & prepare,
                             const TaskDone & task_done) {
    const auto no_finish = [](int64_t, const float *) {};
    const auto run = [&](auto tile) {
        if constexpr (decltype(tile)::value <= shifted_tile(R)) {
            correlate<R, decltype(tile)::value, true>(c, slot, prepare, 0, no_finish, task_done);
        } else {
            throw std::logic_error("sparse conv: shifted tile of " + std::to_string(nv) + " vectors does not fit");
        }
    };
    // The tiles choose_shifted_tile picks from.
    switch (nv) {
        case 1:
            return run(std::integral_constant<int, 1>{});
        case 2:
            return run(std::integral_constant<int, 2>{});
        case 4:
            return run(std::integral_constant<int, 4>{});
        case 8:
            return run(std::integral_constant<int, 8>{});
        default:
            throw std::logic_error("sparse conv: no shifted tile of " + std::to_string(nv) + " vectors");
    }
}

template <int R, typename Prepare, typename Finish>
void run_correlation(const Correlation & c, WorkspaceSlot slot, const Prepare & prepare, int64_t staged_out,
                     const Finish & finish) {
    run_correlation<R>(c, slot, prepare, staged_out, finish, [](int64_t, int64_t, const float *) {});
}

template <int R, typename Prepare>
void run_correlation(const Correlation & c, WorkspaceSlot slot, const Prepare & prepare) {
    run_correlation<R>(c, slot, prepare, 0, [](int64_t, const float *) {});
}

std::vector<int64_t> unit_offsets(const ConvGeometry & g, const BlockSparseView & w, const PhaseGeometry & pg) {
    const int64_t taps = g.kernel_h * g.kernel_w, units = w.block_ptr[w.num_blocks()];
    std::vector<int64_t> offsets(static_cast<std::size_t>(units));
    for (int64_t u = 0; u < units; ++u) {
        const int64_t col = w.col_idx[u], ic = col / taps, t = col % taps;
        offsets[static_cast<std::size_t>(u)] = ic * pg.channel_stride() + pg.tap_offset(t / g.kernel_w, t % g.kernel_w);
    }
    return offsets;
}

// Each image's planes summed while its outputs are in cache: BN's statistics without a pass of
// their own.
void sum_output_planes(const float * dst, int64_t n0, int64_t images, int64_t planes, int64_t plane,
                       double * plane_sums) {
    if (plane_sums == nullptr) return;
    for (int64_t p = n0 * planes; p < (n0 + images) * planes; ++p) {
        plane_sums[2 * p] = plane_sums[2 * p + 1] = 0.0;
        kernels::plane_sums(dst + p * plane, plane, plane_sums + 2 * p);
    }
}

// 3x3 stride 1 pad 1 over rows of whole vectors or several rows to a vector, on a target with the
// lane shifts.
bool aligned_rows_apply(const ConvGeometry & g) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    return kRowShift && lanes > 1 && g.stride == 1 && g.pad == 1 && g.kernel_h == 3 && g.kernel_w == 3 &&
           (g.in_width % lanes == 0 || lanes % g.in_width == 0);
}

// Rows of whole vectors: how many each (0: rows shorter than a vector, several to one).
int64_t aligned_row_vectors(const ConvGeometry & g) {
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    return g.in_width % lanes == 0 ? g.in_width / lanes : 0;
}

// Where the aligned-rows backward pays. On a Zen 3 (AVX2) it lost to the padded backward wherever
// a row is several vectors (6-18% a layer at 32 and 16 wide, every scheme, measured side by side
// in one process) and won only at 8 wide, one vector a row: there the three staged input copies
// and the smaller shifted tiles cost more than the unaligned loads they avoid, which Zen 3 takes
// nearly at full speed. On a Xeon (AVX-512) it won at every width it applies to.
#if HWY_TARGET == HWY_AVX2
constexpr bool kAlignedBackwardOneVectorRowsOnly = true;
#else
constexpr bool kAlignedBackwardOneVectorRowsOnly = false;
#endif

// The forward of correlate_tile_shifted, where it applies (3x3 stride 1 pad 1, rows of whole vectors
// or several rows to a vector, and a tile that holds whole rows); false where it does not.
template <int R>
bool forward_aligned_rows(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                          float * dst, const InputTransform * transform, double * plane_sums) {
    if (!aligned_rows_apply(g)) return false;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    const int64_t h = g.in_height, wd = g.in_width, plane = (h + 2) * wd, row_vectors = aligned_row_vectors(g);
    const int nv = choose_shifted_tile<R>(ceil_div(h * wd, lanes), row_vectors, g.batch);
    if (nv == 0) return false;
    // The entries of each block in three ranges by column shift, each at its aligned offset.
    const int64_t blocks = w.num_blocks(), taps = 9;
    std::vector<int32_t> ranges(static_cast<std::size_t>(3 * blocks + 1));
    std::vector<int64_t> offsets;
    std::vector<float> weights;
    offsets.reserve(static_cast<std::size_t>(w.block_ptr[blocks]));
    weights.reserve(offsets.capacity() * R);
    for (int64_t b = 0; b < blocks; ++b) {
        for (int64_t kx = 0; kx < 3; ++kx) {
            ranges[static_cast<std::size_t>(3 * b + kx)] = static_cast<int32_t>(offsets.size());
            for (int64_t u = w.block_ptr[b]; u < w.block_ptr[b + 1]; ++u) {
                const int64_t col = w.col_idx[u], t = col % taps;
                if (t % 3 != kx) continue;
                offsets.push_back(col / taps * plane + t / 3 * wd);
                weights.insert(weights.end(), values + u * R, values + (u + 1) * R);
            }
        }
    }
    ranges[static_cast<std::size_t>(3 * blocks)] = static_cast<int32_t>(offsets.size());
    const StorePlan store = make_store_plan(h, wd, wd, lanes, max_vectors(1));
    Correlation c{g.in_channels * plane,
                  offsets.data(),
                  weights.data(),
                  ranges.data(),
                  blocks,
                  w.rows,
                  g.batch,
                  dst,
                  g.out_channels * h * wd,
                  h * wd,
                  &store,
                  src,
                  g.in_channels * h * wd};
    c.row_vectors = row_vectors;
    c.row_width = wd;
    const int64_t image_src = g.in_channels * h * wd;
    const auto prepare = [&](int64_t n, float * out) {
        for (int64_t p = 0; p < g.in_channels; ++p)
            stage_plane(src + n * image_src + p * h * wd, h, wd, row_stager(transform, p), wd, wd, plane,
                        out + p * plane);
    };
    const auto sum_planes = [&](int64_t n0, int64_t images, const float *) {
        sum_output_planes(dst, n0, images, g.out_channels, h * wd, plane_sums);
    };
    run_shifted_correlation<R>(c, nv, WorkspaceSlot::kStagingA, prepare, sum_planes);
    return true;
}

void SparseForward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                   float * dst, const InputTransform * transform, double * plane_sums) {
    const int64_t R = w.block_rows;
    if (R != 1 && R != 2 && R != 4) {
        sparse_conv2d_forward_reference(g, w, values, src, dst, transform, plane_sums);
        return;
    }
    const auto aligned = R == 1 ? forward_aligned_rows<1> : R == 2 ? forward_aligned_rows<2> : forward_aligned_rows<4>;
    if (aligned(g, w, values, src, dst, transform, plane_sums)) return;
    const PhaseGeometry pg = phase_geometry(g.in_height, g.in_width, g.pad, g.stride);
    const std::vector<int64_t> offsets = unit_offsets(g, w, pg);
    const int64_t ho = g.out_height(), wo = g.out_width();
    const StorePlan plan = make_store_plan(ho, wo, pg.wph, static_cast<int64_t>(hn::Lanes(D())), max_vectors(1));
    const Correlation c{g.in_channels * pg.channel_stride(),
                        offsets.data(),
                        values,
                        w.block_ptr,
                        w.num_blocks(),
                        w.rows,
                        g.batch,
                        dst,
                        g.out_channels * ho * wo,
                        ho * wo,
                        &plan,
                        src,
                        g.in_channels * g.in_height * g.in_width};
    const int64_t image_src = g.in_channels * g.in_height * g.in_width;
    const auto prepare = [&](int64_t n, float * out) {
        phase_image(src + n * image_src, g.in_channels, g.in_height, g.in_width, g.pad, pg, transform, out);
    };
    const int64_t out_plane = ho * wo;
    const auto sum_planes = [&](int64_t n0, int64_t images, const float *) {
        sum_output_planes(dst, n0, images, g.out_channels, out_plane, plane_sums);
    };
    const auto no_finish = [](int64_t, const float *) {};
    if (R == 1) {
        run_correlation<1>(c, WorkspaceSlot::kStagingA, prepare, 0, no_finish, sum_planes);
    } else if (R == 2) {
        run_correlation<2>(c, WorkspaceSlot::kStagingA, prepare, 0, no_finish, sum_planes);
    } else {
        run_correlation<4>(c, WorkspaceSlot::kStagingA, prepare, 0, no_finish, sum_planes);
    }
}

// The stride-1 backward-data entries, grouped by input channel: each reads its output channel's
// gradient plane (planes `plane` apart, rows `pitch` wide, the padded plane starting `lead` floats
// in) at the flipped tap's shift.
void transposed_entries(const ConvGeometry & g, const BlockSparseView & w, const float * values, int64_t plane,
                        int64_t lead, int64_t pitch, std::vector<int64_t> & offsets, std::vector<float> & weights,
                        std::vector<int32_t> & group_ptr) {
    const int64_t taps = g.kernel_h * g.kernel_w, k1 = g.kernel_h - 1;
    for (int64_t c = 0; c < w.cols; ++c) {
        const int64_t ky = (c % taps) / g.kernel_w, kx = c % g.kernel_w;
        for (int64_t e = w.col_ptr[c]; e < w.col_ptr[c + 1]; ++e) {
            offsets[static_cast<std::size_t>(e)] = w.col_row[e] * plane + lead + (k1 - ky) * pitch + (k1 - kx);
            weights[static_cast<std::size_t>(e)] = values[w.col_value[e]];
        }
    }
    group_ptr.resize(static_cast<std::size_t>(g.in_channels + 1));
    for (int64_t ic = 0; ic <= g.in_channels; ++ic) group_ptr[static_cast<std::size_t>(ic)] = w.col_ptr[ic * taps];
}

// dX is the transposed convolution: dX = sum over taps of the flipped weight times dy shifted.
// Stride 1: the correlation of dy padded by k-1-p with the flipped transposed weight, the forward
// loop with one row per input channel over the transposed view. Stride s > 1: each phase (a, b)
// of the padded dX only meets taps with ky % s == a, kx % s == b, a stride-1 correlation of dy
// padded by (k-1)/s over those taps; computing the phases separately (then interleaving them)
// skips the (s*s-1)/(s*s) zeros a dilated gradient would feed the FMAs.
void SparseBackwardData(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * diff_dst,
                        float * diff_src) {
    const int64_t q = g.kernel_h - 1 - g.pad;
    if (g.kernel_h != g.kernel_w || q < 0) {
        sparse_conv2d_backward_data_reference(g, w, values, diff_dst, diff_src);
        return;
    }
    const int64_t s = g.stride, taps = g.kernel_h * g.kernel_w;
    const int64_t ho = g.out_height(), wo = g.out_width(), image_dy = g.out_channels * ho * wo;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    const int64_t entries = w.col_ptr[w.cols];
    std::vector<int64_t> offsets(static_cast<std::size_t>(entries));
    std::vector<float> weights(static_cast<std::size_t>(entries));
    if (s == 1) {
        const int64_t hu = g.in_height + g.kernel_h - 1, wu = g.in_width + g.kernel_w - 1;
        const int64_t plane = hu * wu;
        std::vector<int32_t> group_ptr;
        transposed_entries(g, w, values, plane, 0, wu, offsets, weights, group_ptr);
        const StorePlan plan = make_store_plan(g.in_height, g.in_width, wu, lanes, max_vectors(1));
        const Correlation c{g.out_channels * plane,
                            offsets.data(),
                            weights.data(),
                            group_ptr.data(),
                            g.in_channels,
                            g.in_channels,
                            g.batch,
                            diff_src,
                            g.in_channels * g.in_height * g.in_width,
                            g.in_height * g.in_width,
                            &plan,
                            diff_dst,
                            image_dy};
        run_correlation<1>(c, WorkspaceSlot::kStagingC, [&](int64_t n, float * out) {
            pad_image(diff_dst + n * image_dy, g.out_channels, ho, wo, q, hu, wu, out);
        });
        return;
    }
    const PhaseGeometry pg = phase_geometry(g.in_height, g.in_width, g.pad, s);
    const int64_t j_max = (g.kernel_h - 1) / s, hd = pg.hph + j_max, wd = pg.wph + j_max, plane = hd * wd;
    const int64_t groups = g.in_channels * s * s;
    // Entries grouped by (input channel, phase), in column order within a group.
    std::vector<int32_t> group_ptr(static_cast<std::size_t>(groups + 1), 0);
    const auto group_of = [&](int64_t c) {
        const int64_t t = c % taps;
        return ((c / taps) * s + (t / g.kernel_w) % s) * s + (t % g.kernel_w) % s;
    };
    for (int64_t c = 0; c < w.cols; ++c)
        group_ptr[static_cast<std::size_t>(group_of(c) + 1)] += w.col_ptr[c + 1] - w.col_ptr[c];
    for (int64_t grp = 0; grp < groups; ++grp)
        group_ptr[static_cast<std::size_t>(grp + 1)] += group_ptr[static_cast<std::size_t>(grp)];
    std::vector<int32_t> fill(group_ptr.begin(), group_ptr.end() - 1);
    for (int64_t c = 0; c < w.cols; ++c) {
        const int64_t t = c % taps, ky = t / g.kernel_w, kx = t % g.kernel_w;
        const int64_t shift = (j_max - ky / s) * wd + (j_max - kx / s);
        for (int64_t e = w.col_ptr[c]; e < w.col_ptr[c + 1]; ++e) {
            const auto k = static_cast<std::size_t>(fill[static_cast<std::size_t>(group_of(c))]++);
            offsets[k] = w.col_row[e] * plane + shift;
            weights[k] = values[w.col_value[e]];
        }
    }
    const StorePlan plan = make_store_plan(pg.hph, pg.wph, wd, lanes, max_vectors(1));
    const Correlation c{g.out_channels * plane,
                        offsets.data(),
                        weights.data(),
                        group_ptr.data(),
                        groups,
                        groups,
                        g.batch,
                        diff_src,
                        0,
                        pg.pp,
                        &plan,
                        diff_dst,
                        image_dy};
    const int64_t image_dx = g.in_channels * g.in_height * g.in_width;
    run_correlation<1>(
        c, WorkspaceSlot::kStagingC,
        [&](int64_t n, float * out) { pad_image(diff_dst + n * image_dy, g.out_channels, ho, wo, j_max, hd, wd, out); },
        g.in_channels * pg.channel_stride(),
        [&](int64_t n, const float * phases) {
            unphase_image(phases, g.in_channels, g.in_height, g.in_width, g.pad, pg, diff_src + n * image_dx);
        });
}

// With the gradient spread onto the phase planes' rows (zeros elsewhere), each non-zero's gradient
// is one flat dot product over the plane, all vectors full, for any stride. Each thread owns a
// fixed range of images, staged a chunk at a time into its buffer; per chunk, a tile of U units of
// one block loads the R gradient rows once for U units, and is reduced once per chunk into the
// thread's gradient copy. The copies are summed in thread order: deterministic per thread count.
// The gradient rows of one image are dy_plane apart and dot_length long (both multiples of the
// vector length, the rows aligned).
template <int R, int U>
void weight_grads_chunk(const BlockSparseView & w, const float * in, int64_t in_image, const int64_t * offsets,
                        const float * dy_wide, int64_t dy_image, int64_t dy_plane, int64_t dot_length, int64_t images,
                        float * grads) {
    const D d;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(d));
    for (int64_t b = 0; b < w.num_blocks(); ++b) {
        const int64_t rows_valid = std::min<int64_t>(R, w.rows - b * R);
        const int64_t u_end = w.block_ptr[b + 1];
        for (int64_t u0 = w.block_ptr[b]; u0 < u_end; u0 += U) {
            const int64_t nu = std::min<int64_t>(U, u_end - u0);
            V acc[U][R];
            for (int j = 0; j < U; ++j)
                for (int r = 0; r < R; ++r) acc[j][r] = hn::Zero(d);
            for (int64_t n = 0; n < images; ++n) {
                const float * dy[R];
                for (int r = 0; r < R; ++r)
                    dy[r] = dy_wide + n * dy_image + (b * R + std::min<int64_t>(r, rows_valid - 1)) * dy_plane;
                const float * x[U];
                for (int j = 0; j < U; ++j) x[j] = in + n * in_image + offsets[u0 + std::min<int64_t>(j, nu - 1)];
                for (int64_t i = 0; i < dot_length; i += lanes) {
                    V dv[R];
                    for (int r = 0; r < R; ++r) dv[r] = hn::Load(d, dy[r] + i);
                    for (int j = 0; j < U; ++j) {
                        const V xv = hn::LoadU(d, x[j] + i);
                        for (int r = 0; r < R; ++r) acc[j][r] = hn::MulAdd(dv[r], xv, acc[j][r]);
                    }
                }
            }
            for (int64_t j = 0; j < nu; ++j)
                for (int r = 0; r < rows_valid; ++r)
                    grads[(u0 + j) * R + r] += hn::GetLane(hn::SumOfLanes(d, acc[j][r]));
        }
    }
}

// weight_grads_chunk with the unit tile that fits the register file for the block's rows (1, 2 or 4).
void weight_grads(const BlockSparseView & w, const float * in, int64_t in_image, const int64_t * offsets,
                  const float * dy_wide, int64_t dy_image, int64_t dy_plane, int64_t dot_length, int64_t images,
                  float * grads) {
    if (w.block_rows == 1) {
        weight_grads_chunk<1, 8>(w, in, in_image, offsets, dy_wide, dy_image, dy_plane, dot_length, images, grads);
    } else if (w.block_rows == 2) {
        weight_grads_chunk<2, kAccumulators / 4>(w, in, in_image, offsets, dy_wide, dy_image, dy_plane, dot_length,
                                                 images, grads);
    } else {
        weight_grads_chunk<4, kAccumulators / 6>(w, in, in_image, offsets, dy_wide, dy_image, dy_plane, dot_length,
                                                 images, grads);
    }
}

// out[i] = the threads' partial gradients [threads, nnz] summed in thread order (deterministic for a
// given thread count).
void sum_thread_partials(const Buffer<float> & partial, int64_t nnz, int threads, float * out) {
    for (int64_t i = 0; i < nnz; ++i) {
        float s = 0.0f;
        for (int t = 0; t < threads; ++t) s += partial[static_cast<std::size_t>(t * nnz + i)];
        out[i] = s;
    }
}

void SparseBackwardWeights(const ConvGeometry & g, const BlockSparseView & w, const float * src, const float * diff_dst,
                           float * diff_values, const InputTransform * transform) {
    const int64_t R = w.block_rows;
    if (R != 1 && R != 2 && R != 4) {
        sparse_conv2d_backward_weights_reference(g, w, src, diff_dst, diff_values, transform);
        return;
    }
    const PhaseGeometry pg = phase_geometry(g.in_height, g.in_width, g.pad, g.stride);
    const std::vector<int64_t> offsets = unit_offsets(g, w, pg);
    const int64_t nnz = static_cast<int64_t>(w.block_ptr[w.num_blocks()]) * R;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    const int64_t ho = g.out_height(), wo = g.out_width();
    const int64_t dy_stride = round_up(ho * pg.wph, lanes);
    const int64_t in_image = g.in_channels * pg.channel_stride(), dy_image = g.out_channels * dy_stride;
    // Chunks sized to stay in L2 while every block reads them.
    const int64_t chunk =
        std::clamp<int64_t>((int64_t{1} << 17) / std::max<int64_t>(round_up(in_image, 16) + dy_image, 1), 1, g.batch);
    // A dot product reads up to dy_stride floats past its tap: past the last staged image too.
    const int64_t in_floats = round_up(chunk * in_image + dy_stride + kSlackFloats, 16);
    const int threads = std::max(1, std::min<int>(omp_get_max_threads(), static_cast<int>(g.batch)));
    const ThreadBuffers buffers = thread_buffers(WorkspaceSlot::kStagingA, threads, in_floats + chunk * dy_image);
    Buffer<float> partial(static_cast<std::size_t>(nnz * threads), MemCategory::kWorkspace, true);
    const int64_t image_src = g.in_channels * g.in_height * g.in_width, image_dst = g.out_channels * ho * wo;
#pragma omp parallel num_threads(threads)
    {
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t n_begin = g.batch * t / nt, n_end = g.batch * (t + 1) / nt;
        float * local = buffers.get(t, in_floats + chunk * dy_image);
        float * mine = partial.data() + nnz * t;
        for (int64_t n0 = n_begin; n0 < n_end; n0 += chunk) {
            const int64_t images = std::min(chunk, n_end - n0);
            for (int64_t i = 0; i < images; ++i) {
                phase_image(src + (n0 + i) * image_src, g.in_channels, g.in_height, g.in_width, g.pad, pg, transform,
                            local + i * in_image);
                widen_image(diff_dst + (n0 + i) * image_dst, g.out_channels, ho, wo, pg.wph, dy_stride,
                            local + in_floats + i * dy_image);
            }
            // What the last image's reads run into (junk lanes, met by zero gradients) must be
            // finite: zero it rather than leave an earlier chunk's data or uninitialised memory.
            std::memset(local + images * in_image, 0,
                        static_cast<std::size_t>(in_floats - images * in_image) * sizeof(float));
            weight_grads(w, local, in_image, offsets.data(), local + in_floats, dy_image, dy_stride, dy_stride, images,
                         mine);
        }
    }
    sum_thread_partials(partial, nnz, threads, diff_values);
}

// Both gradients of a layer of 1, 2 or 4 rows per block where aligned_rows_apply holds, from one staging per task: dy
// in aligned rows (one zero row above and below) and the input as three column-shifted copies.
// Backward-data is the aligned-rows correlation of dy with the flipped taps; backward-weights dots
// dy's rows with the copies, every load of both aligned.
bool backward_aligned_rows(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                           const float * diff_dst, float * diff_src, float * diff_values,
                           const InputTransform * transform) {
    const int64_t R = w.block_rows;
    if ((R != 1 && R != 2 && R != 4) || !aligned_rows_apply(g)) return false;
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    const int64_t h = g.in_height, wd = g.in_width, plane = (h + 2) * wd, row_vectors = aligned_row_vectors(g);
    if (kAlignedBackwardOneVectorRowsOnly && row_vectors != 1) return false;
    const int nv = choose_shifted_tile<1>(ceil_div(h * wd, lanes), row_vectors, g.batch);
    if (nv == 0) return false;
    // dy's planes: `lead` zeros first so that the first real row is aligned for backward-weights'
    // loads (rows shorter than a vector), then the zero row, the rows and the zero row.
    const int64_t lead = (lanes - wd % lanes) % lanes, dy_plane = round_up(lead + plane, lanes);
    const int64_t dot_length = round_up(h * wd, lanes);
    const int64_t dy_floats = g.out_channels * dy_plane, x_floats = 3 * g.in_channels * plane;
    const int64_t image_floats = round_up(dy_floats + x_floats, 16);

    // Backward-data entries by input channel, in three ranges by the flipped tap's column.
    std::vector<int32_t> ranges(static_cast<std::size_t>(3 * g.in_channels + 1));
    std::vector<int64_t> offsets;
    std::vector<float> weights;
    offsets.reserve(static_cast<std::size_t>(w.col_ptr[w.cols]));
    weights.reserve(offsets.capacity());
    for (int64_t ic = 0; ic < g.in_channels; ++ic) {
        for (int64_t flipped_kx = 0; flipped_kx < 3; ++flipped_kx) {
            ranges[static_cast<std::size_t>(3 * ic + flipped_kx)] = static_cast<int32_t>(offsets.size());
            for (int64_t ky = 0; ky < 3; ++ky) {
                const int64_t col = ic * 9 + ky * 3 + (2 - flipped_kx);
                for (int64_t e = w.col_ptr[col]; e < w.col_ptr[col + 1]; ++e) {
                    offsets.push_back(w.col_row[e] * dy_plane + lead + (2 - ky) * wd);
                    weights.push_back(values[w.col_value[e]]);
                }
            }
        }
    }
    ranges[static_cast<std::size_t>(3 * g.in_channels)] = static_cast<int32_t>(offsets.size());
    // Backward-weights: unit (oc, ic, ky, kx) dots dy's rows with copy kx of channel ic, ky rows in.
    const int64_t units = w.block_ptr[w.num_blocks()];
    std::vector<int64_t> unit_offset(static_cast<std::size_t>(units));
    for (int64_t u = 0; u < units; ++u) {
        const int64_t col = w.col_idx[u], ic = col / 9, t = col % 9;
        unit_offset[static_cast<std::size_t>(u)] = dy_floats + (ic * 3 + t % 3) * plane + t / 3 * wd;
    }

    const StorePlan store = make_store_plan(h, wd, wd, lanes, max_vectors(1));
    const int64_t image_dy = g.out_channels * h * wd, image_src = g.in_channels * h * wd;
    Correlation c{image_floats, offsets.data(), weights.data(), ranges.data(), g.in_channels, g.in_channels, g.batch,
                  diff_src,     image_src,      h * wd,         &store,        diff_dst,      image_dy};
    c.task_budget_floats = int64_t{1} << 17;  // a task's staged images stay in L2 for both passes
    c.second_source = src;
    c.second_source_image = image_src;
    c.row_vectors = row_vectors;
    c.row_width = wd;

    const int slots = std::max(1, omp_get_max_threads());
    const int64_t nnz = units * R;
    Buffer<float> partial(static_cast<std::size_t>(nnz * slots), MemCategory::kWorkspace, true);
    const RowStager identity = row_stager(nullptr, 0);
    const auto prepare = [&](int64_t n, float * out) {
        const float * dy = diff_dst + n * image_dy;
        for (int64_t oc = 0; oc < g.out_channels; ++oc)
            stage_plane(dy + oc * h * wd, h, wd, identity, lead + wd, wd, dy_plane, out + oc * dy_plane);
        shifted_copies_image(src + n * image_src, g.in_channels, h, wd, transform, out + dy_floats);
        zero_floats(out + dy_floats + x_floats, image_floats - dy_floats - x_floats);
    };
    const auto grads = [&](int64_t, int64_t images, const float * local) {
        float * mine = partial.data() + nnz * omp_get_thread_num();
        weight_grads(w, local, image_floats, unit_offset.data(), local + lead + wd, image_floats, dy_plane, dot_length,
                     images, mine);
    };
    run_shifted_correlation<1>(c, nv, WorkspaceSlot::kStagingC, prepare, grads);
    sum_thread_partials(partial, nnz, slots, diff_values);
    return true;
}

// Both gradients of a stride-1 "same" convolution (pad = k-1-pad) in one pass over the batch. Its
// zero-padded gradient is both what backward-data correlates over and, one padded row and column in,
// the widened rows backward-weights dots with: each task stages dy (and its transformed input) once,
// computes dX from it, then the weight gradients of its images from the same staged planes.
// Where aligned_rows_apply holds, backward_aligned_rows does the same on the aligned-rows layout;
// for other geometries the two kernels run one after the other.
void SparseBackward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                    const float * diff_dst, float * diff_src, float * diff_values, const InputTransform * transform) {
    if (backward_aligned_rows(g, w, values, src, diff_dst, diff_src, diff_values, transform)) return;
    const int64_t R = w.block_rows, pad = g.pad;
    if (g.stride != 1 || g.kernel_h != g.kernel_w || g.kernel_h - 1 - pad != pad || (R != 1 && R != 2 && R != 4)) {
        SparseBackwardWeights(g, w, src, diff_dst, diff_values, transform);
        SparseBackwardData(g, w, values, diff_dst, diff_src);
        return;
    }
    const int64_t lanes = static_cast<int64_t>(hn::Lanes(D()));
    const PhaseGeometry pg = phase_geometry(g.in_height, g.in_width, pad, 1);
    const int64_t pitch = pg.wph, h = g.in_height, wd = g.in_width;
    // Each gradient plane: padded rows of `pitch`, the first real value aligned (backward-weights
    // loads its rows aligned), and zeros past the last real row for the dot products' last vector.
    const int64_t first_real = pad * pitch + pad, lead = (lanes - first_real % lanes) % lanes;
    const int64_t dot_length = round_up(h * pitch, lanes);
    const int64_t dy_plane = round_up(std::max(lead + pg.pp, lead + first_real + dot_length), lanes);
    const int64_t dy_floats = g.out_channels * dy_plane, x_floats = g.in_channels * pg.pp;
    const int64_t image_floats = round_up(dy_floats + x_floats, 16);

    std::vector<int64_t> offsets(static_cast<std::size_t>(w.col_ptr[w.cols]));
    std::vector<float> weights(offsets.size());
    std::vector<int32_t> group_ptr;
    transposed_entries(g, w, values, dy_plane, lead, pitch, offsets, weights, group_ptr);
    std::vector<int64_t> unit_offset = unit_offsets(g, w, pg);
    for (auto & o : unit_offset) o += dy_floats;  // the input follows the gradient in a staged image

    const StorePlan plan = make_store_plan(h, wd, pitch, lanes, max_vectors(1));
    const int64_t image_dy = g.out_channels * h * wd, image_src = g.in_channels * h * wd;
    Correlation c{image_floats,  offsets.data(), weights.data(), group_ptr.data(), g.in_channels,
                  g.in_channels, g.batch,        diff_src,       image_src,        h * wd,
                  &plan,         diff_dst,       image_dy};
    c.task_budget_floats = int64_t{1} << 17;  // a task's staged images stay in L2 for both passes
    c.second_source = src;
    c.second_source_image = image_src;

    const int64_t nnz = static_cast<int64_t>(w.block_ptr[w.num_blocks()]) * R;
    const int slots = std::max(1, omp_get_max_threads());
    Buffer<float> partial(static_cast<std::size_t>(nnz * slots), MemCategory::kWorkspace, true);
    const RowStager identity = row_stager(nullptr, 0);
    run_correlation<1>(
        c, WorkspaceSlot::kStagingC,
        [&](int64_t n, float * out) {
            const float * dy = diff_dst + n * image_dy;
            for (int64_t oc = 0; oc < g.out_channels; ++oc)
                stage_plane(dy + oc * h * wd, h, wd, identity, lead + first_real, pitch, dy_plane, out + oc * dy_plane);
            phase_image(src + n * image_src, g.in_channels, h, wd, pad, pg, transform, out + dy_floats);
            zero_floats(out + dy_floats + x_floats, image_floats - dy_floats - x_floats);
        },
        0, [](int64_t, const float *) {},
        [&](int64_t, int64_t images, const float * local) {
            float * mine = partial.data() + nnz * omp_get_thread_num();
            weight_grads(w, local, image_floats, unit_offset.data(), local + lead + first_real, image_floats, dy_plane,
                         dot_length, images, mine);
        });
    sum_thread_partials(partial, nnz, slots, diff_values);
}

}  // namespace HWY_NAMESPACE
}  // namespace mest::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace mest::kernels {

HWY_EXPORT(SparseForward);
HWY_EXPORT(SparseBackwardData);
HWY_EXPORT(SparseBackwardWeights);
HWY_EXPORT(SparseBackward);

void sparse_conv2d_forward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                           float * dst, const InputTransform * transform, double * plane_sums) {
    HWY_DYNAMIC_DISPATCH(SparseForward)(g, w, values, src, dst, transform, plane_sums);
}
void sparse_conv2d_backward_data(const ConvGeometry & g, const BlockSparseView & w, const float * values,
                                 const float * diff_dst, float * diff_src) {
    HWY_DYNAMIC_DISPATCH(SparseBackwardData)(g, w, values, diff_dst, diff_src);
}
void sparse_conv2d_backward_weights(const ConvGeometry & g, const BlockSparseView & w, const float * src,
                                    const float * diff_dst, float * diff_values, const InputTransform * transform) {
    HWY_DYNAMIC_DISPATCH(SparseBackwardWeights)(g, w, src, diff_dst, diff_values, transform);
}
void sparse_conv2d_backward(const ConvGeometry & g, const BlockSparseView & w, const float * values, const float * src,
                            const float * diff_dst, float * diff_src, float * diff_values,
                            const InputTransform * transform) {
    HWY_DYNAMIC_DISPATCH(SparseBackward)(g, w, values, src, diff_dst, diff_src, diff_values, transform);
}

}  // namespace mest::kernels
#endif
