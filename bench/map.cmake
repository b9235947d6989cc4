# The map benchmark (issue 15): map_vectors writes a pixvec database's
# vectors (and a `pixvec map` CSV's layout) as float32 for the peers
# (scikit-learn TSNE, umap-learn: bench/peer_map.py), and bench_map_quality
# scores every layout with index/layout_quality.c. Included by
# bench/CMakeLists.txt; bench/run_map.sh runs it all.

add_executable(map_vectors map_vectors.c bench_util.c)
target_compile_definitions(map_vectors PRIVATE _XOPEN_SOURCE=700)
target_include_directories(map_vectors PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(map_vectors PRIVATE pixvec_static PkgConfig::OPENBLAS Threads::Threads)

add_executable(bench_map_quality bench_map_quality.c bench_util.c)
target_compile_definitions(bench_map_quality PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_map_quality PRIVATE ${PV_PRIVATE_INCLUDES})
target_link_libraries(bench_map_quality PRIVATE pixvec_static PkgConfig::OPENBLAS Threads::Threads)
