# The one list of vigil's files. Paths are relative to the repository root.
# To add a header or a source: append it here (no globs, on purpose).

# Every header under include/vigil/ that a user may include, detail/ included.
# Each gets a self-containment check (tests/CMakeLists.txt, target vigil_header_check).
# include/vigil/version.hpp is generated from cmake/version.hpp.in and is not listed here.
set(VIGIL_PUBLIC_HEADERS
    include/vigil/vigil.hpp
    include/vigil/chrono.hpp
    include/vigil/restart_policy.hpp
    include/vigil/backoff_policy.hpp
    include/vigil/restart_intensity.hpp
    include/vigil/errors.hpp
    include/vigil/event.hpp
    include/vigil/event_bus.hpp
    include/vigil/subscriber.hpp
    include/vigil/log_subscriber.hpp
    include/vigil/task_context.hpp
    include/vigil/task_spec.hpp
    include/vigil/task_outcome.hpp
    include/vigil/task_handle.hpp
    include/vigil/supervisor_options.hpp
    include/vigil/supervisor.hpp
    include/vigil/shutdown.hpp
    include/vigil/failure_decision.hpp
    include/vigil/task_snapshot.hpp
    include/vigil/detail/wait_queue.hpp
    include/vigil/detail/oneshot.hpp
    include/vigil/detail/enum_formatter.hpp
    include/vigil/detail/task_handle_state.hpp
    include/vigil/detail/attempt_state.hpp
    include/vigil/detail/bus_run_slot.hpp
    include/vigil/detail/first_of.hpp
    include/vigil/detail/deadline.hpp
    include/vigil/systemd_notifier.hpp
    include/vigil/running_handle.hpp
    include/vigil/message_bus.hpp
    include/vigil/memory_bus.hpp
    include/vigil/message_bus_worker.hpp
    include/vigil/tcp_line_bus.hpp
    include/vigil/runs/run.hpp
    include/vigil/runs/run_journal.hpp
    include/vigil/runs/run_registry.hpp
    include/vigil/runs/task_manager.hpp
    include/vigil/requests/request_strategy.hpp
    include/vigil/requests/retry.hpp
    include/vigil/requests/rate_limit.hpp
    include/vigil/requests/timeout.hpp
    include/vigil/requests/circuit_breaker.hpp
    include/vigil/requests/request_runner.hpp
    include/vigil/processes/exit_status.hpp
    include/vigil/processes/process_options.hpp
    include/vigil/processes/child_process.hpp
    include/vigil/processes/process_task.hpp)

# The compiled part of the library target vigil (non-template code only).
set(VIGIL_SOURCES
    src/errors.cpp
    src/event.cpp
    src/event_bus.cpp
    src/log_subscriber.cpp
    src/backoff_policy.cpp
    src/task_spec.cpp
    src/task_context.cpp
    src/subscriber.cpp
    src/task_handle.cpp
    src/supervisor.cpp
    src/systemd_notifier.cpp
    src/running_handle.cpp
    src/message_bus_worker.cpp
    src/tcp_connect.cpp
    src/tcp_line_bus.cpp
    src/runs/run.cpp
    src/runs/journal_file.cpp
    src/runs/journal_format.cpp
    src/runs/run_registry.cpp
    src/processes/exit_status.cpp
    src/processes/process_options.cpp
    src/processes/spawn.cpp
    src/processes/child_process.cpp
    src/processes/process_task.cpp
    src/runs/task_manager.cpp
    src/requests/retry.cpp
    src/requests/rate_limit.cpp
    src/requests/timeout.cpp
    src/requests/circuit_breaker.cpp)

# vigil::redis, built when hiredis is found (VIGIL_REDIS). Its header is not in vigil.hpp.
set(VIGIL_REDIS_HEADERS
    include/vigil/redis_bus.hpp)
set(VIGIL_REDIS_SOURCES
    src/redis_bus.cpp)
