#include "journal_file.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <system_error>

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

namespace vigil::detail {

namespace {

[[noreturn]] void throw_errno(const std::filesystem::path& path, std::string_view doing) {
  const int error = errno;
  throw std::system_error(error, std::generic_category(),
                          fmt::format("vigil: run journal {}: {}", path.string(), doing));
}

void write_all(int fd, std::string_view data, const std::filesystem::path& path) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      throw_errno(path, "write");
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

/// Makes a rename or a creation in `file`'s directory durable.
void sync_directory(const std::filesystem::path& file) {
  const std::filesystem::path dir = file.has_parent_path() ? file.parent_path() : ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0)
    throw_errno(dir, "open the directory to fsync it");
  const int result = ::fsync(fd);
  const int error = errno;
  ::close(fd);
  if (result != 0) {
    errno = error;
    throw_errno(dir, "fsync the directory");
  }
}

}  // namespace

journal_file::journal_file(const run_journal_options& options, std::vector<journal_record>& records,
                           journal_recovery& report)
    : path_(options.path), sync_every_(options.sync_every) {
  if (!path_.empty())
    path_ = std::filesystem::absolute(path_);  // compaction renames by path: pin it now
  if (path_.empty())
    throw std::invalid_argument("vigil: run_journal_options::path is empty");
  if (sync_every_ == 0)
    throw std::invalid_argument("vigil: run_journal_options::sync_every must be at least 1, got 0");

  // A second registry on the same journal would interleave lines: refuse it, across processes.
  const std::filesystem::path lock_path = path_.string() + ".lock";
  lock_fd_ = ::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0)
    throw_errno(lock_path, "open the lock file");
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    ::close(lock_fd_);
    errno = error;
    throw_errno(path_, error == EWOULDBLOCK ? "in use by another registry" : "flock");
  }

  try {
    const bool existed = std::filesystem::exists(path_);
    fd_ = ::open(path_.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd_ < 0)
      throw_errno(path_, "open");
    if (!existed)
      sync_directory(path_);

    std::string content;
    char buffer[65536];
    for (;;) {
      const ssize_t n = ::pread(fd_, buffer, sizeof buffer, static_cast<off_t>(content.size()));
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        throw_errno(path_, "read");
      if (n == 0)
        break;
      content.append(buffer, static_cast<std::size_t>(n));
    }

    // Only a line ended by '\n' was written whole. The writer escapes every control character,
    // so a NUL is a hole a machine crash left where the file grew (pages written back out of
    // order, with sync_every above 1): from the first one on, the file is torn. The last
    // whole line may still be garbage: torn too, not damage.
    const std::size_t hole = content.find('\0');
    std::size_t good = 0;  // bytes up to the end of the last good line
    std::size_t line_number = 0;
    while (good < content.size()) {
      const std::size_t end = content.find('\n', good);
      ++line_number;
      if (end == std::string::npos || (hole != std::string::npos && hole < end)) {
        report.torn_tail = content.substr(good);
        break;
      }
      const std::string_view line = std::string_view(content).substr(good, end - good);
      try {
        records.push_back(parse_journal_line(line));
      } catch (const journal_version_error& e) {  // a newer writer's file: never cut it
        throw std::runtime_error(fmt::format("vigil: run journal {}: line {}: {}", path_.string(),
                                             line_number, e.what()));
      } catch (const std::runtime_error& e) {
        if (end + 1 != content.size())
          throw std::runtime_error(
              fmt::format("vigil: run journal {}: line {} is not a journal record ({}); only a "
                          "torn last line is skipped",
                          path_.string(), line_number, e.what()));
        report.torn_tail = std::string(line);
        break;
      }
      good = end + 1;
    }
    report.lines = records.size();
    size_ = good;
    if (good != content.size()) {
      if (::ftruncate(fd_, static_cast<off_t>(good)) != 0)
        throw_errno(path_, "cut off the torn last line");
      if (::fdatasync(fd_) != 0)
        throw_errno(path_, "fdatasync");
    }
  } catch (...) {
    if (fd_ >= 0)
      ::close(fd_);
    ::close(lock_fd_);
    throw;
  }
}

journal_file::~journal_file() {
  if (unsynced_ > 0)
    ::fdatasync(fd_);
  ::close(fd_);
  ::close(lock_fd_);
}

void journal_file::check_usable() const {
  if (!failed_.empty())
    throw std::system_error(EIO, std::generic_category(),
                            fmt::format("vigil: run journal {}: unusable since a failed fdatasync "
                                        "({}); compact() or reopen the registry",
                                        path_.string(), failed_));
}

void journal_file::append(std::string_view lines) {
  check_usable();
  const std::size_t before = size_;
  try {
    write_all(fd_, lines, path_);
  } catch (...) {
    // A line cut short in the middle of the file would make it unreadable: cut it off.
    if (::ftruncate(fd_, static_cast<off_t>(before)) != 0) {
      // Nothing better to do: the next open reports a bad line with its number.
    }
    throw;
  }
  size_ += lines.size();
  unsynced_ += static_cast<std::size_t>(std::count(lines.begin(), lines.end(), '\n'));
  if (unsynced_ < sync_every_)
    return;
  try {
    sync();
  } catch (...) {
    // The caller leaves its state as it was: so must the file. (Earlier unsynced lines may be
    // lost too: the journal now refuses writes, see check_usable.)
    if (::ftruncate(fd_, static_cast<off_t>(before)) == 0)
      size_ = before;
    throw;
  }
}

void journal_file::sync() {
  check_usable();
  if (unsynced_ == 0)
    return;
  if (::fdatasync(fd_) != 0) {
    // Linux reports a writeback error once: a later fdatasync would succeed over lost lines.
    const int error = errno;
    failed_ = std::generic_category().message(error);
    errno = error;
    throw_errno(path_, "fdatasync");
  }
  unsynced_ = 0;
}

void journal_file::rewrite(std::string_view content) {
  // Written through the descriptor that becomes the journal's: once renamed, it is in use,
  // whatever fails after.
  const std::filesystem::path temporary = path_.string() + ".compact";
  const int fd = ::open(temporary.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0)
    throw_errno(temporary, "open");
  try {
    write_all(fd, content, temporary);
    if (::fsync(fd) != 0)
      throw_errno(temporary, "fsync");
    if (::rename(temporary.c_str(), path_.c_str()) != 0)
      throw_errno(path_, "rename the compacted journal over it");
  } catch (...) {
    ::close(fd);
    ::unlink(temporary.c_str());
    throw;
  }
  ::close(fd_);
  fd_ = fd;
  size_ = content.size();
  unsynced_ = 0;
  failed_.clear();  // a whole new file, synced: what a failed fdatasync lost is rewritten
  sync_directory(path_);
}

}  // namespace vigil::detail
