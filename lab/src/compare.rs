//! `compare DIR_A DIR_B`: before (A) and after (B) a change, cell by cell: the ratio
//! A time / B time (above 1: B is faster) with a bootstrap interval and p-value, and whether the
//! change is significant at the configured confidence.

use crate::matrix::{self, Manifest};
use crate::report::load_samples;
use crate::stats::{self, Bootstrap, Ratio};
use anyhow::{bail, Result};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct CellChange {
    pub cell: String,
    pub ratio: Option<Ratio>,
    /// "faster", "slower", "no significant change", or "missing" (no data on one side).
    pub change: String,
}

#[derive(Debug, Serialize)]
pub struct Comparison {
    pub schema: &'static str,
    pub schema_version: u32,
    pub before: String,
    pub after: String,
    pub cells: Vec<CellChange>,
}

pub fn compare(a: &Path, b: &Path) -> Result<Comparison> {
    let (ma, mb) = (Manifest::load(a)?, Manifest::load(b)?);
    let s = &mb.config.settings;
    let boot = Bootstrap {
        resamples: s.resamples,
        confidence: s.confidence,
        seed: s.seed,
    };
    let cells_b = matrix::cells(&mb.config);
    let cells_a = matrix::cells(&ma.config);
    let mut out = Vec::new();
    for cb in &cells_b {
        let Some(ca) = cells_a.iter().find(|c| c.id() == cb.id()) else {
            continue;
        };
        let sa = load_samples(ca, a, ma.config.settings.rounds())?;
        let sb = load_samples(cb, b, mb.config.settings.rounds())?;
        let ratio = stats::ratio(&sa, &sb, &boot);
        let change = match &ratio {
            None => "missing",
            Some(r) if r.ci_low > 1.0 => "faster",
            Some(r) if r.ci_high < 1.0 => "slower",
            Some(_) => "no significant change",
        };
        out.push(CellChange {
            cell: cb.id(),
            ratio,
            change: change.into(),
        });
    }
    if out.is_empty() {
        bail!("{} and {} have no cell in common", a.display(), b.display());
    }
    Ok(Comparison {
        schema: "ferrojit-lab/compare",
        schema_version: 1,
        before: a.display().to_string(),
        after: b.display().to_string(),
        cells: out,
    })
}

pub fn markdown(c: &Comparison, confidence: f64) -> String {
    let mut m = format!(
        "# {} (before) vs {} (after)\n\nratio = before time / after time (above 1: after is faster); {:.0}% bootstrap intervals over processes\n\n| cell | ratio | interval | p | change |\n|---|---|---|---|---|\n",
        c.before,
        c.after,
        confidence * 100.0
    );
    for x in &c.cells {
        match &x.ratio {
            Some(r) => m.push_str(&format!(
                "| {} | {:.3}x | [{:.3}, {:.3}] | {:.3} | {} |\n",
                x.cell, r.estimate, r.ci_low, r.ci_high, r.p_value, x.change
            )),
            None => m.push_str(&format!("| {} | - | - | - | {} |\n", x.cell, x.change)),
        }
    }
    m
}
