# The k-means and IVF benchmark (issue 4): pixvec's index/kmeans.c on the
# vectors of a real database, FAISS Clustering and IndexIVFFlat (Debian
# libfaiss-dev) and scikit-learn's KMeans (python3-sklearn, a script) on the
# same vectors. Included by bench/CMakeLists.txt.

add_executable(bench_kmeans bench_kmeans.c bench_util.c)
target_compile_definitions(bench_kmeans PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_kmeans PRIVATE ${PV_PRIVATE_INCLUDES})
target_link_libraries(bench_kmeans PRIVATE pixvec_static PkgConfig::OPENBLAS Threads::Threads)

if(faiss_FOUND)
  add_executable(peer_faiss_kmeans peer_faiss_kmeans.cpp bench_util.c)
  target_compile_definitions(peer_faiss_kmeans PRIVATE _XOPEN_SOURCE=700)
  set_target_properties(peer_faiss_kmeans PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_compile_options(peer_faiss_kmeans PRIVATE -Wno-error -Wno-unused-parameter)
  target_link_libraries(peer_faiss_kmeans PRIVATE faiss OpenMP::OpenMP_CXX)
endif()

add_executable(bench_ivf bench_ivf.c bench_util.c)
target_compile_definitions(bench_ivf PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_ivf PRIVATE ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(bench_ivf PRIVATE pixvec_static PkgConfig::OPENBLAS Threads::Threads)

if(faiss_FOUND)
  add_executable(peer_faiss_ivf peer_faiss_ivf.cpp bench_util.c)
  target_compile_definitions(peer_faiss_ivf PRIVATE _XOPEN_SOURCE=700)
  set_target_properties(peer_faiss_ivf PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_compile_options(peer_faiss_ivf PRIVATE -Wno-error -Wno-unused-parameter)
  target_link_libraries(peer_faiss_ivf PRIVATE faiss OpenMP::OpenMP_CXX)
endif()
