# macos-zig.cmake -- CMake toolchain: cross-compile engram for macOS on arm64
# (Apple silicon) from Linux, with `zig cc` as the compiler.  zig bundles the
# macOS libc headers and a Mach-O linker, so no SDK is needed.
#
# Used by tests/cross/macos.sh, which finds or installs zig and exports
# ENGRAM_ZIG; to rebuild by hand, export ENGRAM_ZIG (or put zig on PATH).
# The result is only compiled and linked, never run: this checks that the
# kqueue backend and the rest of the server build cleanly for macOS.
set(CMAKE_SYSTEM_NAME Darwin)
set(CMAKE_SYSTEM_PROCESSOR arm64)

set(CMAKE_C_COMPILER ${CMAKE_CURRENT_LIST_DIR}/zig-cc)
set(CMAKE_AR ${CMAKE_CURRENT_LIST_DIR}/zig-ar CACHE FILEPATH "zig ar" FORCE)
set(CMAKE_RANLIB ${CMAKE_CURRENT_LIST_DIR}/zig-ranlib CACHE FILEPATH "zig ranlib" FORCE)

# zig knows its own sysroot; keep CMake's Darwin module from asking xcrun or
# adding -arch/-isysroot flags meant for Apple's toolchain.
set(CMAKE_OSX_SYSROOT "" CACHE PATH "" FORCE)
set(CMAKE_OSX_ARCHITECTURES "" CACHE STRING "" FORCE)
set(CMAKE_OSX_DEPLOYMENT_TARGET "" CACHE STRING "" FORCE)

# Never look for programs in the target tree; libraries and headers only there.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
