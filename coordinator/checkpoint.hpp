#pragma once
// Checkpoints of a run, in its output directory:
//   OUT/checkpoints/ckpt-<updates>/layer-<i>.bin   one block per layer (core/checkpoint.hpp)
//   OUT/checkpoints/ckpt-<updates>/metrics.csv     the metrics rows so far
//   OUT/checkpoints/ckpt-<updates>/manifest.txt    written last: a checkpoint
//                                                  without it is incomplete
// The manifest names every block file with its FNV-1a checksum and size, the
// iteration, the next STEP of the schedule and the run's config digest. A new
// checkpoint is written completely before older ones are removed; a damaged or
// incomplete one is named and skipped in favour of the previous one. The batch
// order needs no saved generator state: it is a function of (seed, epoch).
#include "core/checkpoint.hpp"
#include "core/metrics.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace radmm::coordinator {

struct checkpoint_file {
  std::string name;
  std::uint64_t checksum = 0;
  std::size_t bytes = 0;
};

struct loaded_checkpoint {
  std::string dir;
  long updates = 0;
  std::size_t next_step = 0;
  std::vector<core::block_state> blocks;  // index 1..N
  std::vector<core::iteration_metrics> metrics;
};

std::string checkpoint_root(const std::string& out);
std::string checkpoint_dir(const std::string& root, long updates);
// Creates the directory of a new checkpoint (removing a stale incomplete one).
void prepare_checkpoint_dir(const std::string& dir);
// Writes one block file; returns its manifest entry.
checkpoint_file write_block_file(const std::string& dir, const core::block_state& b);
// Parses a worker's SYNC text "file=... checksum=... bytes=...".
checkpoint_file parse_block_report(const std::string& text, int layer);
// Writes metrics.csv and then manifest.txt (atomically), completing the checkpoint,
// and removes every older checkpoint under `root`.
void complete_checkpoint(const std::string& root, const std::string& dir, long updates, std::size_t next_step,
                         int layers, const std::string& config_digest, const std::vector<checkpoint_file>& files,
                         const std::vector<core::iteration_metrics>& metrics);
// The newest complete, undamaged checkpoint under `root` for `layers` layers and
// this config digest; damaged or incomplete ones are described in `skipped`.
std::optional<loaded_checkpoint> load_latest_checkpoint(const std::string& root, int layers,
                                                        const std::string& config_digest,
                                                        std::vector<std::string>* skipped);

}  // namespace radmm::coordinator
