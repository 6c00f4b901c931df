//! `slm recommend` and `slm catalog` filters: which catalog model and quant fit a memory budget,
//! with the arithmetic shown.
//!
//! need = weights (file size) + KV(ctx) (f16 cache, the formula of `slm show`) + overhead
//! (compute buffers and runtime: 64 MiB + 2% of the weights). The pick is the largest model
//! (parameters) that fits with the given use, at the best-quality quant that still fits;
//! a bigger model at 4 bits beats a smaller one at 8 bits (the lesson's guideline).

use crate::catalog::{Capability, CatalogModel, QuantFile, CATALOG};
use crate::error::{HubError, Result};

/// Fixed runtime overhead added to every estimate.
pub const OVERHEAD_BASE: u64 = 64 << 20;

/// Parse a memory size: `4GB`, `4GiB`, `4G`, `512MB`, `512M`, `1.5GB`, or bytes. RAM is sold in
/// binary units, so GB and GiB both mean 2^30 (MB and MiB 2^20).
pub fn parse_memory(s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let bad = || {
        HubError::Other(format!(
            "cannot read memory size {s:?} (examples: 4GB, 512MB)"
        ))
    };
    let v: f64 = num.parse().map_err(|_| bad())?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bytes = v * mult;
    if !bytes.is_finite() || !(1.0..=1e15).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes as u64)
}

/// Quality rank of a quant (higher = closer to full precision).
pub fn quant_rank(q: &str) -> u32 {
    match q.to_ascii_uppercase().as_str() {
        "F32" => 100,
        "F16" | "BF16" => 90,
        "Q8_0" => 80,
        "Q6_K" => 70,
        "Q5_K_M" | "Q5_K_S" | "Q5_1" | "Q5_0" => 60,
        "Q4_K_M" => 50,
        "Q4_K_S" | "Q4_1" => 45,
        "Q4_0" | "IQ4_XS" | "IQ4_NL" => 40,
        "I2_S" | "TQ1_0" | "TQ2_0" => 35,
        _ => 10,
    }
}

/// The memory arithmetic for one model + quant at one context size.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub model: &'static CatalogModel,
    pub quant: &'static QuantFile,
    pub ctx: u64,
    pub weights: u64,
    pub kv: u64,
    pub overhead: u64,
    pub total: u64,
}

impl Estimate {
    pub fn new(model: &'static CatalogModel, quant: &'static QuantFile, ctx: u64) -> Estimate {
        let ctx = ctx.min(model.context_length);
        let weights = quant.size;
        let kv = model.kv.kv_bytes(ctx);
        let overhead = OVERHEAD_BASE + weights / 50;
        let total = weights.saturating_add(kv).saturating_add(overhead);
        Estimate {
            model,
            quant,
            ctx,
            weights,
            kv,
            overhead,
            total,
        }
    }
}

/// Human-readable bytes (binary units).
pub fn human(b: u64) -> String {
    let f = b as f64;
    if f >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", f / (1u64 << 30) as f64)
    } else {
        format!("{:.0} MiB", f / (1u64 << 20) as f64)
    }
}

/// A recommendation: the pick, and every candidate considered (fitting or not).
#[derive(Clone, Debug)]
pub struct Recommendation {
    pub pick: Option<Estimate>,
    pub candidates: Vec<Estimate>,
    pub budget: u64,
    pub why: String,
}

/// Pick the best model + quant for `budget` bytes, use `cap` and context `ctx`.
pub fn recommend(budget: u64, cap: Capability, ctx: u64) -> Recommendation {
    let mut candidates: Vec<Estimate> = CATALOG
        .iter()
        .filter(|m| m.has(cap))
        .flat_map(|m| m.quants.iter().map(move |q| Estimate::new(m, q, ctx)))
        .collect();
    candidates.sort_by(|a, b| {
        (b.model.params, quant_rank(b.quant.quant))
            .cmp(&(a.model.params, quant_rank(a.quant.quant)))
    });
    let pick = candidates.iter().find(|e| e.total <= budget).cloned();
    let why = match &pick {
        Some(e) => {
            let bigger: Vec<&str> = candidates
                .iter()
                .filter(|c| c.model.params > e.model.params && c.total > budget)
                .map(|c| c.model.name)
                .fold(Vec::new(), |mut v, n| {
                    if !v.contains(&n) {
                        v.push(n);
                    }
                    v
                });
            let mut w = format!(
                "{} is the largest {} model that fits: {} ({}) of {} budget, {} left",
                e.model.name,
                cap.name(),
                human(e.total),
                e.quant.quant,
                human(budget),
                human(budget - e.total)
            );
            if !bigger.is_empty() {
                w.push_str(&format!(
                    "; larger ones do not fit even at 4 bits ({})",
                    bigger.join(", ")
                ));
            }
            if let Some(better) = e
                .model
                .quants
                .iter()
                .find(|q| quant_rank(q.quant) > quant_rank(e.quant.quant))
            {
                w.push_str(&format!(
                    "; {} would need {}",
                    better.quant,
                    human(Estimate::new(e.model, better, ctx).total)
                ));
            }
            w
        }
        None => format!(
            "nothing in the catalog with use {} fits in {} at context {ctx}; try a smaller --ctx",
            cap.name(),
            human(budget)
        ),
    };
    Recommendation {
        pick,
        candidates,
        budget,
        why,
    }
}
