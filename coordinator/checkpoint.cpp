#include "coordinator/checkpoint.hpp"

#include "core/data.hpp"
#include "core/npy.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <system_error>

namespace radmm::coordinator {

namespace fs = std::filesystem;

namespace {

std::string hex(std::uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::map<std::string, std::string> fields(const std::string& text) {
  std::map<std::string, std::string> kv;
  std::istringstream is(text);
  for (std::string f; is >> f;) {
    const auto eq = f.find('=');
    if (eq != std::string::npos) kv[f.substr(0, eq)] = f.substr(eq + 1);
  }
  return kv;
}

}  // namespace

std::string checkpoint_root(const std::string& out) { return out + "/checkpoints"; }

std::string checkpoint_dir(const std::string& root, long updates) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "ckpt-%012ld", updates);
  return root + "/" + buf;
}

void prepare_checkpoint_dir(const std::string& dir) {
  std::error_code ec;
  fs::remove_all(dir, ec);
  fs::create_directories(dir, ec);
  if (ec) throw core::data_error(dir + ": cannot create the checkpoint directory: " + ec.message());
  fs::permissions(dir, fs::perms::owner_all, ec);
}

checkpoint_file write_block_file(const std::string& dir, const core::block_state& b) {
  checkpoint_file f;
  f.name = "layer-" + std::to_string(b.layer) + ".bin";
  const std::string bytes = core::encode_block(b);
  core::write_file_atomic(dir + "/" + f.name, bytes);
  f.checksum = core::fnv1a64(bytes);
  f.bytes = bytes.size();
  return f;
}

checkpoint_file parse_block_report(const std::string& text, int layer) {
  const auto kv = fields(text);
  checkpoint_file f;
  try {
    f.name = kv.at("file");
    f.checksum = std::stoull(kv.at("checksum"), nullptr, 16);
    f.bytes = static_cast<std::size_t>(std::stoull(kv.at("bytes")));
  } catch (const std::exception&) {
    throw core::data_error("layer " + std::to_string(layer) + " reported no checkpoint block ('" + text + "')");
  }
  return f;
}

void complete_checkpoint(const std::string& root, const std::string& dir, long updates, std::size_t next_step,
                         int layers, const std::string& config_digest, const std::vector<checkpoint_file>& files,
                         const std::vector<core::iteration_metrics>& metrics) {
  std::string csv = core::metrics_csv_header() + "\n";
  for (const auto& m : metrics) csv += core::metrics_csv_row(m) + "\n";
  core::write_file_atomic(dir + "/metrics.csv", csv);
  std::ostringstream man;
  man << "format=radmm-checkpoint\nversion=1\nupdates=" << updates << "\nnext_step=" << next_step
      << "\nlayers=" << layers << "\nconfig=" << config_digest << "\nmetrics=" << metrics.size() << "\n";
  for (const auto& f : files) man << "block=" << f.name << " " << hex(f.checksum) << " " << f.bytes << "\n";
  core::write_file_atomic(dir + "/manifest.txt", man.str());
  // Only now is the new checkpoint whole: the older ones can go.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.path().string() != dir && e.path().filename().string().rfind("ckpt-", 0) == 0) fs::remove_all(e.path(), ec);
}

std::optional<loaded_checkpoint> load_latest_checkpoint(const std::string& root, int layers,
                                                        const std::string& config_digest,
                                                        std::vector<std::string>* skipped) {
  std::vector<fs::path> dirs;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root, ec))
    if (e.is_directory() && e.path().filename().string().rfind("ckpt-", 0) == 0) dirs.push_back(e.path());
  std::sort(dirs.rbegin(), dirs.rend());  // newest first (names are zero-padded)
  for (const fs::path& d : dirs) {
    try {
      const std::string manifest_path = (d / "manifest.txt").string();
      if (!fs::exists(manifest_path)) throw core::data_error(d.string() + ": incomplete (no manifest.txt)");
      std::map<std::string, std::string> kv;
      std::vector<std::string> blocks;
      std::istringstream is(core::read_file(manifest_path));
      for (std::string line; std::getline(is, line);) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        if (line.compare(0, eq, "block") == 0) blocks.push_back(line.substr(eq + 1));
        else kv[line.substr(0, eq)] = line.substr(eq + 1);
      }
      if (kv["format"] != "radmm-checkpoint" || kv["version"] != "1")
        throw core::data_error(manifest_path + ": not a version 1 radmm checkpoint manifest");
      if (kv["layers"] != std::to_string(layers) || kv["config"] != config_digest)
        throw core::data_error(manifest_path + ": written by a run with another configuration");
      if (static_cast<int>(blocks.size()) != layers)
        throw core::data_error(manifest_path + ": names " + std::to_string(blocks.size()) + " blocks, expected " +
                               std::to_string(layers));
      loaded_checkpoint c;
      c.dir = d.string();
      c.updates = std::stol(kv.at("updates"));
      c.next_step = static_cast<std::size_t>(std::stoul(kv.at("next_step")));
      c.blocks.resize(static_cast<std::size_t>(layers) + 1);
      for (const std::string& entry : blocks) {
        std::istringstream es(entry);
        std::string name, sum;
        std::size_t bytes = 0;
        es >> name >> sum >> bytes;
        const std::string path = (d / name).string();
        const std::string data = core::read_file(path);
        if (data.size() != bytes || hex(core::fnv1a64(data)) != sum)
          throw core::data_error(path + ": checksum or size does not match the manifest (damaged)");
        core::block_state b = core::decode_block(data, path);
        if (b.layer < 1 || b.layer > layers || b.iteration != c.updates)
          throw core::data_error(path + ": block of layer " + std::to_string(b.layer) + " at iteration " +
                                 std::to_string(b.iteration) + " does not belong here");
        c.blocks[static_cast<std::size_t>(b.layer)] = std::move(b);
      }
      std::istringstream ms(core::read_file((d / "metrics.csv").string()));
      std::string line;
      std::getline(ms, line);  // header
      while (std::getline(ms, line))
        if (!line.empty()) c.metrics.push_back(core::parse_metrics_csv_row(line));
      if (kv["metrics"] != std::to_string(c.metrics.size()))
        throw core::data_error((d / "metrics.csv").string() + ": row count does not match the manifest");
      return c;
    } catch (const std::exception& e) {
      if (skipped) skipped->push_back(e.what());
    }
  }
  return std::nullopt;
}

}  // namespace radmm::coordinator
