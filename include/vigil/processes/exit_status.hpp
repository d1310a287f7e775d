#pragma once

/// @file
/// How a child process ended: an exit code or a signal.

#include <fmt/format.h>

#include <string>

namespace vigil {

/// How a child process ended: it exited with a code, or a signal killed it.
///
/// @code
/// vigil::exit_status s = co_await child.wait();
/// if (!s.success()) log(s.to_string());  // "exit code 3", "killed by SIGSEGV (core dumped)"
/// @endcode
class exit_status {
 public:
  /// The process called `exit(code)` (or returned `code` from `main`).
  static constexpr exit_status exited(int code) noexcept { return {code, 0, false}; }
  /// Signal `signal` ended the process; `core_dumped` when it left a core file.
  static constexpr exit_status killed(int signal, bool core_dumped = false) noexcept {
    return {0, signal, core_dumped};
  }
  /// Decodes a `waitpid()` status word.
  static exit_status from_wait_status(int status) noexcept;

  /// True when the process exited with code 0.
  constexpr bool success() const noexcept { return signal_ == 0 && code_ == 0; }
  /// True when the process exited (as opposed to being killed by a signal).
  constexpr bool exited() const noexcept { return signal_ == 0; }
  /// The exit code; 0 when a signal killed the process.
  constexpr int code() const noexcept { return code_; }
  /// The signal that killed the process; 0 when it exited.
  constexpr int signal() const noexcept { return signal_; }
  /// A signal killed the process and it left a core file.
  constexpr bool core_dumped() const noexcept { return core_dumped_; }

  /// `exit code 3`, `killed by SIGSEGV`, `killed by SIGABRT (core dumped)`.
  std::string to_string() const;

  friend constexpr bool operator==(const exit_status&, const exit_status&) noexcept = default;

 private:
  constexpr exit_status(int code, int signal, bool core) noexcept
      : code_(code), signal_(signal), core_dumped_(core) {}

  int code_ = 0;
  int signal_ = 0;
  bool core_dumped_ = false;
};

/// The name of a signal: `SIGTERM`, `SIGKILL`, or `signal 64` for one without a name.
std::string signal_name(int signal);

}  // namespace vigil

/// Formats like `exit_status::to_string()`.
template <>
struct fmt::formatter<vigil::exit_status> : fmt::formatter<std::string_view> {
  auto format(const vigil::exit_status& s, fmt::format_context& ctx) const -> decltype(ctx.out()) {
    return fmt::formatter<std::string_view>::format(s.to_string(), ctx);
  }
};
