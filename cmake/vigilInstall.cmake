# Install rules and the CMake package "vigil" (find_package(vigil 0.1) -> vigil::vigil).
# Included from the top-level CMakeLists.txt when VIGIL_INSTALL is ON.

include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(VIGIL_INSTALL_CMAKEDIR "${CMAKE_INSTALL_LIBDIR}/cmake/vigil"
    CACHE STRING "Where to install vigil's CMake package files, relative to the prefix")
mark_as_advanced(VIGIL_INSTALL_CMAKEDIR)

set(_vigil_installed_targets vigil)
if(VIGIL_HAS_REDIS)
  list(APPEND _vigil_installed_targets vigil_redis)
endif()
install(TARGETS ${_vigil_installed_targets}
  EXPORT vigilTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT vigil_development
  LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}" COMPONENT vigil_runtime
          NAMELINK_COMPONENT vigil_development
  RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}" COMPONENT vigil_runtime
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")

# All of include/vigil (public headers and detail/), plus the generated version.hpp.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/vigil"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  COMPONENT vigil_development
  FILES_MATCHING PATTERN "*.hpp")
install(FILES "${VIGIL_GENERATED_INCLUDE_DIR}/vigil/version.hpp"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}/vigil"
  COMPONENT vigil_development)

# With VIGIL_FETCH_DEPS, a fetched Asio is installed next to vigil's headers so that the
# installed package is usable (its vigilConfig.cmake then looks there first). fmt installs itself.
if(VIGIL_FETCHED_ASIO)
  install(DIRECTORY "${VIGIL_FETCHED_ASIO_INCLUDE_DIR}/asio"
    DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT vigil_development)
  install(FILES "${VIGIL_FETCHED_ASIO_INCLUDE_DIR}/asio.hpp"
    DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}" COMPONENT vigil_development)
endif()
set(VIGIL_CONFIG_BUNDLED_ASIO ${VIGIL_FETCHED_ASIO})
set(VIGIL_CONFIG_HAS_REDIS ${VIGIL_HAS_REDIS})

install(EXPORT vigilTargets
  NAMESPACE vigil::
  FILE vigilTargets.cmake
  DESTINATION "${VIGIL_INSTALL_CMAKEDIR}"
  COMPONENT vigil_development)

# Installed package: <prefix>/lib/cmake/vigil/{vigilConfig,vigilConfigVersion,vigilTargets,Findasio,Findhiredis}.cmake
configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/vigilConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/cmake/install/vigilConfig.cmake"
  INSTALL_DESTINATION "${VIGIL_INSTALL_CMAKEDIR}")
# 0.x: a new minor version may break the API, so only 0.1.* satisfies find_package(vigil 0.1).
write_basic_package_version_file("${PROJECT_BINARY_DIR}/vigilConfigVersion.cmake"
  VERSION ${PROJECT_VERSION}
  COMPATIBILITY SameMinorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/cmake/install/vigilConfig.cmake"
    "${PROJECT_BINARY_DIR}/vigilConfigVersion.cmake"
    "${PROJECT_SOURCE_DIR}/cmake/Findasio.cmake"
    "${PROJECT_SOURCE_DIR}/cmake/Findhiredis.cmake"
  DESTINATION "${VIGIL_INSTALL_CMAKEDIR}"
  COMPONENT vigil_development)

# Build-tree package: find_package(vigil) with vigil_DIR=<build dir> works without installing.
# Skipped when fmt was fetched: fmt's build tree is not an exported package.
if(NOT VIGIL_FETCHED_FMT)
  set(VIGIL_CONFIG_BUNDLED_ASIO FALSE)
  export(EXPORT vigilTargets
    NAMESPACE vigil::
    FILE "${PROJECT_BINARY_DIR}/vigilTargets.cmake")
  configure_package_config_file("${PROJECT_SOURCE_DIR}/cmake/vigilConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/vigilConfig.cmake"
    INSTALL_DESTINATION "${PROJECT_BINARY_DIR}"
    INSTALL_PREFIX "${PROJECT_BINARY_DIR}")
  configure_file("${PROJECT_SOURCE_DIR}/cmake/Findasio.cmake"
    "${PROJECT_BINARY_DIR}/Findasio.cmake" COPYONLY)
  configure_file("${PROJECT_SOURCE_DIR}/cmake/Findhiredis.cmake"
    "${PROJECT_BINARY_DIR}/Findhiredis.cmake" COPYONLY)
endif()
