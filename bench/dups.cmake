# The duplicate scan at scale (issue 6): approximate (HNSW self-join)
# against exact all-pairs, and the synthetic 1M set's generator.
# Included by bench/CMakeLists.txt.
add_executable(bench_dups bench_dups.c bench_util.c ${CMAKE_SOURCE_DIR}/tests/gen.c)
target_compile_definitions(bench_dups PRIVATE _XOPEN_SOURCE=700 _DEFAULT_SOURCE)
target_include_directories(bench_dups PRIVATE ${CMAKE_SOURCE_DIR}/include ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(bench_dups PRIVATE pixvec_static PkgConfig::JPEG PkgConfig::PNG Threads::Threads m)

include(${CMAKE_CURRENT_SOURCE_DIR}/dups_peer.cmake OPTIONAL)
