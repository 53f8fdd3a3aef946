# tests/tools.cmake -- ctest registrations for arena-stress and arena-bench.
#
# Included by tests/CMakeLists.txt to register the tests; the same file also runs as a
# script (cmake -P tests/tools.cmake) to do what the tests check:
#   TOOL_CHECK=bench_json   run arena-bench and require every output line to be a JSON
#                           object with bench, metric, value, unit, baseline, ratio
#   TOOL_CHECK=determinism  run arena-stress twice with one thread and the same seed and
#                           require the same digest of the survivors
# No timing is checked anywhere: figures depend on the machine.

if(CMAKE_SCRIPT_MODE_FILE)
  if(TOOL_CHECK STREQUAL "bench_json")
    execute_process(COMMAND ${TOOL} --quick OUTPUT_VARIABLE out RESULT_VARIABLE rc)
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "arena-bench --quick exited with ${rc}")
    endif()
    string(REPLACE "\n" ";" lines "${out}")
    set(rows 0)
    foreach(line IN LISTS lines)
      if(line STREQUAL "")
        continue()
      endif()
      foreach(key bench metric value unit baseline ratio)
        string(JSON type ERROR_VARIABLE err TYPE "${line}" ${key})
        if(err)
          message(FATAL_ERROR "not a JSON row with '${key}': ${line}\n${err}")
        endif()
      endforeach()
      string(JSON bench GET "${line}" bench)
      string(JSON vtype TYPE "${line}" value)
      string(JSON btype TYPE "${line}" baseline)
      string(JSON rtype TYPE "${line}" ratio)
      # A null value must say why; a number with a baseline must carry the ratio.
      if(vtype STREQUAL "NULL")
        string(JSON note ERROR_VARIABLE err GET "${line}" note)
        if(err)
          message(FATAL_ERROR "row with a null value and no note: ${line}")
        endif()
      elseif(btype STREQUAL "NUMBER")
        string(JSON baseline GET "${line}" baseline)
        if(NOT baseline EQUAL 0 AND NOT rtype STREQUAL "NUMBER")
          message(FATAL_ERROR "row with a baseline but no ratio: ${line}")
        endif()
      endif()
      math(EXPR rows "${rows} + 1")
    endforeach()
    foreach(row compact alloc release track fork runtime)
      if(NOT out MATCHES "\"bench\":\"${row}")
        message(FATAL_ERROR "arena-bench printed no row for ${row}")
      endif()
    endforeach()
    message(STATUS "${rows} valid JSON rows")
  elseif(TOOL_CHECK STREQUAL "determinism")
    set(args --threads 1 --ops 30000 --cycle-ops 5000 --seed 12345 --heap 256M)
    foreach(run 1 2)
      execute_process(COMMAND ${TOOL} ${args} OUTPUT_VARIABLE out${run} RESULT_VARIABLE rc)
      if(rc EQUAL 77)
        message(STATUS "skipped: the library lacks what arena-stress needs")
        return()
      elseif(NOT rc EQUAL 0)
        message(FATAL_ERROR "arena-stress run ${run} exited with ${rc}\n${out${run}}")
      endif()
      string(REGEX MATCH "digest [0-9a-f]+" digest${run} "${out${run}}")
    endforeach()
    if(NOT digest1 OR NOT digest1 STREQUAL digest2)
      message(FATAL_ERROR "same seed, different runs: '${digest1}' vs '${digest2}'")
    endif()
    message(STATUS "deterministic: ${digest1}")
  else()
    message(FATAL_ERROR "TOOL_CHECK must be bench_json or determinism")
  endif()
  return()
endif()

if(TARGET arena-stress)
  # Exit status 77: the library lacks a feature the mode needs (skipped, not failed).
  add_test(NAME stress_short COMMAND arena-stress --threads 2 --ops 200000 --heap 256M)
  add_test(NAME stress_mirror COMMAND arena-stress --threads 2 --ops 100000 --heap 256M --mirror)
  add_test(NAME stress_track COMMAND arena-stress --threads 2 --ops 100000 --heap 256M --track)
  add_test(NAME stress_track_sigsegv COMMAND arena-stress --threads 2 --ops 60000 --heap 256M --track
           --tracker sigsegv --page-size 16K)
  # mremap mover + userfaultfd tracking: a collection re-created a mapping that kept its file
  # page, unregistered, and the next take failed with EPERM.
  add_test(NAME stress_track_uffd_mremap COMMAND arena-stress --threads 2 --ops 200000 --seed 7
           --heap 256M --mover mremap --track --tracker uffd)
  add_test(NAME stress_malloc COMMAND arena-stress --threads 2 --ops 200000 --baseline malloc)
  add_test(NAME stress_determinism COMMAND ${CMAKE_COMMAND} -DTOOL_CHECK=determinism
           -DTOOL=$<TARGET_FILE:arena-stress> -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(stress_short stress_mirror stress_track stress_track_sigsegv stress_track_uffd_mremap stress_malloc
                       stress_determinism
                       PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 300)
  set_tests_properties(stress_determinism PROPERTIES SKIP_REGULAR_EXPRESSION "skipped:")
endif()

if(TARGET arena-bench)
  # arena-lisp's programs are found through the source tree.
  target_compile_definitions(arena-bench PRIVATE ARENA_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME bench_quick COMMAND ${CMAKE_COMMAND} -DTOOL_CHECK=bench_json
           -DTOOL=$<TARGET_FILE:arena-bench> -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(bench_quick PROPERTIES TIMEOUT 300)
endif()
