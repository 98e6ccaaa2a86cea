/*!
The operating-system edge: ICMP sockets and their control messages
([`socket`]), privilege handling ([`privilege`]), the system-call filter
([`seccomp`]), thread CPU clocks ([`clock`]) and executable memory for
plugins' native code ([`code_memory`]). Apart from loading compiled
plugins (`runtime`) and placing the built-ins' native code in the text
segment (`builtin`), the host allows `unsafe` only in this module, each
block with a `SAFETY` note.
*/

pub mod clock;
pub mod code_memory;
pub mod privilege;
pub mod seccomp;
pub mod socket;
