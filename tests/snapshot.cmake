# tests/snapshot.cmake -- arena-snapshot as a test, on each tracker: every round's restored
# snapshot must match the live heap by checksum (the demo exits non-zero otherwise).
if(TARGET arena-snapshot)
  add_test(NAME demo_snapshot_sigsegv COMMAND arena-snapshot --tracker sigsegv --rounds 4)
  add_test(NAME demo_snapshot_auto COMMAND arena-snapshot --tracker auto --rounds 4)
  set_tests_properties(demo_snapshot_sigsegv demo_snapshot_auto PROPERTIES TIMEOUT 300)
endif()
