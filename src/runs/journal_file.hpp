#pragma once

// Internal: the file behind a run journal. POSIX only: open/write/fdatasync/rename/flock.

#include "journal_format.hpp"

#include <vigil/runs/run_journal.hpp>

#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

namespace vigil::detail {

/// An append-only file of journal lines, locked against a second writer.
///
/// Not synchronised: its owner (the registry) calls it under its own lock.
class journal_file {
 public:
  /// Opens (or creates) the journal, locks `<path>.lock`, reads every record into `records`
  /// and cuts an unfinished last line off the file (reported in `report.torn_tail`).
  /// @throws std::invalid_argument for bad options.
  /// @throws std::system_error when the file cannot be opened, read or locked (another
  ///         process holds it).
  /// @throws std::runtime_error when a line other than the last is not a journal record.
  journal_file(const run_journal_options& options, std::vector<journal_record>& records,
               journal_recovery& report);
  ~journal_file();
  journal_file(const journal_file&) = delete;
  journal_file& operator=(const journal_file&) = delete;

  /// Appends whole lines, then syncs as the options say. On failure the file is cut back to
  /// what it was, and the error thrown (std::system_error). After a failed fdatasync every
  /// write throws, until `rewrite()`.
  void append(std::string_view lines);

  /// fdatasync now, if anything is unsynced. A failure makes the journal refuse writes.
  void sync();

  /// Replaces the whole file with `content`, atomically: written to `<path>.compact`,
  /// fsynced, renamed over the journal, and the directory fsynced. Makes a journal that
  /// refused writes usable again.
  void rewrite(std::string_view content);

 private:
  void check_usable() const;

  std::filesystem::path path_;
  std::size_t sync_every_;
  int fd_ = -1;
  int lock_fd_ = -1;
  std::size_t size_ = 0;      // bytes in the file: where a failed append is cut back to
  std::size_t unsynced_ = 0;  // lines since the last fdatasync
  std::string failed_;        // why an fdatasync failed; empty while usable
};

}  // namespace vigil::detail
