//! The HTML report: one self-contained page (no network, no external files) with inline SVG
//! plots: the distribution of process means per cell, ratios with their intervals per
//! comparison, and knob sweeps; and a table of what ferrojit compiled, refused and deopted in
//! each cell, with its top deopt sites. A small script counts the plots that laid out with a non-empty
//! size and records it on `<body data-plots-rendered=N>`, which the tests read back from a
//! headless browser.

use crate::report::{counted_cells, sites_list, top_list, ComparisonReport, Summary, Sweep};
use std::fmt::Write;

const W: f64 = 720.0;
const LEFT: f64 = 260.0;
const RIGHT: f64 = 40.0;

pub fn page(s: &Summary) -> String {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>ferrojit-lab report</h1><p>Run <code>{}</code>, reported {}.</p>",
        esc(&s.run_dir),
        esc(&s.created)
    );
    body.push_str("<h2>Verdicts</h2><ul>");
    for c in &s.comparisons {
        let _ = write!(
            body,
            "<li><b>{}</b> ({}): <span class=\"v-{}\">{}</span>, {}</li>",
            esc(&c.name),
            c.target,
            c.verdict,
            c.verdict,
            esc(&c.reason)
        );
    }
    body.push_str("</ul>");
    if !s.warnings.is_empty() {
        body.push_str("<h2>Warnings</h2><ul>");
        for w in &s.warnings {
            let _ = write!(body, "<li>{}</li>", esc(w));
        }
        body.push_str("</ul>");
    }
    body.push_str("<h2>Ratios</h2><p>baseline time / candidate time, with bootstrap intervals over processes; the dashed line is the target.</p>");
    for c in &s.comparisons {
        body.push_str(&ratio_plot(c));
    }
    body.push_str("<h2>Distributions</h2><p>One dot per worker process (its mean); the bar is the interval of the mean.</p>");
    let mut benches: Vec<&str> = s.cells.iter().map(|c| c.benchmark.as_str()).collect();
    benches.dedup();
    for b in benches {
        body.push_str(&distribution_plot(s, b));
    }
    if !s.sweeps.is_empty() {
        body.push_str("<h2>Knob sweeps</h2>");
        for sw in &s.sweeps {
            body.push_str(&sweep_plot(sw));
        }
    }
    body.push_str(&counters_table(s));
    body.push_str(&counts_table(s));
    format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>ferrojit-lab report</title><style>{CSS}</style></head>\n<body>{body}<script>{SCRIPT}</script></body></html>\n"
    )
}

const CSS: &str = "body{font-family:sans-serif;max-width:60em;margin:1em auto;color:#222}svg.plot{display:block;margin:1em 0;background:#fafafa;border:1px solid #ddd}\
table.counters{border-collapse:collapse;font-size:12px}table.counters td,table.counters th{border:1px solid #ddd;padding:2px 6px;vertical-align:top;text-align:left}\
table.counters td.n{text-align:right}\
.v-holds{color:#080;font-weight:bold}.v-fails{color:#b00;font-weight:bold}.v-inconclusive{color:#a60;font-weight:bold}.v-not-applicable{color:#666}\
text{font-size:11px}";

const SCRIPT: &str = "(function(){var n=0;document.querySelectorAll('svg.plot').forEach(function(s){var b=s.getBBox();\
if(b.width>0&&b.height>0&&s.querySelectorAll('circle,rect,line').length>0)n++;});document.body.setAttribute('data-plots-rendered',String(n));\
document.body.setAttribute('data-plots-total',String(document.querySelectorAll('svg.plot').length));})();";

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Maps [lo, hi] onto the plot's horizontal span.
struct Scale {
    lo: f64,
    hi: f64,
}

impl Scale {
    fn new(values: impl Iterator<Item = f64>) -> Scale {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            return Scale { lo: 0.0, hi: 1.0 };
        }
        let pad = ((hi - lo) * 0.08).max(hi.abs() * 0.01).max(1e-12);
        Scale {
            lo: lo - pad,
            hi: hi + pad,
        }
    }

    fn x(&self, v: f64) -> f64 {
        LEFT + (v - self.lo) / (self.hi - self.lo) * (W - LEFT - RIGHT)
    }
}

fn axis(svg: &mut String, sc: &Scale, y: f64, fmt: &dyn Fn(f64) -> String) {
    let _ = write!(
        svg,
        "<line x1=\"{LEFT}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#999\"/>",
        W - RIGHT
    );
    for i in 0..=4 {
        let v = sc.lo + (sc.hi - sc.lo) * i as f64 / 4.0;
        let x = sc.x(v);
        let _ = write!(svg, "<line x1=\"{x:.1}\" y1=\"{y}\" x2=\"{x:.1}\" y2=\"{}\" stroke=\"#999\"/><text x=\"{x:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>", y + 4.0, y + 16.0, fmt(v));
    }
}

