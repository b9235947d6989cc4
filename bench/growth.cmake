# How cost grows with the collection (issue 17, part 4): add, query latency
# warm and cold, dups and disk size per database. bench/run_growth.sh drives
# it (and bench_dups gen makes its pictures). Included by bench/CMakeLists.txt.
add_executable(bench_growth bench_growth.c bench_util.c)
target_compile_definitions(bench_growth PRIVATE _XOPEN_SOURCE=700 _DEFAULT_SOURCE)
target_include_directories(bench_growth PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(bench_growth PRIVATE pixvec_static Threads::Threads m)
