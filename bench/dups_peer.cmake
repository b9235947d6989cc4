# hnswlib's duplicate self-join (issue 6): the peer a user would pick
# instead of `pixvec dups`, on the vectors bench_dups export writes.
# hnswlib is Debian's libhnswlib-dev, header-only, compiled here with
# -O3 -march=native as the HNSW benchmark's peer is (hnsw.cmake). Included
# by dups.cmake; built only when the header is found.
find_path(HNSWLIB_INCLUDE_DIR hnswlib/hnswlib.h)
if(HNSWLIB_INCLUDE_DIR)
  add_executable(peer_hnswlib_dups peer_hnswlib_dups.cpp bench_util.c)
  target_compile_definitions(peer_hnswlib_dups PRIVATE _XOPEN_SOURCE=700)
  set_target_properties(peer_hnswlib_dups PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  target_include_directories(peer_hnswlib_dups PRIVATE ${HNSWLIB_INCLUDE_DIR})
  # hnswlib's headers do not build cleanly under -Wextra -Werror.
  target_compile_options(peer_hnswlib_dups PRIVATE -O3 -march=native -Wno-error -Wno-unused-parameter)
  target_link_libraries(peer_hnswlib_dups PRIVATE Threads::Threads)
  message(STATUS "bench: hnswlib dups peer enabled (${HNSWLIB_INCLUDE_DIR})")
else()
  message(STATUS "bench: libhnswlib-dev not found; peer_hnswlib_dups is not built")
endif()
