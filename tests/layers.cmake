# tests/layers.cmake -- the layering check of docs/design.md §2 as a ctest: prints the file
# call graph of arena/ (from nm over the shipped static library's object files) and fails on
# a circle, on a mapping wrapper called outside the mapping, view and tracking layers, and
# on a kernel call outside os.c (tools/check-layers.sh).
add_test(NAME layers COMMAND sh ${PROJECT_SOURCE_DIR}/tools/check-layers.sh $<TARGET_FILE:arena_static>)
set_tests_properties(layers PROPERTIES ENVIRONMENT "NM=${CMAKE_NM}")

# Every requirement tag cited in arena/, include/, tests/, demos/ and docs/ is defined in
# docs/design.md, no code cites a former R<n>.<m> number, no arena/ comment states a measurement
# (tools/check-req-tags.sh).
add_test(NAME req_tags COMMAND sh ${PROJECT_SOURCE_DIR}/tools/check-req-tags.sh ${PROJECT_SOURCE_DIR})
