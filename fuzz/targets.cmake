# libFuzzer targets, one per reader of files a user hands over (scripts/fuzz.sh runs them), and the
# seed corpus writer. Included by the top-level CMakeLists.txt with MEST_BUILD_FUZZ=ON, which
# compiles everything with clang's coverage instrumentation, ASan and UBSan.
#
# The readers need the layers below train/ (a checkpoint loads into models with a method attached;
# validate() names every method) and three files of train/, not the trainer or the reports.
mest_add_partial_lib(mest_fuzz_lib DIRS core data kernels sparse nn optim methods
                     FILES train/checkpoint.cpp train/config.cpp train/json_input.cpp)
add_library(mest_fuzz_inputs STATIC ${CMAKE_SOURCE_DIR}/fuzz/fuzz_inputs.cpp)
target_include_directories(mest_fuzz_inputs PUBLIC ${CMAKE_SOURCE_DIR}/fuzz)
target_compile_options(mest_fuzz_inputs PRIVATE ${MEST_WARNINGS})
target_link_libraries(mest_fuzz_inputs PUBLIC mest_fuzz_lib)

set(MEST_FUZZ_TARGETS fuzz_idx fuzz_cifar fuzz_checkpoint fuzz_config)
foreach(target IN LISTS MEST_FUZZ_TARGETS)
  add_executable(${target} ${CMAKE_SOURCE_DIR}/fuzz/${target}.cpp)
  target_compile_options(${target} PRIVATE ${MEST_WARNINGS})
  target_link_libraries(${target} PRIVATE mest_fuzz_inputs)
  target_link_options(${target} PRIVATE -fsanitize=fuzzer)
endforeach()

add_executable(fuzz_write_seeds ${CMAKE_SOURCE_DIR}/fuzz/write_seeds.cpp)
target_compile_options(fuzz_write_seeds PRIVATE ${MEST_WARNINGS})
target_link_libraries(fuzz_write_seeds PRIVATE mest_fuzz_inputs)

# The corpus test of the normal build (tests/data/malformed_corpus_test.cpp) under ASan + UBSan.
find_package(GTest REQUIRED)
add_executable(fuzz_corpus_test ${CMAKE_SOURCE_DIR}/tests/data/malformed_corpus_test.cpp)
target_include_directories(fuzz_corpus_test PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_compile_options(fuzz_corpus_test PRIVATE ${MEST_WARNINGS})
target_compile_definitions(fuzz_corpus_test PRIVATE MEST_FIXTURE_DIR="${CMAKE_SOURCE_DIR}/tests/fixtures")
target_link_libraries(fuzz_corpus_test PRIVATE mest_fuzz_inputs GTest::gtest GTest::gtest_main)

add_custom_target(fuzz_all DEPENDS ${MEST_FUZZ_TARGETS} fuzz_write_seeds fuzz_corpus_test)
