# The photo benchmark's perceptual-hash peers (issue 13): aHash, dHash,
# pHash, wHash and PDQ on pixvec's decoder. Included by bench/CMakeLists.txt.
add_executable(photo_hashes photo_hashes.c bench_util.c)
target_compile_definitions(photo_hashes PRIVATE _XOPEN_SOURCE=700 _DEFAULT_SOURCE)
target_include_directories(photo_hashes PRIVATE ${PV_PRIVATE_INCLUDES})
target_link_libraries(photo_hashes PRIVATE pixvec_static PkgConfig::JPEG PkgConfig::PNG Threads::Threads m)
