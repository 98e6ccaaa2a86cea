//! ICMP sockets at the syscall level: open raw and datagram sockets, set
//! their options, and send and receive with per-packet control messages.
//! Everything here is synchronous and non-blocking; the engine drives it
//! from tokio.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use nix::sys::socket::{
    self, ControlMessage, MsgFlags, SockaddrIn, SockaddrIn6, setsockopt, sockopt,
};
use socket2::{Domain, Protocol, Socket, Type};

use crate::icmp::Family;

/// Raw sockets see every ICMP packet; datagram ("ping") sockets only their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `SOCK_RAW`: needs `CAP_NET_RAW`.
    Raw,
    /// `SOCK_DGRAM` with `IPPROTO_ICMP`: needs `net.ipv4.ping_group_range`.
    Datagram,
}

/// Opens a non-blocking, close-on-exec ICMP socket.
pub fn open(family: Family, kind: Kind) -> io::Result<Socket> {
    let (domain, protocol) = match family {
        Family::V4 => (Domain::IPV4, Protocol::ICMPV4),
        Family::V6 => (Domain::IPV6, Protocol::ICMPV6),
    };
    let ty = match kind {
        Kind::Raw => Type::RAW,
        Kind::Datagram => Type::DGRAM,
    };
    let socket = Socket::new(domain, ty, Some(protocol))?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Registers an owned socket with tokio's reactor.
pub fn register(
    socket: Socket,
    interest: tokio::io::Interest,
) -> io::Result<tokio::io::unix::AsyncFd<Socket>> {
    // SAFETY: `Socket` owns its descriptor; the `AsyncFd` takes ownership of
    // it and nothing else closes or replaces that descriptor while registered.
    unsafe { tokio::io::unix::AsyncFd::register_with_interest(socket, interest) }
        .map_err(|e| e.into())
}

/// Asks the kernel for what `recv` reports: receive timestamps, drop
/// counts, and the arriving TTL / hop limit where the header is not ours
/// to read (raw IPv4 sockets deliver the IP header itself).
pub fn enable_receive_metadata(s: &Socket, family: Family, kind: Kind) -> io::Result<()> {
    setsockopt(s, sockopt::ReceiveTimestampns, &true)?;
    setsockopt(s, sockopt::RxqOvfl, &1)?;
    match (family, kind) {
        (Family::V4, Kind::Raw) => {}
        (Family::V4, Kind::Datagram) => setsockopt(s, sockopt::Ipv4RecvTtl, &true)?,
        (Family::V6, _) => setsockopt(s, sockopt::Ipv6RecvHopLimit, &true)?,
    }
    Ok(())
}

/// Grows the receive buffer to `bytes`, past `net.core.rmem_max` when
/// privileged (`SO_RCVBUFFORCE`).
pub fn set_receive_buffer(s: &Socket, bytes: usize) -> io::Result<()> {
    let forced = setsockopt_int(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, bytes as i32);
    if forced.is_err() {
        s.set_recv_buffer_size(bytes)?;
    }
    Ok(())
}

/// `SOL_RAW` / `ICMP_FILTER` (linux/icmp.h): not in libc.
const SOL_RAW: i32 = 255;
const ICMP_FILTER: i32 = 1;
/// `ICMP6_FILTER` (netinet/icmp6.h), at level `IPPROTO_ICMPV6`.
const ICMP6_FILTER: i32 = 1;

/// Lets only the given ICMP types reach a raw socket (`ICMP_FILTER` /
/// `ICMP6_FILTER`). An empty list makes a send-only socket.
pub fn filter_types(s: &Socket, family: Family, pass: &[u8]) -> io::Result<()> {
    match family {
        Family::V4 => {
            // A set bit blocks that type; only types 0..31 are filterable.
            let mut blocked: u32 = !0;
            for &t in pass.iter().filter(|&&t| t < 32) {
                blocked &= !(1 << t);
            }
            setsockopt_raw(s, SOL_RAW, ICMP_FILTER, &blocked.to_ne_bytes())
        }
        Family::V6 => {
            // struct icmp6_filter: 256 bits, a set bit blocks (RFC 3542 §3.2).
            let mut blocked = [!0u32; 8];
            for &t in pass {
                blocked[usize::from(t >> 5)] &= !(1 << (t & 31));
            }
            let bytes: Vec<u8> = blocked.iter().flat_map(|w| w.to_ne_bytes()).collect();
            setsockopt_raw(s, libc::IPPROTO_ICMPV6, ICMP6_FILTER, &bytes)
        }
    }
}

/// Makes a raw socket send-only: the ICMP filter keeps every filterable
/// type from even being copied to it. `ICMP6_FILTER` covers all 256
/// types; ICMPv4 types 32 and up pass `ICMP_FILTER`, so there a socket
/// filter that accepts nothing drops the rest (the kernel compiles each
/// such filter: not where it would do nothing). Nobody reads such a
/// socket, so nothing must queue there: a full queue would also refuse
/// its transmit stamps. What queued before the filters (any ICMP message
/// the machine received since the socket was opened) is dropped.
pub fn make_send_only(s: &Socket, family: Family) -> io::Result<()> {
    filter_types(s, family, &[])?;
    if family == Family::V4 {
        // `ret #0`: accept no bytes of any packet.
        s.attach_filter(&[socket2::SockFilter::new(
            (libc::BPF_RET | libc::BPF_K) as u16,
            0,
            0,
            0,
        )])?;
    }
    drop_queued(s)
}

/// Reads and drops every message queued on `s`. A raw ICMP socket takes
/// any ICMP message the machine receives until it is filtered (and
/// bound): this empties it of what came in before.
fn drop_queued(s: &Socket) -> io::Result<()> {
    let mut byte = [std::mem::MaybeUninit::uninit()];
    let mut failures = 0;
    loop {
        match s.recv_with_flags(&mut byte, libc::MSG_DONTWAIT) {
            Ok(_) => failures = 0,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            // A foreign ICMP error pending on the socket is reported once
            // (and so consumed); a socket that keeps failing is broken.
            Err(e) => {
                failures += 1;
                if failures == 3 {
                    return Err(e);
                }
            }
        }
    }
}

/// Sets Don't Fragment on every packet of the socket and forbids local
/// fragmentation (`IP_PMTUDISC_DO` / `IPV6_DONTFRAG`).
pub fn set_dont_fragment(s: &Socket, family: Family) -> io::Result<()> {
    match family {
        Family::V4 => setsockopt_int(
            s,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_DO,
        ),
        Family::V6 => {
            setsockopt_int(
                s,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IP_PMTUDISC_DO,
            )?;
            setsockopt(s, sockopt::Ipv6DontFrag, &true).map_err(io::Error::from)
        }
    }
}

/// Undoes [`set_dont_fragment`]: the kernel's default path-MTU behaviour.
pub fn clear_dont_fragment(s: &Socket, family: Family) -> io::Result<()> {
    match family {
        Family::V4 => setsockopt_int(
            s,
            libc::IPPROTO_IP,
            libc::IP_MTU_DISCOVER,
            libc::IP_PMTUDISC_WANT,
        ),
        Family::V6 => {
            setsockopt_int(
                s,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IP_PMTUDISC_WANT,
            )?;
            setsockopt(s, sockopt::Ipv6DontFrag, &false).map_err(io::Error::from)
        }
    }
}

/// Asks for ICMP errors on the error queue (datagram sockets).
pub fn enable_error_queue(s: &Socket, family: Family) -> io::Result<()> {
    match family {
        Family::V4 => setsockopt(s, sockopt::Ipv4RecvErr, &true)?,
        Family::V6 => setsockopt(s, sockopt::Ipv6RecvErr, &true)?,
    }
    Ok(())
}

/// The MTU the kernel would use towards `destination` (interface MTU, or a
/// smaller cached path MTU): `IP_MTU` / `IPV6_MTU` of a connected UDP
/// socket. Nothing is sent.
pub fn path_mtu(destination: SocketAddr, interface: u32) -> io::Result<u32> {
    let (domain, level, name) = match destination {
        SocketAddr::V4(_) => (Domain::IPV4, libc::IPPROTO_IP, libc::IP_MTU),
        SocketAddr::V6(_) => (Domain::IPV6, libc::IPPROTO_IPV6, libc::IPV6_MTU),
    };
    let s = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    if interface != 0 {
        let name = nix::net::if_::if_indextoname(interface).map_err(io::Error::from)?;
        s.bind_device(Some(name.as_bytes()))?;
    }
    let mut port = destination;
    port.set_port(9); // connect(2) needs a port; UDP connect sends nothing
    s.connect(&port.into())?;
    let mut mtu: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(2) writes at most `len` bytes into `mtu`, a live
    // c_int, and updates `len`; `s` is open for the call.
    let rc =
        unsafe { libc::getsockopt(s.as_raw_fd(), level, name, (&raw mut mtu).cast(), &mut len) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    u32::try_from(mtu).map_err(|_| io::Error::other("negative MTU"))
}

/// Bytes of the next datagram waiting on `fd` (`FIONREAD`); `None` when
/// the kernel would not say.
pub fn pending_bytes(fd: RawFd) -> Option<usize> {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int through the pointer, which points
    // to a live local; `fd` is open for the call.
    let rc = unsafe { libc::ioctl(fd, libc::FIONREAD, &raw mut n) };
    (rc == 0).then(|| usize::try_from(n).unwrap_or(0))
}

/// Whether `fd` has a message on its error queue (or a pending error):
/// `poll` says `POLLERR` whatever events were asked. An error of `poll`
/// itself counts as yes.
pub fn error_pending(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one pollfd, a live local, for a call that does not block.
    let rc = unsafe { libc::poll(&raw mut p, 1, 0) };
    rc < 0 || (rc > 0 && p.revents & libc::POLLERR != 0)
}

/// How full `fd`'s receive buffer is: bytes queued (datagrams and the
/// error queue together) and the buffer's size (`SO_MEMINFO`); `None`
/// when the kernel would not say.
pub fn receive_backlog(fd: RawFd) -> Option<(usize, usize)> {
    // SK_MEMINFO_VARS words; RMEM_ALLOC is the first, RCVBUF the second.
    let mut info = [0u32; 16];
    let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `info`, a live
    // local array of that size, and stores the length it wrote.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0 && len >= 8).then(|| (info[0] as usize, info[1] as usize))
}

/// Checks that `source` belongs to this host: a throwaway bind.
pub fn check_local_address(source: SocketAddr) -> io::Result<()> {
    std::net::UdpSocket::bind(source).map(drop)
}

/// Sets up a datagram ICMP socket owned by one virtual socket: receive
/// metadata, the error queue, a 1 MiB buffer, and the source address and
/// interface it was opened with.
pub fn prepare_datagram(
    s: &Socket,
    family: Family,
    source: Option<SocketAddr>,
    interface: Option<&str>,
) -> io::Result<()> {
    enable_receive_metadata(s, family, Kind::Datagram)?;
    enable_error_queue(s, family)?;
    enable_transmit_timestamps(s)?;
    set_receive_buffer(s, 1 << 20)?;
    if let Some(source) = source {
        s.bind(&source.into())?;
    }
    if let Some(name) = interface {
        s.bind_device(Some(name.as_bytes()))?;
    }
    Ok(())
}

/// This host's own addresses, on every interface (`getifaddrs`).
pub fn local_addresses() -> Vec<IpAddr> {
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    addrs
        .filter_map(|a| a.address)
        .filter_map(|s| {
            s.as_sockaddr_in()
                .map(|v4| IpAddr::V4(v4.ip()))
                .or_else(|| s.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
        })
        .collect()
}

/// The index of a network interface by name.
pub fn interface_index(name: &str) -> io::Result<u32> {
    nix::net::if_::if_nametoindex(name).map_err(|e| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface {name:?}: {e}"),
        )
    })
}

fn setsockopt_int(s: &Socket, level: i32, name: i32, value: i32) -> io::Result<()> {
    setsockopt_raw(s, level, name, &value.to_ne_bytes())
}

fn setsockopt_raw(s: &Socket, level: i32, name: i32, value: &[u8]) -> io::Result<()> {
    // SAFETY: setsockopt(2) reads `value.len()` bytes from a live slice and
    // does not keep the pointer; `s` is an open socket for the call.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            value.as_ptr().cast(),
            value.len() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Per-packet settings, sent as ancillary data so that tenants sharing a
/// socket never race on socket options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendOptions {
    /// TTL / hop limit.
    pub ttl: u8,
    /// TOS / traffic class.
    pub traffic_class: u8,
    /// Source address (`IP_PKTINFO` / `IPV6_PKTINFO`).
    pub source: Option<IpAddr>,
    /// Outgoing interface index, 0 for any (also via pktinfo).
    pub interface: u32,
}

/// Sends one ICMP message to `destination` with `options` as control
/// messages. Returns `WouldBlock` when the send buffer is full.
pub fn send(
    fd: RawFd,
    packet: &[u8],
    destination: SocketAddr,
    options: &SendOptions,
) -> io::Result<()> {
    let iov = [IoSlice::new(packet)];
    let ttl = libc::c_int::from(options.ttl);
    let flags = MsgFlags::empty();
    match destination {
        SocketAddr::V4(dst) => {
            let tos = options.traffic_class;
            let pktinfo = libc::in_pktinfo {
                ipi_ifindex: options.interface as i32,
                ipi_spec_dst: libc::in_addr {
                    s_addr: match options.source {
                        Some(IpAddr::V4(a)) => u32::from(a).to_be(),
                        _ => 0,
                    },
                },
                ipi_addr: libc::in_addr { s_addr: 0 },
            };
            let mut cmsgs = vec![ControlMessage::Ipv4Ttl(&ttl), ControlMessage::Ipv4Tos(&tos)];
            if options.source.is_some() || options.interface != 0 {
                cmsgs.push(ControlMessage::Ipv4PacketInfo(&pktinfo));
            }
            let addr = SockaddrIn::from(dst);
            socket::sendmsg(fd, &iov, &cmsgs, flags, Some(&addr))?;
        }
        SocketAddr::V6(dst) => {
            let tclass = i32::from(options.traffic_class);
            let pktinfo = libc::in6_pktinfo {
                ipi6_addr: libc::in6_addr {
                    s6_addr: match options.source {
                        Some(IpAddr::V6(a)) => a.octets(),
                        _ => [0; 16],
                    },
                },
                ipi6_ifindex: options.interface,
            };
            let mut cmsgs = vec![
                ControlMessage::Ipv6HopLimit(&ttl),
                ControlMessage::Ipv6TClass(&tclass),
            ];
            if options.source.is_some() || options.interface != 0 {
                cmsgs.push(ControlMessage::Ipv6PacketInfo(&pktinfo));
            }
            let addr = SockaddrIn6::from(dst);
            socket::sendmsg(fd, &iov, &cmsgs, flags, Some(&addr))?;
        }
    }
    Ok(())
}

/// What arrived with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Bytes written into the buffer.
    pub len: usize,
    /// The datagram was longer than the buffer and was cut.
    pub truncated: bool,
    /// Sender (with scope id for link-local IPv6).
    pub source: SocketAddr,
    /// Kernel receive time, ns since the Unix epoch (`SO_TIMESTAMPNS`).
    pub timestamp_ns: Option<u64>,
    /// TTL / hop limit from `IP_RECVTTL` / `IPV6_RECVHOPLIMIT`.
    pub ttl: Option<u8>,
    /// Cumulative drops of this socket (`SO_RXQ_OVFL`).
    pub drops: Option<u32>,
}

