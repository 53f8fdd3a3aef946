# The README's embed recipe, run as written (included by tests/CMakeLists.txt): the shell block
# after the "embed-recipe" marker in README.md runs with `sh -e` in a copy of the source tree,
# with HOME pointing at an empty directory (the recipe installs into "$HOME/.local" and builds
# its app in "$HOME/arena-app"). LD_LIBRARY_PATH is unset, as in a user's shell. Afterwards the
# source tree must hold nothing new but build-embed/ (ignored by git): a user following the
# recipe in a clone is left with no untracked files.
#
# Run as a script (cmake -DSRC=<source dir> -DWORK=<scratch dir> -P readme.cmake) this file is
# that test.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  file(READ ${SRC}/README.md readme)
  string(FIND "${readme}" "<!-- embed-recipe" at)
  if(at LESS 0)
    message(FATAL_ERROR "README.md has no '<!-- embed-recipe' marker before its embed recipe")
  endif()
  string(SUBSTRING "${readme}" ${at} -1 rest)
  if(NOT rest MATCHES "```sh\n([^`]*)```")
    message(FATAL_ERROR "no ```sh block after the embed-recipe marker in README.md")
  endif()
  set(recipe "${CMAKE_MATCH_1}")
  message("-- the README's embed recipe:\n${recipe}")

  file(REMOVE_RECURSE ${WORK})
  file(MAKE_DIRECTORY ${WORK}/home)
  # The files a clone has; the source tree's own build directories stay behind.
  foreach(entry CMakeLists.txt README.md arena include cmake demos tests .ci)
    file(COPY ${SRC}/${entry} DESTINATION ${WORK}/src)
  endforeach()
  file(WRITE ${WORK}/recipe.sh "${recipe}")

  execute_process(COMMAND ${CMAKE_COMMAND} -E env --unset=LD_LIBRARY_PATH --unset=PKG_CONFIG_PATH
      --unset=CMAKE_PREFIX_PATH HOME=${WORK}/home sh -e -x ${WORK}/recipe.sh
    WORKING_DIRECTORY ${WORK}/src RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "the README's embed recipe failed (status ${rc})")
  endif()
  if(NOT out MATCHES "consumer: arena [0-9]+\\.[0-9]+\\.[0-9]+ works")
    message(FATAL_ERROR "the recipe's ./app did not say it works")
  endif()
  file(GLOB left RELATIVE ${WORK}/src LIST_DIRECTORIES true ${WORK}/src/* ${WORK}/src/.*)
  list(REMOVE_ITEM left CMakeLists.txt README.md arena include cmake demos tests .ci build-embed)
  if(left)
    message(FATAL_ERROR "the recipe left files in the source tree: ${left}")
  endif()
  file(REMOVE_RECURSE ${WORK})
  return()
endif()

# Sanitizer builds set flags the recipe's plain `cc` line does not carry; the plain build
# checks the recipe.
if(NOT ARENA_SANITIZE AND NOT ARENA_TSAN)
  add_test(NAME readme_embed_recipe COMMAND ${CMAKE_COMMAND} -DSRC=${PROJECT_SOURCE_DIR}
    -DWORK=${CMAKE_CURRENT_BINARY_DIR}/readme-embed -P ${CMAKE_CURRENT_LIST_FILE})
  set_tests_properties(readme_embed_recipe PROPERTIES LABELS install TIMEOUT 600)
endif()
