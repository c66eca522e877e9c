#include "coordinator/json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

namespace radmm::coordinator::json {

const char* kind_name(value::kind k) {
  switch (k) {
    case value::kind::null:
      return "null";
    case value::kind::boolean:
      return "a boolean";
    case value::kind::number:
      return "a number";
    case value::kind::string:
      return "a string";
    case value::kind::array:
      return "an array";
    case value::kind::object:
      return "an object";
  }
  return "?";
}

namespace {
[[noreturn]] void wrong_kind(value::kind want, value::kind got) {
  throw json_error(std::string("expected ") + kind_name(want) + ", found " + kind_name(got));
}
}  // namespace

bool value::as_bool() const {
  if (kind_ != kind::boolean) wrong_kind(kind::boolean, kind_);
  return bool_;
}
double value::as_number() const {
  if (kind_ != kind::number) wrong_kind(kind::number, kind_);
  return num_;
}
int value::as_int() const {
  const double d = as_number();
  if (!(d >= std::numeric_limits<int>::min() && d <= std::numeric_limits<int>::max()) || d != std::floor(d))
    throw json_error("expected an integer, found " + format_double(d));
  return static_cast<int>(d);
}
const std::string& value::as_string() const {
  if (kind_ != kind::string) wrong_kind(kind::string, kind_);
  return str_;
}
const array_t& value::as_array() const {
  if (kind_ != kind::array) wrong_kind(kind::array, kind_);
  return arr_;
}
const object_t& value::as_object() const {
  if (kind_ != kind::object) wrong_kind(kind::object, kind_);
  return obj_;
}
array_t& value::as_array() {
  if (kind_ != kind::array) wrong_kind(kind::array, kind_);
  return arr_;
}
object_t& value::as_object() {
  if (kind_ != kind::object) wrong_kind(kind::object, kind_);
  return obj_;
}

const value* value::find(const std::string& key) const {
  if (kind_ != kind::object) return nullptr;
  for (const auto& kv : obj_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const value& value::at(const std::string& key) const {
  if (kind_ != kind::object)
    throw json_error("expected an object with key '" + key + "', found " + kind_name(kind_));
  const value* v = find(key);
  if (!v) throw json_error("missing key '" + key + "'");
  return *v;
}

value& value::set(const std::string& key, value v) {
  if (kind_ == kind::null) kind_ = kind::object;
  for (auto& kv : as_object())
    if (kv.first == key) return kv.second = std::move(v);
  obj_.emplace_back(key, std::move(v));
  return obj_.back().second;
}

value& value::push_back(value v) {
  if (kind_ == kind::null) kind_ = kind::array;
  as_array().push_back(std::move(v));
  return arr_.back();
}

bool operator==(const value& a, const value& b) {
  if (a.kind_ != b.kind_) return false;
  switch (a.kind_) {
    case value::kind::null:
      return true;
    case value::kind::boolean:
      return a.bool_ == b.bool_;
    case value::kind::number:
      return a.num_ == b.num_;
    case value::kind::string:
      return a.str_ == b.str_;
    case value::kind::array:
      return a.arr_ == b.arr_;
    case value::kind::object:
      return a.obj_ == b.obj_;
  }
  return false;
}

std::string format_double(double d) {
  char buf[40];
  // %.17g always round-trips but prints 0.1 as 0.10000000000000001; the shortest
  // precision that reads back exactly keeps files readable and still exact.
  for (int prec = 15; prec <= 17; ++prec) {
    std::snprintf(buf, sizeof buf, "%.*g", prec, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

// ---------------------------------------------------------------- writer

namespace {

void write_string(std::string& out, const std::string& s) {
  out.push_back('"');
  for (unsigned char c : s) {
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
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));  // UTF-8 passes through unchanged
        }
    }
  }
  out.push_back('"');
}

bool is_flat(const value& v) {
  if (!v.is_array()) return false;
  for (const auto& e : v.as_array())
    if (e.is_array() || e.is_object()) return false;
  return true;
}

void write_value(std::string& out, const value& v, int indent, int depth) {
  const bool pretty = indent >= 0;
  auto newline = [&](int d) {
    if (!pretty) return;
    out.push_back('\n');
    out.append(static_cast<std::size_t>(indent * d), ' ');
  };
  switch (v.type()) {
    case value::kind::null:
      out += "null";
      break;
    case value::kind::boolean:
      out += v.as_bool() ? "true" : "false";
      break;
    case value::kind::number: {
      const double d = v.as_number();
      out += std::isfinite(d) ? format_double(d) : "null";
      break;
    }
    case value::kind::string:
      write_string(out, v.as_string());
      break;
    case value::kind::array: {
      const auto& a = v.as_array();
      if (a.empty()) {
        out += "[]";
        break;
      }
      const bool flat = is_flat(v);
      out.push_back('[');
      for (std::size_t i = 0; i < a.size(); ++i) {
        if (i) out += (flat && pretty) ? ", " : ",";
        if (!flat) newline(depth + 1);
        write_value(out, a[i], indent, depth + 1);
      }
      if (!flat) newline(depth);
      out.push_back(']');
      break;
    }
    case value::kind::object: {
      const auto& o = v.as_object();
      if (o.empty()) {
        out += "{}";
        break;
      }
      out.push_back('{');
      for (std::size_t i = 0; i < o.size(); ++i) {
        if (i) out.push_back(',');
        newline(depth + 1);
        write_string(out, o[i].first);
        out += pretty ? ": " : ":";
        write_value(out, o[i].second, indent, depth + 1);
      }
      newline(depth);
      out.push_back('}');
      break;
    }
  }
}

// ---------------------------------------------------------------- parser

class parser {
 public:
  parser(const std::string& text, const std::string& name) : s_(text), name_(name) {}

  value parse_document() {
    skip_ws();
    value v = parse_value(0);
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the JSON value");
    return v;
  }

 private:
  // Deep nesting would overflow the stack on hostile input; real files are shallow.
  static constexpr int max_depth = 256;

  [[noreturn]] void fail(const std::string& what) { fail_at(pos_, what); }
  [[noreturn]] void fail_at(std::size_t pos, const std::string& what) {
    int line = 1, col = 1;
    for (std::size_t i = 0; i < pos && i < s_.size(); ++i) {
      if (s_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    throw json_error(name_ + ":" + std::to_string(line) + ":" + std::to_string(col) + ": " + what);
  }

  std::string describe_here() const {
    if (pos_ >= s_.size()) return "end of input";
    const unsigned char c = static_cast<unsigned char>(s_[pos_]);
    if (c < 0x20 || c >= 0x7f) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "byte 0x%02x", c);
      return buf;
    }
    return std::string("'") + s_[pos_] + "'";
  }

  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r'))
      ++pos_;
  }

  bool consume_word(const char* w) {
    const std::string word(w);
    if (s_.compare(pos_, word.size(), word) != 0) return false;
    pos_ += word.size();
    return true;
  }

  value parse_value(int depth) {
    if (depth > max_depth) fail("nesting deeper than " + std::to_string(max_depth) + " levels");
    if (pos_ >= s_.size()) fail("unexpected end of input, expected a value");
    const char c = s_[pos_];
    if (c == '{') return parse_object(depth);
    if (c == '[') return parse_array(depth);
    if (c == '"') return value(parse_string());
    if (c == '-' || (c >= '0' && c <= '9')) return parse_number();
    if (consume_word("true")) return value(true);
    if (consume_word("false")) return value(false);
    if (consume_word("null")) return value();
    fail("unexpected " + describe_here() + ", expected a value");
  }

  value parse_object(int depth) {
    ++pos_;  // '{'
    value v{object_t{}};
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') fail("expected a string key, found " + describe_here());
      const std::size_t key_pos = pos_;
      std::string key = parse_string();
      if (v.find(key)) fail_at(key_pos, "duplicate key \"" + key + "\"");
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') fail("expected ':' after the key, found " + describe_here());
      ++pos_;
      skip_ws();
      v.as_object().emplace_back(std::move(key), parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == '}') {
        ++pos_;
        return v;
      }
      fail("expected ',' or '}' in an object, found " + describe_here());
    }
  }

  value parse_array(int depth) {
    ++pos_;  // '['
    value v{array_t{}};
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') {
      ++pos_;
      return v;
    }
    for (;;) {
      skip_ws();
      v.as_array().push_back(parse_value(depth + 1));
      skip_ws();
      if (pos_ < s_.size() && s_[pos_] == ',') {
        ++pos_;
        continue;
      }
      if (pos_ < s_.size() && s_[pos_] == ']') {
        ++pos_;
        return v;
      }
      fail("expected ',' or ']' in an array, found " + describe_here());
    }
  }