/// An ICMP error taken from the error queue of a datagram socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuedError {
    /// The datagram: our original ICMP message (header first).
    pub received: Received,
    /// ICMP type and code of the error.
    pub icmp_type: u8,
    /// ICMP code.
    pub code: u8,
    /// `ee_info`: the MTU for Fragmentation Needed / Packet Too Big.
    pub info: u32,
    /// The router or host that sent the error (`SO_EE_OFFENDER`).
    pub offender: Option<SocketAddr>,
}

/// `SO_EE_ORIGIN_*` (linux/errqueue.h).
const SO_EE_ORIGIN_ICMP: u8 = 2;
const SO_EE_ORIGIN_ICMP6: u8 = 3;
const SO_EE_ORIGIN_TIMESTAMPING: u8 = 4;

/// What the error queue held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// An ICMP error about one of our requests.
    Icmp(QueuedError),
    /// The kernel's transmit stamp of one of our requests: the request is
    /// in the buffer, `timestamp_ns` is when it left.
    Sent(Received),
}

/// Asks the kernel to stamp each request as it leaves (software transmit
/// timestamps, `SO_TIMESTAMPING`), reported on the error queue.
pub fn enable_transmit_timestamps(s: &Socket) -> io::Result<()> {
    use nix::sys::socket::TimestampingFlag as F;
    setsockopt(
        s,
        sockopt::Timestamping,
        &(F::SOF_TIMESTAMPING_TX_SOFTWARE | F::SOF_TIMESTAMPING_SOFTWARE),
    )?;
    Ok(())
}

