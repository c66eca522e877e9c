#pragma once
// A small JSON value with a writer and a strict parser (RFC 8259): enough for
// model.json and metrics, without a dependency (Debian's cereal has no JSON).
// Objects keep their insertion order so written files read in a stable order.
// Numbers are doubles, written with the fewest digits that read back to the
// same double (at most 17); NaN and infinities are written as null.
#include <cstddef>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace radmm::coordinator::json {

// Parse errors: "NAME:LINE:COLUMN: what". Access errors (wrong type, missing key)
// name the key or index.
struct json_error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class value;
using array_t = std::vector<value>;
using object_t = std::vector<std::pair<std::string, value>>;

class value {
 public:
  enum class kind { null, boolean, number, string, array, object };

  value() = default;  // null
  value(std::nullptr_t) {}
  value(bool b) : kind_(kind::boolean), bool_(b) {}
  value(double d) : kind_(kind::number), num_(d) {}
  value(int i) : kind_(kind::number), num_(i) {}
  value(long i) : kind_(kind::number), num_(static_cast<double>(i)) {}
  value(long long i) : kind_(kind::number), num_(static_cast<double>(i)) {}
  value(unsigned int i) : kind_(kind::number), num_(i) {}
  value(unsigned long i) : kind_(kind::number), num_(static_cast<double>(i)) {}
  value(unsigned long long i) : kind_(kind::number), num_(static_cast<double>(i)) {}
  value(const char* s) : kind_(kind::string), str_(s) {}
  value(std::string s) : kind_(kind::string), str_(std::move(s)) {}
  value(array_t a) : kind_(kind::array), arr_(std::move(a)) {}
  value(object_t o) : kind_(kind::object), obj_(std::move(o)) {}

  kind type() const { return kind_; }
  bool is_null() const { return kind_ == kind::null; }
  bool is_bool() const { return kind_ == kind::boolean; }
  bool is_number() const { return kind_ == kind::number; }
  bool is_string() const { return kind_ == kind::string; }
  bool is_array() const { return kind_ == kind::array; }
  bool is_object() const { return kind_ == kind::object; }

  // Typed access; throws json_error("expected a number, found a string") etc.
  bool as_bool() const;
  double as_number() const;
  // A number that is an integer within int range; throws otherwise.
  int as_int() const;
  const std::string& as_string() const;
  const array_t& as_array() const;
  const object_t& as_object() const;
  array_t& as_array();
  object_t& as_object();

  // Object member or nullptr (also nullptr when this is not an object).
  const value* find(const std::string& key) const;
  // Object member; throws json_error "missing key 'KEY'".
  const value& at(const std::string& key) const;
  // Appends or replaces a member (this must be an object or null).
  value& set(const std::string& key, value v);
  // Appends to an array (this must be an array or null).
  value& push_back(value v);

  friend bool operator==(const value& a, const value& b);
  friend bool operator!=(const value& a, const value& b) { return !(a == b); }

 private:
  kind kind_ = kind::null;
  bool bool_ = false;
  double num_ = 0.0;
  std::string str_;
  array_t arr_;
  object_t obj_;
};

const char* kind_name(value::kind k);

// indent < 0: one line; otherwise pretty-printed with `indent` spaces per level.
// Arrays of numbers stay on one line either way (scaler vectors read better so).
std::string dump(const value& v, int indent = 2);
// Strict: one value, surrounded only by whitespace; no comments, no trailing
// commas, no NaN; duplicate object keys are an error. `name` prefixes errors.
value parse(const std::string& text, const std::string& name = "<json>");

// The shortest "%.{15,16,17}g" form that reads back to exactly `d` (d finite).
std::string format_double(double d);

}  // namespace radmm::coordinator::json
