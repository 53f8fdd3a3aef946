# prog_memcap creates a memory cgroup to run in; where it cannot, it exits 77 with a message.
if(TEST prog_memcap)
  set_tests_properties(prog_memcap PROPERTIES SKIP_RETURN_CODE 77)
endif()