/// Most messages one [`recv_many`] takes.
pub const MAX_RECV_BATCH: usize = 64;

/// Bytes of control messages one received message may carry: a receive
/// or transmit stamp (`SO_TIMESTAMPNS`, `SO_TIMESTAMPING`), the TTL, the
/// drop count and an extended error with its offender — with room to spare.
const CONTROL_LEN: usize = 512;

/// Where [`recv_many`] puts what it receives: message slots and their
/// control-message and address space, kept between calls so that
/// receiving allocates nothing. They live in one anonymous mapping, whose
/// pages stay untouched (and cost nothing) until a message fills them: a
/// raw plane's 64 slots are 4 MiB, of which a single ping touches two
/// pages. (From `malloc`, the spaces below its mapping threshold were
/// cleared page by page at each start.)
#[derive(Debug)]
pub struct RecvSlots {
    pages: ZeroedPages,
    layout: SlotsLayout,
    messages: Vec<Message>,
}

/// Zero-filled memory from an anonymous private mapping: each page is
/// the kernel's zero page until written.
#[derive(Debug)]
struct ZeroedPages {
    start: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: `ZeroedPages` owns its mapping outright, like a `Box<[u8]>`.
unsafe impl Send for ZeroedPages {}
// SAFETY: shared access only reads (through `&self`).
unsafe impl Sync for ZeroedPages {}

impl ZeroedPages {
    /// Maps `len` (non-zero) bytes; aborts like a failed allocation when
    /// the kernel refuses.
    fn new(len: usize) -> ZeroedPages {
        // SAFETY: a fresh private anonymous mapping aliases nothing.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        match std::ptr::NonNull::new(start.cast::<u8>()).filter(|_| start != libc::MAP_FAILED) {
            Some(start) => ZeroedPages { start, len },
            None => std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(len, 4096).expect("a page-aligned layout"),
            ),
        }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: the mapping is `len` readable bytes, zero until written,
        // and lives as long as `self`.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as `bytes`, borrowed mutably through `self`.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for ZeroedPages {
    fn drop(&mut self) {
        // SAFETY: the mapping is this value's own, and no borrow outlives it.
        unsafe { libc::munmap(self.start.as_ptr().cast(), self.len) };
    }
}

