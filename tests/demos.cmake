# The demos run as ctest tests with small sizes (included by tests/CMakeLists.txt).
#
# Run as a script (cmake -DPROG=... -DARGS=a|b -DEXPECT=status -DMATCH=regex -P demos.cmake) this
# file is the wrapper those tests use: it runs PROG, requires the exact exit status EXPECT and
# requires MATCH in its output (WILL_FAIL alone would accept any failure, a crash included).

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  string(REPLACE "|" ";" args "${ARGS}")
  execute_process(COMMAND ${PROG} ${args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc STREQUAL EXPECT)
    message(FATAL_ERROR "${PROG} ${args}: exit status ${rc}, expected ${EXPECT}")
  endif()
  if(NOT "${out}${err}" MATCHES "${MATCH}")
    message(FATAL_ERROR "${PROG} ${args}: output does not match '${MATCH}'")
  endif()
  return()
endif()

if(NOT ARENA_BUILD_DEMOS)
  return()
endif()

# arena_demo_test(<test name> <demo target> <expected status> <regex> [args...])
function(arena_demo_test name target expect match)
  if(NOT TARGET ${target})
    return()
  endif()
  list(JOIN ARGN "|" args)
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} "-DPROG=$<TARGET_FILE:${target}>" "-DARGS=${args}"
    -DEXPECT=${expect} "-DMATCH=${match}" -P ${CMAKE_CURRENT_FUNCTION_LIST_FILE})
  # arena-alias checks that a write through a read-only view faults: ASan must let SIGSEGV be.
  set_tests_properties(${name} PROPERTIES LABELS demo TIMEOUT 120 ENVIRONMENT "ASAN_OPTIONS=handle_segv=0")
endfunction()

foreach(demo reverse nonlinear alias vmacount)
  arena_demo_test(demo_${demo}_help arena-${demo} 0 "usage: arena-${demo}" --help)
endforeach()

arena_demo_test(demo_reverse arena-reverse 0 "verified [0-9]+ pages.*Test passed" --size 1M)
foreach(mover remap_file_pages mmap_fixed mremap copy auto)
  arena_demo_test(demo_reverse_${mover} arena-reverse 0 "verified [0-9]+ pages.*Test passed" --size 256K --mover ${mover})
endforeach()
# Past the VMA budget: a clear refusal with status 2, or the documented copy fallback.
arena_demo_test(demo_reverse_over_budget arena-reverse 2 "needs [0-9]+ mappings.*budget of 64" --size 1M --vma-budget 64)
arena_demo_test(demo_reverse_over_budget_mremap arena-reverse 2 "needs [0-9]+ mappings.*budget of 64"
  --size 1M --vma-budget 64 --mover mremap)
arena_demo_test(demo_reverse_fallback_copy arena-reverse 0 "by copy fallback.*verified [0-9]+ pages.*Test passed"
  --size 1M --vma-budget 64 --fallback copy)
arena_demo_test(demo_reverse_bad_size arena-reverse 64 "not a size" --size 12Q)

arena_demo_test(demo_nonlinear arena-nonlinear 0 "before the remap.*'A'.*'B'.*'C'.*after the remap.*'C'.*'B'.*'A'.*Test passed")
arena_demo_test(demo_nonlinear_mmap_fixed arena-nonlinear 0 "Test passed: C B A" --mover mmap_fixed)

arena_demo_test(demo_alias arena-alias 0 "faults, as it should.*Test passed")
arena_demo_test(demo_alias_rfp arena-alias 0 "Test passed" --mover rfp)

arena_demo_test(demo_vmacount arena-vmacount 0 "remap_file_pages.*mmap_fixed.*mremap.*Test passed" --pages 64)
arena_demo_test(demo_vmacount_cold arena-vmacount 0 "cold.*Test passed" --pages 64 --cold)
arena_demo_test(demo_vmacount_over_budget arena-vmacount 2 "failed \\(over the VMA budget\\)" --pages 64 --vma-budget 32)

# arena-compaction --survive: a bare number above 1 is refused with a message, not read as 0 %.
arena_demo_test(demo_compaction_survive_bare arena-compaction 64 "neither a fraction.*nor a percentage"
  --survive 30 --no-svg)
# A page size the arena would refuse is a bad command line (64), not an arena_create failure (1);
# a heap map that cannot be written is a failure (1), not a success with a message.
arena_demo_test(demo_compaction_bad_page arena-compaction 64 "--page-size: a power of two" --page-size 3000)
arena_demo_test(demo_compaction_svg_unwritable arena-compaction 1 "cannot write the heap map"
  --heap 1M --svg /nonexistent-dir/compaction.svg)

# arena-stress ends a run by time or by count: both at once is a bad command line, not --ops winning.
arena_demo_test(demo_stress_seconds_and_ops arena-stress 64 "--seconds and --ops" --seconds 1 --ops 100)

# arena-peer: the write barrier belongs to --gc arena's young collections; elsewhere it is refused.
arena_demo_test(demo_peer_barrier_mark arena-peer 64 "--barrier applies to --gc arena only"
  --quick --gc arena-mark --barrier pages)
arena_demo_test(demo_peer_barrier_full_only arena-peer 64 "--barrier: --nursery 0"
  --quick --nursery 0 --barrier cards)

# arena-conservative: roots only in C locals, the stack scanned conservatively, every node verified.
arena_demo_test(demo_conservative arena-conservative 0 "every reachable node verified" --quick)
arena_demo_test(demo_conservative_all_survive arena-conservative 0 "every reachable node verified"
  --quick --survive 100 --rounds 3)
# The earlier pattern (one size mix) stays available; meshing on by request; --json's figures.
arena_demo_test(demo_conservative_uniform arena-conservative 0 "uniform pattern.*every reachable node verified"
  --quick --pattern uniform --mesh on)
arena_demo_test(demo_conservative_json arena-conservative 0 "\"peak_live_bytes\":[1-9][0-9]*,\"heap_peak_bytes\":[1-9]"
  --quick --json --lifetime 2)
arena_demo_test(demo_conservative_bad_pattern arena-conservative 64 "--pattern: shift or uniform" --pattern round)
# Meshing is the arena's: asked of Boehm GC it is refused, not silently ignored.
arena_demo_test(demo_conservative_boehm_mesh arena-conservative 64 "--mesh: meshing is the arena's" --gc boehm --mesh on)
# The same program on Boehm GC (peer.conservative's baseline) verifies the same way.
if(BDWGC_FOUND AND NOT ARENA_SANITIZE AND NOT ARENA_TSAN)
  arena_demo_test(demo_conservative_boehm arena-conservative 0 "Boehm GC, shift pattern.*every reachable node verified"
    --quick --gc boehm)
endif()