fn ratio_plot(c: &ComparisonReport) -> String {
    let mut rows: Vec<(String, f64, f64, f64)> = c
        .per_benchmark
        .iter()
        .filter_map(|b| {
            b.ratio
                .map(|r| (b.benchmark.clone(), r.estimate, r.ci_low, r.ci_high))
        })
        .collect();
    if let Some(g) = c.geomean {
        rows.push(("geometric mean".into(), g.estimate, g.ci_low, g.ci_high));
    }
    let h = 40.0 + 22.0 * rows.len().max(1) as f64 + 24.0;
    let sc = Scale::new(
        rows.iter()
            .flat_map(|r| [r.2, r.3])
            .chain([1.0, c.target.value]),
    );
    let mut svg = format!("<h3>{}</h3><svg class=\"plot\" width=\"{W}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">", esc(&c.name));
    let _ = write!(
        svg,
        "<text x=\"8\" y=\"16\">{} vs {} ({}){}</text>",
        esc(&sel(&c.baseline)),
        esc(&sel(&c.candidate)),
        c.target,
        if c.emulated { " — emulated" } else { "" }
    );
    let bottom = h - 24.0;
    for (v, dash) in [(1.0, ""), (c.target.value, " stroke-dasharray=\"4 3\"")] {
        let x = sc.x(v);
        let _ = write!(
            svg,
            "<line x1=\"{x:.1}\" y1=\"28\" x2=\"{x:.1}\" y2=\"{bottom}\" stroke=\"#c33\"{dash}/>"
        );
    }
    if rows.is_empty() {
        let _ = write!(svg, "<text x=\"{LEFT}\" y=\"48\">no data on one side</text><rect x=\"0\" y=\"0\" width=\"1\" height=\"1\" fill=\"none\"/>");
    }
    for (i, (name, est, lo, hi)) in rows.iter().enumerate() {
        let y = 44.0 + 22.0 * i as f64;
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{:.1}\">{}</text><line x1=\"{:.1}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#237\" stroke-width=\"2\"/><circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#237\"><title>{est:.4} [{lo:.4}, {hi:.4}]</title></circle>",
            y + 4.0,
            esc(name),
            sc.x(*lo),
            sc.x(*hi),
            sc.x(*est)
        );
    }
    axis(&mut svg, &sc, bottom, &|v| format!("{v:.3}"));
    svg.push_str("</svg>");
    svg
}

/// What ferrojit did in each cell that compiled something: counts per worker process, deopts by
/// reason, the top deopt sites and the refusal reasons.
fn counters_table(s: &Summary) -> String {
    let rows = counted_cells(s);
    if rows.is_empty() {
        return String::new();
    }
    let mut t = String::from(
        "<h2>ferrojit: compilations, deopts, refusals</h2><p>Means per worker process; a deopt site's count is the most exits one process took there.</p>\
         <table class=\"counters\"><tr><th>cell</th><th>compiled</th><th>refused</th><th>failed</th><th>recompiled</th><th>deopts</th><th>deopts by reason</th><th>top deopt sites</th><th>refusal reasons</th></tr>",
    );
    for (c, k) in rows {
        let mut reasons = top_list(&k.refused_reasons, 5);
        if !k.failed_reasons.is_empty() {
            let _ = write!(
                reasons,
                "{}failed: {}",
                if reasons.is_empty() { "" } else { "; " },
                top_list(&k.failed_reasons, 5)
            );
        }
        let _ = write!(
            t,
            "<tr><td>{}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td class=\"n\">{:.1}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.id),
            k.functions_compiled,
            k.functions_refused,
            k.functions_failed,
            k.recompilations,
            k.deopts,
            esc(&top_list(&k.deopts_by_reason, 5)),
            esc(&sites_list(k)),
            esc(&reasons)
        );
    }
    t.push_str("</table>");
    t
}

/// Executed instructions per loop: each comparison decided (or shown) by counts.
fn counts_table(s: &Summary) -> String {
    let rows: Vec<_> = (s.comparisons.iter())
        .filter_map(|c| c.counts.as_ref().map(|k| (c, k)))
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let mut t = String::from(
        "<h2>Executed instructions</h2><p>Per loop of the benchmark, one counted value on each side (qemu-user with ferrojit's plugin); ratio = baseline / candidate.</p>\
         <table class=\"counters\"><tr><th>comparison</th><th>benchmark</th><th>baseline</th><th>candidate</th><th>in generated code (baseline, candidate)</th><th>ratio</th><th>verdict</th></tr>",
    );
    let n = |x: Option<f64>| x.map_or("-".to_string(), |v| format!("{v:.0}"));
    for (c, k) in rows {
        for b in &k.per_benchmark {
            let _ = write!(
                t,
                "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}, {}</td><td class=\"n\">{}</td><td class=\"v-{}\">{}</td></tr>",
                esc(&c.name),
                esc(&b.benchmark),
                n(b.baseline_per_loop),
                n(b.candidate_per_loop),
                n(b.baseline_generated_per_loop),
                n(b.candidate_generated_per_loop),
                b.ratio.map_or("-".to_string(), |r| format!("{r:.3}x")),
                b.verdict,
                b.verdict
            );
        }
        let _ = write!(
            t,
            "<tr><td><b>{}</b></td><td>geometric mean</td><td></td><td></td><td></td><td class=\"n\">{}</td><td class=\"v-{}\">{}</td></tr>",
            esc(&c.name),
            k.geomean.map_or("-".to_string(), |r| format!("{r:.3}x")),
            k.verdict,
            k.verdict
        );
    }
    t.push_str("</table>");
    t
}

