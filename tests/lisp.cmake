# arena-lisp: every program under every collector, output compared with the expected file;
# and arena-wx, the W^X demo.
#
# This file is both the ctest registration (included by tests/CMakeLists.txt) and,
# run with `cmake -P`, the checker each test invokes:
#   cmake -DLISP=exe -DARGS="..." -DPROGRAM=file.scm -DEXPECTED=file.out [-DSTDIN=1] [-DRC=n]
#         [-DSTATS=collector] [-DERRORS=file.err] -P lisp.cmake
# STDIN feeds the program to a REPL session on a pipe (each value printed, each error
# reported and skipped); ERRORS is the exact stderr expected.
if(CMAKE_SCRIPT_MODE_FILE)
  separate_arguments(args UNIX_COMMAND "${ARGS}")
  if(NOT DEFINED RC)
    set(RC 0)
  endif()
  if(STDIN)
    execute_process(COMMAND ${LISP} ${args} INPUT_FILE ${PROGRAM}
                    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  else()
    execute_process(COMMAND ${LISP} ${args} ${PROGRAM}
                    OUTPUT_VARIABLE out ERROR_VARIABLE err RESULT_VARIABLE rc)
  endif()
  # ASan warns when a longjmp leaves a deep stack (an error in deep recursion): not ours.
  string(REGEX REPLACE "==[0-9]+==WARNING: ASan is ignoring requested __asan_handle_no_return[^\n]*\n(False positive[^\n]*\n)?(For details see[^\n]*\n)?" "" err "${err}")
  if(NOT rc STREQUAL RC)
    message(FATAL_ERROR "arena-lisp ${ARGS} ${PROGRAM}: exit status ${rc}, expected ${RC}\nstderr:\n${err}\nstdout:\n${out}")
  endif()
  if(STATS)
    # The last line is the --stats JSON object: check it, then compare the rest.
    string(REGEX MATCH "[^\n]*\n$" last "${out}")
    string(LENGTH "${out}" n)
    string(LENGTH "${last}" m)
    math(EXPR keep "${n} - ${m}")
    string(SUBSTRING "${out}" 0 ${keep} out)
    foreach(field gc program total_ms gc_pause_ms gcs peak_rss_kb)
      string(JSON value ERROR_VARIABLE jerr GET "${last}" ${field})
      if(jerr)
        message(FATAL_ERROR "--stats line lacks ${field} (${jerr}):\n${last}")
      endif()
      set(stat_${field} "${value}")
    endforeach()
    if(NOT stat_gcs GREATER 0 OR NOT stat_peak_rss_kb GREATER 0 OR NOT stat_gc STREQUAL STATS)
      message(FATAL_ERROR "--stats line: expected collections by ${STATS}:\n${last}")
    endif()
  endif()
  file(READ ${EXPECTED} want)
  if(NOT out STREQUAL want)
    message(FATAL_ERROR "arena-lisp ${ARGS} ${PROGRAM}: output differs from ${EXPECTED}\nstderr:\n${err}\ngot:\n${out}")
  endif()
  if(ERRORS)
    file(READ ${ERRORS} want)
    if(NOT err STREQUAL want)
      message(FATAL_ERROR "arena-lisp ${ARGS} ${PROGRAM}: stderr differs from ${ERRORS}\ngot:\n${err}")
    endif()
  endif()
  return()
endif()

if(ARENA_BUILD_DEMOS AND TARGET arena-lisp)
  set(LISP_PROGRAMS ${PROJECT_SOURCE_DIR}/demos/lisp-programs)
  function(lisp_test name program args)
    cmake_parse_arguments(T "STDIN" "RC;STATS;ERRORS;DIR" "" ${ARGN})
    if(NOT T_DIR)
      set(T_DIR ${LISP_PROGRAMS})
    endif()
    set(extra)
    if(T_ERRORS)
      list(APPEND extra -DERRORS=${LISP_PROGRAMS}/${T_ERRORS})
    endif()
    if(T_STATS)
      list(APPEND extra -DSTATS=${T_STATS})
    endif()
    if(T_STDIN)
      list(APPEND extra -DSTDIN=1)
    endif()
    if(DEFINED T_RC)
      list(APPEND extra -DRC=${T_RC})
    endif()
    add_test(NAME ${name}
             COMMAND ${CMAKE_COMMAND} -DLISP=$<TARGET_FILE:arena-lisp> "-DARGS=${args}"
                     -DPROGRAM=${T_DIR}/${program}.scm -DEXPECTED=${T_DIR}/${program}.out
                     ${extra} -P ${CMAKE_CURRENT_FUNCTION_LIST_FILE})
    set_tests_properties(${name} PROPERTIES TIMEOUT 300 LABELS lisp)
  endfunction()

  # Small heaps make every program collect many times: the semispaces start at 64 KiB
  # and grow; the arena collects every 256 KiB allocated (the nursery when generational).
  foreach(prog fib tak nqueens binary-trees strings features old-to-young)
    lisp_test(lisp_${prog}_semispace ${prog} "--gc=semispace --heap 64k")
    lisp_test(lisp_${prog}_arena ${prog} "--gc=arena --heap 256k")
    lisp_test(lisp_${prog}_generational ${prog} "--gc=arena --generational --heap 256k")
  endforeach()
  # Collections at arbitrary points (every N allocations): a value held across an
  # allocation without a root is moved under the interpreter's feet and the output
  # changes. (--gc-stress=1, a collection at every allocation, passes too but takes minutes.)
  lisp_test(lisp_features_semispace_stress features "--gc=semispace --gc-stress=499")
  lisp_test(lisp_features_arena_stress features "--gc=arena --gc-stress=2999")
  lisp_test(lisp_strings_generational_stress strings "--gc=arena --generational --gc-stress=1999")
  # Young collections at arbitrary points with the card barrier: these two catch the
  # barriers barriers.scm cannot place a collection before (let's name list, define's
  # second store into a frame; found by removing each).
  lisp_test(lisp_features_generational_stress features "--gc=arena --generational --gc-stress=97")
  lisp_test(lisp_strings_generational_stress31 strings "--gc=arena --generational --gc-stress=31")
  # The libsigsegv tracker as the write barrier (AUTO picks userfaultfd where it may): a
  # collection once re-protected dirty moved pages whose state said open (crashed 10 of 10).
  lisp_test(lisp_strings_generational_sigsegv strings "--gc=arena --generational --barrier=pages --tracker=sigsegv --heap 64k")
  # Old-to-young stores through each barrier (pages: only old pages are watched,
  # ARENA_TRACK_OLD); a missed store frees a young object the program checks afterwards.
  lisp_test(lisp_old-to-young_generational_sigsegv old-to-young "--gc=arena --generational --barrier=pages --tracker=sigsegv --heap 64k")
  if(CMAKE_SYSTEM_VERSION VERSION_GREATER_EQUAL 6.7)
    lisp_test(lisp_old-to-young_generational_uffd old-to-young "--gc=arena --generational --barrier=pages --tracker=uffd --heap 64k")
  endif()
  lisp_test(lisp_old-to-young_generational_pages old-to-young "--gc=arena --generational --barrier=pages --heap 256k")
  # Each kind of store of a young object into an old one, alone in its young
  # collections: with card marking, removing a set_field changes the output (tried one by
  # one). Those whose removal passes: the stores that only ever see young objects
  # (list->vector, vector literals, append's copies, letrec's fresh closure, *args*), the
  # two stores of define into one frame (each masks the other: same card), apply's splice
  # (its cell's card is always dirtied by the argument list first), and two that need a
  # collection between two allocations of one primitive step (let's name list, the
  # reader's dotted tail): the generational --gc-stress tests above catch let's and define's second.
  set(dir ${PROJECT_SOURCE_DIR}/tests/lisp)
  lisp_test(lisp_barriers_semispace barriers "--gc=semispace --heap 16k" DIR ${dir})
  lisp_test(lisp_barriers_generational_cards barriers "--gc=arena --generational --barrier=cards --heap 16k" DIR ${dir})
  lisp_test(lisp_barriers_generational_pages barriers "--gc=arena --generational --barrier=pages --heap 16k" DIR ${dir})
  # Random stores into old vectors on both sides of the cards' 256-byte limit, three seeds:
  # every collector prints the semispace's checksums (cards lost stores into the second
  # large object on a card before it had a bit of its own).
  lisp_test(lisp_mutate_semispace mutate "--gc=semispace --heap 16k" DIR ${dir})
  lisp_test(lisp_mutate_generational_cards mutate "--gc=arena --generational --barrier=cards --heap 16k" DIR ${dir})
  lisp_test(lisp_mutate_generational_pages mutate "--gc=arena --generational --barrier=pages --heap 64k" DIR ${dir})
  # A young collection visits only the root stack entries that may have changed since the
  # previous one: after an error thrown from deep recursion (the stack cut back by the
  # handler), and frames resumed while unwinding. A cut that does not lower the mark aborts.
  lisp_test(lisp_young-roots_generational_stress young-roots "--gc=arena --generational --gc-stress=1" DIR ${dir} STDIN RC 1)
  lisp_test(lisp_young-roots_generational young-roots "--gc=arena --generational --heap 16k" DIR ${dir} STDIN RC 1)
  lisp_test(lisp_error_semispace error "--gc=semispace" RC 1 ERRORS error.err)
  lisp_test(lisp_error_arena error "--gc=arena" RC 1 ERRORS error.err)
  lisp_test(lisp_stdin_semispace fib "--gc=semispace" STDIN)
  # A session on a pipe: values echoed, one message per error, the rest still run.
  lisp_test(lisp_session_arena session "--gc=arena --heap 256k" STDIN RC 1 ERRORS session.err)
  # Every primitive that walks a list stops at a cycle with an error; write and
  # display print datum labels (issue 12).
  lisp_test(lisp_circular_semispace circular "--gc=semispace --heap 64k" STDIN RC 1 ERRORS circular.err)
  lisp_test(lisp_circular_arena circular "--gc=arena --heap 256k" STDIN RC 1 ERRORS circular.err)
  # --stats appends one JSON line (what arena-bench reads).
  lisp_test(lisp_stats_semispace nqueens "--gc=semispace --heap 64k --stats" STATS semispace)
  lisp_test(lisp_stats_arena nqueens "--gc=arena --heap 256k --stats" STATS arena)
endif()

# arena-wx: code written through a read-write view runs through a read-execute view of
# the same file pages; it checks its own results and exits non-zero on a mismatch.
if(ARENA_BUILD_DEMOS AND TARGET arena-wx)
  add_test(NAME wx COMMAND arena-wx)
  set_tests_properties(wx PROPERTIES TIMEOUT 60 LABELS lisp)
endif()