  unsigned hex4() {
    if (s_.size() - pos_ < 4) fail("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_];
      v <<= 4;
      if (c >= '0' && c <= '9')
        v |= static_cast<unsigned>(c - '0');
      else if (c >= 'a' && c <= 'f')
        v |= static_cast<unsigned>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F')
        v |= static_cast<unsigned>(c - 'A' + 10);
      else
        fail("invalid hex digit in a \\u escape");
      ++pos_;
    }
    return v;
  }

  static void append_utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  std::string parse_string() {
    const std::size_t start = pos_;
    ++pos_;  // '"'
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) fail_at(start, "unterminated string");
      const unsigned char c = static_cast<unsigned char>(s_[pos_]);
      if (c == '"') {
        ++pos_;
        return out;
      }
      if (c < 0x20) fail("control character in a string (write it as an escape)");
      if (c != '\\') {
        out.push_back(static_cast<char>(c));
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) fail_at(start, "unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xd800 && cp <= 0xdbff) {
            // A high surrogate must be followed by a low one: together one code point.
            if (s_.compare(pos_, 2, "\\u") != 0) fail("unpaired UTF-16 surrogate in a \\u escape");
            pos_ += 2;
            const unsigned lo = hex4();
            if (lo < 0xdc00 || lo > 0xdfff) fail("unpaired UTF-16 surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
          } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            fail("unpaired UTF-16 surrogate in a \\u escape");
          }
          append_utf8(out, cp);
          break;
        }
        default:
          pos_ -= 2;  // point at the backslash
          fail(std::string("invalid escape '\\") + e + "' in a string");
      }
    }
  }

  value parse_number() {
    const std::size_t start = pos_;
    auto digit = [&] { return pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9'; };
    if (s_[pos_] == '-') ++pos_;
    if (!digit()) fail("invalid number: expected a digit");
    if (s_[pos_] == '0') {
      ++pos_;
      if (digit()) fail_at(start, "invalid number: leading zeros are not allowed");
    } else {
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (!digit()) fail("invalid number: expected a digit after '.'");
      while (digit()) ++pos_;
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (!digit()) fail("invalid number: expected a digit in the exponent");
      while (digit()) ++pos_;
    }
    // The grammar above was checked by hand; strtod only converts (C locale).
    const std::string text = s_.substr(start, pos_ - start);
    const double d = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(d)) fail_at(start, "number " + text + " is out of the range of a double");
    return value(d);
  }

  const std::string& s_;
  const std::string& name_;
  std::size_t pos_ = 0;
};

}  // namespace

std::string dump(const value& v, int indent) {
  std::string out;
  write_value(out, v, indent, 0);
  return out;
}

value parse(const std::string& text, const std::string& name) { return parser(text, name).parse_document(); }

}  // namespace radmm::coordinator::json
