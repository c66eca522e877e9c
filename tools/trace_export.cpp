#include "tools/trace_export.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

namespace radmm::tools {

namespace pr = protocol;
using pr::msg_type;

namespace {

std::string json_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          o += buf;
        } else {
          o += c;
        }
    }
  }
  return o;
}

std::string xml_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

std::string us(std::int64_t ns) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(ns) / 1e3);
  return buf;
}

const char* block_colour(pr::span_block b) {
  switch (b) {
    case pr::span_block::W: return "#3b75af";
    case pr::span_block::U: return "#55a868";
    case pr::span_block::V: return "#e1812c";
    case pr::span_block::Lambda: return "#8c61c1";
    case pr::span_block::forward: return "#8c8c8c";
    case pr::span_block::other: return "#c4b26a";
  }
  return "#c4b26a";
}

const char* const wait_colour = "#d5d5d5";

const char* message_colour(msg_type t) {
  switch (t) {
    case msg_type::tick: return "#2a9d8f";
    case msg_type::tock: return "#d1495b";
    case msg_type::step:
    case msg_type::sync: return "#444444";
    case msg_type::error: return "#ff0000";
    default: return "#999999";
  }
}

}  // namespace

void write_chrome_trace(const run_model& r, std::ostream& os) {
  os << "{\"displayTimeUnit\":\"ns\",\"otherData\":{\"tool\":\"radmm-trace\",\"layers\":" << r.layers
     << "},\"traceEvents\":[\n";
  bool first = true;
  auto emit = [&](const std::string& e) {
    os << (first ? "" : ",\n") << e;
    first = false;
  };
  emit("{\"ph\":\"M\",\"pid\":1,\"name\":\"process_name\",\"args\":{\"name\":\"radmm run (" +
       std::to_string(r.layers) + " layers)\"}}");
  for (int n = 0; n < r.nodes(); ++n) {
    emit("{\"ph\":\"M\",\"pid\":1,\"tid\":" + std::to_string(n) + ",\"name\":\"thread_name\",\"args\":{\"name\":\"" +
         node_name(n) + "\"}}");
    emit("{\"ph\":\"M\",\"pid\":1,\"tid\":" + std::to_string(n) +
         ",\"name\":\"thread_sort_index\",\"args\":{\"sort_index\":" + std::to_string(n) + "}}");
  }
  for (const aligned_span& s : r.spans)
    emit("{\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(s.node) + ",\"name\":\"" + pr::to_string(s.block) +
         "\",\"cat\":\"compute\",\"ts\":" + us(s.t_begin) + ",\"dur\":" + us(std::max<std::int64_t>(s.t_end - s.t_begin, 1)) +
         ",\"args\":{\"k\":" + std::to_string(s.iteration) + "}}");
  for (const traced_message& m : r.messages) {
    const std::string name = std::string(pr::to_string(m.type)) + " k=" + std::to_string(m.iteration);
    const std::string args = "\"args\":{\"seq\":" + std::to_string(m.seq) + ",\"from\":\"" + node_name(m.sender) +
                             "\",\"to\":\"" + node_name(m.receiver) + "\",\"batch\":" + std::to_string(m.batch) + "}";
    if (m.send)
      emit("{\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(m.sender) + ",\"name\":\"send " + name +
           "\",\"cat\":\"message\",\"ts\":" + us(m.t_send_begin) + ",\"dur\":" +
           us(std::max<std::int64_t>(m.t_send_end - m.t_send_begin, 1)) + "," + args + "}");
    if (m.receive) {
      const std::int64_t wait = m.t_receive - m.t_wait;
      emit("{\"ph\":\"X\",\"pid\":1,\"tid\":" + std::to_string(m.receiver) + ",\"name\":\"" +
           (wait > 0 ? "wait " : "take ") + json_escape(name) + "\",\"cat\":\"wait\",\"ts\":" + us(m.t_wait) +
           ",\"dur\":" + us(std::max<std::int64_t>(wait, 1)) + "," + args + "}");
    }
    if (m.send && m.receive) {
      const std::string id = std::to_string(m.seq);
      emit("{\"ph\":\"s\",\"pid\":1,\"tid\":" + std::to_string(m.sender) + ",\"name\":\"" + name +
           "\",\"cat\":\"message\",\"id\":" + id + ",\"ts\":" + us(m.t_send_begin) + "}");
      emit("{\"ph\":\"f\",\"bp\":\"e\",\"pid\":1,\"tid\":" + std::to_string(m.receiver) + ",\"name\":\"" + name +
           "\",\"cat\":\"message\",\"id\":" + id + ",\"ts\":" + us(std::max(m.t_receive - 1, m.t_wait)) + "}");
    }
  }
  os << "\n]}\n";
}

