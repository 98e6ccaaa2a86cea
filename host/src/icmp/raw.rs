//! Raw ICMP sockets, opened while the process is privileged: per family a
//! shared receiver (filtered to replies and errors), send-only siblings
//! for socket-wide options (Don't Fragment, broadcast), so nothing is ever
//! set on the shared socket that another tenant's send could race with,
//! and two send-only sockets for the rest (`lane`): bursts, and single
//! requests from the first.

use std::io;

use super::types::Family;
use crate::sys::socket::{self as sys, Kind};

/// ICMP types a raw receiving socket lets through (ICMP_FILTER): echo
/// replies and the errors that quote our requests. Everything else — our
/// own echo requests on loopback, neighbour discovery — stays in the kernel.
const PASS_V4: &[u8] = &[0, 3, 4, 5, 11, 12];
const PASS_V6: &[u8] = &[1, 2, 3, 4, 129];

/// The raw sockets of one family, opened while privileged.
#[derive(Debug)]
pub(crate) struct RawFamilySockets {
    pub(crate) receiver: socket2::Socket,
    pub(crate) dont_fragment: socket2::Socket,
    pub(crate) broadcast: Option<socket2::Socket>,
    /// The lane's two send-only sockets: a burst's caller's (single
    /// requests' too) and the lane thread's.
    pub(crate) lane: [socket2::Socket; 2],
}

/// Raw sockets opened up front, so that capabilities can be dropped before
/// any plugin runs.
#[derive(Debug, Default)]
pub struct RawSockets {
    pub(crate) v4: Option<RawFamilySockets>,
    pub(crate) v6: Option<RawFamilySockets>,
    /// Why raw sockets are unavailable, when they are.
    pub(crate) unavailable: Option<String>,
}

impl RawSockets {
    /// Opens the raw sockets of both families, if this process may.
    pub fn open(receive_buffer: usize) -> RawSockets {
        let mut raw = RawSockets::default();
        for family in [Family::V4, Family::V6] {
            match Self::open_family(family, receive_buffer) {
                Ok(s) => match family {
                    Family::V4 => raw.v4 = Some(s),
                    Family::V6 => raw.v6 = Some(s),
                },
                Err(e) => {
                    raw.unavailable.get_or_insert_with(|| e.to_string());
                }
            }
        }
        raw
    }

    /// No raw sockets (unprivileged runs, tests).
    pub fn none(reason: &str) -> RawSockets {
        RawSockets {
            unavailable: Some(reason.to_owned()),
            ..RawSockets::default()
        }
    }

    /// Whether any raw socket is open.
    pub fn any(&self) -> bool {
        self.v4.is_some() || self.v6.is_some()
    }

    fn open_family(family: Family, receive_buffer: usize) -> io::Result<RawFamilySockets> {
        let receiver = sys::open(family, Kind::Raw)?;
        let pass = match family {
            Family::V4 => PASS_V4,
            Family::V6 => PASS_V6,
        };
        sys::filter_types(&receiver, family, pass)?;
        sys::enable_receive_metadata(&receiver, family, Kind::Raw)?;
        sys::enable_transmit_timestamps(&receiver)?;
        sys::set_receive_buffer(&receiver, receive_buffer)?;
        // Send-only sockets for socket-wide options: they receive nothing
        // (the shared receiver sees every reply anyway).
        let dont_fragment = sys::open(family, Kind::Raw)?;
        sys::make_send_only(&dont_fragment, family)?;
        sys::set_dont_fragment(&dont_fragment, family)?;
        let broadcast = match family {
            Family::V4 => {
                let s = sys::open(family, Kind::Raw)?;
                sys::make_send_only(&s, family)?;
                s.set_broadcast(true)?;
                Some(s)
            }
            Family::V6 => None,
        };
        // The lane's two senders; their transmit stamps queue on their
        // own error queues, as big as the receiver's.
        let sender = || -> io::Result<socket2::Socket> {
            let s = sys::open(family, Kind::Raw)?;
            sys::make_send_only(&s, family)?;
            sys::enable_transmit_timestamps(&s)?;
            sys::set_receive_buffer(&s, receive_buffer)?;
            Ok(s)
        };
        let lane = [sender()?, sender()?];
        Ok(RawFamilySockets {
            receiver,
            dont_fragment,
            broadcast,
            lane,
        })
    }
}
