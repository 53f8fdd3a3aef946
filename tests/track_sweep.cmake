# tests/track_sweep.cmake -- a seed sweep of arena-stress --track (issue 12, item 3): tracking
# must report every page written since the last take, whatever path re-created its mapping.
#
# Included by tests/CMakeLists.txt it registers one test per tracker; run as a script
# (cmake -DTOOL=arena-stress -DTRACKER=sigsegv|uffd [-DSEEDS=200] -P track_sweep.cmake) it runs
# seeds 1..SEEDS x page sizes 4K/16K/64K, the mover rotating with the seed, each run short
# (--ops 4000, a collection every 1000) so the sweep stays well under a minute per tracker.
# arena-stress exits 1 on a missed page; 77 (skip: the kernel lacks the tracker) skips the sweep.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  if(NOT SEEDS)
    set(SEEDS 200)
  endif()
  set(movers copy mremap mmap_fixed auto)
  set(failed "")
  set(runs 0)
  foreach(seed RANGE 1 ${SEEDS})
    math(EXPR m "${seed} % 4")
    list(GET movers ${m} mover)
    foreach(ps 4K 16K 64K)
      execute_process(COMMAND ${TOOL} --threads 1 --ops 4000 --cycle-ops 1000 --heap 64M --page-size ${ps}
                              --mover ${mover} --tracker ${TRACKER} --track --seed ${seed}
                      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
      if(rc EQUAL 77)
        message(STATUS "skipped: arena-stress cannot track with ${TRACKER} here: ${err}")
        return()
      endif()
      math(EXPR runs "${runs} + 1")
      if(NOT rc EQUAL 0)
        list(APPEND failed "seed ${seed} page ${ps} mover ${mover}: exit ${rc}: ${err}")
      endif()
    endforeach()
  endforeach()
  list(LENGTH failed nfailed)
  if(nfailed GREATER 0)
    list(JOIN failed "\n" text)
    message(FATAL_ERROR "${nfailed} of ${runs} runs failed:\n${text}")
  endif()
  message(STATUS "${runs} runs with --tracker ${TRACKER}, none missed a written page")
  return()
endif()

if(TARGET arena-stress)
  foreach(tracker sigsegv uffd)
    add_test(NAME stress_track_sweep_${tracker} COMMAND ${CMAKE_COMMAND} -DTOOL=$<TARGET_FILE:arena-stress>
             -DTRACKER=${tracker} -P ${CMAKE_CURRENT_LIST_FILE})
    set_tests_properties(stress_track_sweep_${tracker} PROPERTIES TIMEOUT 900 SKIP_REGULAR_EXPRESSION "skipped:"
                         ENVIRONMENT "ASAN_OPTIONS=handle_segv=0")
  endforeach()
endif()
