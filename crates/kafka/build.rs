//! `EVENTLINE_SKIP_KAFKA=1` when the tests are built marks the broker tests ignored, so a run
//! without a broker reports them as skipped instead of passed.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(eventline_skip_kafka)");
    println!("cargo::rerun-if-env-changed=EVENTLINE_SKIP_KAFKA");
    if std::env::var("EVENTLINE_SKIP_KAFKA").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=eventline_skip_kafka");
    }
}
