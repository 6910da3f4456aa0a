// The process-wide oneDNN CPU engine and stream.
#pragma once
#include <dnnl.hpp>

namespace mest::kernels {

dnnl::engine & dnnl_engine();
dnnl::stream & dnnl_stream();

}  // namespace mest::kernels
