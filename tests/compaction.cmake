# arena-compaction as ctest tests (included by tests/CMakeLists.txt): a small fragmented heap,
# both compactors, every survivor verified (the demo exits 1 otherwise), for the OS page and
# 16 KiB pages; --survive as the README writes it (a fraction) and as a percentage (a bare
# number is refused: demos.cmake); and the heap map it writes.
#
# Run as a script (cmake -DPROG=.. -DARGS=a|b -DSVG=<file> -P compaction.cmake) this file runs
# the demo, requires exit 0 and "verified" for both compactors, and requires the SVG heap map
# to be a whole document with every panel, the legends and the numbers of both compactors,
# whose page counts add up to the table's and quote the collector's own.

if(CMAKE_SCRIPT_MODE_FILE STREQUAL CMAKE_CURRENT_LIST_FILE)
  string(REPLACE "|" ";" args "${ARGS}")
  file(REMOVE ${SVG})
  execute_process(COMMAND ${PROG} ${args} --svg ${SVG} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  message("${out}${err}")
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "arena-compaction exited with ${rc}")
  endif()
  if(NOT out MATCHES "checked byte for byte +verified +verified" OR NOT out MATCHES "heap map: ${SVG}")
    message(FATAL_ERROR "arena-compaction did not verify both compactors or name its heap map")
  endif()
  file(READ ${SVG} svg)
  foreach(piece "^<svg " "</svg>\n$" "Before the collection: survivors in each page"
          "Remapping compactor \\(auto\\): what happened to each page"
          "Copying compactor \\(copy\\): what happened to each page"
          "After, remapping: where each page's contents came from"
          "After, copying: where each page's contents came from"
          "How full of survivors a page is" "What happened to a page" "no page at this address"
          "[0-9]+ pages with no survivor, now free" "[0-9]+ live pages copied" "objects evacuated"
          "pause [0-9.]+ ms; +every survivor verified" "class='axis' text-anchor='end'>\\+0<"
          "[0-9]+ live pages copied whole" "[0-9]+ filled by evacuation" "The collector's own count")
    if(NOT svg MATCHES "${piece}")
      message(FATAL_ERROR "the heap map ${SVG} lacks '${piece}'")
    endif()
  endforeach()
  if(svg MATCHES "copy_below")
    message(FATAL_ERROR "the heap map ${SVG} uses the field name copy_below instead of words")
  endif()
  # The figure and the table count the same pages: the figure's classes add up to the
  # collector's pages in use after, for both compactors, and it quotes the collector's counts.
  if(NOT out MATCHES "\n  heap pages in use after +([0-9]+) +([0-9]+)")
    message(FATAL_ERROR "no 'heap pages in use after' in the table")
  endif()
  set(after_a ${CMAKE_MATCH_1})
  set(after_c ${CMAKE_MATCH_2})
  if(NOT out MATCHES "together: heap pages in use after +${after_a} +${after_c}\n")
    message(FATAL_ERROR "the heap map's page classes do not add up to the collector's ${after_a} / ${after_c}")
  endif()
  if(NOT out MATCHES "live pages left where they were +([0-9]+) +([0-9]+)")
    message(FATAL_ERROR "no 'live pages left where they were' in the table")
  endif()
  set(in_place ${CMAKE_MATCH_1} ${CMAKE_MATCH_2})
  foreach(n ${after_a} ${after_c})
    if(NOT svg MATCHES "The ${n} pages in use after the collection")
      message(FATAL_ERROR "the heap map does not count the ${n} pages in use after")
    endif()
  endforeach()
  foreach(n ${in_place})
    if(NOT svg MATCHES "then treated it: ${n} left in place")
      message(FATAL_ERROR "the heap map does not quote the collector's ${n} pages left in place")
    endif()
  endforeach()
  return()
endif()

if(NOT ARENA_BUILD_DEMOS OR NOT TARGET arena-compaction)
  return()
endif()
function(arena_compaction_test name)
  list(JOIN ARGN "|" args)
  add_test(NAME ${name} COMMAND ${CMAKE_COMMAND} "-DPROG=$<TARGET_FILE:arena-compaction>" "-DARGS=${args}"
    -DSVG=${CMAKE_CURRENT_BINARY_DIR}/${name}.svg -P ${CMAKE_CURRENT_FUNCTION_LIST_FILE})
  set_tests_properties(${name} PROPERTIES LABELS demo TIMEOUT 300)
endfunction()
arena_compaction_test(demo_compaction --heap 8M --survive 0.35 --seed 3)
arena_compaction_test(demo_compaction_16k --heap 8M --survive 20% --seed 4 --page-size 16K)

# --survive 0.3 is 30 % of the objects (it once meant 0 % and still said "verified").
add_test(NAME demo_compaction_survive_fraction COMMAND arena-compaction --heap 8M --survive 0.3 --no-svg)
add_test(NAME demo_compaction_survive_percent COMMAND arena-compaction --heap 8M --survive 30% --no-svg)
set_tests_properties(demo_compaction_survive_fraction demo_compaction_survive_percent PROPERTIES
  PASS_REGULAR_EXPRESSION "[0-9]+ survive \\((2[7-9]|3[0-3])\\.[0-9] %; asked for 30 %\\).*verified +verified"
  LABELS demo TIMEOUT 300)
