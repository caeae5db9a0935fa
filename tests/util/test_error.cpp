
#include "gpujob/util/error.hpp"
#include "catch.hpp"  // last: libtorch headers define a CHECK of their own

TEST_CASE("fail() builds one line from its parts") {
  try {
    gpujob::fail("tensor ", "model.norm.weight", ": expected [", 64, "], found [", 32, "]");
    FAIL("no exception");
  } catch (const gpujob::Error& e) {
    REQUIRE(std::string(e.what()) == "tensor model.norm.weight: expected [64], found [32]");
  }
}

TEST_CASE("GPUJOB_CHECK throws only when the condition is false") {
  auto check_sum = [](int sum) { GPUJOB_CHECK(sum == 2, "sum is ", sum); };
  REQUIRE_NOTHROW(check_sum(2));
  REQUIRE_THROWS_WITH(check_sum(3), "sum is 3");
}
