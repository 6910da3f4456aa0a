#include "kernels/conv_dnnl.h"

#include <dnnl.hpp>
#include <unordered_map>

#include "core/workspace.h"
#include "kernels/dnnl_context.h"

namespace mest::kernels {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

namespace {

// A tensor in the user's layout plus, when oneDNN wants another layout, a staging copy in that
// layout. Staging buffers are allocated once per layer and counted as workspace.
struct Staged {
    memory::desc user_md;
    memory::desc prim_md;
    WorkspaceSlot slot = WorkspaceSlot::kStagingA;

    void init(const memory::desc & user, const memory::desc & prim, WorkspaceSlot staging_slot) {
        user_md = user;
        prim_md = prim;
        slot = staging_slot;
    }
    void * staging() { return workspace_get(slot, prim_md.get_size()); }
    bool needs_reorder() const { return user_md != prim_md; }
    // Memory object oneDNN should read: the user pointer, or the staging buffer after a reorder.
    memory input(const void * user_ptr) {
        auto & eng = dnnl_engine();
        memory user(user_md, eng, const_cast<void *>(user_ptr));
        if (!needs_reorder()) return user;
        memory prim(prim_md, eng, staging());
        dnnl::reorder(user, prim).execute(dnnl_stream(), user, prim);
        return prim;
    }
    memory output_target(void * user_ptr) {
        if (!needs_reorder()) return memory(user_md, dnnl_engine(), user_ptr);
        return memory(prim_md, dnnl_engine(), staging());
    }
    void finish_output(memory & prim, void * user_ptr) {
        if (!needs_reorder()) return;
        memory user(user_md, dnnl_engine(), user_ptr);
        dnnl::reorder(prim, user).execute(dnnl_stream(), prim, user);
    }
};

void * scratchpad(const memory::desc & md) {
    return workspace_get(WorkspaceSlot::kScratchpad, md.get_size());
}

}  // namespace

struct DnnlConv2d::Impl {
    ConvGeometry g;
    bool has_bias;
    memory::dims strides, padding;

    dnnl::convolution_forward fwd;
    dnnl::convolution_backward_data bwd_data;
    dnnl::convolution_backward_weights bwd_weights;

    Staged fwd_src, fwd_weights, fwd_dst;
    Staged bd_diff_dst, bd_weights, bd_diff_src;
    Staged bw_src, bw_diff_dst, bw_diff_weights;
    memory::desc bias_md;
    memory::desc fwd_scratch_md, bd_scratch_md, bw_scratch_md;
};

DnnlConv2d::DnnlConv2d(const ConvGeometry & g, bool has_bias) : impl_(std::make_unique<Impl>()) {
    auto & im = *impl_;
    im.g = g;
    im.has_bias = has_bias;
    auto & eng = dnnl_engine();
    const memory::dims src_dims{g.batch, g.in_channels, g.in_height, g.in_width};
    const memory::dims w_dims{g.out_channels, g.in_channels, g.kernel_h, g.kernel_w};
    const memory::dims dst_dims{g.batch, g.out_channels, g.out_height(), g.out_width()};
    const memory::dims b_dims{g.out_channels};
    im.strides = {g.stride, g.stride};
    im.padding = {g.pad, g.pad};

    const memory::desc src_any(src_dims, dt::f32, tag::any), w_any(w_dims, dt::f32, tag::any),
        dst_any(dst_dims, dt::f32, tag::any);
    const memory::desc src_user(src_dims, dt::f32, tag::nchw), w_user(w_dims, dt::f32, tag::oihw),
        dst_user(dst_dims, dt::f32, tag::nchw);
    im.bias_md = memory::desc(b_dims, dt::f32, tag::x);
    const memory::desc no_bias;

    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);

    auto fwd_desc = dnnl::convolution_forward::desc(
        dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, src_any, w_any,
        has_bias ? im.bias_md : no_bias, dst_any, im.strides, im.padding, im.padding);
    auto fwd_pd = dnnl::convolution_forward::primitive_desc(fwd_desc, attr, eng);
    im.fwd = dnnl::convolution_forward(fwd_pd);
    im.fwd_src.init(src_user, fwd_pd.src_desc(), WorkspaceSlot::kStagingA);
    im.fwd_weights.init(w_user, fwd_pd.weights_desc(), WorkspaceSlot::kStagingB);
    im.fwd_dst.init(dst_user, fwd_pd.dst_desc(), WorkspaceSlot::kStagingC);
    im.fwd_scratch_md = fwd_pd.scratchpad_desc();

