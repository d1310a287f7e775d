#pragma once

#include <vigil/detail/oneshot.hpp>
#include <vigil/task_outcome.hpp>

#include <asio/any_io_executor.hpp>

#include <string>

namespace vigil::detail {

/// What a task's record, its `task_handle` and every attempt share: one allocation per task
/// holding the name and the task's strand once, so an attempt need not copy either. Holds no
/// user captures: a handle or a `task_context` may outlive the task.
struct task_handle_state {
  task_handle_state(std::string task_name, asio::any_io_executor task_strand)
      : name(std::move(task_name)), executor(std::move(task_strand)) {}

  const std::string name;
  const asio::any_io_executor executor;  ///< the task's own strand: every attempt runs here
  oneshot<task_outcome> outcome;
};

}  // namespace vigil::detail
