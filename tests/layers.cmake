# tests/layers.cmake -- the layering check of docs/design.md §2 as a ctest: prints the file
# call graph of arena/ (from nm over the shipped static library's object files) and fails on
# a circle, on a mapping wrapper called outside the mapping, view and tracking layers, and
# on a kernel call outside os.c (tools/check-layers.sh).
add_test(NAME layers COMMAND sh ${PROJECT_SOURCE_DIR}/tools/check-layers.sh $<TARGET_FILE:arena_static>)
set_tests_properties(layers PROPERTIES ENVIRONMENT "NM=${CMAKE_NM}")

# Every requirement a comment in arena/ cites (.req.* tags, or the older R<n>.<m> numbers) is
# defined in docs/design.md (tools/check-req-tags.sh).
add_test(NAME req_tags COMMAND sh ${PROJECT_SOURCE_DIR}/tools/check-req-tags.sh ${PROJECT_SOURCE_DIR})
