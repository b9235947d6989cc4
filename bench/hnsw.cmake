# The HNSW benchmark (issue 3): pixvec through its public API on a real
# database, hnswlib (Debian libhnswlib-dev, header-only, compiled here with
# -O3 -march=native: the fair peer) and FAISS IndexHNSWFlat (Debian
# libfaiss-dev) on the same vectors. Included by bench/CMakeLists.txt.

add_executable(bench_hnsw bench_hnsw.c bench_util.c)
target_compile_definitions(bench_hnsw PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_hnsw PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(bench_hnsw PRIVATE pixvec_static PkgConfig::OPENBLAS Threads::Threads)

find_path(HNSWLIB_INCLUDE_DIR hnswlib/hnswlib.h)
if(HNSWLIB_INCLUDE_DIR)
  add_executable(peer_hnswlib peer_hnswlib.cpp bench_util.c)
  target_compile_definitions(peer_hnswlib PRIVATE _XOPEN_SOURCE=700)
  set_target_properties(peer_hnswlib PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_include_directories(peer_hnswlib PRIVATE ${HNSWLIB_INCLUDE_DIR})
  # hnswlib's headers do not build cleanly under -Wextra -Werror.
  target_compile_options(peer_hnswlib PRIVATE -O3 -march=native -Wno-error -Wno-unused-parameter)
  target_link_libraries(peer_hnswlib PRIVATE Threads::Threads)
  message(STATUS "bench: hnswlib peer enabled (${HNSWLIB_INCLUDE_DIR})")
else()
  message(STATUS "bench: libhnswlib-dev not found; peer_hnswlib is not built")
endif()

if(faiss_FOUND AND EXISTS ${CMAKE_CURRENT_SOURCE_DIR}/peer_faiss_hnsw.cpp)
  add_executable(peer_faiss_hnsw peer_faiss_hnsw.cpp bench_util.c)
  target_compile_definitions(peer_faiss_hnsw PRIVATE _XOPEN_SOURCE=700)
  set_target_properties(peer_faiss_hnsw PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_compile_options(peer_faiss_hnsw PRIVATE -Wno-error -Wno-unused-parameter)
  target_link_libraries(peer_faiss_hnsw PRIVATE faiss OpenMP::OpenMP_CXX)
endif()
