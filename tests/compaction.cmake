# arena-compaction as ctest tests: a small fragmented heap, both compactors, every survivor
# verified (the demo exits non-zero otherwise), for the OS page and 16 KiB pages; --survive as
# the README writes it (a fraction) and as a percentage (a bare number is refused: demos.cmake).
if(ARENA_BUILD_DEMOS)
  set(_verified "survive.*remapping +copying.*checked byte for byte +verified +verified")
  add_test(NAME demo_compaction
    COMMAND arena-compaction --heap 8M --survive 0.35 --seed 3 --svg ${CMAKE_CURRENT_BINARY_DIR}/compaction.svg)
  add_test(NAME demo_compaction_16k
    COMMAND arena-compaction --heap 8M --survive 20% --seed 4 --page-size 16K
            --svg ${CMAKE_CURRENT_BINARY_DIR}/compaction16k.svg)
  set_tests_properties(demo_compaction demo_compaction_16k PROPERTIES PASS_REGULAR_EXPRESSION "${_verified}" TIMEOUT 300)
  # --survive 0.3 is 30 % of the objects (it once meant 0 % and still said "verified").
  add_test(NAME demo_compaction_survive_fraction COMMAND arena-compaction --heap 4M --survive 0.3 --no-svg)
  add_test(NAME demo_compaction_survive_percent COMMAND arena-compaction --heap 4M --survive 30% --no-svg)
  set_tests_properties(demo_compaction_survive_fraction demo_compaction_survive_percent PROPERTIES
    PASS_REGULAR_EXPRESSION "[0-9]+ survive \\((29|30|31)\\.[0-9] %; asked for 30 %\\).*verified +verified" TIMEOUT 300)
endif()
