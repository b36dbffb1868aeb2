//! A C buffer whose callback reports each call on `entered`, then waits
//! for `release` and returns `status`: for the C regressions that need a
//! call in progress.
#![allow(dead_code)] // each test file uses a different part

use spillway::ffi::*;
use std::ffi::{c_int, c_void, CString};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;

struct Gate {
    entered: Mutex<Sender<()>>,
    release: Mutex<Receiver<()>>,
    status: c_int,
}

unsafe extern "C" fn held(
    user: *mut c_void,
    _items: *const spw_item,
    _count: usize,
    _info: *const spw_flush_info,
) -> c_int {
    // SAFETY: user is the boxed Gate of a HeldBuffer, alive until after
    // spw_buffer_free returns.
    let gate = unsafe { &*(user as *const Gate) };
    let _ = gate.entered.lock().unwrap().send(());
    let _ = gate.release.lock().unwrap().recv();
    gate.status
}

pub struct HeldBuffer {
    pub buf: *mut spw_buffer,
    pub entered: Receiver<()>,
    pub release: Sender<()>,
    cfg: *mut spw_config,
    // Boxed so its address stays put; dropped after the buffer is freed.
    _gate: Box<Gate>,
}

/// A buffer with the given keys whose callback returns `status`.
pub fn buffer(keys: &[(&str, &str)], status: c_int) -> HeldBuffer {
    let (entered_tx, entered) = channel();
    let (release, release_rx) = channel();
    let gate = Box::new(Gate {
        entered: Mutex::new(entered_tx),
        release: Mutex::new(release_rx),
        status,
    });
    let cfg = spw_config_new();
    for (k, v) in keys {
        let (k, v) = (CString::new(*k).unwrap(), CString::new(*v).unwrap());
        // SAFETY: cfg is live; both strings are NUL-terminated.
        let st = unsafe { spw_config_set(cfg, k.as_ptr(), v.as_ptr()) };
        assert_eq!(st, spw_status::SPW_OK);
    }
    let mut buf = std::ptr::null_mut();
    // SAFETY: cfg is live; the gate is boxed and outlives the buffer.
    let st = unsafe {
        spw_buffer_new(
            cfg,
            Some(held),
            (&*gate as *const Gate).cast_mut().cast(),
            &mut buf,
        )
    };
    assert_eq!(st, spw_status::SPW_OK);
    HeldBuffer {
        buf,
        entered,
        release,
        cfg,
        _gate: gate,
    }
}

impl HeldBuffer {
    /// Inserts one byte string.
    pub fn insert(&self, item: &[u8]) -> spw_status {
        // SAFETY: buf is live; the item is readable.
        unsafe { spw_buffer_insert(self.buf, item.as_ptr().cast(), item.len()) }
    }

    /// The buffer's stats.
    pub fn stats(&self) -> spw_stats {
        let mut s = spw_stats::default();
        // SAFETY: buf is live; s is valid for writing.
        let st = unsafe { spw_buffer_stats(self.buf, &mut s) };
        assert_eq!(st, spw_status::SPW_OK);
        s
    }
}

impl Drop for HeldBuffer {
    fn drop(&mut self) {
        // SAFETY: buf and cfg are live and used by nothing else; the gate
        // is dropped after this, once no callback can run.
        unsafe {
            spw_buffer_free(self.buf);
            spw_config_free(self.cfg);
        }
    }
}
