//! Hostile chat templates (reliability guide 2.5): SSTI attempts, recursion, CPU and memory
//! amplification, output size, control cases. Each must end with a typed error (or a harmless
//! output for SSTI probes) quickly, without panicking and without a large allocation (peak
//! extra heap measured by a counting global allocator), and a normal render must still work
//! afterwards.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use slm_tokenizer::template::{ChatMessage, ChatTemplate, TemplateError, MAX_OUTPUT};

/// Counts live heap bytes and the peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged; the counters
// are plain atomics and never affect the allocation itself.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Tests in this file run one at a time so the heap peak belongs to one case.
static SERIAL: Mutex<()> = Mutex::new(());

/// Most extra heap one hostile render may take.
const MAX_EXTRA_HEAP: usize = 48 << 20;

/// Wall-clock bound per case. The guide's CI target is 100 ms; the machine this runs on is
/// shared and unoptimized dependencies are slower, so the assertion leaves headroom and the
/// measured worst case is printed.
const MAX_TIME: Duration = Duration::from_millis(1000);

struct Outcome {
    result: Result<String, TemplateError>,
    elapsed: Duration,
    extra_heap: usize,
}

fn run(source: &str) -> Outcome {
    let messages = vec![ChatMessage::new("user", "hi")];
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let start = Instant::now();
    let result = ChatTemplate::new(source, "<s>", "</s>").and_then(|t| t.render(&messages, true));
    let elapsed = start.elapsed();
    let extra_heap = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    Outcome {
        result,
        elapsed,
        extra_heap,
    }
}

/// Runs the cases, checks time and heap, and checks the outcome with `check`.
fn cases(
    group: &str,
    list: &[(&str, String)],
    check: impl Fn(&str, &Result<String, TemplateError>),
) {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut worst = Duration::ZERO;
    let mut worst_heap = 0;
    for (name, src) in list {
        let o = run(src);
        eprintln!(
            "{group}/{name}: {:?} in {:?}, peak extra heap {} KiB",
            o.result.as_ref().map(|s| format!("Ok({} bytes)", s.len())),
            o.elapsed,
            o.extra_heap / 1024
        );
        check(name, &o.result);
        assert!(o.elapsed < MAX_TIME, "{group}/{name} took {:?}", o.elapsed);
        assert!(
            o.extra_heap <= MAX_EXTRA_HEAP,
            "{group}/{name} took {} bytes of heap",
            o.extra_heap
        );
        worst = worst.max(o.elapsed);
        worst_heap = worst_heap.max(o.extra_heap);
    }
    eprintln!(
        "{group}: {} cases, worst {worst:?}, worst extra heap {} KiB",
        list.len(),
        worst_heap / 1024
    );
    // The sandbox still renders normal templates afterwards.
    let t = ChatTemplate::new(
        "{% for m in messages %}{{ m.role }}:{{ m.content }}{% endfor %}",
        "",
        "",
    )
    .expect("normal template");
    assert_eq!(
        t.render(&[ChatMessage::new("user", "ok")], false)
            .as_deref(),
        Ok("user:ok")
    );
}

fn s(name: &'static str, src: &str) -> (&'static str, String) {
    (name, src.to_string())
}

fn must_fail(name: &str, r: &Result<String, TemplateError>) {
    assert!(r.is_err(), "{name}: expected an error, got {r:?}");
}

