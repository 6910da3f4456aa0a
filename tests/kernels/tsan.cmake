# mest_kernel_tests: the kernel tests (tests/kernels/*_test.cpp) under ThreadSanitizer, built with
# only the layers they use. Included by the top-level CMakeLists.txt with MEST_TSAN=ON (clang).
#
# OpenMP: libgomp is not instrumented and synchronises through futexes TSan cannot see, so with it
# every parallel loop would be reported as a race. mest has no non-OpenMP path to fall back on
# (src/core/parallel.h and the kernels use omp pragmas and omp_get_thread_num), and a serial build
# would leave TSan nothing to check. Instead clang builds against LLVM's libomp, and Archer, LLVM's
# OpenMP tool for TSan (linked in statically, so libomp finds it without OMP_TOOL_LIBRARIES), tells
# TSan about libomp's barriers, reductions, tasks and locks: what remains are real races.
find_package(GTest REQUIRED)
get_filename_component(MEST_CLANG_PATH ${CMAKE_CXX_COMPILER} REALPATH)
get_filename_component(MEST_LLVM_LIB_DIR ${MEST_CLANG_PATH}/../../lib ABSOLUTE)
find_library(MEST_ARCHER_STATIC NAMES libarcher_static.a HINTS ${MEST_LLVM_LIB_DIR} REQUIRED)

mest_add_partial_lib(mest_kernel_lib DIRS core kernels sparse nn)
file(GLOB MEST_KERNEL_TEST_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/kernels/*_test.cpp)
add_executable(mest_kernel_tests ${MEST_KERNEL_TEST_SOURCES})
target_include_directories(mest_kernel_tests PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_compile_options(mest_kernel_tests PRIVATE ${MEST_WARNINGS})
target_link_libraries(mest_kernel_tests PRIVATE mest_kernel_lib GTest::gtest GTest::gtest_main
                                                "-Wl,--whole-archive" ${MEST_ARCHER_STATIC} "-Wl,--no-whole-archive")

# ignore_noninstrumented_modules: libomp's own bookkeeping (its allocator, its mutexes) runs through
# TSan's interceptors uninstrumented and would be reported; Archer's documentation asks for it.
# Four threads even on a two-core machine, so that every parallel loop really runs in parallel.
enable_testing()
add_test(NAME mest_kernel_tests_tsan COMMAND mest_kernel_tests)
set_tests_properties(mest_kernel_tests_tsan PROPERTIES TIMEOUT 900 ENVIRONMENT
                     "OMP_NUM_THREADS=4;TSAN_OPTIONS=ignore_noninstrumented_modules=1:second_deadlock_stack=1")
