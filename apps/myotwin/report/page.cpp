#include "page.hpp"

#include <cstdlib>

#include "myotwin/core/error.hpp"
#include "myotwin/core/files.hpp"

namespace fs = std::filesystem;

namespace myotwin::app::report {

namespace {

const char* const bundle_files[] = {"vega.min.js", "vega-lite.min.js", "vega-embed.min.js"};

bool has_bundles(const fs::path& dir) {
  for (const char* f : bundle_files) {
    std::error_code ec;
    if (!fs::is_regular_file(dir / f, ec))
      return false;
  }
  return true;
}

/// `text` safe inside a <script> element: each `</script` becomes `<\/script` (the same in a JS
/// string or regular expression and in JSON; the bundles have none today).
std::string script_safe(std::string text) {
  for (auto at = text.find("</script"); at != std::string::npos; at = text.find("</script", at + 3))
    text.replace(at, 2, "<\\/");
  return text;
}

// The page's style and its render hook: embeds every chart, then writes the render status.
constexpr const char* style = R"(
body{font-family:system-ui,sans-serif;margin:0 auto;max-width:1150px;padding:0 16px;color:#222}
header{border-bottom:2px solid #446;margin-bottom:12px} h1{margin:12px 0 4px}
header table td{padding:1px 12px 1px 0;font-size:14px} .note{color:#a40;font-size:14px}
section{border-top:1px solid #ccc;padding:6px 0 16px} figure{margin:10px 0}
figcaption{font-size:13px;color:#555;max-width:1000px} .chart{min-height:40px}
table.data{border-collapse:collapse;font-size:13px} table.data td,table.data th{border:1px solid #bbb;padding:2px 6px;text-align:right}
p{max-width:1000px}
)";

constexpr const char* hook = R"(
(function(){
  const status = {charts: [], errors: []};
  window.addEventListener('error', e => status.errors.push(String(e.message)));
  const consoleError = console.error;
  console.error = function(...a){ status.errors.push(a.map(String).join(' ')); consoleError.apply(console, a); };
  const only = new URLSearchParams(location.search).get('section');
  if (only) for (const s of document.querySelectorAll('section'))
    if (s.id !== only) s.style.display = 'none';
  function countMarks(root){
    let n = 0; const stack = [root];
    while (stack.length){
      const m = stack.pop();
      if (m.marktype && m.marktype !== 'group' && m.role === 'mark') n += (m.items || []).length;
      for (const it of (m.items || [])) if (it.items) stack.push(...it.items);
    }
    return n;
  }
  const jobs = [];
  // With ?section=ID only that section is shown, and only its charts are drawn.
  for (const el of document.querySelectorAll(only ? 'section#' + CSS.escape(only) + ' div.chart' : 'div.chart')){
    const spec = JSON.parse(document.getElementById(el.id + '-spec').textContent);
    const entry = {id: el.id, section: el.closest('section').id, marks: 0, error: null};
    status.charts.push(entry);
    jobs.push(vegaEmbed('#' + el.id, spec, {actions: false, renderer: 'canvas'})
      .then(r => { entry.marks = countMarks(r.view.scenegraph().root); })
      .catch(e => { entry.error = String(e); status.errors.push(el.id + ': ' + e); }));
  }
  Promise.allSettled(jobs).then(() => {
    status.done = true;
    const pre = document.getElementById('render-status');
    pre.textContent = JSON.stringify(status);
  });
})();
)";

} // namespace

std::string escape_html(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
    case '&':
      out += "&amp;";
      break;
    case '<':
      out += "&lt;";
      break;
    case '>':
      out += "&gt;";
      break;
    case '"':
      out += "&quot;";
      break;
    default:
      out += c;
    }
  }
  return out;
}

void Section::add_text(const std::string& text) {
  html += "<p>" + escape_html(text) + "</p>\n";
}

void Section::add_chart(nlohmann::json spec, const std::string& caption) {
  const std::string chart_id = id + "-chart-" + std::to_string(charts.size());
  html += "<figure><div class=\"chart\" id=\"" + chart_id + "\"></div><figcaption>" +
          escape_html(caption) + "</figcaption></figure>\n";
  spec["$schema"] = "https://vega.github.io/schema/vega-lite/v5.json";
  charts.push_back(std::move(spec));
}

void Section::add_table(const std::vector<std::vector<std::string>>& rows) {
  html += "<table class=\"data\">\n";
  for (std::size_t r = 0; r < rows.size(); ++r) {
    html += "<tr>";
    for (const auto& cell : rows[r])
      html += (r == 0 ? "<th>" : "<td>") + escape_html(cell) + (r == 0 ? "</th>" : "</td>");
    html += "</tr>\n";
  }
  html += "</table>\n";
}

fs::path find_bundles() {
  std::vector<fs::path> tried;
  if (const char* env = std::getenv("MYOTWIN_REPORT_JS"); env != nullptr && *env != '\0')
    tried.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec)
    tried.push_back(exe.parent_path().parent_path() / "share/myotwin/report");
#ifdef MYOTWIN_REPORT_JS_DIR
  tried.emplace_back(MYOTWIN_REPORT_JS_DIR);
#endif
  std::string list;
  for (const auto& dir : tried) {
    if (has_bundles(dir))
      return dir;
    list += (list.empty() ? "" : ", ") + dir.string();
  }
  throw IoError("the report's JavaScript bundles (vega.min.js, vega-lite.min.js, "
                "vega-embed.min.js) are not in " +
                (list.empty() ? std::string("any folder") : list) +
                ": run scripts/install-deps.sh (it runs `npm ci` in report/), then "
                "scripts/build.sh, or set MYOTWIN_REPORT_JS to a folder holding them");
}

std::string render_html(const Page& page, const fs::path& bundle_dir) {
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>" +
                    escape_html(page.title) + "</title>\n<style>" + style + "</style>\n";
  for (const char* f : bundle_files)
    out += "<script>" + script_safe(read_text_file(bundle_dir / f)) + "</script>\n";
  out += "</head><body>\n<header><h1>" + escape_html(page.title) + "</h1><table>\n";
  for (const auto& [key, value] : page.header)
    out += "<tr><td>" + escape_html(key) + "</td><td>" + escape_html(value) + "</td></tr>\n";
  out += "</table>\n";
  for (const auto& note : page.notes)
    out += "<p class=\"note\">" + escape_html(note) + "</p>\n";
  out += "<nav>";
  for (const auto& s : page.sections)
    out += "<a href=\"#" + s.id + "\">" + escape_html(s.title) + "</a> ";
  out += "</nav></header>\n";
  for (const auto& s : page.sections) {
    out += "<section id=\"" + s.id + "\"><h2>" + escape_html(s.title) + "</h2>\n" + s.html;
    for (std::size_t c = 0; c < s.charts.size(); ++c)
      out += "<script type=\"application/json\" id=\"" + s.id + "-chart-" + std::to_string(c) +
             "-spec\">" + script_safe(s.charts[c].dump()) + "</script>\n";
    out += "</section>\n";
  }
  out += "<pre id=\"render-status\" hidden></pre>\n<script>" + std::string(hook) +
         "</script>\n</body></html>\n";
  return out;
}

} // namespace myotwin::app::report
