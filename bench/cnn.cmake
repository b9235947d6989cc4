# The cnn embedder's speed benchmark (issue 5): pixvec's MobileNetV2 forward
# pass against the same network in PyTorch (python3-torch, a script).
# Included by bench/CMakeLists.txt.
add_executable(bench_cnn bench_cnn.c bench_util.c ${CMAKE_SOURCE_DIR}/tests/gen.c)
target_compile_definitions(bench_cnn PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_cnn PRIVATE ${PV_PRIVATE_INCLUDES} ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(bench_cnn PRIVATE pixvec_static PkgConfig::OPENBLAS PkgConfig::JPEG PkgConfig::PNG Threads::Threads)

add_executable(bench_nnlabel bench_nnlabel.c bench_util.c)
target_compile_definitions(bench_nnlabel PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_nnlabel PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(bench_nnlabel PRIVATE pixvec_static Threads::Threads)

add_executable(bench_neardup bench_neardup.c bench_util.c ${CMAKE_SOURCE_DIR}/tests/gen.c)
target_compile_definitions(bench_neardup PRIVATE _XOPEN_SOURCE=700 _DEFAULT_SOURCE)
target_include_directories(bench_neardup PRIVATE ${PV_PRIVATE_INCLUDES} ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(bench_neardup PRIVATE pixvec_static PkgConfig::JPEG PkgConfig::PNG Threads::Threads)