fn sel(s: &crate::config::Selector) -> String {
    let mut t = format!("{}/{}", s.host, s.runtime);
    for (k, v) in &s.knobs {
        let _ = write!(t, ",{k}={v}");
    }
    t
}

fn distribution_plot(s: &Summary, bench: &str) -> String {
    let cells: Vec<_> = s.cells.iter().filter(|c| c.benchmark == bench).collect();
    let sc = Scale::new(cells.iter().flat_map(|c| c.process_means.iter().copied()));
    let h = 40.0 + 22.0 * cells.len().max(1) as f64 + 24.0;
    let mut svg = format!("<h3>{}</h3><svg class=\"plot\" width=\"{W}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">", esc(bench));
    let _ = write!(svg, "<text x=\"8\" y=\"16\">process means, ms</text>");
    for (i, c) in cells.iter().enumerate() {
        let y = 44.0 + 22.0 * i as f64;
        let label = format!(
            "{}/{}{}",
            c.host,
            c.id.split('/').nth(1).unwrap_or(""),
            if c.emulated { " (emu)" } else { "" }
        );
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{:.1}\">{}</text>",
            y + 4.0,
            esc(&label)
        );
        if let Some(st) = &c.stats {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"8\" fill=\"#cde\"/>",
                sc.x(st.ci_low),
                y - 4.0,
                (sc.x(st.ci_high) - sc.x(st.ci_low)).max(1.0)
            );
        }
        for m in &c.process_means {
            let _ = write!(
                svg,
                "<circle cx=\"{:.1}\" cy=\"{y:.1}\" r=\"2.5\" fill=\"#237\" fill-opacity=\"0.7\"/>",
                sc.x(*m)
            );
        }
        if c.process_means.is_empty() {
            let _ = write!(
                svg,
                "<text x=\"{LEFT}\" y=\"{:.1}\">{}</text>",
                y + 4.0,
                esc(&c.status)
            );
        }
    }
    axis(&mut svg, &sc, h - 24.0, &|v| format!("{:.2}", v * 1e3));
    svg.push_str("</svg>");
    svg
}

fn sweep_plot(sw: &Sweep) -> String {
    let sc = Scale::new(sw.points.iter().flat_map(|p| [p.ci_low, p.ci_high]));
    let h = 40.0 + 22.0 * sw.points.len() as f64 + 24.0;
    let mut svg = format!(
        "<h3>{} on {}: {}</h3><svg class=\"plot\" width=\"{W}\" height=\"{h}\" xmlns=\"http://www.w3.org/2000/svg\">",
        esc(&sw.runtime),
        esc(&sw.host),
        esc(&sw.benchmark)
    );
    let _ = write!(
        svg,
        "<text x=\"8\" y=\"16\">mean time per knob setting, ms</text>"
    );
    let mut prev: Option<(f64, f64)> = None;
    for (i, p) in sw.points.iter().enumerate() {
        let y = 44.0 + 22.0 * i as f64;
        let label: Vec<String> = p.knobs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (x, lo, hi) = (sc.x(p.mean), sc.x(p.ci_low), sc.x(p.ci_high));
        let _ = write!(
            svg,
            "<text x=\"8\" y=\"{:.1}\">{}</text><line x1=\"{lo:.1}\" y1=\"{y:.1}\" x2=\"{hi:.1}\" y2=\"{y:.1}\" stroke=\"#237\" stroke-width=\"2\"/><circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"4\" fill=\"#237\"/>",
            y + 4.0,
            esc(&label.join(", "))
        );
        if let Some((px, py)) = prev {
            let _ = write!(
                svg,
                "<line x1=\"{px:.1}\" y1=\"{py:.1}\" x2=\"{x:.1}\" y2=\"{y:.1}\" stroke=\"#89a\"/>"
            );
        }
        prev = Some((x, y));
    }
    axis(&mut svg, &sc, h - 24.0, &|v| format!("{:.2}", v * 1e3));
    svg.push_str("</svg>");
    svg
}
