#include <vigil/processes/exit_status.hpp>

#include <fmt/format.h>

#include <cstring>

#include <sys/wait.h>

namespace vigil {

exit_status exit_status::from_wait_status(int status) noexcept {
  if (WIFSIGNALED(status))
    return killed(WTERMSIG(status), WCOREDUMP(status));
  return exited(WEXITSTATUS(status));
}

std::string exit_status::to_string() const {
  if (exited())
    return fmt::format("exit code {}", code_);
  return fmt::format("killed by {}{}", signal_name(signal_), core_dumped_ ? " (core dumped)" : "");
}

std::string signal_name(int signal) {
  if (const char* abbrev = ::sigabbrev_np(signal))
    return fmt::format("SIG{}", abbrev);
  return fmt::format("signal {}", signal);
}

}  // namespace vigil
