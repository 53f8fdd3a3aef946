# arena-compaction as ctest tests: a small fragmented heap, both compactors, every survivor
# verified (the demo exits non-zero otherwise), for the OS page and 16 KiB pages.
if(ARENA_BUILD_DEMOS)
  add_test(NAME demo_compaction
    COMMAND arena-compaction --heap 8M --survive 35 --seed 3 --svg ${CMAKE_CURRENT_BINARY_DIR}/compaction.svg)
  add_test(NAME demo_compaction_16k
    COMMAND arena-compaction --heap 8M --survive 20 --seed 4 --page-size 16K
            --svg ${CMAKE_CURRENT_BINARY_DIR}/compaction16k.svg)
  set_tests_properties(demo_compaction demo_compaction_16k PROPERTIES PASS_REGULAR_EXPRESSION "auto .*verified\n.*copy .*verified" TIMEOUT 300)
endif()
