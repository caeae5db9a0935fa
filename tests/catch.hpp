// Catch2 2.x (Debian 12) and 3.x (Ubuntu 24.04) behind one include.
//
// libtorch's c10 logging defines a CHECK macro of its own that aborts instead of reporting: a
// test that uses libtorch includes its libtorch headers BEFORE this file, and the macro is
// dropped here so Catch2's CHECK is the one in force.
#pragma once
#ifdef CHECK
#undef CHECK
#endif
#if defined(GPUJOB_CATCH2_V3)  // set by tests/CMakeLists.txt from the Catch2 CMake found
#include <catch2/catch_all.hpp>
#else
#include <catch2/catch.hpp>
#endif