/// Where things lie in [`RecvSlots`]' mapping: every slot's data first,
/// then each slot's address storage (`sockaddr_storage`) with its control
/// space (for `cmsghdr`s) right after it, so that a message touches its
/// data and one more page. Both are 8-aligned: the mapping starts on a
/// page, the first address at a multiple of 8, and both lengths are
/// multiples of 8.
#[derive(Debug, Clone, Copy)]
struct SlotsLayout {
    count: usize,
    slot_len: usize,
}

const _: () = {
    assert!(align_of::<libc::sockaddr_storage>() <= 8 && align_of::<libc::cmsghdr>() <= 8);
    assert!(SlotsLayout::NAME_LEN.is_multiple_of(8) && CONTROL_LEN.is_multiple_of(8));
};

impl SlotsLayout {
    const NAME_LEN: usize = size_of::<libc::sockaddr_storage>();
    /// A slot's address storage and control space.
    const META_LEN: usize = Self::NAME_LEN + CONTROL_LEN;

    /// `count` slots of `slot_len` bytes; panics when they would not fit
    /// the address space (a caller's bug: lengths are constants).
    fn new(count: usize, slot_len: usize) -> SlotsLayout {
        let layout = SlotsLayout { count, slot_len };
        count
            .checked_mul(slot_len)
            .and_then(|data| data.checked_next_multiple_of(8))
            .and_then(|data| data.checked_add(count.checked_mul(Self::META_LEN)?))
            .expect("receive slots larger than the address space");
        layout
    }

