# FindSigsegv -- find libsigsegv (Debian: libsigsegv-dev), which ships no pkg-config file.
# Defines Sigsegv_FOUND, Sigsegv_INCLUDE_DIR, Sigsegv_LIBRARY and the target Sigsegv::Sigsegv.
find_path(Sigsegv_INCLUDE_DIR NAMES sigsegv.h)
find_library(Sigsegv_LIBRARY NAMES sigsegv)
include(FindPackageHandleStandardArgs)
find_package_handle_standard_args(Sigsegv
  REQUIRED_VARS Sigsegv_LIBRARY Sigsegv_INCLUDE_DIR
  REASON_FAILURE_MESSAGE "libsigsegv is required: on Debian/Ubuntu run 'sudo apt-get install libsigsegv-dev'")
if(Sigsegv_FOUND AND NOT TARGET Sigsegv::Sigsegv)
  add_library(Sigsegv::Sigsegv UNKNOWN IMPORTED)
  set_target_properties(Sigsegv::Sigsegv PROPERTIES
    IMPORTED_LOCATION "${Sigsegv_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${Sigsegv_INCLUDE_DIR}")
endif()
mark_as_advanced(Sigsegv_INCLUDE_DIR Sigsegv_LIBRARY)
