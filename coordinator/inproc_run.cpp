#include "coordinator/inproc_run.hpp"

#include "protocol/inproc.hpp"
#include "protocol/trace.hpp"
#include "worker/driver.hpp"

#include <Eigen/Core>

#include <exception>
#include <mutex>
#include <thread>

namespace radmm::coordinator {

run_result train_inproc(const problem& p, const schedule& s, const metrics_callback& on_metrics,
                        const inproc_options& opt, const run_control* control) {
  const int N = p.arch.layers;
  // The layers are the parallelism: one thread each, as in a radmm-worker
  // process (Eigen's thread count is process-wide; restored on return).
  struct eigen_threads_guard {
    int saved = Eigen::nbThreads();
    eigen_threads_guard() { Eigen::setNbThreads(1); }
    ~eigen_threads_guard() { Eigen::setNbThreads(saved); }
  } one_thread_per_layer;
  protocol::inproc_network net(N + 1);
  std::mutex failure_mutex;
  std::exception_ptr worker_failure;
  std::vector<std::thread> threads;
  std::shared_ptr<protocol::trace_writer> trace;
  if (!opt.trace.empty())
    trace = std::make_shared<protocol::trace_writer>(
        opt.trace, protocol::trace_options{opt.trace_payloads, -1, N, "radmm train --parallel inproc"});
  auto wrap = [&](std::unique_ptr<protocol::transport> t, std::uint64_t salt) -> std::unique_ptr<protocol::transport> {
    if (opt.delay_probability > 0)
      t = std::make_unique<protocol::delaying_transport>(std::move(t), opt.delay_probability, opt.max_delay,
                                                         opt.delay_seed * 1000003 + salt);
    return protocol::record_if(trace, std::move(t));
  };
  for (int i = 1; i <= N; ++i) {
    threads.emplace_back([&, i, ep = wrap(net.endpoint(i), static_cast<std::uint64_t>(i))]() mutable {
      try {
        worker::layer_machine machine(i);
        if (trace) machine.set_span_observer(trace->span_observer(i, [&machine] { return machine.iteration(); }));
        worker::run_machine(*ep, machine);
      } catch (...) {
        std::lock_guard<std::mutex> lock(failure_mutex);
        if (!worker_failure) worker_failure = std::current_exception();
      }
    });
  }
  auto coord = wrap(net.endpoint(protocol::coordinator_id), 0);
  parallel_options popt;
  popt.health_check = [&] {
    std::lock_guard<std::mutex> lock(failure_mutex);
    if (worker_failure) std::rethrow_exception(worker_failure);
  };
  run_result r;
  try {
    r = train_parallel(p, s, *coord, popt, on_metrics, control);
  } catch (...) {
    net.close();  // wakes every worker so the threads can be joined
    for (auto& t : threads) t.join();
    throw;
  }
  for (auto& t : threads) t.join();
  if (trace) trace->close();  // throws io_error if the trace could not be written
  return r;
}

}  // namespace radmm::coordinator
