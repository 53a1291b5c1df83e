# aarch64.cmake -- cross toolchain for building engram's core on x86-64 and
# running its unit tests under qemu-aarch64 (see tests/cross/arm64.sh).
#
# Debian packages this relies on: gcc-aarch64-linux-gnu (compiler, libc6-dev
# sysroot in /usr/aarch64-linux-gnu), qemu-user, libcmocka-dev:arm64
# (multiarch: libcmocka.so in /usr/lib/aarch64-linux-gnu, cmocka.h in the
# shared /usr/include, since it is the same on every architecture).
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)

set(ENGRAM_CROSS_TRIPLE aarch64-linux-gnu)
set(ENGRAM_CROSS_SYSROOT /usr/${ENGRAM_CROSS_TRIPLE})
set(ENGRAM_CROSS_MULTIARCH /usr/lib/${ENGRAM_CROSS_TRIPLE})

set(CMAKE_C_COMPILER ${ENGRAM_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${ENGRAM_CROSS_TRIPLE}-g++)

# Libraries and headers come from the cross sysroot only; host programs
# (python, qemu) are still found on the host.
set(CMAKE_FIND_ROOT_PATH ${ENGRAM_CROSS_SYSROOT})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# cmocka lives outside that root (multiarch lib dir, shared /usr/include), so
# name it directly.  /usr/include goes in with -idirafter, i.e. searched
# *after* the sysroot's headers: only headers the sysroot lacks (cmocka.h)
# come from the host, never the host's libc headers.  Because the compiler
# reports it as a built-in search directory, CMake also treats
# CMOCKA_INCLUDE_DIR=/usr/include as implicit and does not add -I/usr/include.
set(CMAKE_C_FLAGS_INIT "-idirafter /usr/include")
set(CMOCKA_INCLUDE_DIR /usr/include CACHE PATH "cmocka.h (architecture-independent)")
set(CMOCKA_LIBRARY ${ENGRAM_CROSS_MULTIARCH}/libcmocka.so CACHE FILEPATH "arm64 libcmocka")

# ctest runs every test binary through qemu.  -L maps the guest's absolute
# paths into the sysroot (so /lib/ld-linux-aarch64.so.1 is the cross
# loader).  LD_LIBRARY_PATH=/lib (i.e. the sysroot's lib after that mapping)
# makes the loader take libc from the same sysroot as itself -- its default
# search would otherwise find libc6:arm64's copy in /lib/aarch64-linux-gnu,
# a different build.  libcmocka.so.0 is not in the sysroot, so the search
# falls through to the multiarch dir and finds it there.
set(CMAKE_CROSSCOMPILING_EMULATOR
    qemu-${CMAKE_SYSTEM_PROCESSOR};-L;${ENGRAM_CROSS_SYSROOT};-E;LD_LIBRARY_PATH=/lib)
