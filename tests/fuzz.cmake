# tests/fuzz.cmake -- the API fuzz target (docs/design.md §9, .req.fault.fuzz).
# With a clang whose libFuzzer links, tests/fuzz/fuzz_api.c and the library sources (with fault
# injection) are built by that clang with -fsanitize=fuzzer,address,undefined, whatever the
# project's C compiler is, and ctest runs a bounded, corpus-free, fixed-seed session. Without one,
# the same target is linked with a small driver that feeds it seeded pseudo-random inputs.
set(ARENA_FUZZ_DIR ${CMAKE_CURRENT_SOURCE_DIR}/fuzz)
set(ARENA_FUZZ_RUNS 20000 CACHE STRING "libFuzzer -runs for the fuzz_api ctest")
set(ARENA_FUZZ_SECONDS 30 CACHE STRING "libFuzzer -max_total_time for the fuzz_api ctest")

if(CMAKE_C_COMPILER_ID MATCHES "Clang")
  set(ARENA_FUZZ_CLANG ${CMAKE_C_COMPILER})
else()
  find_program(ARENA_FUZZ_CLANG NAMES clang clang-18 clang-17 clang-16 clang-15 clang-14)
endif()

set(ARENA_FUZZ_LIBFUZZER OFF)
if(ARENA_FUZZ_CLANG AND NOT ARENA_TSAN)
  set(probe_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz-probe)
  file(MAKE_DIRECTORY ${probe_dir})
  file(WRITE ${probe_dir}/probe.c
    "#include <stddef.h>\n#include <stdint.h>\nint LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { (void)d; (void)n; return 0; }\n")
  execute_process(COMMAND ${ARENA_FUZZ_CLANG} -fsanitize=fuzzer,address,undefined ${probe_dir}/probe.c -o ${probe_dir}/probe
                  RESULT_VARIABLE probe_rc OUTPUT_QUIET ERROR_QUIET)
  if(probe_rc EQUAL 0)
    set(ARENA_FUZZ_LIBFUZZER ON)
  endif()
endif()

if(ARENA_FUZZ_LIBFUZZER)
  message(STATUS "fuzz_api: libFuzzer with ${ARENA_FUZZ_CLANG}")
  set(fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz_api)
  add_custom_command(OUTPUT ${fuzz_bin}
    COMMAND ${ARENA_FUZZ_CLANG} -std=gnu11 -g -O1 -fno-omit-frame-pointer
            -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
            -DARENA_FAULT_INJECTION -D_GNU_SOURCE
            -I${PROJECT_SOURCE_DIR}/include -I${PROJECT_SOURCE_DIR}/arena -I${Sigsegv_INCLUDE_DIR}
            ${ARENA_FUZZ_DIR}/fuzz_api.c ${ARENA_SOURCES} ${Sigsegv_LIBRARY} -lpthread -o ${fuzz_bin}
    DEPENDS ${ARENA_FUZZ_DIR}/fuzz_api.c ${ARENA_SOURCES} ${ARENA_HEADERS} ${PROJECT_SOURCE_DIR}/include/arena.h
    COMMENT "Building the libFuzzer target fuzz_api"
    VERBATIM)
  add_custom_target(fuzz_api ALL DEPENDS ${fuzz_bin})
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/fuzz-artifacts)
  add_test(NAME fuzz_api COMMAND ${fuzz_bin} -runs=${ARENA_FUZZ_RUNS} -max_total_time=${ARENA_FUZZ_SECONDS}
           -seed=1 -max_len=2048 -timeout=20 -rss_limit_mb=2048 -handle_segv=0
           -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-artifacts/)
  set_tests_properties(fuzz_api PROPERTIES ENVIRONMENT "ASAN_OPTIONS=handle_segv=0:detect_leaks=1" TIMEOUT 300)
else()
  message(STATUS "fuzz_api: no libFuzzer, seeded random driver")
  add_test(NAME fuzz_api COMMAND fuzz_api_driver 3000)
  set_tests_properties(fuzz_api PROPERTIES ENVIRONMENT "ASAN_OPTIONS=handle_segv=0" TIMEOUT 300)
endif()

# The seeded driver is built and run in every configuration: one process runs many inputs, so
# state an input leaves behind (the tracker's marks, fault-injection counters, libsigsegv
# areas) meets the next ones, which a libFuzzer session with a fixed seed may never reach.
# The default seed reaches a tracked page left armed by a refused re-mapping; seed 8 a
# collection whose refused undo breaks the arena. (Without libFuzzer fuzz_api runs the first.)
add_executable(fuzz_api_driver ${ARENA_FUZZ_DIR}/fuzz_api.c ${ARENA_FUZZ_DIR}/driver.c)
target_include_directories(fuzz_api_driver PRIVATE ${PROJECT_SOURCE_DIR}/arena)
target_link_libraries(fuzz_api_driver PRIVATE arena_fi Sigsegv::Sigsegv)
add_test(NAME fuzz_api_driver_seed8 COMMAND fuzz_api_driver 3000 8)
set_tests_properties(fuzz_api_driver_seed8 PROPERTIES ENVIRONMENT "ASAN_OPTIONS=handle_segv=0" TIMEOUT 300)
if(ARENA_FUZZ_LIBFUZZER)
  add_test(NAME fuzz_api_driver_default COMMAND fuzz_api_driver 3000)
  set_tests_properties(fuzz_api_driver_default PROPERTIES ENVIRONMENT "ASAN_OPTIONS=handle_segv=0" TIMEOUT 300)
endif()
