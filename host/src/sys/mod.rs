/*!
The operating-system edge: ICMP sockets and their control messages
([`socket`]), privilege handling ([`privilege`]) and thread CPU clocks
([`clock`]). Apart from loading compiled plugins (`runtime::cache`), the
host allows `unsafe` only in this module, each block with a `SAFETY` note.
*/

pub mod clock;
pub mod privilege;
pub mod socket;
