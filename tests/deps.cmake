# .ci/deps when it cannot install (included by tests/CMakeLists.txt): run as a user who is not
# root, with no sudo on PATH, and a package that is surely missing, it must install nothing, name
# the missing packages and the apt-get command for an administrator, and exit 1; without
# dpkg-query (not Debian) it must say so and exit 1. PATH holds only links to the tools the
# script needs, so no sudo or apt-get can run whatever the machine has. As root the script runs
# as nobody (setpriv); without setpriv, or where nobody cannot run it, the test skips (exit 77).
#
# Run as a script (cmake -DDEPS=<.ci/deps> -P deps.cmake) this file is that test. Its scratch
# directory is in /tmp, where an ordinary user can reach it (a build tree may not be); nothing
# in it is ever chmod'ed (a chmod would follow the links to the system's tools).

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  string(RANDOM LENGTH 10 tag)
  set(WORK /tmp/arena-ci-deps-${tag})
  file(MAKE_DIRECTORY ${WORK}/bin ${WORK}/bin-nodpkg)
  file(COPY ${DEPS} DESTINATION ${WORK})
  get_filename_component(script ${DEPS} NAME)
  foreach(tool bash dpkg-query grep id sed)
    find_program(path_${tool} ${tool} NO_CACHE)
    if(NOT path_${tool})
      file(REMOVE_RECURSE ${WORK})
      message(FATAL_ERROR "no ${tool} on this machine")
    endif()
    file(CREATE_LINK ${path_${tool}} ${WORK}/bin/${tool} SYMBOLIC)
    if(NOT tool STREQUAL "dpkg-query")
      file(CREATE_LINK ${path_${tool}} ${WORK}/bin-nodpkg/${tool} SYMBOLIC)
    endif()
  endforeach()

  execute_process(COMMAND id -u OUTPUT_VARIABLE uid OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(as_user "")
  if(uid STREQUAL "0")
    find_program(setpriv setpriv NO_CACHE)
    if(setpriv)
      set(as_user ${setpriv} --reuid=65534 --regid=65534 --clear-groups)
      execute_process(COMMAND ${as_user} ${WORK}/bin/bash -c "test -r '${WORK}/${script}'" RESULT_VARIABLE rc)
    endif()
    if(NOT setpriv OR NOT rc EQUAL 0)
      message("skipped: running as root and cannot run the script as an ordinary user")
      file(REMOVE_RECURSE ${WORK})
      cmake_language(EXIT 77)
    endif()
  endif()

  set(problem "")
  foreach(case debian not-debian)
    if(case STREQUAL "debian")
      set(bin ${WORK}/bin)
      set(want "missing Debian packages: .*arena-no-such-package.*not root and sudo is not installed.*apt-get update && apt-get install --no-install-recommends .*arena-no-such-package")
    else()
      set(bin ${WORK}/bin-nodpkg)
      set(want "not a Debian system.*libsigsegv-dev")
    endif()
    execute_process(COMMAND ${as_user} ${bin}/bash -c
        "PATH='${bin}' ARENA_EXTRA_PKGS=arena-no-such-package exec bash '${WORK}/${script}' demo"
      RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 60)
    message("--- ${case}: status ${rc}\n${out}${err}")
    string(REPLACE "\n" " " flat "${err}")
    if(NOT rc STREQUAL "1")
      set(problem ".ci/deps (${case}) exited with '${rc}', expected 1")
    elseif(NOT flat MATCHES "${want}")
      set(problem ".ci/deps (${case}) did not print what to install and how ('${want}')")
    elseif(err MATCHES "installing missing packages")
      set(problem ".ci/deps (${case}) tried to install")
    endif()
    if(problem)
      break()
    endif()
  endforeach()
  file(REMOVE_RECURSE ${WORK})
  if(problem)
    message(FATAL_ERROR "${problem}")
  endif()
  return()
endif()

add_test(NAME ci_deps_cannot_install COMMAND ${CMAKE_COMMAND} -DDEPS=${PROJECT_SOURCE_DIR}/.ci/deps
  -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(ci_deps_cannot_install PROPERTIES SKIP_RETURN_CODE 77 TIMEOUT 120)
