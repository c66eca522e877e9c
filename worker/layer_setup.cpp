#include "worker/layer_setup.hpp"

#include "protocol/transport.hpp"

#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

namespace radmm::worker {
namespace {

std::string num(double x) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  return buf;
}

}  // namespace

std::string encode_layer_setup(const layer_setup& s) {
  std::ostringstream os;
  os << "layer=" << s.layer << "\n"
     << "layers=" << s.arch.layers << "\n"
     << "input_dim=" << s.arch.input_dim << "\n"
     << "width=" << s.arch.width << "\n"
     << "output_dim=" << s.arch.output_dim << "\n"
     << "activation=" << core::to_string(s.arch.act) << "\n"
     << "algorithm=" << core::to_string(s.hp.algo) << "\n"
     << "variant=" << core::to_string(s.hp.var) << "\n"
     << "beta=" << num(s.hp.beta) << "\n"
     << "mu=" << num(s.hp.mu) << "\n"
     << "lambda=" << num(s.hp.lambda) << "\n"
     << "tau=" << num(s.hp.tau) << "\n"
     << "nu=" << num(s.hp.nu) << "\n"
     << "ef_tau=" << num(s.hp.ef_tau) << "\n"
     << "ef_nu=" << num(s.hp.ef_nu) << "\n"
     << "kappa=" << num(s.hp.kappa) << "\n"
     << "inner_tol=" << num(s.hp.inner_tol) << "\n"
     << "inner_max_iter=" << s.hp.inner_max_iter << "\n"
     << "total_iterations=" << s.total_iterations << "\n"
     << "metrics_every=" << s.metrics_every << "\n"
     << "n_train=" << s.n_train << "\n"
     << "n_test=" << s.n_test << "\n";
  return os.str();
}

layer_setup decode_layer_setup(const std::string& text) {
  std::map<std::string, std::string> kv;
  std::istringstream is(text);
  for (std::string line; std::getline(is, line);) {
    if (line.empty()) continue;
    const auto eq = line.find('=');
    if (eq == std::string::npos) throw protocol::protocol_error("INIT setup line without '=': " + line);
    kv[line.substr(0, eq)] = line.substr(eq + 1);
  }
  auto get = [&](const char* key) -> const std::string& {
    auto it = kv.find(key);
    if (it == kv.end()) throw protocol::protocol_error(std::string("INIT setup lacks '") + key + "'");
    return it->second;
  };
  auto as_double = [&](const char* key) {
    const std::string& v = get(key);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (end == v.c_str() || *end != '\0')
      throw protocol::protocol_error(std::string("INIT setup: bad number for '") + key + "': " + v);
    return x;
  };
  auto as_long = [&](const char* key) {
    const std::string& v = get(key);
    char* end = nullptr;
    const long x = std::strtol(v.c_str(), &end, 10);
    if (end == v.c_str() || *end != '\0')
      throw protocol::protocol_error(std::string("INIT setup: bad integer for '") + key + "': " + v);
    return x;
  };
  layer_setup s;
  try {
    s.layer = static_cast<int>(as_long("layer"));
    s.arch.layers = static_cast<int>(as_long("layers"));
    s.arch.input_dim = static_cast<int>(as_long("input_dim"));
    s.arch.width = static_cast<int>(as_long("width"));
    s.arch.output_dim = static_cast<int>(as_long("output_dim"));
    s.arch.act = core::parse_activation(get("activation"));
    s.hp.algo = core::parse_algorithm(get("algorithm"));
    s.hp.var = core::parse_variant(get("variant"));
    s.hp.beta = as_double("beta");
    s.hp.mu = as_double("mu");
    s.hp.lambda = as_double("lambda");
    s.hp.tau = as_double("tau");
    s.hp.nu = as_double("nu");
    s.hp.ef_tau = as_double("ef_tau");
    s.hp.ef_nu = as_double("ef_nu");
    s.hp.kappa = as_double("kappa");
    s.hp.inner_tol = as_double("inner_tol");
    s.hp.inner_max_iter = static_cast<int>(as_long("inner_max_iter"));
    s.total_iterations = as_long("total_iterations");
    s.metrics_every = as_long("metrics_every");
    s.n_train = as_long("n_train");
    s.n_test = as_long("n_test");
    s.arch.validate();
    s.hp.validate();
  } catch (const std::invalid_argument& e) {
    throw protocol::protocol_error(std::string("INIT setup: ") + e.what());
  }
  if (s.layer < 1 || s.layer > s.arch.layers)
    throw protocol::protocol_error("INIT setup: layer " + std::to_string(s.layer) + " outside 1.." +
                                   std::to_string(s.arch.layers));
  return s;
}

}  // namespace radmm::worker
