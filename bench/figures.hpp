#pragma once

// The figures of vigil_bench (issue 4), one function each, in bench/figures/<name>.cpp.

#include "common.hpp"

#include <cstddef>
#include <string_view>

namespace bench {

void lifecycle(const options& opt);         // (1) add -> run -> done of 1 M trivial tasks
void lifecycle_floor(const options& opt);   // (1b) the same work through vigil's bare shape
void start_idle(const options& opt);        // (2) start 100 K idle tasks
void start_idle_floor(const options& opt);  // (2b) the same for start_idle
void memory(const options& opt);            // (3) bytes per idle task, fresh processes
void shutdown(const options& opt);          // (4) stop 100 K idle tasks, both cancellation styles
void shutdown_floor(const options& opt);    // (4b) the same with error codes, the bare shape
void restart_throw(const options& opt);     // (5) crash -> restart with a throwing task, 10 s
void restart_error(const options& opt);     // (6) the same, failing without throwing
void fanout(const options& opt);            // (7) events to 8 subscribers
void scaling(const options& opt);           // (8) lifecycle cost per task from 1 K to 1 M
void spawn(const options& opt);             // (9) spawn + wait of /bin/true, 500 in a row

/// lifecycle.cpp: seconds from submitting `n` trivial tasks to the last one done, in a fresh
/// io_context (and supervisor). Shared with `scaling`.
double vigil_lifecycle_seconds(std::size_t n);
double asio_lifecycle_seconds(std::size_t n);

/// start_idle.cpp: seconds from submitting `n` idle tasks to the last one waiting. Shared with
/// `start_idle_floor`.
double vigil_start_seconds(std::size_t n);
double asio_start_seconds(std::size_t n);

enum class cancel_style;  // workloads.hpp

/// shutdown.cpp: milliseconds from the stop request to the last of `n` idle tasks ended.
/// Shared with `shutdown_floor`.
double vigil_shutdown_ms(std::size_t n, cancel_style style);
double asio_shutdown_ms(std::size_t n, cancel_style style);

/// memory.cpp: the hidden subcommand `memory-child <vigil|asio> <n>` run in a fresh process by
/// `memory`: prints `bytes_per_task <B>` and returns the exit status.
int memory_child(std::string_view which, std::size_t n);

}  // namespace bench