    fn metadata(&self) -> usize {
        (self.count * self.slot_len).next_multiple_of(8)
    }

    fn name(&self, i: usize) -> usize {
        self.metadata() + i * Self::META_LEN
    }

    fn control(&self, i: usize) -> usize {
        self.name(i) + Self::NAME_LEN
    }

    fn len(&self) -> usize {
        self.name(self.count)
    }
}

/// What came with one message of a [`recv_many`] batch.
#[derive(Debug, Clone, Copy)]
pub struct Message {
    /// Its slot.
    pub slot: usize,
    /// Length, stamps, sender.
    pub received: Received,
    /// From the error queue: the extended error and who sent it.
    pub error: Option<ExtendedError>,
}

impl RecvSlots {
    /// `count` slots (at most [`MAX_RECV_BATCH`]) of `slot_len` bytes each.
    pub fn new(count: usize, slot_len: usize) -> RecvSlots {
        let count = count.clamp(1, MAX_RECV_BATCH);
        let layout = SlotsLayout::new(count, slot_len);
        RecvSlots {
            pages: ZeroedPages::new(layout.len()),
            layout,
            messages: Vec::with_capacity(count),
        }
    }

    /// Slots in all.
    pub fn count(&self) -> usize {
        self.layout.count
    }

    /// Slot `i`'s buffer.
    pub fn slot(&self, i: usize) -> &[u8] {
        let len = self.layout.slot_len;
        &self.pages.bytes()[i * len..(i + 1) * len]
    }

    /// Slot `i`'s buffer, to write into (tests that script arrivals).
    #[cfg(test)]
    pub fn slot_mut(&mut self, i: usize) -> &mut [u8] {
        let len = self.layout.slot_len;
        &mut self.pages.bytes_mut()[i * len..(i + 1) * len]
    }

    /// The messages received since [`RecvSlots::clear`], in order.
    pub fn messages(&self) -> &[Message] {
        &self.messages
    }

    /// Records a message (tests that script arrivals).
    #[cfg(test)]
    pub fn push(&mut self, message: Message) {
        self.messages.push(message);
    }

    /// Forgets the messages received; every slot is free again.
    pub fn clear(&mut self) {
        self.messages.clear();
    }

    /// Slots not holding a message.
    pub fn free(&self) -> usize {
        self.count() - self.messages.len()
    }
}

