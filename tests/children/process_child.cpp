// The child program of test_child_process.cpp and test_process_task.cpp: one behaviour per mode.
//
//   exit N            exits with code N
//   segv              dies of SIGSEGV (no core file)
//   args ...          prints each argument on its own line, framed as [arg]
//   env NAME          prints NAME's value, or <unset>
//   cwd               prints the working directory
//   pgid              prints its process group id
//   fds               prints how many descriptors it has open
//   echo              copies standard input to standard output line by line, then exits 0
//   print-then-exit N TEXT  prints TEXT on stdout and stderr, then exits with code N
//   ignore-term       ignores SIGTERM, prints "ready", sleeps forever
//   grandchild        forks a grandchild that ignores SIGTERM, prints its pid, sleeps forever
//   flood BYTES LINE  writes BYTES bytes of lines LINE long (newline included), then exits 0
//   long-line BYTES   writes one line of BYTES bytes, then exits 0
//   silent-after N    prints N lines 10 ms apart, then sleeps forever without a word
//   sleep MS          sleeps MS milliseconds, then exits 0

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <string>
#include <thread>

#include <sys/resource.h>
#include <unistd.h>

namespace {

[[noreturn]] void sleep_forever() {
  for (;;)
    ::pause();
}

void write_all(int fd, const std::string& data) {
  std::size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n <= 0)
      std::exit(2);
    done += static_cast<std::size_t>(n);
  }
}

void say(const std::string& line) {
  write_all(1, line + "\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODE ...\n", argv[0]);
    return 64;
  }
  const std::string mode = argv[1];
  if (mode == "exit" && argc == 3)
    return std::atoi(argv[2]);
  if (mode == "segv") {
    const rlimit no_core{0, 0};
    ::setrlimit(RLIMIT_CORE, &no_core);
    std::signal(SIGSEGV, SIG_DFL);
    std::raise(SIGSEGV);
    return 1;
  }
  if (mode == "args") {
    for (int i = 2; i < argc; ++i)
      say(std::string("[") + argv[i] + "]");
    return 0;
  }
  if (mode == "env" && argc == 3) {
    const char* value = std::getenv(argv[2]);
    say(value ? value : "<unset>");
    return 0;
  }
  if (mode == "cwd") {
    say(std::filesystem::current_path().string());
    return 0;
  }
  if (mode == "pgid") {
    say(std::to_string(::getpgrp()));
    return 0;
  }
  if (mode == "fds") {
    int count = 0;
    for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd"))
      ++count;
    say(std::to_string(count - 1));  // less the directory iterator's own descriptor
    return 0;
  }
  if (mode == "echo") {
    std::string line;
    while (std::getline(std::cin, line))
      say(line);
    return 0;
  }
  if (mode == "print-then-exit" && argc == 4) {
    say(argv[3]);
    write_all(2, std::string(argv[3]) + "\n");
    return std::atoi(argv[2]);
  }
  if (mode == "ignore-term") {
    std::signal(SIGTERM, SIG_IGN);
    say("ready");
    sleep_forever();
  }
  if (mode == "grandchild") {
    int ready[2];
    if (::pipe(ready) != 0)
      return 2;
    const pid_t pid = ::fork();
    if (pid == 0) {
      std::signal(SIGTERM, SIG_IGN);
      ::close(ready[0]);
      ::close(ready[1]);  // tells the parent SIGTERM is ignored now
      sleep_forever();
    }
    ::close(ready[1]);
    char byte;
    [[maybe_unused]] const auto n = ::read(ready[0], &byte, 1);  // end of file: it is set up
    say(std::to_string(pid));
    sleep_forever();
  }
  if (mode == "flood" && argc == 4) {
    const long total = std::atol(argv[2]);
    const long length = std::atol(argv[3]);
    std::string line(static_cast<std::size_t>(length - 1), 'x');
    line += '\n';
    std::string block;
    while (block.size() < 64 * 1024)
      block += line;
    long written = 0;
    while (written < total) {
      write_all(1, block);
      written += static_cast<long>(block.size());
    }
    return 0;
  }
  if (mode == "long-line" && argc == 3) {
    write_all(1, std::string(static_cast<std::size_t>(std::atol(argv[2])), 'y') + "\n");
    return 0;
  }
  if (mode == "silent-after" && argc == 3) {
    for (int i = 0; i < std::atoi(argv[2]); ++i) {
      say("line " + std::to_string(i));
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    sleep_forever();
  }
  if (mode == "sleep" && argc == 3) {
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atol(argv[2])));
    return 0;
  }
  std::fprintf(stderr, "%s: unknown mode %s\n", argv[0], mode.c_str());
  return 64;
}
