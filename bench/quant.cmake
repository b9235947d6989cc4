# Compact vectors (issue 17): nanoseconds per distance of the int8 and
# float16 kernels of index/quant.c against the float32 dot, every ISA level
# the CPU has. Included by bench/CMakeLists.txt.

add_executable(bench_quant bench_quant.c bench_util.c)
target_compile_definitions(bench_quant PRIVATE _XOPEN_SOURCE=700)
target_include_directories(bench_quant PRIVATE ${PV_PRIVATE_INCLUDES})
target_link_libraries(bench_quant PRIVATE pixvec_static Threads::Threads)
