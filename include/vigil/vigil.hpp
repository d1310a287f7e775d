#pragma once

/// @file
/// Everything vigil offers, in one include.

#include <vigil/backoff_policy.hpp>
#include <vigil/chrono.hpp>
#include <vigil/errors.hpp>
#include <vigil/event.hpp>
#include <vigil/event_bus.hpp>
#include <vigil/failure_decision.hpp>
#include <vigil/log_subscriber.hpp>
#include <vigil/memory_bus.hpp>
#include <vigil/message_bus.hpp>
#include <vigil/message_bus_worker.hpp>
#include <vigil/restart_intensity.hpp>
#include <vigil/restart_policy.hpp>
#include <vigil/running_handle.hpp>
#include <vigil/runs/run.hpp>
#include <vigil/runs/run_journal.hpp>
#include <vigil/runs/run_registry.hpp>
#include <vigil/runs/task_manager.hpp>
#include <vigil/shutdown.hpp>
#include <vigil/subscriber.hpp>
#include <vigil/supervisor.hpp>
#include <vigil/supervisor_options.hpp>
#include <vigil/systemd_notifier.hpp>
#include <vigil/task_context.hpp>
#include <vigil/task_handle.hpp>
#include <vigil/task_outcome.hpp>
#include <vigil/task_snapshot.hpp>
#include <vigil/task_spec.hpp>
#include <vigil/tcp_line_bus.hpp>
#include <vigil/version.hpp>
