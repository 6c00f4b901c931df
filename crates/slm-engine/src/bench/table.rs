//! Benchmark rows as llama-bench prints them: a markdown table (printed row by row as results
//! come) and CSV with every value quoted. JSON is the rows' `serde` form.

use super::{human_params, human_size, BenchRow};

/// A markdown table whose column widths are fixed up front, so rows can print as they finish.
pub struct MarkdownTable {
    name_width: usize,
    show_batch: bool,
}

impl MarkdownTable {
    /// `names`: the model names that will appear; `show_batch`: add the `n_batch` column
    /// (llama-bench shows it when it is not the default).
    pub fn new(names: &[String], show_batch: bool) -> MarkdownTable {
        let name_width = names.iter().map(|n| n.chars().count()).max().unwrap_or(0);
        MarkdownTable {
            name_width: name_width.max(30),
            show_batch,
        }
    }

    /// (title, width, right-aligned)
    fn columns(&self) -> Vec<(&'static str, usize, bool)> {
        let mut c = vec![
            ("model", self.name_width, false),
            ("type", 8, false),
            ("size", 10, true),
            ("params", 10, true),
            ("bpw", 5, true),
            ("backend", 7, false),
            ("threads", 7, true),
        ];
        if self.show_batch {
            c.push(("n_batch", 7, true));
        }
        c.extend([
            ("test", 15, true),
            ("t/s", 20, true),
            ("peak RSS", 10, true),
        ]);
        c
    }

    fn line(&self, cells: &[String]) -> String {
        let mut s = String::from("|");
        for ((_, w, right), v) in self.columns().iter().zip(cells) {
            let pad = w.saturating_sub(v.chars().count());
            if *right {
                s.push_str(&format!(" {}{v} |", " ".repeat(pad)));
            } else {
                s.push_str(&format!(" {v}{} |", " ".repeat(pad)));
            }
        }
        s
    }

    /// The header and the separator line.
    pub fn header(&self) -> String {
        let titles: Vec<String> = self.columns().iter().map(|c| c.0.to_string()).collect();
        let mut sep = String::from("|");
        for (_, w, right) in self.columns() {
            let dashes = "-".repeat(w.saturating_sub(1));
            sep.push_str(&format!(" {dashes}{} |", if right { ':' } else { '-' }));
        }
        format!("{}\n{sep}", self.line(&titles))
    }

    pub fn row(&self, r: &BenchRow) -> String {
        let mut cells = vec![
            r.model.short_name(),
            r.model.file_type.clone(),
            human_size(r.model.model_size),
            human_params(r.model.model_n_params),
            format!("{:.2}", r.model.bits_per_weight),
            r.backend.to_string(),
            r.n_threads.to_string(),
        ];
        if self.show_batch {
            cells.push(r.n_batch.to_string());
        }
        cells.extend([
            r.test.clone(),
            format!("{:.2} ± {:.2}", r.avg_ts, r.stddev_ts),
            r.peak_rss_bytes.map_or_else(|| "-".to_string(), human_size),
        ]);
        self.line(&cells)
    }
}

/// The CSV header line.
pub const CSV_FIELDS: &[&str] = &[
    "model_filename",
    "model_type",
    "file_type",
    "model_size",
    "file_bytes",
    "model_n_params",
    "bits_per_weight",
    "backend",
    "n_batch",
    "n_threads",
    "test",
    "n_prompt",
    "n_gen",
    "avg_ns",
    "stddev_ns",
    "avg_ts",
    "stddev_ts",
    "peak_rss_bytes",
    "peak_rss_scope",
];

fn quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub fn csv_header() -> String {
    CSV_FIELDS.join(",")
}

/// One CSV line for a row, every value quoted as llama-bench does.
pub fn csv_row(r: &BenchRow) -> String {
    let scope = match r.peak_rss_scope {
        super::memory::PeakScope::Row => "row",
        super::memory::PeakScope::Process => "process",
        super::memory::PeakScope::Unavailable => "unavailable",
    };
    let values = [
        r.model.model_filename.clone(),
        r.model.model_type.clone(),
        r.model.file_type.clone(),
        r.model.model_size.to_string(),
        r.model.file_bytes.to_string(),
        r.model.model_n_params.to_string(),
        format!("{:.4}", r.model.bits_per_weight),
        r.backend.to_string(),
        r.n_batch.to_string(),
        r.n_threads.to_string(),
        r.test.clone(),
        r.n_prompt.to_string(),
        r.n_gen.to_string(),
        r.avg_ns.to_string(),
        r.stddev_ns.to_string(),
        format!("{:.6}", r.avg_ts),
        format!("{:.6}", r.stddev_ts),
        r.peak_rss_bytes.map_or_else(String::new, |b| b.to_string()),
        scope.to_string(),
    ];
    values
        .iter()
        .map(|v| quote(v))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::super::{memory::PeakScope, ModelFacts};
    use super::*;

    fn row() -> BenchRow {
        BenchRow {
            model: ModelFacts {
                model_filename: "/m/a \"b\".gguf".into(),
                model_type: "llama 135M Q4_1".into(),
                file_type: "Q4_1".into(),
                model_size: 98 << 20,
                file_bytes: 99 << 20,
                model_n_params: 134_515_008,
                bits_per_weight: 5.9,
            },
            backend: "CPU",
            n_batch: 2048,
            n_threads: 2,
            test: "pp512".into(),
            n_prompt: 512,
            n_gen: 0,
            avg_ns: 1_000_000_000,
            stddev_ns: 0,
            avg_ts: 512.0,
            stddev_ts: 0.0,
            samples_ns: vec![1_000_000_000],
            samples_ts: vec![512.0],
            peak_rss_bytes: Some(200 << 20),
            peak_rss_scope: PeakScope::Row,
        }
    }

    #[test]
    fn markdown_lines_align() {
        let t = MarkdownTable::new(&["a \"b\"".into()], false);
        let h = t.header();
        let r = t.row(&row());
        let lens: Vec<usize> = h
            .lines()
            .chain(r.lines())
            .map(|l| l.chars().count())
            .collect();
        assert!(lens.windows(2).all(|w| w[0] == w[1]), "{h}\n{r}");
        assert!(r.contains("512.00 ± 0.00"));
        assert!(r.contains("98.00 MiB"));
        assert!(r.contains("200.00 MiB"));
    }

    #[test]
    fn csv_quotes_and_counts_fields() {
        let line = csv_row(&row());
        assert!(line.starts_with("\"/m/a \"\"b\"\".gguf\","));
        assert_eq!(line.matches("\",\"").count() + 1, CSV_FIELDS.len());
    }
}
