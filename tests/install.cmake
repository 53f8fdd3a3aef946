# The packaging test (included by tests/CMakeLists.txt): `cmake --install` the build tree into a
# temporary prefix, then build and run tests/consumer against it three times: through
# find_package(arena) -> arena::arena, through pkg-config in CMake, and with the README's
# one-liner `cc consumer.c $(pkg-config --cflags --libs arena)`, PKG_CONFIG_PATH pointing
# into the prefix. Every consumer runs with LD_LIBRARY_PATH unset, as a user runs it; the
# pkg-config ones must load libarena.so.0 from the prefix (ldd says which file it loads).
#
# Run as a script (cmake -DBUILD_DIR=.. -DCONSUMER_SRC=.. -DWORK=.. -DLIBDIR=.. -P install.cmake)
# this file is that test.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  function(run what)
    execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
    message("-- ${what}\n${out}${err}")
    if(NOT rc EQUAL 0)
      message(FATAL_ERROR "${what} failed (status ${rc}): ${ARGN}")
    endif()
  endfunction()

  set(prefix ${WORK}/prefix)
  file(REMOVE_RECURSE ${WORK})
  run("install into ${prefix}" ${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
  foreach(f include/arena.h ${LIBDIR}/libarena.a ${LIBDIR}/pkgconfig/arena.pc
            ${LIBDIR}/cmake/arena/arenaConfig.cmake ${LIBDIR}/cmake/arena/arenaTargets.cmake)
    if(NOT EXISTS ${prefix}/${f})
      message(FATAL_ERROR "the install is missing ${f}")
    endif()
  endforeach()

  set(flags -DCMAKE_C_COMPILER=${C_COMPILER} "-DCMAKE_C_FLAGS=${C_FLAGS}" "-DCMAKE_EXE_LINKER_FLAGS=${C_FLAGS}")
  foreach(mode cmake pkgconfig)
    set(bin ${WORK}/consumer-${mode})
    if(mode STREQUAL "cmake")
      run("configure the consumer with find_package(arena)" ${CMAKE_COMMAND} -S ${CONSUMER_SRC} -B ${bin}
        -DCMAKE_PREFIX_PATH=${prefix} -DCONSUMER_USE_PKGCONFIG=OFF ${flags})
    else()
      # Only the temporary prefix may answer: an arena installed on the system must not.
      run("configure the consumer with pkg-config" ${CMAKE_COMMAND} -E env
        PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig PKG_CONFIG_LIBDIR=${prefix}/${LIBDIR}/pkgconfig
        ${CMAKE_COMMAND} -S ${CONSUMER_SRC} -B ${bin} -DCONSUMER_USE_PKGCONFIG=ON ${flags})
    endif()
    run("build the consumer (${mode})" ${CMAKE_COMMAND} --build ${bin})
    run("run the consumer (${mode})" ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${bin}/consumer)
  endforeach()

  # The README's recipe: a compiler command line and nothing else.
  set(bin ${WORK}/consumer-cc)
  run("build the consumer with cc and pkg-config" ${CMAKE_COMMAND} -E env
    PKG_CONFIG_PATH=${prefix}/${LIBDIR}/pkgconfig PKG_CONFIG_LIBDIR=${prefix}/${LIBDIR}/pkgconfig
    sh -c "${C_COMPILER} ${C_FLAGS} -o '${bin}' '${CONSUMER_SRC}/consumer.c' $(pkg-config --cflags --libs arena)")
  run("run the consumer (cc)" ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ${bin})

  # Both pkg-config consumers link the shared library: it must come from the prefix.
  file(REAL_PATH ${prefix}/${LIBDIR} real_libdir)
  foreach(exe ${WORK}/consumer-pkgconfig/consumer ${WORK}/consumer-cc)
    execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH ldd ${exe}
      OUTPUT_VARIABLE ldd RESULT_VARIABLE rc)
    string(REGEX MATCH "libarena\\.so\\.0 => ([^ ]+)" hit "${ldd}")
    if(NOT hit)
      message(FATAL_ERROR "${exe} does not load libarena.so.0 (status ${rc}):\n${ldd}")
    endif()
    file(REAL_PATH ${CMAKE_MATCH_1} loaded)
    get_filename_component(loaded_dir ${loaded} DIRECTORY)
    if(NOT loaded_dir STREQUAL real_libdir)
      message(FATAL_ERROR "${exe} loads ${loaded}, not the library installed in ${real_libdir}")
    endif()
    message("-- ${exe} loads ${loaded}")
  endforeach()
  file(REMOVE_RECURSE ${WORK})
  return()
endif()

set(_arena_consumer_flags "")
if(ARENA_SANITIZE)
  set(_arena_consumer_flags "-fsanitize=address,undefined")
elseif(ARENA_TSAN)
  set(_arena_consumer_flags "-fsanitize=thread")
endif()
add_test(NAME install_consumer COMMAND ${CMAKE_COMMAND}
  -DBUILD_DIR=${PROJECT_BINARY_DIR} -DCONSUMER_SRC=${CMAKE_CURRENT_LIST_DIR}/consumer
  -DWORK=${CMAKE_CURRENT_BINARY_DIR}/install-consumer -DLIBDIR=${CMAKE_INSTALL_LIBDIR}
  -DC_COMPILER=${CMAKE_C_COMPILER} "-DC_FLAGS=${_arena_consumer_flags}"
  -P ${CMAKE_CURRENT_LIST_FILE})
set_tests_properties(install_consumer PROPERTIES LABELS install TIMEOUT 300
  ENVIRONMENT "ASAN_OPTIONS=detect_leaks=0")
