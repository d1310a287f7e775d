#pragma once

// Helpers of the child process tests: the helper program, and what /proc says about our
// descriptors and children.

#include "support.hpp"

#include <vigil/processes/child_process.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <unistd.h>

namespace vigil_test {

/// tests/children/process_child.cpp, built with the tests.
inline const std::string helper = VIGIL_TEST_PROCESS_CHILD;

/// Options running the helper program in `mode` with `args`.
inline vigil::process_options helper_options(std::vector<std::string> args) {
  vigil::process_options options;
  options.argv.push_back(helper);
  for (std::string& a : args)
    options.argv.push_back(std::move(a));
  return options;
}

/// As `helper_options`, with standard output and error piped.
inline vigil::process_options piped(std::vector<std::string> args) {
  vigil::process_options options = helper_options(std::move(args));
  options.out = vigil::stdio::pipe;
  options.err = vigil::stdio::pipe;
  return options;
}

/// "S" from /proc/<pid>/stat (R, S, Z...), or 0 when there is no such process.
inline char process_state(int pid) {
  std::ifstream file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(file, stat))
    return 0;
  const auto paren = stat.rfind(')');
  return paren != std::string::npos && paren + 2 < stat.size() ? stat[paren + 2] : 0;
}

/// The process no longer runs: it is gone, or a zombie of someone else's (its parent's).
inline bool process_gone(int pid) {
  const char state = process_state(pid);
  return state == 0 || state == 'Z' || state == 'X';
}

/// Our children that are zombies: exited, never reaped.
inline std::vector<int> zombie_children() {
  std::vector<int> zombies;
  const std::string me = std::to_string(::getpid());
  for (const auto& entry : std::filesystem::directory_iterator("/proc")) {
    const std::string name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream file(entry.path() / "stat");
    std::string stat;
    if (!std::getline(file, stat))
      continue;
    const auto paren = stat.rfind(')');
    if (paren == std::string::npos || paren + 4 >= stat.size())
      continue;
    const std::string rest = stat.substr(paren + 4);  // "ppid pgrp ..."
    if (stat[paren + 2] == 'Z' && rest.substr(0, rest.find(' ')) == me)
      zombies.push_back(std::stoi(name));
  }
  return zombies;
}

/// How many descriptors this process has open.
inline std::size_t open_descriptors() {
  std::size_t count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
    ++count;
  return count - 1;  // less the iterator's own
}

/// How many pidfds this process has open.
inline std::size_t open_pidfds() {
  std::size_t count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    if (std::filesystem::read_symlink(entry.path(), ec).string() == "anon_inode:[pidfd]")
      ++count;
  }
  return count;
}

/// Every line of `from` until its end.
inline asio::awaitable<std::vector<std::string>> all_lines(
    vigil::child_process& child, vigil::output_stream from = vigil::output_stream::out) {
  std::vector<std::string> lines;
  for (;;) {
    auto line = co_await child.read_line(from);
    if (!line)
      co_return lines;
    lines.push_back(std::move(*line));
  }
}

}  // namespace vigil_test
