// A tiny self-contained test harness for the native unit tests: TEST(name) registers
// a test, CHECK/CHECK_EQ/CHECK_THROWS record failures with file:line, and main()
// (check_main.cc) runs them all and ends with the line "N passed, N failed".
#pragma once
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

namespace check {

struct Test {
  const char* name;
  std::function<void()> body;
};
std::vector<Test>& registry();
/** Records a failed check of the running test. */
void fail(const char* file, int line, const std::string& what);

struct Registrar {
  Registrar(const char* name, std::function<void()> body) { registry().push_back({name, std::move(body)}); }
};

/** Prints a value; small integers as numbers, not characters. */
template <typename T>
void print(std::ostringstream& s, const T& v) {
  if constexpr (std::is_arithmetic_v<T>)
    s << +v;
  else
    s << '"' << v << '"';
}
template <typename A, typename B>
std::string describe(const A& a, const B& b) {
  std::ostringstream s;
  print(s, a);
  s << " != ";
  print(s, b);
  return s.str();
}

}  // namespace check

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)
#define TEST(name)                                                                    \
  static void CHECK_CAT(test_, __LINE__)();                                           \
  static check::Registrar CHECK_CAT(registrar_, __LINE__)(name, CHECK_CAT(test_, __LINE__)); \
  static void CHECK_CAT(test_, __LINE__)()
#define CHECK(cond) \
  do {              \
    if (!(cond)) check::fail(__FILE__, __LINE__, #cond); \
  } while (0)
#define CHECK_EQ(a, b) \
  do {                 \
    auto&& check_a_ = (a); \
    auto&& check_b_ = (b); \
    if (!(check_a_ == static_cast<std::decay_t<decltype(check_a_)>>(check_b_))) check::fail(__FILE__, __LINE__, std::string(#a " == " #b ": ") + check::describe(check_a_, check_b_)); \
  } while (0)
// The statement must throw an exception whose what() contains `fragment`.
#define CHECK_THROWS(stmt, fragment)                                                                 \
  do {                                                                                               \
    bool check_threw_ = false;                                                                       \
    try {                                                                                            \
      stmt;                                                                                          \
    } catch (const std::exception& e) {                                                              \
      check_threw_ = true;                                                                           \
      if (std::string(e.what()).find(fragment) == std::string::npos)                                 \
        check::fail(__FILE__, __LINE__, std::string(#stmt " threw \"") + e.what() + "\", expected \"" + fragment + "\""); \
    }                                                                                                \
    if (!check_threw_) check::fail(__FILE__, __LINE__, #stmt " did not throw");                     \
  } while (0)
