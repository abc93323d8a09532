// Runs every registered native unit test (or those whose name contains argv[1]) and
// ends with "N passed, N failed": the closing line npm test and CI read.
#include <cstdio>
#include <cstring>
#include <exception>

#include "check.h"

namespace check {

std::vector<Test>& registry() {
  static std::vector<Test> tests;
  return tests;
}

static int failures_in_test = 0;

void fail(const char* file, int line, const std::string& what) {
  failures_in_test++;
  std::fprintf(stderr, "    %s:%d: %s\n", file, line, what.c_str());
}

}  // namespace check

int main(int argc, char** argv) {
  int passed = 0, failed = 0;
  for (const auto& t : check::registry()) {
    if (argc > 1 && std::strstr(t.name, argv[1]) == nullptr) continue;
    check::failures_in_test = 0;
    try {
      t.body();
    } catch (const std::exception& e) {
      check::fail(__FILE__, __LINE__, std::string("unexpected exception: ") + e.what());
    }
    if (check::failures_in_test == 0) {
      passed++;
      std::printf("  ok   %s\n", t.name);
    } else {
      failed++;
      std::printf("  FAIL %s\n", t.name);
    }
  }
  std::printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 && passed > 0 ? 0 : 1;
}
