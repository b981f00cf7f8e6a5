//! The load generator's schedule clock.

use mio::{Interest, Poll, Token};

use super::hostile::HOSTILE_BASE;

pub(super) const TIMER: Token = Token(HOSTILE_BASE - 1);

/// A monotonic-clock timerfd in the poll set: sub-millisecond wake-ups for
/// the next scheduled send while still waking at once for venue replies
/// (epoll's own timeout has millisecond granularity).
pub(super) struct Timer {
    pub(super) fd: libc::c_int,
    pub(super) base: libc::timespec,
}

impl Timer {
    pub(super) fn new(poll: &Poll) -> Result<Timer, String> {
        // SAFETY: plain syscalls on a descriptor this struct owns.
        let fd = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK) };
        if fd < 0 {
            return Err(format!(
                "timerfd_create: {}",
                std::io::Error::last_os_error()
            ));
        }
        let mut base = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `base` is a valid timespec to fill.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut base) };
        poll.registry()
            .register(&mut mio::unix::SourceFd(&fd), TIMER, Interest::READABLE)
            .map_err(|e| e.to_string())?;
        Ok(Timer { fd, base })
    }

    /// Fires at `offset_ns` after the timer's creation (its base).
    pub(super) fn arm(&self, offset_ns: u64) {
        let total = self.base.tv_nsec as u64 + offset_ns;
        let value = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: self.base.tv_sec + (total / 1_000_000_000) as libc::time_t,
                tv_nsec: (total % 1_000_000_000) as libc::c_long,
            },
        };
        // SAFETY: valid descriptor and itimerspec.
        unsafe {
            libc::timerfd_settime(
                self.fd,
                libc::TFD_TIMER_ABSTIME,
                &value,
                std::ptr::null_mut(),
            );
        }
    }

    pub(super) fn clear(&self) {
        let mut expirations = 0u64;
        // SAFETY: reads 8 bytes into a u64 from a non-blocking timerfd.
        unsafe {
            libc::read(self.fd, (&mut expirations as *mut u64).cast(), 8);
        }
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // SAFETY: closes the descriptor this struct owns.
        unsafe { libc::close(self.fd) };
    }
}