    auto bd_desc = dnnl::convolution_backward_data::desc(dnnl::algorithm::convolution_direct, src_any, w_any, dst_any,
                                                         im.strides, im.padding, im.padding);
    auto bd_pd = dnnl::convolution_backward_data::primitive_desc(bd_desc, attr, eng, fwd_pd);
    im.bwd_data = dnnl::convolution_backward_data(bd_pd);
    im.bd_diff_dst.init(dst_user, bd_pd.diff_dst_desc(), WorkspaceSlot::kStagingC);
    im.bd_weights.init(w_user, bd_pd.weights_desc(), WorkspaceSlot::kStagingB);
    im.bd_diff_src.init(src_user, bd_pd.diff_src_desc(), WorkspaceSlot::kStagingA);
    im.bd_scratch_md = bd_pd.scratchpad_desc();

    auto bw_desc = dnnl::convolution_backward_weights::desc(dnnl::algorithm::convolution_direct, src_any, w_any,
                                                            has_bias ? im.bias_md : no_bias, dst_any, im.strides,
                                                            im.padding, im.padding);
    auto bw_pd = dnnl::convolution_backward_weights::primitive_desc(bw_desc, attr, eng, fwd_pd);
    im.bwd_weights = dnnl::convolution_backward_weights(bw_pd);
    im.bw_src.init(src_user, bw_pd.src_desc(), WorkspaceSlot::kStagingA);
    im.bw_diff_dst.init(dst_user, bw_pd.diff_dst_desc(), WorkspaceSlot::kStagingC);
    im.bw_diff_weights.init(w_user, bw_pd.diff_weights_desc(), WorkspaceSlot::kStagingB);
    im.bw_scratch_md = bw_pd.scratchpad_desc();
}

DnnlConv2d::~DnnlConv2d() = default;

const ConvGeometry & DnnlConv2d::geometry() const {
    return impl_->g;
}

void DnnlConv2d::forward(const float * src, const float * weights, const float * bias, float * dst) {
    auto & im = *impl_;
    auto & eng = dnnl_engine();
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, im.fwd_src.input(src)},
        {DNNL_ARG_WEIGHTS, im.fwd_weights.input(weights)},
        {DNNL_ARG_SCRATCHPAD, memory(im.fwd_scratch_md, eng, scratchpad(im.fwd_scratch_md))},
    };
    memory out = im.fwd_dst.output_target(dst);
    args.emplace(DNNL_ARG_DST, out);
    if (im.has_bias) args.emplace(DNNL_ARG_BIAS, memory(im.bias_md, eng, const_cast<float *>(bias)));
    im.fwd.execute(dnnl_stream(), args);
    im.fwd_dst.finish_output(out, dst);
    dnnl_stream().wait();
}

void DnnlConv2d::backward_data(const float * diff_dst, const float * weights, float * diff_src) {
    auto & im = *impl_;
    auto & eng = dnnl_engine();
    std::unordered_map<int, memory> args{
        {DNNL_ARG_DIFF_DST, im.bd_diff_dst.input(diff_dst)},
        {DNNL_ARG_WEIGHTS, im.bd_weights.input(weights)},
        {DNNL_ARG_SCRATCHPAD, memory(im.bd_scratch_md, eng, scratchpad(im.bd_scratch_md))},
    };
    memory out = im.bd_diff_src.output_target(diff_src);
    args.emplace(DNNL_ARG_DIFF_SRC, out);
    im.bwd_data.execute(dnnl_stream(), args);
    im.bd_diff_src.finish_output(out, diff_src);
    dnnl_stream().wait();
}

void DnnlConv2d::backward_weights(const float * src, const float * diff_dst, float * diff_weights, float * diff_bias) {
    auto & im = *impl_;
    auto & eng = dnnl_engine();
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, im.bw_src.input(src)},
        {DNNL_ARG_DIFF_DST, im.bw_diff_dst.input(diff_dst)},
        {DNNL_ARG_SCRATCHPAD, memory(im.bw_scratch_md, eng, scratchpad(im.bw_scratch_md))},
    };
    memory out = im.bw_diff_weights.output_target(diff_weights);
    args.emplace(DNNL_ARG_DIFF_WEIGHTS, out);
    if (im.has_bias) args.emplace(DNNL_ARG_DIFF_BIAS, memory(im.bias_md, eng, diff_bias));
    im.bwd_weights.execute(dnnl_stream(), args);
    im.bw_diff_weights.finish_output(out, diff_weights);
    dnnl_stream().wait();
}

}  // namespace mest::kernels
