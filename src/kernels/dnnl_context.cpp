#include "kernels/dnnl_context.h"

namespace mest::kernels {

dnnl::engine & dnnl_engine() {
    static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
    return engine;
}

dnnl::stream & dnnl_stream() {
    static dnnl::stream stream(dnnl_engine());
    return stream;
}

}  // namespace mest::kernels
