//! The tests' log capture (`common::Logs`) sees an event whose callsite
//! another thread, without a capture, hit first. Alone in its binary, so
//! that no other subscriber is registered: then tracing-core computes such
//! a callsite's interest from the first thread's subscriber alone, unless
//! `Logs::capture` keeps a second one registered.

mod common;

#[test]
fn an_event_first_emitted_on_a_thread_without_capture_is_still_captured() {
    let (logs, _guard) = common::Logs::capture(tracing::Level::DEBUG);
    fn emit() {
        tracing::debug!("a callsite hit for the first time");
    }
    std::thread::spawn(emit).join().expect("thread");
    emit();
    let text = logs.text();
    assert!(
        text.contains("a callsite hit for the first time"),
        "lost: {text:?}"
    );
}