#[test]
fn ssti_reaches_nothing() {
    let list = [
        s("lipsum-globals", "{{ lipsum.__globals__ }}"),
        s("cycler-os", "{{ cycler.__init__.__globals__.os }}"),
        s(
            "mro-subclasses",
            "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        ),
        s("config-items", "{{ config.items() }}"),
        s(
            "template-reference",
            "{{ self._TemplateReference__context }}",
        ),
        s("request-application", "{{ request.application }}"),
        s("namespace-init", "{{ namespace.__init__ }}"),
        s("joiner", "{{ joiner }}{{ joiner() }}"),
        s("range-class", "{{ range.__class__ }}"),
        s(
            "attr-filter",
            "{{ ''|attr('__class__') }}{{ messages|attr('__class__')|attr('__base__') }}",
        ),
        s("import-os", "{% import 'os' as os %}{{ os.system('id') }}"),
        s("include-passwd", "{% include '/etc/passwd' %}"),
        s("extends", "{% extends 'base.html' %}"),
        s("from-import", "{% from 'x' import y %}{{ y() }}"),
        s("include-self", "{% include 'chat_template' %}"),
    ];
    cases("ssti", &list, |name, r| match r {
        Err(_) => {}
        Ok(out) => {
            // An undefined probe renders to nothing (or to a plain value such as a function's
            // name); never to host data.
            assert!(out.len() < 64, "{name}: {out:?}");
            for bad in ["root:", "class", "module", "globals", "/"] {
                assert!(!out.contains(bad), "{name}: {out:?}");
            }
        }
    });
    for (name, src) in [
        ("import", "{% import 'os' as os %}"),
        ("include", "{% include '/etc/passwd' %}"),
    ] {
        let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        assert_eq!(run(src).result, Err(TemplateError::LoadForbidden), "{name}");
    }
}

#[test]
fn recursion_is_bounded() {
    let list = [
        s("self-macro", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}"),
        s(
            "mutual-macros",
            "{% macro a(n) %}{{ b(n) }}{% endmacro %}{% macro b(n) %}{{ a(n) }}{% endmacro %}{{ a(1) }}",
        ),
        ("parens-10k", format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000))),
        ("if-10k", format!("{}x{}", "{% if true %}".repeat(10_000), "{% endif %}".repeat(10_000))),
        ("brackets-10k", format!("{{{{ {}1{} }}}}", "[".repeat(10_000), "]".repeat(10_000))),
        s("recursive-loop", "{% for x in [1] recursive %}{{ loop([1]) }}{% endfor %}"),
    ];
    cases("recursion", &list, must_fail);
}

#[test]
fn cpu_is_bounded_by_fuel() {
    let list = [
        s("range-2x", "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"),
        s(
            "range-3x",
            "{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}{% endfor %}{% endfor %}{% endfor %}",
        ),
        s(
            "while-by-recursion",
            "{% macro w(n) %}{% if n > 0 %}{{ w(n - 1) }}{% endif %}{% endmacro %}{{ w(1000000) }}",
        ),
        s("sort-range", "{% for i in range(1000) %}{{ range(100000)|sort|length }}{% endfor %}"),
        s("reverse-join", "{% for i in range(1000) %}{{ range(100000)|reverse|join }}{% endfor %}"),
        s("unique", "{% for i in range(1000) %}{{ range(100000)|unique|list|length }}{% endfor %}"),
    ];
    cases("cpu", &list, must_fail);
}

#[test]
fn memory_amplification_is_refused() {
    let list = [
        s("str-times-1e10", "{{ 'x' * 10**10 }}"),
        s("str-times-2e62", "{{ 'x' * 2**62 }}"),
        s("str-times-1e8", "{{ 'x' * 10**8 }}"),
        s("indent-1e10", "{{ 'a\nb'|indent(width=10**10) }}"),
        s("tojson-indent-1e10", "{{ [[1]]|tojson(indent=10**10) }}"),
        s("tojson-indent-1e6", "{{ [[[[1]]]]|tojson(indent=10**6) }}"),
        s(
            "string-doubling",
            "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
        ),
        s("join-large-range", "{{ range(100000)|join('y' * 10000) }}"),
        s("seq-repeat-1e9", "{{ ([0] * 10**9)|list|length }}"),
        s("seq-repeat-1e8", "{{ ([0] * 10**8)|list|length }}"),
        s("tuple-repeat-1e8", "{{ ((0,) * 10**8)|length }}"),
        s("replace", "{{ ('x' * 1000)|replace('x', 'y' * 100000) }}"),
        s("format-width", "{{ '%10000000000s'|format('x') }}"),
        s("format-width-1e8", "{{ '%100000000s'|format('x') }}"),
        s("center", "{{ 'x'|center(10**9) }}"),
        s("py-ljust", "{{ 'x'.ljust(10**9) }}"),
        s("py-join", "{{ ('y' * 10000).join(range(100000)|map('string')) }}"),
    ];
    cases("memory", &list, must_fail);
}

#[test]
fn output_size_is_capped() {
    let list = [
        s(
            "100MiB",
            "{% for i in range(100000) %}{{ 'x' * 1024 }}{% endfor %}",
        ),
        s(
            "2MiB",
            "{% for i in range(2048) %}{{ 'x' * 1024 }}{% endfor %}",
        ),
        s(
            "1M-pieces",
            "{% for i in range(1000) %}{% for j in range(1000) %}x{% endfor %}{% endfor %}",
        ),
    ];
    cases("output", &list, must_fail);
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        run("{% for i in range(2048) %}{{ 'x' * 1024 }}{% endfor %}").result,
        Err(TemplateError::OutputTooLarge(MAX_OUTPUT))
    );
    // NUL and other control characters pass through as text.
    let t = ChatTemplate::new("{{ messages[0].content }}", "", "").expect("compile");
    let out = t.render(&[ChatMessage::new("user", "a\0b\u{1}")], false);
    assert_eq!(out.as_deref(), Ok("a\0b\u{1}"));
}

