/*!
The operating-system edge: ICMP sockets and their control messages
([`socket`]), and privilege handling ([`privilege`]). These two files are the
only ones in the host allowed `unsafe`, each block with a `SAFETY` note.
*/

pub mod privilege;
pub mod socket;