void write_svg(const run_model& r, std::ostream& os, const svg_options& opt) {
  double a = opt.from_ms >= 0 ? opt.from_ms * 1e6 : static_cast<double>(r.run_begin);
  double b = opt.to_ms > 0 ? opt.to_ms * 1e6 : static_cast<double>(r.run_end);
  if (!(b > a)) b = a + 1e6;
  const int W = std::max(opt.width, 400);
  const int left = 120, right = 30, top = 70, row_h = 44, bar_h = 22;
  const int rows = r.nodes();
  const int plot_w = W - left - right;
  const int axis_y = top + rows * row_h + 6;
  const int legend_y = axis_y + 46;
  const int H = legend_y + 60;
  auto x_of = [&](double t) { return left + (t - a) / (b - a) * plot_w; };
  auto y_mid = [&](int n) { return top + n * row_h + row_h / 2; };
  char buf[1024];
  os << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  std::snprintf(buf, sizeof buf,
                "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
                "font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
                W, H, W, H);
  os << buf;

  os << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  std::string title = "radmm parallel run: " + std::to_string(r.layers) + " layers";
  for (const auto& s : r.data.streams)
    if (!s.description.empty()) {
      title = s.description;
      break;
    }
  os << "<text x=\"" << left << "\" y=\"28\" font-size=\"16\" font-weight=\"bold\">" << xml_escape(title) << "</text>\n";
  std::snprintf(buf, sizeof buf,
                "<text x=\"%d\" y=\"48\" fill=\"#555\">%.3f ms to %.3f ms of the trace; bars: compute spans; "
                "thin grey bars: waiting for a message; lines: messages from send to receipt</text>\n",
                left, a / 1e6, b / 1e6);
  os << buf;
  // Rows.
  for (int n = 0; n < rows; ++n) {
    const int y = top + n * row_h;
    os << "<rect x=\"" << left << "\" y=\"" << y << "\" width=\"" << plot_w << "\" height=\"" << row_h
       << "\" fill=\"" << (n % 2 ? "#fafafa" : "#ffffff") << "\"/>\n";
    os << "<text x=\"" << left - 10 << "\" y=\"" << y + row_h / 2 + 4 << "\" text-anchor=\"end\">" << node_name(n)
       << "</text>\n";
  }
  // Everything is clamped to the window by hand (no clip paths or patterns),
  // so simple renderers draw it the same as browsers.
  auto clamp_x = [&](double x) { return std::min(std::max(x, static_cast<double>(left)), static_cast<double>(left + plot_w)); };
  os << "<g>\n";
  // Waits.
  for (const traced_message& m : r.messages) {
    if (!m.receive || m.t_receive <= m.t_wait) continue;
    if (m.t_receive < a || m.t_wait > b) continue;
    const double x0 = clamp_x(x_of(static_cast<double>(m.t_wait))), x1 = clamp_x(x_of(static_cast<double>(m.t_receive)));
    if (x1 - x0 < 0.3) continue;
    std::snprintf(buf, sizeof buf, "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" stroke=\"none\"/>\n", x0,
                  y_mid(m.receiver) - bar_h / 2 + 7, x1 - x0, bar_h - 14, wait_colour);
    os << buf;
  }
  // Compute spans (nested ones drawn thinner on top).
  for (int depth = 0; depth < 2; ++depth)
    for (const aligned_span& s : r.spans) {
      if ((depth == 0) != (s.depth == 0)) continue;
      if (static_cast<double>(s.t_end) < a || static_cast<double>(s.t_begin) > b) continue;
      const double x0 = clamp_x(x_of(static_cast<double>(s.t_begin)));
      const double w = std::max(0.6, clamp_x(x_of(static_cast<double>(s.t_end))) - x0);
      const int h = depth == 0 ? bar_h : bar_h / 2;
      std::snprintf(buf, sizeof buf,
                    "<rect x=\"%.2f\" y=\"%d\" width=\"%.2f\" height=\"%d\" fill=\"%s\" stroke=\"none\"><title>%s k=%lld, %.1f us"
                    "</title></rect>\n",
                    x0, y_mid(s.node) - h / 2, w, h, block_colour(s.block), pr::to_string(s.block),
                    static_cast<long long>(s.iteration), static_cast<double>(s.t_end - s.t_begin) / 1e3);
      os << buf;
    }
  // Messages.
  for (const traced_message& m : r.messages) {
    if (!m.send || !m.receive) continue;
    if (static_cast<double>(m.t_receive) < a || static_cast<double>(m.t_send_begin) > b) continue;
    if (static_cast<double>(m.t_send_end) < a || static_cast<double>(m.t_receive) > b) continue;  // drawn whole or not at all
    const double x0 = x_of(static_cast<double>(m.t_send_end)), x1 = x_of(static_cast<double>(m.t_receive));
    const int y0 = y_mid(m.sender) + (m.receiver > m.sender ? bar_h / 2 : -bar_h / 2);
    const int y1 = y_mid(m.receiver) + (m.receiver > m.sender ? -bar_h / 2 : bar_h / 2);
    std::snprintf(buf, sizeof buf,
                  "<g><title>%s</title><line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"%s\" "
                  "stroke-width=\"1.2\"/></g>\n",
                  xml_escape(describe(m)).c_str(), x0, y0, x1, y1, message_colour(m.type));
    os << buf;
    std::snprintf(buf, sizeof buf, "<circle cx=\"%.2f\" cy=\"%d\" r=\"1.6\" fill=\"%s\"/>\n", x1, y1,
                  message_colour(m.type));
    os << buf;
  }
  os << "</g>\n";
  // Time axis with round ticks.
  const double span_ms = (b - a) / 1e6;
  const double raw = span_ms / 10;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double f : {1.0, 2.0, 5.0, 10.0})
    if (raw <= f * mag) {
      step = f * mag;
      break;
    }
  os << "<line x1=\"" << left << "\" y1=\"" << axis_y << "\" x2=\"" << left + plot_w << "\" y2=\"" << axis_y
     << "\" stroke=\"#333\"/>\n";
  for (double t = std::ceil(a / 1e6 / step) * step; t <= b / 1e6 + 1e-9; t += step) {
    const double x = x_of(t * 1e6);
    std::snprintf(buf, sizeof buf,
                  "<line x1=\"%.2f\" y1=\"%d\" x2=\"%.2f\" y2=\"%d\" stroke=\"#333\"/><line x1=\"%.2f\" y1=\"%d\" "
                  "x2=\"%.2f\" y2=\"%d\" stroke=\"#e6e6e6\"/><text x=\"%.2f\" y=\"%d\" text-anchor=\"middle\">%g"
                  "</text>\n",
                  x, axis_y, x, axis_y + 5, x, top, x, axis_y - 1, x, axis_y + 18, t);
    os << buf;
  }
  os << "<text x=\"" << left + plot_w / 2 << "\" y=\"" << axis_y + 36 << "\" text-anchor=\"middle\">time (ms)</text>\n";
  // Legend.
  int lx = left;
  auto swatch = [&](const char* colour, const std::string& label, bool line) {
    if (line)
      os << "<line x1=\"" << lx << "\" y1=\"" << legend_y + 7 << "\" x2=\"" << lx + 18 << "\" y2=\"" << legend_y + 7
         << "\" stroke=\"" << colour << "\" stroke-width=\"2\"/>";
    else
      os << "<rect x=\"" << lx << "\" y=\"" << legend_y << "\" width=\"18\" height=\"14\" fill=\"" << colour << "\"/>";
    os << "<text x=\"" << lx + 24 << "\" y=\"" << legend_y + 11 << "\">" << label << "</text>\n";
    lx += 30 + static_cast<int>(label.size()) * 7;
  };
  swatch(block_colour(pr::span_block::W), "W update", false);
  swatch(block_colour(pr::span_block::U), "U update", false);
  swatch(block_colour(pr::span_block::V), "V update", false);
  swatch(block_colour(pr::span_block::Lambda), "Lambda update", false);
  swatch(block_colour(pr::span_block::forward), "forward pass", false);
  swatch(wait_colour, "waiting for a message", false);
  swatch(message_colour(msg_type::tick), "TICK (to layer i+1)", true);
  swatch(message_colour(msg_type::tock), "TOCK (to layer i-1)", true);
  swatch(message_colour(msg_type::step), "STEP / SYNC", true);
  os << "</svg>\n";
}

}  // namespace radmm::tools
