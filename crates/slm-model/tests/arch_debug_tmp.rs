//! Temporary debug dump (to be deleted).
use slm_model::{Batch, Model, Recorder};
#[test]
fn dump() {
    let path = std::env::var("DBG_MODEL").expect("DBG_MODEL");
    let ids: Vec<u32> = std::env::var("DBG_IDS")
        .expect("ids")
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let mut m = Model::load(std::path::Path::new(&path)).unwrap();
    m.set_tracer(Some(Box::new(Recorder::default())));
    let mut kv = m.new_kv_cache(64);
    let mut b = Batch::new();
    for (i, &t) in ids.iter().enumerate() {
        b.push(t, i as u32, 0, true);
    }
    m.forward(&b, &mut kv).unwrap();
    let t = m.set_tracer(None).unwrap();
    let r: &Recorder = unsafe { &*(&*t as *const dyn slm_model::Tracer as *const Recorder) };
    let mut out = String::new();
    for (k, (_, d)) in &r.entries {
        out.push_str(k);
        for x in d {
            out.push_str(&format!(" {x}"));
        }
        out.push('\n');
    }
    std::fs::write("/tmp/archs/dbg/slm.txt", out).unwrap();
}
