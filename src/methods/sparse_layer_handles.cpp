#include "methods/sparse_layer_handles.h"

#include "nn/basic_block.h"
#include "nn/sparse_conv2d.h"
#include "nn/sparse_linear.h"

namespace mest::methods {

namespace {

void visit(nn::Module<float> & m, sparse::Scheme scheme, std::vector<SparseLayerHandle> & out) {
    if (auto * conv = dynamic_cast<nn::SparseConv2d<float> *>(&m)) {
        out.push_back({m.name(), &conv->weights(),
                       scheme == sparse::Scheme::kPattern && conv->config().conv.kernel == 3,
                       [conv](sparse::GradientProbe<float> * probe) { conv->set_gradient_probe(probe); }});
    } else if (auto * linear = dynamic_cast<nn::SparseLinear<float> *>(&m)) {
        out.push_back({m.name(), &linear->weights(), false,
                       [linear](sparse::GradientProbe<float> * probe) { linear->set_gradient_probe(probe); }});
    } else if (auto * block = dynamic_cast<nn::BasicBlock<float> *>(&m)) {
        visit(block->conv1(), scheme, out);
        visit(block->conv2(), scheme, out);
    } else if (auto * seq = dynamic_cast<nn::Sequential<float> *>(&m)) {
        for (const auto & child : seq->modules()) visit(*child, scheme, out);
    }
}

}  // namespace

std::vector<SparseLayerHandle> find_sparse_layers(nn::Sequential<float> & net, sparse::Scheme scheme) {
    std::vector<SparseLayerHandle> out;
    visit(net, scheme, out);
    return out;
}

}  // namespace mest::methods
