#include "journal_format.hpp"

#include <fmt/format.h>

#include <charconv>
#include <chrono>
#include <cstdint>
#include <optional>
#include <stdexcept>

namespace vigil::detail {

namespace {

using ns = std::chrono::nanoseconds;

std::int64_t to_ns(run::clock::time_point t) {
  return std::chrono::duration_cast<ns>(t.time_since_epoch()).count();
}

run::clock::time_point from_ns(std::int64_t count) {
  return run::clock::time_point(std::chrono::duration_cast<run::clock::duration>(ns(count)));
}

void put_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        else
          out += c;  // UTF-8 passes through as it is
    }
  }
  out += '"';
}

void put_time(std::string& out, const std::optional<run::clock::time_point>& t) {
  if (t)
    out += fmt::format("{}", to_ns(*t));
  else
    out += "null";
}

/// A strict reader of the subset the writer above produces: objects, strings, integers, null.
class reader {
 public:
  explicit reader(std::string_view text) : in_(text) {}

  [[noreturn]] void fail(std::string_view what) const {
    throw std::runtime_error(fmt::format("{} at column {}", what, pos_ + 1));
  }

  void skip_space() {
    while (pos_ < in_.size() && (in_[pos_] == ' ' || in_[pos_] == '\t' || in_[pos_] == '\r'))
      ++pos_;
  }

