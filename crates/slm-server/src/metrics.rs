//! `/metrics`: Prometheus text of the server's counters and of each loaded model's engine.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::response::IntoResponse;

use crate::state::{AppState, ServedModel};

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    let m = &state.metrics;
    let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
    let mut out = String::new();
    let mut metric = |name: &str, kind: &str, help: &str, lines: Vec<(String, u64)>| {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for (labels, v) in lines {
            out.push_str(&format!("{name}{labels} {v}\n"));
        }
    };
    metric(
        "slm_requests_total",
        "counter",
        "Generation requests received.",
        vec![(String::new(), g(&m.requests))],
    );
    metric(
        "slm_request_errors_total",
        "counter",
        "Generation requests that failed.",
        vec![(String::new(), g(&m.errors))],
    );
    metric(
        "slm_prompt_tokens_total",
        "counter",
        "Prompt tokens processed.",
        vec![(String::new(), g(&m.prompt_tokens))],
    );
    metric(
        "slm_generated_tokens_total",
        "counter",
        "Tokens generated.",
        vec![(String::new(), g(&m.generated_tokens))],
    );
    metric(
        "slm_time_to_first_token_us_sum",
        "counter",
        "Sum of time to first token (us).",
        vec![(String::new(), g(&m.ttft_us_sum))],
    );
    metric(
        "slm_time_to_first_token_count",
        "counter",
        "Requests with a first token.",
        vec![(String::new(), g(&m.ttft_count))],
    );
    metric(
        "slm_inter_token_latency_us_sum",
        "counter",
        "Sum of inter-token latencies (us).",
        vec![(String::new(), g(&m.itl_us_sum))],
    );
    metric(
        "slm_inter_token_latency_count",
        "counter",
        "Inter-token gaps measured.",
        vec![(String::new(), g(&m.itl_count))],
    );
    metric(
        "slm_request_timeouts_total",
        "counter",
        "Generations ended by the wall-clock cap or the shutdown drain.",
        vec![(String::new(), g(&m.timeouts))],
    );
    metric(
        "slm_handler_panics_total",
        "counter",
        "Request handlers that panicked (answered 500).",
        vec![(String::new(), crate::error::PANICS.load(Ordering::Relaxed))],
    );
    let c = &crate::conn::STATS;
    metric(
        "slm_connections_open",
        "gauge",
        "HTTP connections open now.",
        vec![(String::new(), g(&c.open))],
    );
    metric(
        "slm_connections_closed_total",
        "counter",
        "HTTP connections the server closed or refused, by reason.",
        vec![
            ("{reason=\"evicted\"}".into(), g(&c.evicted)),
            ("{reason=\"header_timeout\"}".into(), g(&c.header_timeouts)),
            ("{reason=\"idle_timeout\"}".into(), g(&c.idle_timeouts)),
            ("{reason=\"refused\"}".into(), g(&c.refused)),
        ],
    );
    metric(
        "slm_streams_active",
        "gauge",
        "Generation streams running now.",
        vec![(String::new(), g(&m.streams))],
    );
    metric(
        "slm_memory_used_bytes",
        "gauge",
        "Bytes the loaded models count against the budget (weights + KV cache).",
        vec![(String::new(), state.models.used_bytes())],
    );
    metric(
        "slm_memory_budget_bytes",
        "gauge",
        "The memory budget of loaded models.",
        vec![(String::new(), state.models.config.max_memory)],
    );
    let loaded = state.models.loaded();
    let per_model = |f: &dyn Fn(&ServedModel) -> u64| {
        loaded
            .iter()
            .map(|s| {
                (
                    format!("{{model=\"{}\"}}", s.name.replace(['"', '\\', '\n'], "_")),
                    f(s.as_ref()),
                )
            })
            .collect::<Vec<_>>()
    };
    metric(
        "slm_queue_depth",
        "gauge",
        "Requests waiting for a sequence slot.",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .queued
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_active_sequences",
        "gauge",
        "Sequences being generated.",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .active
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_prompt_tokens_reused_total",
        "counter",
        "Prompt tokens served from the prefix cache.",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .tokens_reused
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_engine_tokens_generated_total",
        "counter",
        "Tokens sampled by the engine (including cancelled requests).",
        per_model(&|s| {
            s.model
                .engine
                .handle()
                .stats()
                .tokens_generated
                .load(Ordering::Relaxed) as u64
        }),
    );
    metric(
        "slm_model_loaded",
        "gauge",
        "Loaded models.",
        per_model(&|_| 1),
    );
    metric(
        "slm_model_memory_bytes",
        "gauge",
        "Bytes each loaded model counts against the budget.",
        per_model(&|s| s.size),
    );
    metric(
        "slm_model_slots",
        "gauge",
        "Sequence slots of each loaded model.",
        per_model(&|s| s.slots as u64),
    );
    metric(
        "slm_model_requests_in_flight",
        "gauge",
        "Requests holding each loaded model.",
        per_model(&|s| s.in_flight() as u64),
    );
    metric(
        "slm_model_weights_bytes",
        "gauge",
        "Bytes of weights of each loaded model.",
        per_model(&|s| s.model.summary.tensor_bytes),
    );
    ([("content-type", "text/plain; version=0.0.4")], out)
}
