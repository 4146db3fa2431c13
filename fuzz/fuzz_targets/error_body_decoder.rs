//! The error-body decoder on arbitrary bytes: it may find nothing, never panic, and never returns
//! a blank code or message.
#![no_main]

use cometapi_runway::decode_error_body;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (code, message) = decode_error_body(data);
    assert!(code.is_none_or(|c| !c.trim().is_empty()));
    assert!(message.is_none_or(|m| !m.trim().is_empty()));
});
