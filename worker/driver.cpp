#include "worker/driver.hpp"

namespace radmm::worker {

void run_machine(protocol::transport& t, layer_machine& machine, const driver_options& opt) {
  using clock = std::chrono::steady_clock;
  auto report = [&](const std::string& what) {
    try {
      protocol::message err;
      err.type = protocol::msg_type::error;
      err.sender = machine.self();
      err.receiver = protocol::coordinator_id;
      err.iteration = machine.iteration();
      err.text = what;
      t.send(err);
    } catch (...) {
      // The coordinator may be the one that failed; nothing more to do.
    }
  };
  try {
    protocol::message hello;
    hello.type = protocol::msg_type::hello;
    hello.sender = machine.self();
    hello.receiver = protocol::coordinator_id;
    t.send(hello);
    auto last_message = clock::now();
    while (!machine.finished()) {
      std::optional<protocol::message> m = t.receive(opt.poll);
      if (!m) {
        if (opt.still_wanted && !opt.still_wanted())
          throw protocol::io_error("layer " + std::to_string(machine.self()) + ": the coordinator is gone");
        if (clock::now() - last_message > opt.idle_limit)
          throw protocol::timeout_error("layer " + std::to_string(machine.self()) + ": no message for " +
                                        std::to_string(opt.idle_limit.count()) + " ms");
        continue;
      }
      last_message = clock::now();
      for (const protocol::message& out : machine.handle(*m)) t.send(out);
    }
  } catch (const std::exception& e) {
    report(e.what());
    throw;
  }
}

}  // namespace radmm::worker