/// Receives what is waiting — up to `max` messages and the free slots of
/// `slots` — with one `recvmmsg`, from the error queue when `errors`;
/// appends to `slots.messages()`. `WouldBlock` when nothing waits.
pub fn recv_many(fd: RawFd, slots: &mut RecvSlots, errors: bool, max: usize) -> io::Result<usize> {
    let first = slots.messages.len();
    let count = slots.free().min(max);
    if count == 0 {
        return Ok(0);
    }
    // SAFETY: all-zero `iovec`s and `mmsghdr`s are valid (null pointers,
    // zero lengths); every one used is filled in below.
    let mut iovecs: [libc::iovec; MAX_RECV_BATCH] = unsafe { std::mem::zeroed() };
    let mut headers: [libc::mmsghdr; MAX_RECV_BATCH] = unsafe { std::mem::zeroed() };
    let layout = slots.layout;
    let base = slots.pages.bytes_mut().as_mut_ptr();
    for k in 0..count {
        let i = first + k;
        // SAFETY: slot `i` < `layout.count`: every offset is inside the
        // mapping, and the spaces of different slots do not overlap.
        let (data, name, control) = unsafe {
            (
                base.add(i * layout.slot_len),
                base.add(layout.name(i)),
                base.add(layout.control(i)),
            )
        };
        iovecs[k] = libc::iovec {
            iov_base: data.cast(),
            iov_len: layout.slot_len,
        };
        let h = &mut headers[k].msg_hdr;
        h.msg_name = name.cast();
        h.msg_namelen = SlotsLayout::NAME_LEN as libc::socklen_t;
        h.msg_iov = &raw mut iovecs[k];
        h.msg_iovlen = 1;
        h.msg_control = control.cast();
        h.msg_controllen = CONTROL_LEN as _;
    }
    let mut flags = libc::MSG_DONTWAIT | libc::MSG_TRUNC;
    if errors {
        flags |= libc::MSG_ERRQUEUE;
    }
    // SAFETY: `count` headers point into the mapping of `slots`, which
    // stays borrowed (and mapped) for the call: each names its own slot,
    // its own control space and its own address storage, with their
    // lengths.
    let received = unsafe {
        libc::recvmmsg(
            fd,
            headers.as_mut_ptr(),
            count as libc::c_uint,
            flags,
            std::ptr::null_mut(),
        )
    };
    if received < 0 {
        return Err(io::Error::last_os_error());
    }
    let received = received as usize;
    for (k, header) in headers[..received].iter().enumerate() {
        let i = first + k;
        // SAFETY: the address storage is 8-aligned inside the mapping
        // (`SlotsLayout`), and zero or the sender the kernel wrote; the kernel
        // filled this header's control space (the lengths it wrote back
        // bound it).
        let message = unsafe {
            let name = &*base.add(layout.name(i)).cast::<libc::sockaddr_storage>();
            parse_message(i, header, layout.slot_len, name)
        };
        slots.messages.push(message);
    }
    Ok(received)
}

/// One received message's length, sender and control messages.
///
/// # Safety
/// `header` was filled by `recvmmsg`: its control pointer and length
/// describe initialised control messages, and `name` holds the sender.
unsafe fn parse_message(
    slot: usize,
    header: &libc::mmsghdr,
    capacity: usize,
    name: &libc::sockaddr_storage,
) -> Message {
    let h = &header.msg_hdr;
    let bytes = header.msg_len as usize;
    let source = sockaddr_to_std(name, h.msg_namelen)
        .unwrap_or(SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0)));
    let mut received = Received {
        len: bytes.min(capacity),
        truncated: bytes > capacity || h.msg_flags & libc::MSG_TRUNC != 0,
        source,
        timestamp_ns: None,
        ttl: None,
        drops: None,
    };
    let mut error = None;
    // SAFETY: (for the whole walk) the caller's promise: the control
    // buffer holds `msg_controllen` bytes of control messages; the CMSG_*
    // macros stay within it, and every read checks the message's length.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(h) };
    while !cmsg.is_null() {
        let c = unsafe { &*cmsg };
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        let len = (c.cmsg_len as usize).saturating_sub(unsafe { libc::CMSG_LEN(0) } as usize);
        let read_int =
            || (len >= 4).then(|| unsafe { data.cast::<libc::c_int>().read_unaligned() });
        match (c.cmsg_level, c.cmsg_type) {
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) if len >= size_of::<libc::timespec>() => {
                let ts = unsafe { data.cast::<libc::timespec>().read_unaligned() };
                received.timestamp_ns = received.timestamp_ns.or(timespec_to_ns(&ts));
            }
            // SO_TIMESTAMPING: the software stamp (for a transmit stamp on
            // the error queue, when the request left).
            (libc::SOL_SOCKET, libc::SCM_TIMESTAMPING) if len >= size_of::<libc::timespec>() => {
                let ts = unsafe { data.cast::<libc::timespec>().read_unaligned() };
                if let Some(ns) = timespec_to_ns(&ts).filter(|&ns| ns != 0) {
                    received.timestamp_ns = Some(ns);
                }
            }
            (libc::SOL_SOCKET, libc::SO_RXQ_OVFL) => {
                received.drops = read_int().map(|n| n as u32);
            }
            (libc::IPPROTO_IP, libc::IP_TTL) => {
                received.ttl = read_int().and_then(|n| u8::try_from(n).ok());
            }
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                received.ttl = read_int().and_then(|n| u8::try_from(n).ok());
            }
            (libc::IPPROTO_IP, libc::IP_RECVERR) => {
                error = unsafe { extended_error::<libc::sockaddr_in>(data, len) }
                    .map(|(ee, a)| (ee, a.map(|a| SocketAddr::V4(sockaddr_in_to_std(&a)))));
            }
            (libc::IPPROTO_IPV6, libc::IPV6_RECVERR) => {
                error = unsafe { extended_error::<libc::sockaddr_in6>(data, len) }
                    .map(|(ee, a)| (ee, a.map(|a| SocketAddr::V6(sockaddr_in6_to_std(&a)))));
            }
            _ => {}
        }
        cmsg = unsafe { libc::CMSG_NXTHDR(h, cmsg) };
    }
    Message {
        slot,
        received,
        error,
    }
}