#[test]
fn control_cases() {
    let _guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(
        run("{{ raise_exception('x') }}").result,
        Err(TemplateError::Raised("x".into()))
    );
    // The message is sanitized: no control characters, at most 256 characters.
    match run("{{ raise_exception('a\\nb\\u001b[31m' ~ 'c' * 1000) }}").result {
        Err(TemplateError::Raised(m)) => {
            assert!(!m.chars().any(char::is_control), "{m:?}");
            assert!(m.chars().count() <= 257, "{}", m.len());
            assert!(m.starts_with("ab[31mccc"), "{m:?}");
        }
        other => panic!("{other:?}"),
    }
    // Raised inside a macro, a loop and a filter argument: still the typed error.
    assert_eq!(
        run("{% macro m(x) %}{% for i in [1] %}{{ raise_exception('in ' ~ x) }}{% endfor %}{% endmacro %}{{ m('macro')|upper }}").result,
        Err(TemplateError::Raised("in macro".into()))
    );
    // Undefined: printing is lenient (jinja2's default), attribute access on it fails.
    assert_eq!(run("{{ nothing }}").result.as_deref(), Ok(""));
    assert!(matches!(
        run("{{ nothing.attr }}").result,
        Err(TemplateError::Render(_))
    ));
    assert_eq!(run("[{{ messages[100] }}]").result.as_deref(), Ok("[]"));
    assert_eq!(
        run("{% set messages = [] %}{% set bos_token = 'X' %}{{ messages|length }}{{ bos_token }}")
            .result
            .as_deref(),
        Ok("0X")
    );
    // strftime_now gives the current UTC date.
    let year = run("{{ strftime_now('%Y') }}")
        .result
        .expect("strftime_now");
    assert_eq!(year.len(), 4);
    assert!(year.starts_with("20"), "{year}");
    // The messages input cannot be modified.
    let r = run("{{ messages.append(1) }}{{ messages|length }}").result;
    assert!(
        r.is_err() || r.as_deref() == Ok("1") || r.as_deref() == Ok("None1"),
        "{r:?}"
    );
    let r = run("{% set _ = messages.pop() %}{{ messages|length }}").result;
    assert!(r.is_err() || r.as_deref() == Ok("1"), "{r:?}");
    // Syntax errors are typed and name no path.
    match run("{% if %}").result {
        Err(TemplateError::Syntax(m)) => assert!(!m.contains('/'), "{m}"),
        other => panic!("{other:?}"),
    }
    // Oversized sources are refused before parsing.
    assert!(matches!(
        run(&"x".repeat(300_000)).result,
        Err(TemplateError::SourceTooLarge { .. })
    ));
}

/// KNOWN GAP in minijinja 3.1.0 (not fixed by us): `list + list` is lazy and charged no fuel;
/// once 33 lazy concatenations nest, minijinja materializes the whole sequence eagerly
/// (`materialize_seq_concat`, added for its stack-overflow fix #907) without consulting fuel,
/// so 64 doublings try to build 2^33 items: minutes of CPU and tens of GiB. Run with
/// `--ignored` under `ulimit -v` to see it; it must pass once minijinja charges that path.
/// Below that depth, iterating a 24-deep lazy chain costs ~24 dynamic calls per item while fuel
/// is charged once per item: 1.8 s (unoptimized minijinja, loaded machine) before fuel runs out.
#[test]
#[ignore = "minijinja 3.1.0 materializes deep lazy list concatenations without fuel"]
fn list_doubling_past_depth_32() {
    let list = [
        s(
            "list-doubling-24",
            "{% set ns = namespace(l=[1]) %}{% for i in range(24) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|list|length }}",
        ),
        s(
            "list-doubling-32",
            "{% set ns = namespace(l=[1]) %}{% for i in range(32) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|list|length }}",
        ),
        s(
            "list-doubling-64",
            "{% set ns = namespace(l=[1]) %}{% for i in range(64) %}{% set ns.l = ns.l + ns.l %}{% endfor %}{{ ns.l|length }}",
        ),
    ];
    cases("memory", &list, must_fail);
}
