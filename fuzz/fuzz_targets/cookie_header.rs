#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    sealed_session_fuzz::cookie_header(data);
});