/// An `IP_RECVERR` / `IPV6_RECVERR` payload: the extended error, and the
/// offender's address when the message carries one (`SO_EE_OFFENDER`).
///
/// # Safety
/// `data` points at `len` readable bytes of the control message.
unsafe fn extended_error<A>(
    data: *const u8,
    len: usize,
) -> Option<(libc::sock_extended_err, Option<A>)> {
    let ee_len = size_of::<libc::sock_extended_err>();
    if len < ee_len {
        return None;
    }
    // SAFETY: `len` covers the error (checked above), and the offender
    // when `len` covers it too.
    let ee = unsafe { data.cast::<libc::sock_extended_err>().read_unaligned() };
    let offender = (len >= ee_len + size_of::<A>())
        .then(|| unsafe { data.add(ee_len).cast::<A>().read_unaligned() });
    Some((ee, offender))
}

/// What the error queue holds, from what came with a message of it: an
/// ICMP error, a transmit stamp, or (`None`) a local error.
pub fn queued(message: &Message) -> Option<Queued> {
    let (ee, offender) = message.error?;
    let received = message.received;
    match ee.ee_origin {
        SO_EE_ORIGIN_ICMP | SO_EE_ORIGIN_ICMP6 => Some(Queued::Icmp(QueuedError {
            received,
            icmp_type: ee.ee_type,
            code: ee.ee_code,
            info: ee.ee_info,
            offender,
        })),
        SO_EE_ORIGIN_TIMESTAMPING => received.timestamp_ns.map(|_| Queued::Sent(received)),
        _ => None,
    }
}

/// What came with an error-queue message, before it is classified: the
/// extended error and the offender it names, if any.
pub type ExtendedError = (libc::sock_extended_err, Option<SocketAddr>);

fn timespec_to_ns(ts: &libc::timespec) -> Option<u64> {
    u64::try_from(ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128).ok()
}

fn sockaddr_to_std(s: &libc::sockaddr_storage, len: libc::socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    match i32::from(s.ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            // SAFETY: the family says it is a `sockaddr_in`, the length covers it.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            Some(SocketAddr::V4(sockaddr_in_to_std(a)))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            // SAFETY: the family says it is a `sockaddr_in6`, the length covers it.
            let a = unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            Some(SocketAddr::V6(sockaddr_in6_to_std(a)))
        }
        _ => None,
    }
}

fn sockaddr_in_to_std(a: &libc::sockaddr_in) -> SocketAddrV4 {
    SocketAddrV4::new(
        Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
        u16::from_be(a.sin_port),
    )
}

