# The clip embedder's speed benchmark (issue 14): pixvec's CLIP ViT-B/32
# image and text towers against the same network in PyTorch
# (peer_torch_vit.py); bench_vit --gen-jpegs writes the JPEGs that
# run_vit.sh ingests. Included by bench/CMakeLists.txt.
add_executable(bench_vit bench_vit.c bench_util.c ${CMAKE_SOURCE_DIR}/tests/gen.c)
target_compile_definitions(bench_vit PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_vit PRIVATE ${PV_PRIVATE_INCLUDES} ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(bench_vit PRIVATE pixvec_static PkgConfig::OPENBLAS PkgConfig::JPEG PkgConfig::PNG
                      PkgConfig::JANSSON Threads::Threads)
