//! What a caught panic said, for the error that reports it (a sink's panic
//! becomes a failed flush; a panic at the C boundary becomes
//! `SPW_ERR_PANIC` with a message).

use std::any::Any;

/// The text of a panic: what `panic!` was given, when it was a string, or
/// `"(no message)"`.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "(no message)"
    }
}

#[cfg(test)]
mod tests {
    use super::panic_message;
    use std::panic::catch_unwind;

    #[test]
    fn gives_the_text_of_string_panics_and_a_placeholder_otherwise() {
        let p = catch_unwind(|| panic!("static")).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "static");
        let n = 3;
        let p = catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "formatted 3");
        let p = catch_unwind(|| std::panic::panic_any(42u8)).unwrap_err();
        assert_eq!(panic_message(p.as_ref()), "(no message)");
    }
}