  bool consume(char c) {
    skip_space();
    if (pos_ < in_.size() && in_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c))
      fail(fmt::format("expected '{}'", c));
  }

  void expect_end() {
    skip_space();
    if (pos_ != in_.size())
      fail("unexpected text after the record");
  }

  /// Calls `member(key)` for each member of an object; `member` reads the value.
  template <class Member>
  void object(Member member) {
    expect('{');
    if (consume('}'))
      return;
    do {
      const std::string key = string();
      expect(':');
      member(key);
    } while (consume(','));
    expect('}');
  }

  std::string string() {
    expect('"');
    std::string out;
    while (pos_ < in_.size()) {
      const char c = in_[pos_++];
      if (c == '"')
        return out;
      if (static_cast<unsigned char>(c) < 0x20)
        fail("a control character inside a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= in_.size())
        break;
      switch (const char e = in_[pos_++]) {
        case '"':
        case '\\':
        case '/':
          out += e;
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'u':
          put_utf8(out, code_point());
          break;
        default:
          fail("an unknown escape in a string");
      }
    }
    fail("an unterminated string");
  }

  std::int64_t integer() {
    skip_space();
    std::int64_t value = 0;
    const char* first = in_.data() + pos_;
    const auto [end, ec] = std::from_chars(first, in_.data() + in_.size(), value);
    if (ec != std::errc{})
      fail("expected an integer");
    pos_ += static_cast<std::size_t>(end - first);
    return value;
  }

  std::optional<std::int64_t> integer_or_null() {
    skip_space();
    if (in_.substr(pos_, 4) == "null") {
      pos_ += 4;
      return std::nullopt;
    }
    return integer();
  }

 private:
  unsigned hex4() {
    if (pos_ + 4 > in_.size())
      fail("a truncated \\u escape");
    unsigned value = 0;
    const auto [end, ec] = std::from_chars(in_.data() + pos_, in_.data() + pos_ + 4, value, 16);
    if (ec != std::errc{} || end != in_.data() + pos_ + 4)
      fail("a bad \\u escape");
    pos_ += 4;
    return value;
  }

  char32_t code_point() {
    const unsigned first = hex4();
    if (first < 0xD800 || first > 0xDFFF)
      return first;
    if (first > 0xDBFF || in_.substr(pos_, 2) != "\\u")
      fail("a lone surrogate in a \\u escape");
    pos_ += 2;
    const unsigned second = hex4();
    if (second < 0xDC00 || second > 0xDFFF)
      fail("a lone surrogate in a \\u escape");
    return 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
  }

  static void put_utf8(std::string& out, char32_t cp) {
    const auto byte = [&](unsigned v) { out += static_cast<char>(v); };
    if (cp < 0x80) {
      byte(cp);
    } else if (cp < 0x800) {
      byte(0xC0 | (cp >> 6));
      byte(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      byte(0xE0 | (cp >> 12));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    } else {
      byte(0xF0 | (cp >> 18));
      byte(0x80 | ((cp >> 12) & 0x3F));
      byte(0x80 | ((cp >> 6) & 0x3F));
      byte(0x80 | (cp & 0x3F));
    }
  }

  std::string_view in_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string journal_run_line(const run& r) {
  std::string out = R"({"v":1,"op":"run","id":)";
  put_string(out, r.id);
  out += R"(,"name":)";
  put_string(out, r.name);
  out += R"(,"parameters":{)";
  bool first = true;
  for (const auto& [key, value] : r.parameters) {
    if (!first)
      out += ',';
    first = false;
    put_string(out, key);
    out += ':';
    put_string(out, value);
  }
  out += R"(},"status":)";
  put_string(out, to_string(r.status));
  out += fmt::format(R"(,"created_at":{},"started_at":)", to_ns(r.created_at));
  put_time(out, r.started_at);
  out += R"(,"finished_at":)";
  put_time(out, r.finished_at);
  out += R"(,"error_message":)";
  put_string(out, r.error_message);
  out += R"(,"result":)";
  put_string(out, r.result);
  out += "}\n";
  return out;
}

std::string journal_forget_line(std::string_view id) {
  std::string out = R"({"v":1,"op":"forget","id":)";
  put_string(out, id);
  out += "}\n";
  return out;
}

journal_record parse_journal_line(std::string_view line) {
  reader in(line);
  journal_record record;
  std::optional<std::int64_t> version;
  std::string op;
  bool has_id = false;
  bool has_status = false;
  const auto newer = [](std::int64_t v) {
    return journal_version_error(fmt::format(
        "format version {}, this vigil reads version 1 (the journal is left as it is)", v));
  };
  in.object([&](const std::string& key) {
    run& r = record.r;
    // The version comes first in every line vigil writes, and says how to read the rest: a newer
    // line may hold fields this reader does not know, and must not be taken for a torn one.
    if (version && *version != 1)
      throw newer(*version);
    if (key == "v") {
      version = in.integer();
    } else if (key == "op") {
      op = in.string();
    } else if (key == "id") {
      r.id = in.string();
      has_id = true;
    } else if (key == "name") {
      r.name = in.string();
    } else if (key == "parameters") {
      in.object([&](const std::string& name) { r.parameters[name] = in.string(); });
    } else if (key == "status") {
      const std::string label = in.string();
      const auto status = run_status_from_string(label);
      if (!status)
        in.fail(fmt::format("an unknown status '{}'", label));
      r.status = *status;
      has_status = true;
    } else if (key == "created_at") {
      r.created_at = from_ns(in.integer());
    } else if (key == "started_at") {
      if (const auto t = in.integer_or_null())
        r.started_at = from_ns(*t);
    } else if (key == "finished_at") {
      if (const auto t = in.integer_or_null())
        r.finished_at = from_ns(*t);
    } else if (key == "error_message") {
      r.error_message = in.string();
    } else if (key == "result") {
      r.result = in.string();
    } else {
      in.fail(fmt::format("an unknown field '{}'", key));
    }
  });
  in.expect_end();
  if (!version)
    throw std::runtime_error("no format version");
  if (*version != 1)
    throw newer(*version);
  if (!has_id || record.r.id.empty())
    throw std::runtime_error("no run id");
  if (op == "forget")
    record.forget = true;
  else if (op != "run")
    throw std::runtime_error(fmt::format("an unknown op '{}'", op));
  else if (!has_status)
    throw std::runtime_error("no status");
  return record;
}

}  // namespace vigil::detail