fn sockaddr_in6_to_std(a: &libc::sockaddr_in6) -> SocketAddrV6 {
    SocketAddrV6::new(
        Ipv6Addr::from(a.sin6_addr.s6_addr),
        u16::from_be(a.sin6_port),
        a.sin6_flowinfo,
        a.sin6_scope_id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Raw sockets, or `None` where this process may not open them (then
    /// the test is skipped, but never under `CI=true`).
    fn raw(family: Family) -> Option<Socket> {
        match open(family, Kind::Raw) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                assert_ne!(
                    std::env::var("CI").as_deref(),
                    Ok("true"),
                    "raw sockets need root (or CAP_NET_RAW) in CI"
                );
                eprintln!("skipped: raw sockets need root (or CAP_NET_RAW)");
                None
            }
            Err(e) => panic!("cannot open a raw socket: {e}"),
        }
    }

    /// One `recvmmsg` fills distinct slots, each with its own sender and
    /// receive stamp, and marks what its slot cut short; slots whose
    /// length is not a multiple of 8 keep the spaces after them aligned.
    #[test]
    fn recv_many_fills_each_slot_with_its_own_message_and_sender() {
        let Some(receiver) = raw(Family::V4) else {
            return;
        };
        // Type 30 passes alone, to an address of its own: other tests send
        // every type to 127.0.0.1.
        let at = SocketAddr::from((Ipv4Addr::new(127, 0, 0, 30), 0));
        receiver.bind(&at.into()).unwrap();
        filter_types(&receiver, Family::V4, &[30]).unwrap();
        enable_receive_metadata(&receiver, Family::V4, Kind::Raw).unwrap();
        // Until bound and filtered, it took any ICMP message on the
        // machine (other tests send every type).
        drop_queued(&receiver).unwrap();
        let from = |last: u8| SocketAddr::from((Ipv4Addr::new(127, 0, 0, last), 0));
        // 20 bytes of IP header, then 8 of ICMP, then 12 of body: 40 in all
        // (the third's 80 do not fit).
        let slot_len = 61;
        for last in 1..=3u8 {
            let sender = raw(Family::V4).unwrap();
            sender.bind(&from(last).into()).unwrap();
            let mut message = vec![30, 0, 0, 0, 0, 0, 0, last];
            message.resize(if last == 3 { 80 } else { 20 }, last);
            sender.send_to(&message, &at.into()).unwrap();
        }
        let mut slots = RecvSlots::new(4, slot_len);
        let fd = receiver.as_raw_fd();
        let mut received = 0;
        for _ in 0..100 {
            match recv_many(fd, &mut slots, false, 4) {
                Ok(n) => received += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("recv_many: {e}"),
            }
            if received == 3 {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        assert_eq!(received, 3);
        for (i, m) in slots.messages().iter().enumerate() {
            let last = i as u8 + 1;
            assert_eq!(m.slot, i);
            assert_eq!(m.received.source, from(last));
            assert!(m.received.timestamp_ns.is_some(), "message {i}: no stamp");
            let data = &slots.slot(i)[..m.received.len];
            assert_eq!(data[20], 30, "message {i}: not its own type");
            assert_eq!(data[27], last, "message {i}: another message's body");
            assert_eq!(m.received.truncated, last == 3, "message {i}");
            assert_eq!(m.received.len, if last == 3 { slot_len } else { 40 });
        }
        assert_eq!(slots.free(), 1);
    }

    /// Every slot's address storage and control space is aligned for
    /// its type, and apart from every other slot's and from the data.
    #[test]
    fn slot_spaces_are_aligned_and_apart() {
        for slot_len in [1, 61, 64, 65_600] {
            let layout = SlotsLayout::new(MAX_RECV_BATCH, slot_len);
            let mut spaces = vec![(0, slot_len * MAX_RECV_BATCH)];
            for i in 0..MAX_RECV_BATCH {
                let (name, control) = (layout.name(i), layout.control(i));
                assert_eq!(name % align_of::<libc::sockaddr_storage>(), 0);
                assert_eq!(control % align_of::<libc::cmsghdr>(), 0);
                spaces.push((name, name + SlotsLayout::NAME_LEN));
                spaces.push((control, control + CONTROL_LEN));
            }
            spaces.sort();
            assert!(spaces.windows(2).all(|w| w[0].1 <= w[1].0), "{slot_len}");
            assert_eq!(spaces.last().unwrap().1, layout.len());
        }
    }

    /// Nothing queues on a send-only socket, whatever the ICMP type: below
    /// 32 the type filter stops it, above (IPv4) the socket filter, and an
    /// unfiltered socket beside it sees every message of both.
    #[test]
    fn a_send_only_socket_queues_no_message_of_any_type() {
        for (family, loopback) in [
            (Family::V4, SocketAddr::from((Ipv4Addr::LOCALHOST, 0))),
            (Family::V6, SocketAddr::from((Ipv6Addr::LOCALHOST, 0))),
        ] {
            let (Some(send_only), Some(seen), Some(sender)) =
                (raw(family), raw(family), raw(family))
            else {
                return;
            };
            make_send_only(&send_only, family).unwrap();
            seen.set_recv_buffer_size(1 << 20).unwrap();
            // Not echoes: their replies would reach other tests' sockets.
            let echoes = [0, 8, 128, 129];
            for kind in (0..=255u8).filter(|t| !echoes.contains(t)) {
                // Type, code, checksum (zero: nobody on loopback checks it
                // before raw sockets get their copy), then a body.
                let message = [kind, 0, 0, 0, 0, 1, 0, 1];
                sender.send_to(&message, &loopback.into()).unwrap();
            }
            let mut seen_types = std::collections::HashSet::new();
            let mut buf = [0u8; 256];
            while let Ok(n) = std::io::Read::read(&mut &seen, &mut buf) {
                // IPv4 raw sockets deliver the IP header (20 bytes here).
                let at = if family == Family::V4 { 20 } else { 0 };
                if n > at {
                    seen_types.insert(buf[at]);
                }
            }
            assert!(
                seen_types.contains(&40) && seen_types.contains(&200),
                "{family:?}: the unfiltered socket saw types {seen_types:?}"
            );
            let fd = send_only.as_raw_fd();
            assert_eq!(pending_bytes(fd), Some(0), "{family:?}");
            assert_eq!(receive_backlog(fd).map(|b| b.0), Some(0), "{family:?}");
        }
    }
}
