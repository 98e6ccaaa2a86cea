/*!
The operating-system edge: ICMP sockets and their control messages
([`socket`]), privilege handling ([`privilege`]), the system-call filter
([`seccomp`]) and thread CPU clocks ([`clock`]). Apart from loading compiled plugins (`runtime::cache`), the
host allows `unsafe` only in this module, each block with a `SAFETY` note.
*/

pub mod clock;
pub mod privilege;
pub mod seccomp;
pub mod socket;
