# The command-line convention every arena-* program follows (README "Demos"), as one ctest per
# program (included by tests/CMakeLists.txt): `--help` prints a usage text starting "usage: <name>"
# on stdout, with the exit statuses, nothing on stderr, and exits 0; an unknown option prints a message on stderr,
# nothing on stdout, and exits 64 (EX_USAGE). Exit 2 is reserved for "the VMA budget refused
# the layout" and 1 for a failure, so neither may stand for a bad command line.
#
# Run as a script (cmake -DPROG=<path> -DNAME=<arena-x> -P conventions.cmake) this file is that test.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  set(problems "")
  # stdin is empty (not a terminal) so a program that wrongly ignores its arguments and reads
  # input ends at once instead of waiting.
  set(null_in /dev/null)
  execute_process(COMMAND ${PROG} --help INPUT_FILE ${null_in} RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc STREQUAL "0")
    string(APPEND problems "  --help exited with '${rc}', expected 0\n")
  endif()
  if(NOT out MATCHES "^usage: ${NAME}")
    string(APPEND problems "  --help did not print 'usage: ${NAME} ...' first on stdout\n")
  endif()
  if(NOT err STREQUAL "")
    string(APPEND problems "  --help wrote to stderr: ${err}\n")
  endif()
  # The usage says what the exit statuses mean (the codes vary: 2 and 77 only where they apply).
  if(NOT out MATCHES "[Ee]xit status")
    string(APPEND problems "  --help does not list the exit statuses ('Exit status: ...')\n")
  endif()
  message("--- ${NAME} --help: status ${rc}\n${out}${err}")

  execute_process(COMMAND ${PROG} --no-such-option INPUT_FILE ${null_in} RESULT_VARIABLE rc
    OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
  if(NOT rc STREQUAL "64")
    string(APPEND problems "  --no-such-option exited with '${rc}', expected 64 (a bad command line)\n")
  endif()
  if(err STREQUAL "")
    string(APPEND problems "  --no-such-option printed no message on stderr\n")
  endif()
  if(NOT out STREQUAL "")
    string(APPEND problems "  --no-such-option wrote to stdout: ${out}\n")
  endif()
  message("--- ${NAME} --no-such-option: status ${rc}\n${out}${err}")

  if(problems)
    message(FATAL_ERROR "${NAME} does not follow the command-line convention:\n${problems}")
  endif()
  return()
endif()

if(NOT ARENA_BUILD_DEMOS)
  return()
endif()

# Every executable target named arena-* in the project, so a new program is checked too.
get_property(_arena_targets DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
foreach(target IN LISTS _arena_targets)
  get_target_property(_type ${target} TYPE)
  if(NOT target MATCHES "^arena-" OR NOT _type STREQUAL "EXECUTABLE")
    continue()
  endif()
  add_test(NAME convention_${target} COMMAND ${CMAKE_COMMAND} "-DPROG=$<TARGET_FILE:${target}>"
    -DNAME=${target} -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(convention_${target} PROPERTIES LABELS "demo;convention" TIMEOUT 120)
endforeach()

